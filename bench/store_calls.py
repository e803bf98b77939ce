"""Client CPU of the replay calls in a gevent process: concurrent greenlets on the auto-pipeline, or one connection each.

Usage:  .venv/bin/python bench/store_calls.py [--greenlets 8] [--rounds 5] [--calls 8000]
Each greenlet claims a fresh marker, completes it and claims it again (the second claim finds it done), as
a worker's requests do. Printed per round: the process's CPU (user + system) per claim/complete/claim, with
the store's calls on the auto-pipeline, then with the pipeline switched off (a connection per concurrent
call, as before it). Needs redis-server; run it alone, as the other benches.
"""

from gevent import monkey

monkey.patch_all()

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

import gevent  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.run import TOKEN_KEY  # noqa: E402
from smartapp.store import ReplayState  # noqa: E402
from smartapp.store.cipher import TokenCipher  # noqa: E402
from smartapp.store.redis_store import RedisStore, make_redis_client  # noqa: E402
from testbed.redis_server import RedisServer  # noqa: E402


def one_round(store: RedisStore, greenlets: int, calls: int) -> float:
    """CPU microseconds per claim, complete and second claim, `greenlets` of them at a time."""
    def requests(count: int) -> None:
        for _ in range(count):
            marker = uuid.uuid4().hex
            assert store.claim(marker, owner="first", lease_seconds=10) is ReplayState.CLAIMED
            store.complete(marker, ttl_seconds=630)
            assert store.claim(marker, owner="second", lease_seconds=10) is ReplayState.DONE

    each = calls // greenlets
    started = time.process_time()
    gevent.joinall([gevent.spawn(requests, each) for _ in range(greenlets)], raise_error=True)
    return (time.process_time() - started) / (each * greenlets) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--greenlets", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=8000)
    args = parser.parse_args()
    redis = RedisServer().start()
    try:
        for pipelined in (True, False):
            store = RedisStore(make_redis_client(redis.url), TokenCipher.from_env_value(TOKEN_KEY))
            store._scripts._pipelinable = pipelined  # a what-if for the second half, never what the service does
            one_round(store, args.greenlets, 400)  # connects, loads the scripts
            figures = [one_round(store, args.greenlets, args.calls) for _ in range(args.rounds)]
            store.close()
            print(f"{'auto-pipeline' if pipelined else 'a connection each':<20} {args.greenlets} greenlets: "
                  f"median {statistics.median(figures):5.0f} us, rounds {[round(f) for f in figures]}")
    finally:
        redis.stop()


if __name__ == "__main__":
    main()
