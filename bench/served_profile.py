"""Where a served request's CPU goes: py-spy samples every gunicorn worker while wrk sends one scenario.

Usage:  .venv/bin/python bench/served_profile.py [--scenario "signed EVENT"] [--duration 10] [--rate 200] [--top 25]
                                         [--env NAME=VALUE ...] [--raw FILE] [--ref GIT-REF]
Needs:  wrk, redis-server, py-spy (pip install py-spy; root, or ptrace allowed). Loopback only.
The service runs as bench/run.py runs its default deployment (gunicorn with config/gunicorn.conf.py, the
bench app, Redis); with --ref, an earlier commit's code, config and bench app (a temporary git worktree). Samples are of busy threads only (py-spy leaves out threads waiting in the kernel, so a
gevent hub waiting on epoll is not counted); C code is charged to the Python frame that called it. Prints
the share of samples by package (the innermost frame's file) and the functions with the most samples,
inclusive and self.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.run as bench  # noqa: E402

# py-spy's raw format: "frame;frame;...;innermost count", each frame "function (file:line)".
_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")
# The innermost frame's file, mapped to a short name; the first match wins.
_PACKAGES = [
    ("smartapp/logs.py", "smartapp logs"), ("logging/", "logging"), ("smartapp/", "smartapp"),
    ("gunicorn/", "gunicorn"), ("gevent/", "gevent"), ("redis/", "redis-py"), ("cryptography/", "cryptography"),
    ("json/", "json"), ("werkzeug/", "werkzeug"), ("flask/", "flask"), ("switch_logger", "bench app"),
]


def package_of(file: str) -> str:
    return next((name for part, name in _PACKAGES if part in file), "other: " + file.rsplit("/", 1)[-1])


def summarise(raw: str, top: int) -> str:
    """Shares by package of the innermost frame, and the functions with the most samples."""
    by_package: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = []
        for frame in stack.split(";"):
            match = _FRAME.match(frame)
            frames.append((match.group("function"), match.group("file")) if match else (frame, ""))
        function, file = frames[-1]
        by_package[package_of(file)] += count
        own[f"{function} ({file})"] += count
        for name in {f"{function} ({file})" for function, file in frames}:
            inclusive[name] += count
    if not total:
        return "no samples (is py-spy allowed to attach?)"
    lines = [f"{total} samples of busy worker threads", "", "by package (innermost frame):"]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in by_package.most_common()]
    lines += ["", f"top {top} functions, inclusive:"]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in inclusive.most_common(top)]
    lines += ["", f"top {top} functions, self:"]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in own.most_common(top)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenario", default="signed EVENT", help="a bench/run.py scenario name")
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--rate", type=int, default=200, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="an extra environment variable for the service, e.g. WEB_CONCURRENCY=2")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's raw stacks in this file")
    parser.add_argument("--ref", metavar="GIT-REF", help="profile this commit's code instead of this checkout's")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server", "py-spy"):
        if not shutil.which(tool) and not Path(sys.executable).with_name(tool).exists():
            raise SystemExit(f"profile needs {tool}")
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))

    from cryptography.hazmat.primitives import serialization

    key = bench.TestKey.generate(region="bench1")
    keys = bench.KeyServer().start()
    keys.publish(key.key_id, key.certificate_pem)
    redis = bench.RedisServer("--appendonly", "yes", "--appendfsync", "everysec").start()
    work = Path(tempfile.mkdtemp(prefix="smartapp-profile-"))
    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    target = None
    checkout = work / "checkout" if args.ref else None
    if checkout is not None:
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(checkout), args.ref], cwd=bench.ROOT, check=True)
    try:
        distinct = max(5000 * args.duration, 20000)
        scenarios = bench.sign_scenarios(pem, key.key_id, time.time() + bench.DATE_AHEAD_SECONDS, work, distinct)
        scenario = next(s for s in scenarios if s.name == args.scenario)
        env = {**bench.service_environment(redis.url, keys.url, work),
               **dict(item.split("=", 1) for item in args.env)}
        if checkout is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(checkout), str(checkout / "examples")])
        target = bench.gunicorn("smartapp (default)", "smartapp:create_app()", env, "smartapp")
        target.cwd = checkout or bench.ROOT
        target.start()
        bench.precheck(target, key)
        stacks = work / "stacks.txt"
        spy = subprocess.Popen([py_spy, "record", "--pid", str(target.process.pid), "--subprocesses", "--nonblocking",
                                "--format", "raw", "--rate", str(args.rate), "--duration", str(args.duration),
                                "--output", str(stacks)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1)  # py-spy attaches to each worker before the load starts
        result = bench.run_wrk(target.url, scenario, duration=args.duration, connections=args.connections)
        spy.wait(args.duration + 30)
        raw = stacks.read_text() if stacks.exists() else ""
        if args.raw:
            args.raw.write_text(raw)
        print(f"{args.scenario}: {result['rps']:.0f} req/s, p99 {result['p99']:.1f} ms, "
              f"{result['errors']} unexpected answers")
        print(summarise(raw, args.top))
    finally:
        if target is not None:
            target.stop()
        keys.stop()
        redis.stop()
        if checkout is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(checkout)], cwd=bench.ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
