"""Before/after: this checkout against an earlier commit, both under the default gunicorn config, in one run.

Usage:  .venv/bin/python bench/compare.py <git ref> [--rounds 2] [--duration 8] [--distinct 30000]
                                         [--scenarios "signed EVENT,signed CONFIG PAGE,PING"]
Needs:  wrk, redis-server, git. Loopback only. The ref is checked out into a temporary git worktree.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bench.run as bench  # noqa: E402

SCENARIOS = ("signed EVENT", "signed CONFIG PAGE", "PING")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ref", help="the earlier commit, branch or tag")
    parser.add_argument("--rounds", type=int, default=2, help="alternations of before and after")
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--distinct", type=int, default=30000)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help="comma-separated bench/run.py scenario names (e.g. 'bad signature,unknown-keyId flood')")
    args = parser.parse_args()
    for tool in ("wrk", "redis-server", "git"):
        if not shutil.which(tool):
            raise SystemExit(f"compare needs {tool} on PATH")

    from cryptography.hazmat.primitives import serialization

    key = bench.TestKey.generate(region="bench1")
    keys = bench.KeyServer().start()
    keys.publish(key.key_id, key.certificate_pem)
    redis = bench.RedisServer("--appendonly", "yes", "--appendfsync", "everysec").start()
    work = Path(tempfile.mkdtemp(prefix="smartapp-compare-"))
    before = work / "before"
    subprocess.run(["git", "worktree", "add", "--detach", "-q", str(before), args.ref], cwd=ROOT, check=True)
    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    try:
        signed = bench.sign_scenarios(pem, key.key_id, time.time() + bench.DATE_AHEAD_SECONDS, work, args.distinct)
        wanted = args.scenarios.split(",")
        scenarios = [scenario for scenario in signed if scenario.name in wanted]
        env = {"REDIS_URL": redis.url, "SMARTAPP_TOKEN_KEYS": bench.TOKEN_KEY, "SMARTAPP_KEY_SERVER": keys.url,
               "SMARTAPP_DB_PATH": str(work / "bench.db"), "LOG_FORMAT": "json"}
        import redis as redis_py

        admin = redis_py.Redis.from_url(redis.url)
        print(f"{'round':<6}{'code':<22}" + "".join(f"{scenario.name:>22}" for scenario in scenarios))
        for round_number in range(1, args.rounds + 1):
            for label, checkout in ((f"before ({args.ref})", before), ("after (this checkout)", ROOT)):
                # gunicorn puts its working directory first on sys.path, so each side imports its own code,
                # and serves its own bench app (this checkout's may use API the earlier code lacks).
                python_path = os.pathsep.join([str(checkout), str(checkout / "examples")])
                side_env = {**env, "SMARTAPP_APP": bench.BENCH_APP, "PYTHONPATH": python_path}
                target = bench.Target(label, [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py",
                                              "--bind", "127.0.0.1:{port}", "smartapp:create_app()"], side_env,
                                      "smartapp", cwd=checkout)
                target.start()
                cells = []
                try:
                    bench.precheck(target, key)
                    for scenario in scenarios:
                        admin.flushall()
                        result = bench.run_wrk(target.url, scenario, duration=args.duration,
                                               connections=args.connections)
                        cells.append(f"{result['rps']:.0f} (p99 {result['p99']:.1f})")
                finally:
                    target.stop()
                print(f"{round_number:<6}{label[:21]:<22}" + "".join(f"{cell:>22}" for cell in cells), flush=True)
    finally:
        keys.stop()
        redis.stop()
        subprocess.run(["git", "worktree", "remove", "--force", str(before)], cwd=ROOT, check=False)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
