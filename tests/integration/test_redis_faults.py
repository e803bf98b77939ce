"""Redis stopped, frozen or refusing writes: StoreUnavailable fast, nothing half-written, recovery without restart."""

from __future__ import annotations

import time

import pytest
import redis
from cryptography.fernet import Fernet

from smartapp.errors import StoreUnavailable
from smartapp.store import ReplayState
from smartapp.store.cipher import TokenCipher
from smartapp.store.redis_store import RedisStore, make_redis_client
from testbed.redis_server import RedisServer, free_port

IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
BUDGET = 1.5  # seconds of Redis time one request may spend (docs/reliability.md#the-time-budget)


@pytest.fixture
def private_server():
    """A redis-server of the test's own, so stopping or freezing it cannot hurt other tests."""
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cipher() -> TokenCipher:
    return TokenCipher([Fernet.generate_key().decode()])


def timed(call) -> float:
    started = time.monotonic()
    with pytest.raises(StoreUnavailable):
        call()
    return time.monotonic() - started


def operations(store: RedisStore) -> dict:
    return {
        "get": lambda: store.get(IAID),
        "update": lambda: store.update(IAID, {"auth_token": "new-access", "refresh_token": "new-refresh",
                                              "location_id": "new-location"}),
        "claim": lambda: store.claim("f" * 64, owner="frozen", lease_seconds=300),
        "acquire": lambda: store.acquire(IAID, ttl_seconds=10, wait_seconds=0),
        "consume": lambda: store.consume(IAID),
    }


def test_client_configuration_is_explicit():
    client = make_redis_client("redis://:pw-canary@127.0.0.1:1/0")
    kwargs = client.connection_pool.connection_kwargs
    assert kwargs["socket_timeout"] == 0.5 and kwargs["socket_connect_timeout"] == 0.5
    assert kwargs["health_check_interval"] == 10 and kwargs["retry"].get_retries() == 1
    store = RedisStore(client, TokenCipher([Fernet.generate_key().decode()]))
    assert "pw-canary" not in store.describe()
    tls = RedisStore(make_redis_client("rediss://user:pw-canary@cache.example:6380/2"),
                     TokenCipher([Fernet.generate_key().decode()]))
    assert tls.describe() == ("redis rediss://cache.example:6380/2 (TLS verify full), not connected yet "
                              "(single server or cluster is found at first connection)")


def test_never_started_server_is_unavailable_fast(cipher):
    store = RedisStore(make_redis_client(f"redis://127.0.0.1:{free_port()}/0"), cipher)
    for name, call in operations(store).items():
        assert timed(call) < BUDGET, name
    with pytest.raises(StoreUnavailable):
        store.ping()
    with pytest.raises(StoreUnavailable):
        list(store.installed_app_ids())


@pytest.mark.slow
def test_stopped_server_is_unavailable_fast(private_server, cipher):
    store = RedisStore(make_redis_client(private_server.url), cipher)
    store.update(IAID, {"locale": "en"})
    private_server.stop()
    for name, call in operations(store).items():
        assert timed(call) < BUDGET, name


@pytest.mark.slow
def test_paused_server_costs_under_budget_and_leaves_no_late_write(private_server, cipher):
    store = RedisStore(make_redis_client(private_server.url), cipher)
    store.update(IAID, {"auth_token": "old-access", "refresh_token": "old-refresh", "location_id": "old"})
    claimer = RedisStore(make_redis_client(private_server.url), cipher)
    claimer.ping()
    # Both clients hold an open connection, so the frozen server's socket buffers receive the
    # commands themselves (a fresh connection would stall in its handshake before sending them).
    private_server.pause()
    try:
        assert timed(operations(store)["update"]) < BUDGET
        assert timed(operations(claimer)["claim"]) < BUDGET
        assert timed(operations(store)["get"]) < BUDGET
    finally:
        private_server.resume()
    time.sleep(0.2)  # the server now runs what the frozen sockets held
    # Same store, same client: it works again. The update answered 503 did not land afterwards,
    # whole or in part, nor did the replay claim, so a legitimate retry is processed.
    record = store.get(IAID)
    assert (record.version, record.auth_token, record.refresh_token, record.location_id) == \
        (1, "old-access", "old-refresh", "old")
    assert claimer.claim("f" * 64, owner="retry", lease_seconds=300) is ReplayState.CLAIMED
    assert store.update(IAID, {"auth_token": "new-access"}, expected_version=1) == 2


