"""Benchmark: a signed EVENT through the service (gunicorn + Redis) next to a bare Flask floor, one run.

Usage: .venv/bin/python bench/webhook.py [--duration 10] [--connections 16] [--requests 30000]
Needs wrk (apt-get install wrk) and redis-server. Results are printed and written to bench/results/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.fakes.keyserver import KeyServer  # noqa: E402
from tests.fakes.redis_server import RedisServer, free_port  # noqa: E402
from tests.signing import Signer, TestKey  # noqa: E402

TOKEN_KEY = "hZbiYh5ZOAk1Q4Y5lImkJiyLh1SRHWgQgjaYMtIaCyg="
EVENT = json.loads((ROOT / "tests" / "fixtures" / "event_device.json").read_text())


def event_body(index: int) -> bytes:
    body = json.loads(json.dumps(EVENT))
    body["executionId"] = str(uuid.UUID(int=index))
    body["eventData"]["events"][0]["deviceEvent"]["eventId"] = str(uuid.UUID(int=index + 1 << 64))
    return json.dumps(body, separators=(",", ":")).encode()


_signer: Signer | None = None


def _init_signer(key_pem: bytes, key_id: str) -> None:
    global _signer
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    _signer = Signer(TestKey(load_pem_private_key(key_pem, None), b"", b"", key_id))


def _raw_request(index: int) -> bytes:
    body = event_body(index)
    headers = _signer.headers(body)
    lines = ["POST / HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def presign(key: TestKey, count: int, path: Path) -> None:
    """Distinct signed requests, so none is refused as a replay during the run."""
    from cryptography.hazmat.primitives import serialization

    pem = key.private_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption())
    with ProcessPoolExecutor(os.cpu_count(), initializer=_init_signer, initargs=(pem, key.key_id)) as pool:
        with path.open("wb") as out:
            for raw in pool.map(_raw_request, range(count), chunksize=500):
                out.write(f"{len(raw)}\n".encode() + raw)


def start_gunicorn(app: str, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    full_env = {**os.environ, **env, "PORT": str(port)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "config/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", app],
        cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            requests.post(url + "/", data=b"{}", headers={"Content-Type": "application/json"}, timeout=0.5)
            return process, url
        except requests.ConnectionError:
            time.sleep(0.1)
    raise RuntimeError(f"{app} did not start")


def worker_peak_rss_mb(master: subprocess.Popen) -> float:
    children = subprocess.run(["pgrep", "-P", str(master.pid)], capture_output=True, text=True).stdout.split()
    peaks = []
    for pid in children:
        status = Path(f"/proc/{pid}/status").read_text()
        peaks.append(int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024)
    return max(peaks) if peaks else 0.0


def run_wrk(url: str, *, duration: int, connections: int, requests_file: Path | None) -> dict:
    args = ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency"]
    if requests_file:
        args += ["-s", str(ROOT / "bench" / "rotate.lua"), url + "/", "--", str(requests_file)]
    else:
        args += ["-s", str(ROOT / "bench" / "post_empty.lua"), url + "/"]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def latency(label: str) -> float:
        match = re.search(rf"\s{label}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(match.group(1)), match.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
        "p50_ms": latency("50"), "p99_ms": latency("99"),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0) + (sum(map(int, errors.groups())) if errors else 0),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--requests", type=int, default=30000, help="distinct pre-signed requests")
    args = parser.parse_args()

    key = TestKey.generate(region="bench1")
    keys = KeyServer().start()
    keys.publish(key.key_id, key.certificate_pem)
    redis = RedisServer().start()
    workdir = ROOT / "bench" / "results"
    workdir.mkdir(parents=True, exist_ok=True)
    requests_file = workdir / "signed-events.bin"
    presign(key, args.requests, requests_file)

    service_env = {"REDIS_URL": redis.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY, "SMARTAPP_KEY_SERVER": keys.url,
                   "SMARTAPP_DB_PATH": str(workdir / "bench.db")}
    rows = []
    try:
        for label, app, env, file in [
            ("bare Flask floor", "bench.bare_app:app", {}, None),
            ("smartapp signed EVENT", "smartapp:create_app()", service_env, requests_file),
        ]:
            process, url = start_gunicorn(app, env)
            try:
                if file:  # a fast wrong answer must never look like a win
                    good = _check(url, key, valid=True)
                    bad = _check(url, key, valid=False)
                    assert (good, bad) == (200, 401), (good, bad)
                result = run_wrk(url, duration=args.duration, connections=args.connections, requests_file=file)
                result["rss_mb"] = worker_peak_rss_mb(process)
                rows.append((label, result))
            finally:
                process.terminate()
                process.wait(10)
    finally:
        keys.stop()
        redis.stop()
        requests_file.unlink(missing_ok=True)

    floor = rows[0][1]["rps"]
    lines = [f"{'target':<24}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs floor':>10}{'peak RSS/worker':>17}"]
    for label, r in rows:
        lines.append(f"{label:<24}{r['rps']:>10.0f}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['errors']:>8}"
                     f"{r['rps'] / floor:>9.0%}{r['rss_mb']:>14.1f} MB")
    header = (f"wrk -t1 -c{args.connections} -d{args.duration}s, gunicorn config/gunicorn.conf.py "
              f"(WEB_CONCURRENCY={os.environ.get('WEB_CONCURRENCY', 'default')}), {os.cpu_count()} cores")
    report = header + "\n" + "\n".join(lines)
    print(report)
    (workdir / time.strftime("webhook-%Y%m%dT%H%M%S.txt")).write_text(report + "\n")
    return 0


def _check(url: str, key: TestKey, *, valid: bool) -> int:
    body = event_body(10**9 + int(valid))
    headers = Signer(key).headers(body)
    if not valid:
        headers["Digest"] = "SHA256=" + "A" * 43 + "="
    return requests.post(url + "/", data=body, headers=headers, timeout=5).status_code


if __name__ == "__main__":
    sys.exit(main())
