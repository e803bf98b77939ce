"""Scale figures: Redis bytes per installation, and the refresh-due sweep over many installations.

Usage:  .venv/bin/python bench/scale.py [--installations 10000] [--latency-ms 20] [--concurrency 8,32]
                                       [--processes 1,2]
Needs redis-server. The token endpoint is a loopback server answering after a fixed latency. Before the
sweeps, the same number of token calls is timed alone (one process, no store): what one process allows.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import secrets
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from smartapp import refresh_due  # noqa: E402
from smartapp.outbound import size_pool  # noqa: E402
from smartapp.settings import Settings  # noqa: E402
from smartapp.smartthings import SmartThingsClient  # noqa: E402
from smartapp.store import open_store  # noqa: E402
from smartapp.store.cipher import TokenCipher  # noqa: E402
from smartapp.fakes.loopback import LoopbackServer, Reply  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402

TOKEN_KEY = "hZbiYh5ZOAk1Q4Y5lImkJiyLh1SRHWgQgjaYMtIaCyg="
INSTALL = json.loads((ROOT / "tests" / "fixtures" / "install_pysmartapp.json").read_text())["installData"]


def installation_fields(now: float, *, linked: bool) -> dict:
    """What INSTALL (and, when linked, OAUTH_CALLBACK) store for a typical installation."""
    app = INSTALL["installedApp"]
    config = {"switches": [{"valueType": "DEVICE", "deviceConfig": {"deviceId": str(uuid.uuid4()),
                                                                    "componentId": "main"}} for _ in range(3)]}
    fields = {
        "location_id": app["locationId"], "locale": "en", "config": config,
        "permissions": [f"r:devices:{uuid.uuid4()}" for _ in range(3)] + [f"x:devices:{uuid.uuid4()}"],
        "auth_token": str(uuid.uuid4()), "refresh_token": str(uuid.uuid4()),
        "auth_token_expires_at": now + 60, "refresh_token_issued_at": now,
    }
    if linked:
        fields.update(provider="generic", provider_access_token=secrets.token_urlsafe(32),
                      provider_refresh_token=secrets.token_urlsafe(32), provider_token_expires_at=now + 86400,
                      provider_refresh_token_issued_at=now, provider_scope="openid offline_access")
    return fields


def serve_token_endpoint(latency: float, urls) -> None:
    """A SmartThings-shaped token endpoint: rotates every refresh token, after `latency` seconds.

    It runs in its own process so its Python work does not share the sweep's interpreter lock.
    """
    server = LoopbackServer()

    def answer(call, match) -> Reply:
        form = dict(parse_qsl(call.body.decode()))
        if form.get("grant_type") != "refresh_token" or not form.get("refresh_token"):
            return Reply(400, {"error": "invalid_request"})
        return Reply(200, {"access_token": str(uuid.uuid4()), "refresh_token": str(uuid.uuid4()),
                           "token_type": "bearer", "expires_in": 86399}, delay=latency)

    server.route("POST", "/oauth/token", answer)
    urls.put(server.start().url)
    threading.Event().wait()


def token_endpoint(latency: float) -> tuple[multiprocessing.Process, str]:
    context = multiprocessing.get_context("spawn")
    urls = context.Queue()
    process = context.Process(target=serve_token_endpoint, args=(latency, urls), daemon=True)
    process.start()
    return process, urls.get(timeout=30)


def token_calls_alone(url: str, count: int, concurrency: int) -> float:
    """Seconds for `count` refresh calls at `concurrency` in this one process, with nothing else around them."""
    # The sweep's own call (SmartThingsClient.refresh_token, its session sized the same way), with no store
    # read, lock, encryption or write around it.
    client = SmartThingsClient(api_url=url)
    size_pool(client.session, concurrency)

    def call(index: int) -> None:
        client.refresh_token(str(uuid.UUID(int=index)), token_url=url, client_id="bench",
                             client_secret="bench-secret", timeout=10)

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        list(pool.map(call, range(count)))
    elapsed = time.perf_counter() - started
    client.session.close()
    return elapsed


def measure_memory(url: str, count: int, label: str) -> list[str]:
    """MEMORY USAGE of installation hashes, and used_memory growth, over `count` installations."""
    import redis

    admin = redis.Redis.from_url(url)
    store = open_store(redis_url=url, sqlite_path="", cipher=TokenCipher([TOKEN_KEY]))
    lines = []
    try:
        now = time.time()
        for linked in (False, True):
            admin.flushall()
            ids = [str(uuid.uuid4()) for _ in range(count)]
            before = admin.info("memory")["used_memory"]
            for iaid in ids:
                store.update(iaid, installation_fields(now, linked=linked))
            used = admin.info("memory")["used_memory"] - before
            sample = ids[:: max(1, len(ids) // 1000)]
            per_key = sum(admin.memory_usage(f"smartapp:installation:{{{iaid}}}", samples=0) for iaid in sample)
            what = "SmartThings + provider tokens" if linked else "SmartThings tokens"
            lines.append(f"Redis per installation, {what}, {label}: MEMORY USAGE {per_key / len(sample):.0f} B, "
                         f"used_memory growth {used / len(ids):.0f} B (over {len(ids)} installations)")
    finally:
        store.close()
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--installations", type=int, default=10000)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--processes", default="1,2", help="refresh-due --processes values to measure")
    args = parser.parse_args()

    redis_server = RedisServer("--appendonly", "yes").start()
    endpoint, endpoint_url = token_endpoint(args.latency_ms / 1000)
    lines = []
    try:
        # Redis keeps a hash compact (listpack) only while every value is at most hash-max-listpack-value
        # bytes (64 by default); Fernet tokens are ~170, so the default config stores a hashtable.
        for label, extra in (("default config", ()), ("hash-max-listpack-value 1024", ("--hash-max-listpack-value",
                                                                                       "1024"))):
            memory_server = RedisServer("--appendonly", "yes", *extra).start() if extra else redis_server
            try:
                lines.extend(measure_memory(memory_server.url, args.installations, label))
            finally:
                if extra:
                    memory_server.stop()

        settings = Settings.from_env({
            "REDIS_URL": redis_server.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY, "SMARTAPP_CLIENT_ID": "bench",
            "SMARTAPP_CLIENT_SECRET": "bench-secret", "SMARTAPP_TOKEN_URL": endpoint_url + "/oauth/token",
        }, dotenv=None)
        runs = [(int(c), int(p)) for c in args.concurrency.split(",") for p in args.processes.split(",")]
        for concurrency in dict.fromkeys(c for c, _ in runs):
            elapsed = token_calls_alone(endpoint_url + "/oauth/token", args.installations, concurrency)
            bound = args.installations * args.latency_ms / 1000 / concurrency
            lines.append(f"ceiling: {args.installations} token calls alone (no store, lock or encryption), "
                         f"concurrency {concurrency}, one process: {elapsed:.1f} s -> {bound / elapsed:.0%} "
                         f"of the bound")
            print(lines[-1], flush=True)
        for concurrency, processes in runs:
            store = open_store(redis_url=redis_server.url, sqlite_path="", cipher=TokenCipher([TOKEN_KEY]))
            for iaid in store.installed_app_ids():  # every installation due again
                store.update(iaid, {"auth_token_expires_at": time.time() + 60})
            store.close()
            started = time.perf_counter()
            report = refresh_due.run(settings=settings, within_seconds=3600, concurrency=concurrency,
                                     processes=processes)
            elapsed = time.perf_counter() - started
            bound = report.refreshed * args.latency_ms / 1000 / concurrency
            lines.append(f"refresh-due, {report.checked} installations, token endpoint {args.latency_ms:.0f} ms, "
                         f"concurrency {concurrency}, processes {processes}: {elapsed:.1f} s "
                         f"({report.refreshed} refreshed, {len(report.failures)} failed); "
                         f"latency/concurrency bound {bound:.1f} s -> {bound / elapsed:.0%} of the bound")
            print(lines[-1], flush=True)
        # The usual run: few or none due. What the sweep then costs is the check of every installation.
        started = time.perf_counter()
        report = refresh_due.run(settings=settings, within_seconds=3600, concurrency=8)
        elapsed = time.perf_counter() - started
        lines.append(f"refresh-due, {report.checked} installations, none due: {elapsed:.1f} s "
                     f"({elapsed / max(1, report.checked) * 1000:.2f} ms per installation checked)")
        print(lines[-1], flush=True)
    finally:
        endpoint.terminate()
        redis_server.stop()
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
