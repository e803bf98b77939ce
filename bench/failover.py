"""Write availability and durability when Redis fails over: a frozen cluster primary, and a SENTINEL FAILOVER.

Usage:  .venv/bin/python bench/failover.py [--clients 4] [--seconds 20]
Needs:  redis-server. Loopback only. The service runs under gunicorn (config/gunicorn.conf.py, 2 workers);
        each client thread sends signed INSTALLs for new installations, one after the other.
Prints, per scenario: requests answered 200 and 503, the longest time no write was acknowledged (for the
cluster: on the frozen primary's slots, and any 503 elsewhere), and how many acknowledged INSTALLs are
missing afterwards. The figures move with the host's load: compare runs of the same session only.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from redis.crc import key_slot  # noqa: E402

from smartapp.store.cipher import TokenCipher  # noqa: E402
from smartapp.store.redis_store import RedisStore, make_redis_client  # noqa: E402
from smartapp.fakes.fake_smartthings import FakeSmartThings  # noqa: E402
from testbed.keyserver import KeyServer  # noqa: E402
from testbed.redis_cluster import RedisClusterNodes  # noqa: E402
from testbed.redis_sentinel import SentinelSet  # noqa: E402
from testbed.service import Gunicorn  # noqa: E402
from testbed.signing import Signer, TestKey  # noqa: E402

TOKEN_KEY = "hZbiYh5ZOAk1Q4Y5lImkJiyLh1SRHWgQgjaYMtIaCyg="
INSTALL = json.loads((ROOT / "tests" / "fixtures" / "install.json").read_text())


@dataclass
class Outcome:
    """Every answer, in order: (time sent, time answered, installedAppId, status)."""

    answers: list[tuple[float, float, str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sent: float, answered: float, iaid: str, status: int) -> None:
        with self.lock:
            self.answers.append((sent, answered, iaid, status))


def stream(url: str, signer: Signer, outcome: Outcome, stop: threading.Event) -> None:
    session = requests.Session()
    while not stop.is_set():
        iaid = str(uuid.uuid4())
        body = copy.deepcopy(INSTALL)
        body["installData"]["installedApp"]["installedAppId"] = iaid
        raw = json.dumps(body).encode()
        sent = time.monotonic()
        try:
            status = session.post(url + "/", data=raw, headers=signer.headers(raw), timeout=15).status_code
        except requests.RequestException:
            status = 0
        outcome.add(sent, time.monotonic(), iaid, status)


def longest_gap(acknowledged: list[float], start: float, end: float) -> float:
    """The longest stretch between start and end with no acknowledged write."""
    points = [start] + sorted(t for t in acknowledged if start <= t <= end) + [end]
    return max(b - a for a, b in zip(points, points[1:]))


def run_scenario(name: str, url: str, env: dict[str, str], key: TestKey, args, fault, work: Path) -> Outcome:
    server = Gunicorn(env, work / f"{name}.log", workers=2)
    outcome, stop = Outcome(), threading.Event()
    threads = [threading.Thread(target=stream, args=(server.url, Signer(key), outcome, stop))
               for _ in range(args.clients)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(2)
        fault_at = time.monotonic()
        fault()
        time.sleep(args.seconds)
        stop.set()
        for thread in threads:
            thread.join()
    finally:
        server.stop()
    outcome.fault_at = fault_at  # type: ignore[attr-defined]
    return outcome


def lost(url: str, outcome: Outcome) -> tuple[int, int]:
    store = RedisStore(make_redis_client(url), TokenCipher.from_env_value(TOKEN_KEY))
    try:
        acknowledged = [iaid for _, _, iaid, status in outcome.answers if status == 200]
        return sum(1 for iaid in acknowledged if store.get(iaid) is None), len(acknowledged)
    finally:
        store.close()


def summary(outcome: Outcome) -> str:
    statuses: dict[int, int] = {}
    for *_, status in outcome.answers:
        statuses[status] = statuses.get(status, 0) + 1
    return ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))


def cluster_frozen_primary(env: dict[str, str], key: TestKey, args, work: Path) -> None:
    cluster = RedisClusterNodes().start()
    try:
        victim = cluster.primaries[0]
        victim_slots = set(range(16384 // 3))  # primaries[0]'s share (testbed/redis_cluster.py)
        outcome = run_scenario("cluster", cluster.url, {**env, "REDIS_URL": cluster.url}, key, args,
                               victim.pause, work)
        victim.resume()
        cluster.wait_for_state_ok()
        fault_at = outcome.fault_at  # type: ignore[attr-defined]
        on_victim = [answered for _, answered, iaid, status in outcome.answers
                     if status == 200 and key_slot(iaid.encode()) in victim_slots]
        elsewhere_503 = sum(1 for sent, _, iaid, status in outcome.answers
                            if status != 200 and sent >= fault_at and key_slot(iaid.encode()) not in victim_slots)
        end = max(answered for _, answered, _, _ in outcome.answers)
        missing, acknowledged = lost(cluster.url, outcome)
        print(f"cluster, one of 3 primaries frozen (SIGSTOP) for {args.seconds} s, node timeout 1 s: {summary(outcome)}")
        print(f"  its slots: no write acknowledged for {longest_gap(on_victim, fault_at, end):.1f} s; "
              f"other slots: {elsewhere_503} non-200 answers; acknowledged INSTALLs lost: {missing} of {acknowledged}")
    finally:
        cluster.stop()


def sentinel_failover(env: dict[str, str], key: TestKey, args, work: Path, wait_replicas: int) -> None:
    sentinels = SentinelSet().start()
    try:
        settings = {**env, "REDIS_URL": sentinels.url, "SMARTAPP_REDIS_WAIT_REPLICAS": str(wait_replicas)}
        outcome = run_scenario(f"sentinel-wait{wait_replicas}", sentinels.url, settings, key, args,
                               sentinels.failover, work)
        sentinels.wait_for_replicas()
        fault_at = outcome.fault_at  # type: ignore[attr-defined]
        acknowledged = [answered for _, answered, _, status in outcome.answers if status == 200]
        end = max(answered for _, answered, _, _ in outcome.answers)
        missing, total = lost(sentinels.url, outcome)
        print(f"sentinel, SENTINEL FAILOVER (master + 1 replica), SMARTAPP_REDIS_WAIT_REPLICAS={wait_replicas}: "
              f"{summary(outcome)}")
        print(f"  no write acknowledged for {longest_gap(acknowledged, fault_at, end):.1f} s; "
              f"acknowledged INSTALLs lost: {missing} of {total}")
    finally:
        sentinels.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=20, help="how long to keep writing after the fault")
    parser.add_argument("--scenarios", default="cluster,sentinel-wait1,sentinel-wait0")
    args = parser.parse_args()
    key = TestKey.generate(region="failover1")
    keys, api = KeyServer().start(), FakeSmartThings().start()
    keys.publish(key.key_id, key.certificate_pem)
    with tempfile.TemporaryDirectory(prefix="smartapp-failover-") as directory:
        work = Path(directory)
        env = {"SMARTAPP_TOKEN_KEYS": TOKEN_KEY, "SMARTAPP_KEY_SERVER": keys.url, "SMARTAPP_API_URL": api.url,
               "SMARTAPP_TOKEN_URL": api.url + "/oauth/token", "SMARTAPP_DB_PATH": str(work / "unused.db"),
               "SMARTAPP_PUBLIC_URL": "https://smartapp.example.test/", "LOG_FORMAT": "json"}
        try:
            for scenario in args.scenarios.split(","):
                if scenario == "cluster":
                    cluster_frozen_primary(env, key, args, work)
                elif scenario.startswith("sentinel-wait"):
                    sentinel_failover(env, key, args, work, int(scenario.removeprefix("sentinel-wait")))
                else:
                    raise SystemExit(f"unknown scenario {scenario}")
        finally:
            keys.stop()
            api.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
