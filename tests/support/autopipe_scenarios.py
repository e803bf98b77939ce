"""Scenarios for the auto-pipelined store connection, each run in a process patched by gevent as a worker is.

Usage: python -m tests.support.autopipe_scenarios SCENARIO REDIS_URL; prints "ok" when every check held
(`--list -` names the scenarios). Never import it from the test process: it patches the standard library.
"""

from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import os  # noqa: E402
import secrets  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import gevent  # noqa: E402
import redis  # noqa: E402

from smartapp.errors import StoreUnavailable  # noqa: E402
from smartapp.store import ReplayState  # noqa: E402
from smartapp.store.cipher import TokenCipher  # noqa: E402
from smartapp.store.redis_autopipe import AutoPipeline  # noqa: E402
from smartapp.store.redis_store import RedisStore, make_redis_client  # noqa: E402

TOKEN_KEY = "hZbiYh5ZOAk1Q4Y5lImkJiyLh1SRHWgQgjaYMtIaCyg="
CLIENT_NAME = "autopipe-" + secrets.token_hex(4)


def claim(store: RedisStore, marker: str, owner: str | None = None) -> ReplayState:
    return store.claim(marker, owner=owner or secrets.token_hex(8), lease_seconds=60)


def script_connections(admin: redis.Redis) -> int:
    return sum(1 for client in admin.client_list() if client["name"] == CLIENT_NAME)


def concurrent_requests(store: RedisStore, admin: redis.Redis) -> None:
    """Many greenlets claim, complete and re-claim at once: every answer is their own, on one connection,
    and their commands leave together."""
    flushes = [0]
    flush = AutoPipeline._flush

    def counted_flush(self: AutoPipeline) -> None:
        flushes[0] += 1
        flush(self)

    AutoPipeline._flush = counted_flush

    def request(_: int) -> None:
        for _ in range(25):
            marker = secrets.token_hex(32)
            assert claim(store, marker) is ReplayState.CLAIMED
            store.complete(marker, ttl_seconds=60)
            assert echo(store) and claim(store, marker) is ReplayState.DONE

    failures = count_failures()
    greenlets = [gevent.spawn(request, index) for index in range(40)]
    gevent.joinall(greenlets, raise_error=True)
    commands = 40 * 25 * 4
    assert store._scripts._pipeline is not None and failures == [], failures
    assert script_connections(admin) == 1, script_connections(admin)
    assert flushes[0] < commands / 10, (flushes[0], commands)


def echo(store: RedisStore) -> bool:
    """A call whose reply is the caller's own token: another caller's reply would not match."""
    token = secrets.token_hex(8).encode()
    reply = store._scripts.command(["echo"], "ECHO", token)
    assert reply == token, (reply, token)
    return True


def count_failures() -> list[str]:
    """Every time a pipeline fails its calls, from now on (a retry would hide it from the callers)."""
    failures: list[str] = []
    fail = AutoPipeline._fail

    def counted_fail(self: AutoPipeline, error: Exception) -> None:
        failures.append(repr(error))
        fail(self, error)

    AutoPipeline._fail = counted_fail
    return failures


def cancelled_waiters(store: RedisStore, admin: redis.Redis) -> None:
    """Callers that stop waiting (a gevent.Timeout, a kill) leave their replies to be dropped, not handed on."""
    failures = count_failures()
    answered = [0]

    def patient() -> None:
        for _ in range(200):
            assert echo(store)
            answered[0] += 1

    def impatient() -> None:
        for _ in range(200):
            with gevent.Timeout(0.00001, False):
                echo(store)

    def killed() -> None:
        for _ in range(100):
            caller = gevent.spawn(echo, store)
            gevent.sleep(0)
            caller.kill()

    gevent.joinall([gevent.spawn(patient) for _ in range(10)] + [gevent.spawn(impatient) for _ in range(5)]
                   + [gevent.spawn(killed) for _ in range(5)], raise_error=True)
    assert answered[0] == 2000 and failures == [], (answered[0], failures)


def killed_connection(store: RedisStore, admin: redis.Redis) -> None:
    """The server drops the connection between calls: the next call reconnects and answers."""
    assert claim(store, secrets.token_hex(32)) is ReplayState.CLAIMED
    assert admin.client_kill_filter(_type="normal", skipme=True) >= 1
    marker = secrets.token_hex(32)
    assert claim(store, marker) is ReplayState.CLAIMED
    assert claim(store, marker) is ReplayState.IN_PROGRESS


def frozen_server(store: RedisStore, admin: redis.Redis) -> None:
    """Redis stops answering: the call fails within its two attempts' timeouts, and the next call after
    Redis is back answers on a new connection."""
    assert claim(store, secrets.token_hex(32)) is ReplayState.CLAIMED
    admin.execute_command("CLIENT", "PAUSE", 2000, "ALL")
    started = time.monotonic()
    try:
        claim(store, secrets.token_hex(32))
    except StoreUnavailable:
        pass
    else:
        raise AssertionError("a claim answered while Redis was paused")
    waited = time.monotonic() - started
    assert 0.4 < waited < 1.5, waited  # as without the pipeline: two attempts of 0.5 s, one reconnecting
    time.sleep(max(0.0, 2.2 - waited))
    marker = secrets.token_hex(32)
    assert claim(store, marker) is ReplayState.CLAIMED
    assert claim(store, marker) is ReplayState.IN_PROGRESS


