"""Single-flight refresh across processes: 16 workers, one token-endpoint call per round; a killed holder."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

from smartapp.deadline import Deadline
from smartapp.oauth.factory import build_provider
from smartapp.settings import Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import TokenCipher, open_store
from smartapp.tokens import PROVIDER, SMARTTHINGS, TokenKeeper
from smartapp.wiring import provider_refresher, smartthings_refresher
from tests.conftest import TOKEN_KEY
from tests.support.oauth_provider import FakeAuthorizationServer

pytestmark = pytest.mark.slow

IAID = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
WORKERS = 16
SPAWN = multiprocessing.get_context("spawn")  # no fork of a process running server threads


def _keeper(options: dict, **timing) -> TokenKeeper:
    """What every worker process builds on its own: its store connection and provider client."""
    store = open_store(redis_url=options["redis_url"], sqlite_path=options["db_path"],
                       cipher=TokenCipher([TOKEN_KEY]))
    # One loopback AS serves both kinds: the SmartApp's client and the provider client share credentials here.
    settings = Settings(client_id="client-1", client_secret="secret-1", token_url=options["token_url"],
                        oauth_provider="generic", oauth_client_id="client-1", oauth_client_secret="secret-1",
                        oauth_authorize_url=options["token_url"], oauth_token_url=options["token_url"])
    refreshers = {"provider": provider_refresher(build_provider(settings)),
                  "smartthings": smartthings_refresher(SmartThingsClient(api_url=options["token_url"]), settings)}
    return TokenKeeper(store=store, refreshers=refreshers, **timing)


def _worker(options: dict, kind: str, rounds: int, barrier, results) -> None:
    keeper = _keeper(options)
    for round_number in range(rounds):
        barrier.wait()
        try:
            token = keeper.access_token(IAID, kind, deadline=Deadline.after(30))
        except Exception as error:  # noqa: BLE001 - reported to the parent, which fails the test
            token = f"error:{type(error).__name__}:{getattr(error, 'reason', '')}"
        results.put((round_number, token))
        barrier.wait()


def _stuck_holder(options: dict, holding) -> None:
    """Takes the lock, says so, and hangs before calling the token endpoint (until SIGKILLed)."""
    def hang(record, timeout):
        holding.set()
        time.sleep(120)
        raise AssertionError("never reached")

    keeper = _keeper(options, lock_ttl=2.0, call_timeout=0.5)
    keeper.refreshers["provider"] = hang
    keeper.access_token(IAID, "provider", deadline=Deadline.after(60))


@pytest.fixture
def provider_server():
    # Strict server: a replayed (rotated-out) refresh token revokes the whole grant, so any
    # double refresh would show up as a dead stored token, not only as an extra call.
    server = FakeAuthorizationServer(revoke_family_on_reuse=True).start()
    yield server
    server.stop()


@pytest.fixture
def options(store_kind, tmp_path, request, provider_server) -> dict:
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    return {"redis_url": redis_url, "db_path": str(tmp_path / "smartapp.db"), "token_url": provider_server.token_url}


@pytest.fixture
def store(options):
    opened = open_store(redis_url=options["redis_url"], sqlite_path=options["db_path"],
                        cipher=TokenCipher([TOKEN_KEY]))
    yield opened
    opened.close()


@pytest.mark.parametrize("kind", [PROVIDER, SMARTTHINGS], ids=["provider", "smartthings"])
def test_sixteen_processes_make_one_token_call_per_round(options, store, provider_server, store_kind, kind):
    authority = provider_server.authority
    store.update(IAID, {"provider": "generic", kind.access: "at-0", kind.refresh: authority.seed_refresh_token()})
    rounds = 10 if store_kind == "redis" and kind is PROVIDER else 5
    barrier, results = SPAWN.Barrier(WORKERS + 1, timeout=120), SPAWN.Queue()
    workers = [SPAWN.Process(target=_worker, args=(options, kind.name, rounds, barrier, results))
               for _ in range(WORKERS)]
    for worker in workers:
        worker.start()
    try:
        for round_number in range(rounds):
            store.update(IAID, {kind.expires_at: time.time() - 10})
            barrier.wait()   # all start together
            barrier.wait()   # all done
            tokens = [results.get(timeout=10) for _ in range(WORKERS)]
            stored = store.get(IAID)
            assert {token for _, token in tokens} == {getattr(stored, kind.access)}, tokens
            assert authority.refresh_calls == round_number + 1
            assert getattr(stored, kind.refresh) == authority.issued_refresh[-1]
            assert getattr(stored, kind.refresh) in authority.refresh_tokens  # the newest pair, still live
    finally:
        for worker in workers:
            worker.join(30)
            if worker.is_alive():
                worker.kill()
    assert authority.refresh_calls == rounds
    assert len(set(authority.refresh_attempts)) == rounds  # no refresh token was ever presented twice


def test_a_killed_lock_holder_blocks_only_until_the_lock_expires(options, store, provider_server):
    authority = provider_server.authority
    store.update(IAID, {"provider": "generic", "provider_access_token": "at-0",
                        "provider_token_expires_at": time.time() - 10,
                        "provider_refresh_token": authority.seed_refresh_token()})
    holding = SPAWN.Event()
    holder = SPAWN.Process(target=_stuck_holder, args=(options, holding))
    holder.start()
    try:
        assert holding.wait(60), "the holder never took the lock"
        taken_at = time.monotonic()
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(10)
        keeper = _keeper(options, lock_ttl=2.0, call_timeout=0.5)
        token = keeper.access_token(IAID, "provider", deadline=Deadline.after(8))
        waited = time.monotonic() - taken_at
    finally:
        if holder.is_alive():
            holder.kill()
    assert 1.0 < waited < 3.5  # the 2 s lease ran out; nothing blocked longer
    assert token == store.get(IAID).provider_access_token
    assert authority.refresh_calls == 1
