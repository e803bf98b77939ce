"""CPU per request inside one process, without gunicorn or wrk: where the webhook's own time goes.

Usage:  .venv/bin/python bench/inprocess.py [--requests 3000] [--rounds 5] [--without PART ...] [--profile]
                                           [--no-hiredis] [--ceiling]
Needs redis-server. The bench app runs as the default deployment builds it (Redis store, JSON logs, here to
/dev/null); requests are WSGI environs handed straight to it. `--without log|claim|rsa` swaps one part
for a no-op, so the difference to a full run is that part's cost in context; the request line is also timed
alone, with a signed EVENT's fields, after the scenarios. `--profile` prints cProfile's
top functions for each scenario instead of timing. Store operations are timed one by one at the end.
Run it alone: on 2 shared cores a neighbour moves these figures by tens of per cent.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import logging
import os
import pstats
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from redis.utils import HIREDIS_AVAILABLE
from werkzeug.test import EnvironBuilder

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if "--no-hiredis" in sys.argv:
    sys.modules["hiredis"] = None  # before redis-py is imported: it picks its reply parser once, at import

import smartapp  # noqa: E402
import smartapp.signature as signature  # noqa: E402
from bench.run import TOKEN_KEY, event_body, page_body, ping_body, service_environment  # noqa: E402
from bench.scale import installation_fields  # noqa: E402
from smartapp.logs import configure  # noqa: E402
from smartapp.store import ReplayState, Store, open_store  # noqa: E402
from smartapp.store.cipher import TokenCipher  # noqa: E402
from testbed.keyserver import KeyServer  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402
from testbed.signing import Signer, TestKey  # noqa: E402

if TYPE_CHECKING:
    from flask import Flask

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]

SCENARIOS: dict[str, Callable[[int], bytes]] = {"PING": ping_body, "signed EVENT": event_body,
                                                "signed CONFIG PAGE": page_body}
WARM_UP = 200


def requests_for(scenario: str, signer: Signer, count: int) -> list[tuple[dict, bytes]]:
    now = time.time()
    made = []
    for index in range(count):
        body = SCENARIOS[scenario](index)
        headers = {} if scenario == "PING" else signer.headers(body, now=now)
        environ = EnvironBuilder(method="POST", path="/", data=body,
                                 headers={"Content-Type": "application/json", **headers}).get_environ()
        made.append((environ, body))
    return made


def serve(app: WsgiApp, requests: list[tuple[dict, bytes]]) -> None:
    statuses = []

    def start_response(status: str, headers: list) -> None:
        statuses.append(status)

    for environ, body in requests:
        environ = dict(environ, **{"wsgi.input": io.BytesIO(body)})
        app(environ, start_response)
        if not statuses[-1].startswith("200"):
            raise SystemExit(f"expected 200, got {statuses[-1]}: the measurement would be of a rejection")


def per_call_us(run: Callable[[], None], calls: int) -> float:
    started = time.process_time()
    run()
    return (time.process_time() - started) / calls * 1e6


def time_scenario(app: WsgiApp, scenario: str, signer: Signer, args: argparse.Namespace) -> list[float]:
    """CPU per request in each round; every request is new (a repeated signature is answered as a replay)."""
    batches = [requests_for(scenario, signer, args.requests) for _ in range(args.rounds)]
    serve(app, requests_for(scenario, signer, WARM_UP))
    return [per_call_us(lambda batch=batch: serve(app, batch), args.requests) for batch in batches]


def print_figures(name: str, samples: list[float]) -> None:
    print(f"  {name:<36} median {statistics.median(samples):6.0f} us   min {min(samples):6.0f} us")


def without(app: Flask, parts: list[str]) -> None:
    """Replace the named parts with no-ops (a what-if, never what the service does)."""
    services = app.extensions["smartapp"]
    if "log" in parts:
        logging.getLogger("smartapp").setLevel(logging.CRITICAL)
    if "claim" in parts:
        services.store.claim = lambda marker, owner, lease_seconds, installed_app_id=None: ReplayState.CLAIMED
        services.store.complete = lambda marker, ttl_seconds, installed_app_id=None: None
    if "rsa" in parts:
        signature.verify_rsa = lambda key, sig, message: None


def store_operations(store: Store, rounds: int, calls: int) -> list[tuple[str, list[float]]]:
    now = time.time()
    linked = str(uuid.uuid4())
    store.update(linked, installation_fields(now, linked=True))
    operations: list[tuple[str, Callable[[], object]]] = [
        ("store.get (linked installation)", lambda: store.get(linked)),
        ("store.claim (replay lease)", lambda: store.claim(uuid.uuid4().hex, owner="bench", lease_seconds=10)),
        ("store.complete (replay done)", lambda: store.complete(uuid.uuid4().hex, ttl_seconds=630)),
        ("store.update (two token fields)", lambda: store.update(linked, {"auth_token": "a" * 36,
                                                                          "auth_token_expires_at": now})),
    ]
    figures = []
    for name, operation in operations:
        for _ in range(WARM_UP):
            operation()
        samples = []
        for _ in range(rounds):
            samples.append(per_call_us(lambda: [operation() for _ in range(calls)], calls))
        figures.append((name, samples))
    return figures


def request_line_us(rounds: int, calls: int) -> list[float]:
    """CPU of one request line as a signed EVENT of the bench app writes it: its ids, fields and annotation."""
    from smartapp import logs

    event = json.loads(event_body(0))
    ids = logs._request_ids.set({"requestId": "5d1c9a0e7b3f", "correlationId": str(uuid.uuid4())})
    fields = {"lifecycle": "EVENT", "executionId": event["executionId"],
              "installedAppId": event["eventData"]["installedApp"]["installedAppId"],
              "switch": event["eventData"]["events"][0]["deviceEvent"]["deviceId"], "value": "on"}
    try:
        def write_lines() -> None:
            for _ in range(calls):
                logs.log_request(logging.INFO, {**fields, "status": 200, "reason": None, "durationMs": 1.37})

        write_lines()  # warm up
        return [per_call_us(write_lines, calls) for _ in range(rounds)]
    finally:
        logs._request_ids.reset(ids)


def main() -> int:
    # No abbreviations: --no-hiredis is also read from sys.argv before argparse runs, by its full name only.
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], allow_abbrev=False)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round and scenario")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--without", action="append", default=[], choices=["log", "claim", "rsa"])
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--no-hiredis", action="store_true", help="read Redis replies with redis-py's Python parser")
    parser.add_argument("--ceiling", action="store_true",
                        help="also time bench/least_signed.py's app on the signed scenarios (the verify+claim ceiling)")
    args = parser.parse_args()

    key = TestKey.generate(region="bench1")
    keys = KeyServer().start()
    keys.publish(key.key_id, key.certificate_pem)
    redis = RedisServer().start()
    temporary = tempfile.TemporaryDirectory(prefix="smartapp-inprocess-")
    work = temporary.name
    # The app bench/run.py serves (examples/switch_logger.py), under the default deployment's settings.
    os.environ.update(service_environment(redis.url, keys.url, Path(work)))
    sys.path.insert(0, os.environ["PYTHONPATH"])
    try:
        app = smartapp.create_app()
        configure("json", stream=open(os.devnull, "w"))  # the same formatting work, no terminal in the figures
        without(app, args.without)
        signer = Signer(key)
        parser_name = "hiredis" if HIREDIS_AVAILABLE else "redis-py's Python parser"
        print(f"in-process CPU per call, {args.rounds} rounds of {args.requests}; Redis replies read by "
              f"{parser_name}; without: {', '.join(args.without) or 'nothing'}")
        for scenario in SCENARIOS:
            if args.profile:
                serve(app, requests_for(scenario, signer, WARM_UP))
                profiler = cProfile.Profile()
                profiler.runcall(serve, app, requests_for(scenario, signer, args.requests))
                print(f"--- {scenario}")
                pstats.Stats(profiler).sort_stats(os.environ.get("PROFILE_SORT", "tottime")).print_stats(int(os.environ.get("PROFILE_TOP", "25")))
                continue
            print_figures(scenario, time_scenario(app, scenario, signer, args))
        if args.profile:
            return 0
        print_figures("request line (JSON, to /dev/null)", request_line_us(args.rounds, args.requests))
        if args.ceiling:
            public_key = Path(work) / "public.pem"
            public_key.write_bytes(key.public_key_pem)
            os.environ["BENCH_PUBLIC_KEY"] = str(public_key)
            from bench.least_signed import app as least_signed  # it reads BENCH_PUBLIC_KEY when imported

            for scenario in [name for name in SCENARIOS if name != "PING"]:  # it verifies every request
                print_figures("ceiling: " + scenario, time_scenario(least_signed, scenario, signer, args))
        store = open_store(redis_url=redis.url, sqlite_path="", cipher=TokenCipher([TOKEN_KEY]))
        for name, samples in store_operations(store, args.rounds, args.requests):
            print_figures(name, samples)
        store.close()
    finally:
        keys.stop()
        redis.stop()
        temporary.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
