"""The store's Lua scripts on connections of their own: reloads, retries, threads, fork and close, on a real Redis."""

from __future__ import annotations

import multiprocessing
import secrets
import threading
import time

import pytest
import redis

from smartapp.errors import StoreUnavailable
from smartapp.store import ReplayState, redis_scripts
from smartapp.store.cipher import TokenCipher
from smartapp.store.redis_store import RedisStore, make_redis_client
from tests.conftest import TOKEN_KEY
from tests.support.redis_proxy import ReplyCutter


def marker() -> str:
    """A fresh 64-hex-char replay marker, the shape the verifier hands the store."""
    return secrets.token_hex(32)


def claim(store: RedisStore, marker: str) -> bool:
    """One replay claim under a fresh owner (a request of its own): whether it took the lease."""
    return store.claim(marker, owner=secrets.token_hex(8), lease_seconds=60) is ReplayState.CLAIMED


def named_url(url: str, name: str) -> str:
    return f"{url}?client_name={name}"


@pytest.fixture
def client_name() -> str:
    """Every connection of the test's store carries this name, so the server can count them."""
    return "scripts-" + secrets.token_hex(4)


@pytest.fixture
def store(redis_url, client_name):
    store = RedisStore(make_redis_client(named_url(redis_url, client_name)),
                       TokenCipher.from_env_value(TOKEN_KEY))
    yield store
    store.close()


@pytest.fixture
def admin(redis_url):
    admin = redis.Redis.from_url(redis_url)
    yield admin
    admin.close()


def pinned(store: RedisStore):
    """The script connection the last claim used (back among the idle ones)."""
    return store._scripts._idle[-1]


def local_port(store: RedisStore) -> int:
    return pinned(store)._sock.getsockname()[1]


def connections_named(admin: redis.Redis, name: str) -> int:
    return sum(1 for client in admin.client_list(_type="normal") if client.get("name") == name)


def test_a_flushed_script_cache_is_reloaded(store, admin):
    assert claim(store, marker()) is True
    admin.script_flush()
    assert admin.script_exists(store._claim.sha) == [False]
    again = marker()
    assert claim(store, again) is True
    assert claim(store, again) is False
    assert admin.script_exists(store._claim.sha) == [True]


def test_connections_killed_by_the_server_are_replaced_with_one_transparent_retry(store, admin, client_name):
    assert claim(store, marker()) is True
    before = local_port(store)
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    assert connections_named(admin, client_name) == 0
    again = marker()
    assert claim(store, again) is True
    assert local_port(store) != before  # the claim really went over a new connection
    assert claim(store, again) is False


def test_threads_claim_concurrently_on_at_most_one_connection_each(store, admin, client_name):
    threads, rounds = 8, 50
    barrier = threading.Barrier(threads)
    outcomes: dict[int, list[bool]] = {}
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            barrier.wait(10)
            outcomes[n] = [claim(store, marker()) for _ in range(rounds)]
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            errors.append(error)

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(30)
    assert errors == []
    assert all(outcomes[n] == [True] * rounds for n in range(threads))
    assert 1 <= len(store._scripts._idle) <= threads
    assert connections_named(admin, client_name) <= threads + 1  # + the client's own pool connection


def test_short_lived_threads_reuse_connections_instead_of_leaving_them_open(store, admin, client_name):
    for _ in range(20):
        thread = threading.Thread(target=claim, args=(store, marker()))
        thread.start()
        thread.join(10)
    assert len(store._scripts._idle) == 1
    assert connections_named(admin, client_name) == 1


def test_many_threads_claiming_one_marker_at_once_get_exactly_one_true(store):
    threads = 16
    shared = marker()
    barrier = threading.Barrier(threads)
    outcomes: list[bool] = []

    def worker() -> None:
        barrier.wait(10)
        outcomes.append(claim(store, shared))

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(30)
    assert len(outcomes) == threads
    assert outcomes.count(True) == 1


def test_a_claim_whose_reply_was_lost_is_still_reported_as_claimed(redis_server, redis_url, admin):
    proxy = ReplyCutter(redis_server.port)
    store = RedisStore(make_redis_client(proxy.url), TokenCipher.from_env_value(TOKEN_KEY))
    try:
        admin.script_load(store._claim.script)  # so the lost reply is the claim's own, not a NOSCRIPT
        lost = marker()
        proxy.armed.set()
        assert claim(store, lost) is True
        assert proxy.cut.is_set()  # the first attempt ran on the server, its answer never arrived
        assert admin.exists(store.replay_key(lost)) == 1
        assert claim(store, lost) is False  # a later request with this marker is a replay
    finally:
        store.close()
        proxy.close()


INSTALLED_APP_ID = "d692699d-e7a6-400d-a0b7-d5be96e7a564"


def test_a_link_consumed_by_a_call_whose_reply_was_lost_is_still_handed_to_that_call(redis_server, admin):
    proxy = ReplyCutter(redis_server.port)
    store = RedisStore(make_redis_client(proxy.url), TokenCipher.from_env_value(TOKEN_KEY))
    try:
        admin.script_load(store._consume.script)
        store.issue(INSTALLED_APP_ID, {"state": "s1", "verifier": "v1"}, ttl_seconds=60)
        proxy.armed.set()
        assert store.consume(INSTALLED_APP_ID) == {"state": "s1", "verifier": "v1"}
        assert proxy.cut.is_set()  # the first attempt took the link; only the receipt could hand it over
        assert store.consume(INSTALLED_APP_ID) is None  # another call gets nothing: handed out once
        store.delete(INSTALLED_APP_ID)
        assert admin.exists(store.link_receipt_key(INSTALLED_APP_ID)) == 0
    finally:
        store.close()
        proxy.close()