def test_frozen_reply_then_retry_is_not_applied_twice(private_server, cipher):
    """redis-py re-sends a call whose reply timed out; the write id keeps it from counting twice."""
    store = RedisStore(make_redis_client(private_server.url), cipher)
    store.update(IAID, {"locale": "en"})
    script_args = ["1", "0123456789abcdef", repr(time.time()), "1", "locale", '"fr"']
    first = store._run(store._update, [store.installation_key(IAID)], script_args)
    again = store._run(store._update, [store.installation_key(IAID)], script_args)
    assert first[0] == again[0] == 1 and first[2] == again[2] == 2
    assert store.get(IAID).version == 2


def test_readonly_replica_and_oom_are_unavailable(private_server, cipher):
    store = RedisStore(make_redis_client(private_server.url), cipher)
    admin = redis.Redis.from_url(private_server.url)
    try:
        admin.config_set("maxmemory", "1")
        with pytest.raises(StoreUnavailable):
            store.update(IAID, {"locale": "en"})
        with pytest.raises(StoreUnavailable):
            store.claim("a" * 64, owner="o", lease_seconds=60)
        admin.config_set("maxmemory", "0")
        admin.replicaof("127.0.0.1", free_port())  # a demoted master: reads work, writes are refused
        with pytest.raises(StoreUnavailable):
            store.update(IAID, {"locale": "en"})
        with pytest.raises(StoreUnavailable):
            store.delete(IAID)
        assert store.get(IAID) is None
    finally:
        admin.close()


def test_wrong_password_is_unavailable(private_server, cipher):
    admin = redis.Redis.from_url(private_server.url)
    admin.config_set("requirepass", "right-password")
    admin.close()
    url = f"redis://:{{}}@127.0.0.1:{private_server.port}/0"
    wrong = RedisStore(make_redis_client(url.format("wrong-password")), cipher)
    with pytest.raises(StoreUnavailable) as caught:
        wrong.ping()
    assert "wrong-password" not in caught.value.detail
    right = RedisStore(make_redis_client(url.format("right-password")), cipher)
    right.ping()
    assert "right-password" not in right.describe()


@pytest.mark.slow
def test_a_write_no_replica_confirms_is_503_and_an_unconfirmed_claim_is_taken_back(cipher):
    primary = RedisServer().start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port)).start()
    admin = redis.Redis.from_url(primary.url)
    try:
        while admin.info("replication").get("slave0", {}).get("state") != "online":
            time.sleep(0.05)
        store = RedisStore(make_redis_client(primary.url), cipher, wait_replicas=1)
        assert store.claim("1" * 64, owner="first", lease_seconds=300) is ReplayState.CLAIMED
        store.ping()
        replica.pause()  # connected, never acknowledging
        try:
            for call in (lambda: store.claim("2" * 64, owner="unconfirmed", lease_seconds=300),
                         lambda: store.update(IAID, {"locale": "en"}),
                         store.ping):
                with pytest.raises(StoreUnavailable) as caught:
                    call()
                assert caught.value.detail == "redis: WAIT confirmed 0 of 1 replicas"
        finally:
            replica.resume()
        # The claim answered 503 was taken back, so SmartThings' retry of that request is processed.
        assert store.claim("2" * 64, owner="retry", lease_seconds=300) is ReplayState.CLAIMED
        assert store.claim("1" * 64, owner="replay", lease_seconds=300) is ReplayState.IN_PROGRESS
        store.close()
    finally:
        admin.close()
        replica.stop()
        primary.stop()