def flushed_scripts(store: RedisStore, admin: redis.Redis) -> None:
    """Redis forgot its scripts (a restart or SCRIPT FLUSH): the claim loads it again and answers."""
    assert claim(store, secrets.token_hex(32)) is ReplayState.CLAIMED
    admin.script_flush()
    marker = secrets.token_hex(32)
    assert claim(store, marker) is ReplayState.CLAIMED
    assert claim(store, marker) is ReplayState.IN_PROGRESS


def unacknowledged_error(store: RedisStore, admin: redis.Redis) -> None:
    """An error reply to a write nobody waits for is logged, and the next caller still gets its own reply."""
    seen: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger("smartapp.store").addHandler(Collect())
    admin.set("not-a-number", "x")
    assert claim(store, secrets.token_hex(32)) is ReplayState.CLAIMED
    store._scripts.send(["not-a-number"], "INCR", "not-a-number")
    marker = secrets.token_hex(32)
    assert claim(store, marker) is ReplayState.CLAIMED
    assert claim(store, marker) is ReplayState.IN_PROGRESS
    assert seen == ["unacknowledged_write_failed"], seen


def large_write(store: RedisStore, admin: redis.Redis) -> None:
    """A command larger than the socket's buffer leaves in parts; the calls queued behind it wait their turn."""
    big = "x" * 8_000_000
    results: dict[str, object] = {}

    def write() -> None:
        results["write"] = store._scripts.command(["big"], "SET", "big", big)

    def claims() -> None:
        results["claims"] = [claim(store, secrets.token_hex(32)) for _ in range(20)]

    gevent.joinall([gevent.spawn(write), gevent.spawn(claims)], raise_error=True)
    assert results["claims"] == [ReplayState.CLAIMED] * 20
    assert admin.strlen("big") == len(big)


def native_thread(store: RedisStore, admin: redis.Redis) -> None:
    """A real OS thread cannot wait on the event loop: its calls take connections of their own, the first call
    of the process included, and the worker's greenlets still get the pipeline afterwards."""
    start_thread = monkey.get_original("_thread", "start_new_thread")
    allocate = monkey.get_original("_thread", "allocate_lock")
    done, outcome = allocate(), []
    done.acquire()

    def in_thread() -> None:
        try:
            marker = secrets.token_hex(32)
            outcome.append((claim(store, marker), claim(store, marker)))
        finally:
            done.release()

    start_thread(in_thread, ())
    while not done.acquire(False):
        gevent.sleep(0.01)
    assert outcome == [(ReplayState.CLAIMED, ReplayState.IN_PROGRESS)], outcome
    assert store._scripts._pipeline is None and store._scripts._idle, "the thread used a connection of its own"
    assert echo(store) and store._scripts._pipeline is not None


def forked_child(store: RedisStore, admin: redis.Redis) -> None:
    """A fork while calls are in flight: the parent's callers get their own replies, a write queued before the
    fork is applied once, and the child makes its own pipeline."""
    failures = count_failures()
    assert echo(store)
    parents = store._scripts._pipeline
    running = [True]

    def busy() -> None:
        while running[0]:
            assert echo(store)

    greenlets = [gevent.spawn(busy) for _ in range(10)]
    gevent.sleep(0.05)
    store._scripts.send(["forks"], "INCR", "forks")
    child = os.fork()
    if child == 0:
        try:
            time.sleep(0.3)  # the parent's replies arrive meanwhile: the child must not read them
            ok = echo(store) and store._scripts._pipeline is not parents
            os._exit(0 if ok else 1)
        except BaseException:  # noqa: BLE001 - the child reports by its exit status
            os._exit(2)
    _, status = os.waitpid(child, 0)
    running[0] = False
    gevent.joinall(greenlets, raise_error=True)
    assert os.waitstatus_to_exitcode(status) == 0, status
    assert store._scripts._pipeline is parents and failures == [], failures
    assert admin.get("forks") == b"1"


SCENARIOS = {function.__name__: function for function in (
    concurrent_requests, cancelled_waiters, killed_connection, frozen_server, flushed_scripts,
    unacknowledged_error, large_write, native_thread, forked_child)}


def main(name: str, url: str) -> None:
    if name == "--list":
        print(" ".join(sorted(SCENARIOS)))
        return
    store = RedisStore(make_redis_client(f"{url}?client_name={CLIENT_NAME}"), TokenCipher.from_env_value(TOKEN_KEY))
    admin = redis.Redis.from_url(url)
    try:
        # In a greenlet of the hub's, as a worker serves each request.
        gevent.spawn(SCENARIOS[name], store, admin).get()
    finally:
        store.close()
        admin.close()
    print("ok")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