def test_a_link_receipt_expires_on_its_own(store, admin):
    store.issue(INSTALLED_APP_ID, {"state": "s2"}, ttl_seconds=60)
    assert store.consume(INSTALLED_APP_ID) == {"state": "s2"}
    assert 0 < admin.pttl(store.link_receipt_key(INSTALLED_APP_ID)) <= 10_000


def test_a_forked_child_opens_its_own_connection_and_leaves_the_parents_alone(store):
    assert claim(store, marker()) is True
    parent_port = local_port(store)
    in_child = marker()
    context = multiprocessing.get_context("fork")
    results = context.Queue()

    def child() -> None:
        claimed = claim(store, in_child)
        results.put((claimed, local_port(store)))
        store.close()

    process = context.Process(target=child)
    process.start()
    claimed, child_port = results.get(timeout=10)
    process.join(10)
    assert process.exitcode == 0
    assert claimed is True and child_port != parent_port
    assert claim(store, marker()) is True
    assert local_port(store) == parent_port  # the parent's socket carried on: no error, no reconnect
    assert claim(store, in_child) is False


def test_close_drops_the_pinned_connection_and_a_later_claim_reconnects(store, admin, client_name):
    assert claim(store, marker()) is True
    connection = pinned(store)
    assert connection.is_connected and connections_named(admin, client_name) >= 1
    store.close()
    assert not connection.is_connected
    deadline = time.monotonic() + 2
    while connections_named(admin, client_name) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert connections_named(admin, client_name) == 0
    again = marker()
    assert claim(store, again) is True
    assert claim(store, again) is False


def test_script_connections_are_capped_like_the_client_s_pool(redis_url):
    store = RedisStore(redis.Redis.from_url(redis_url, max_connections=2), TokenCipher.from_env_value(TOKEN_KEY))
    runner = store._scripts
    try:
        held = [runner._checkout(), runner._checkout()]  # two callers in flight at once
        with pytest.raises(StoreUnavailable):
            claim(store, marker())  # a third fails at once instead of opening a third
        for connection in held:
            runner._idle.append(connection)
        assert claim(store, marker()) is True  # an idle one is reused, still two in all
        assert runner._opened == 2
    finally:
        store.close()


def replay_value(store: RedisStore, admin: redis.Redis, done: str) -> bytes | None:
    return admin.get(store.replay_key(done, None))


def test_a_completed_marker_lands_without_a_wait_and_the_next_claim_reads_its_own_reply(store, admin):
    done = marker()
    assert claim(store, done) is True
    store.complete(done, ttl_seconds=60)
    assert pinned(store)._unread == 1  # sent; its reply not read yet
    deadline = time.monotonic() + 2
    while replay_value(store, admin, done) != b"d" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert replay_value(store, admin, done) == b"d"
    # The next call on that connection reads the SET's reply first, then its own.
    assert store.claim(done, owner="someone-else", lease_seconds=60) is ReplayState.DONE
    assert pinned(store)._unread == 0
    fresh = marker()
    assert claim(store, fresh) is True and claim(store, fresh) is False


def test_many_completions_in_a_row_wait_for_replies_only_past_the_cap(store, admin):
    markers = [marker() for _ in range(100)]
    for each in markers:
        assert claim(store, each) is True
        store.complete(each, ttl_seconds=60)
        assert store.claim(each, owner="retry", lease_seconds=60) is ReplayState.DONE
    for each in markers:
        store.complete(each, ttl_seconds=60)  # nothing read in between: the cap bounds what is owed
        assert pinned(store)._unread <= redis_scripts.MAX_UNREAD_REPLIES
    assert [replay_value(store, admin, each) for each in markers] == [b"d"] * len(markers)


def test_an_error_reply_to_an_unwaited_write_is_logged_and_the_next_call_gets_its_own(store, admin, smartapp_log):
    admin.set("not-a-number", "x")
    store._scripts.send(["not-a-number"], "INCR", "not-a-number")
    assert claim(store, marker()) is True
    assert "unacknowledged_write_failed" in [record.getMessage() for record in smartapp_log.records]


def test_a_connection_killed_with_replies_owed_reconnects_and_answers(store, admin, client_name):
    done = marker()
    assert claim(store, done) is True
    store.complete(done, ttl_seconds=60)
    time.sleep(0.05)  # the SET reaches the server before the connection is killed
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    assert store.claim(done, owner="retry", lease_seconds=60) is ReplayState.DONE
    assert pinned(store)._unread == 0


def test_claims_and_unwaited_completions_work_with_redis_py_s_python_parser(redis_url, admin):
    """Without a hiredis reader the calls take redis-py's read path; the replies owed are read all the same."""
    from redis._parsers import _RESP2Parser

    client = make_redis_client(redis_url)
    client.connection_pool.connection_kwargs["parser_class"] = _RESP2Parser
    store = RedisStore(client, TokenCipher.from_env_value(TOKEN_KEY))
    try:
        done = marker()
        assert claim(store, done) is True
        store.complete(done, ttl_seconds=60)
        assert store.claim(done, owner="retry", lease_seconds=60) is ReplayState.DONE
        assert getattr(pinned(store)._parser, "_reader", None) is None and pinned(store)._unread == 0
    finally:
        store.close()
