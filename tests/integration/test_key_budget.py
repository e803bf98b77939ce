"""Key fetches share one budget through the store, and a key fetched by one worker serves every worker."""

from __future__ import annotations

import time

import pytest

from smartapp.errors import KeyUnavailable, SignatureError
from smartapp.keys import KeyResolver
from smartapp.store import open_store
from smartapp.store.cipher import TokenCipher
from tests.conftest import TOKEN_KEY
from tests.support.key_server import key_id, server  # noqa: F401 - `server` is the loopback key server fixture


@pytest.fixture
def open_worker_store(store_kind, tmp_path, request):
    """Opens the deployment's store again for each simulated worker (its own connections)."""
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    opened = []

    def open_one():
        store = open_store(redis_url=redis_url, sqlite_path=str(tmp_path / "shared.db"),
                           cipher=TokenCipher.from_env_value(TOKEN_KEY))
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()


class CountingShare:
    """The real store, counting how often the resolver asks it (a recording wrapper, not a stand-in)."""

    def __init__(self, store) -> None:
        self.store = store
        self.asked = 0

    def shared_key(self, key_id: str, **budget):
        self.asked += 1
        return self.store.shared_key(key_id, **budget)

    def share_key(self, key_id: str, value: str, **ttl) -> None:
        self.store.share_key(key_id, value, **ttl)


def outcome(resolver: KeyResolver, key: str) -> str:
    try:
        resolver.resolve(key)
    except (SignatureError, KeyUnavailable) as error:
        return error.reason
    return "resolved"


def test_a_key_fetched_by_one_worker_serves_the_others_without_a_fetch(server, open_worker_store, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    workers = [KeyResolver(key_server=server.url, share=open_worker_store()) for _ in range(4)]
    keys = [worker.resolve(test_key.key_id) for worker in workers]
    assert server.fetches(test_key.key_id) == 1
    assert len({key.public_numbers() for key in keys}) == 1


def test_a_key_id_refused_by_the_key_server_is_refused_by_every_worker_without_a_fetch(server, open_worker_store):
    unknown = key_id(77)
    workers = [KeyResolver(key_server=server.url, share=open_worker_store()) for _ in range(4)]
    assert [outcome(worker, unknown) for worker in workers] == ["unknown_key"] * 4
    assert server.fetches(unknown) == 1


def test_every_worker_draws_on_one_budget(server, open_worker_store):
    workers = [KeyResolver(key_server=server.url, fetch_budget=20, fetch_refill_per_second=1.0,
                           share=open_worker_store()) for _ in range(8)]
    started = time.monotonic()
    outcomes = [outcome(workers[n % 8], key_id(1000 + n)) for n in range(200)]
    elapsed = time.monotonic() - started
    assert set(outcomes) <= {"unknown_key", "key_fetch_throttled"}
    # Per worker this was 20 each (160); shared, it is the burst plus what refilled meanwhile.
    assert server.total_fetches <= 20 + int(elapsed) + 1
    assert outcomes.count("unknown_key") == server.total_fetches


def test_the_cached_key_path_never_asks_the_store(server, open_worker_store, test_key):
    server.publish(test_key.key_id, test_key.certificate_pem)
    share = CountingShare(open_worker_store())
    resolver = KeyResolver(key_server=server.url, share=share)
    for _ in range(50):
        resolver.resolve(test_key.key_id)
    assert share.asked == 1  # the one miss
    assert outcome(resolver, key_id(5)) == "unknown_key"
    assert share.asked == 2  # a miss costs one round trip


def test_a_store_that_is_down_leaves_each_worker_its_own_budget(server, tmp_path, test_key):
    from testbed.redis_server import free_port

    server.publish(test_key.key_id, test_key.certificate_pem)
    down = open_store(redis_url=f"redis://127.0.0.1:{free_port()}/0", sqlite_path=str(tmp_path / "x.db"),
                      cipher=TokenCipher.from_env_value(TOKEN_KEY))
    try:
        resolver = KeyResolver(key_server=server.url, fetch_budget=3, fetch_refill_per_second=0.001, share=down)
        assert outcome(resolver, test_key.key_id) == "resolved"
        assert [outcome(resolver, key_id(n)) for n in range(4)] == ["unknown_key"] * 2 + ["key_fetch_throttled"] * 2
        assert server.total_fetches == 3
    finally:
        down.close()


@pytest.mark.slow
def test_a_frozen_store_costs_one_store_timeout_then_the_worker_decides_alone(server, test_key):
    from testbed.redis_server import RedisServer

    server.publish(test_key.key_id, test_key.certificate_pem)
    frozen = RedisServer().start()
    share = CountingShare(open_store(redis_url=frozen.url, sqlite_path="unused.db",
                                     cipher=TokenCipher.from_env_value(TOKEN_KEY)))
    resolver = KeyResolver(key_server=server.url, share=share)
    frozen.pause()
    try:
        started = time.monotonic()
        assert outcome(resolver, test_key.key_id) == "resolved"  # after one store timeout (about 1.1 s)
        elapsed = time.monotonic() - started
        assert outcome(resolver, key_id(9)) == "unknown_key"
    finally:
        frozen.resume()
        share.store.close()
        frozen.stop()
    assert elapsed < 3.0  # inside the request's budget
    assert share.asked == 1  # the second miss did not wait for the store again
    assert server.total_fetches == 2
