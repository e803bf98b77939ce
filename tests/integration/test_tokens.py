"""TokenKeeper: a valid token for installation X, refreshed single-flight, on both stores."""

from __future__ import annotations

import threading
import time

import pytest

from smartapp.deadline import Deadline
from smartapp.errors import ProviderRejected, ReauthRequired, UnknownInstallation, UpstreamUnavailable
from smartapp.tokens import PROVIDER, SMARTTHINGS, TokenKeeper
from tests.conftest import ST_CLIENT_ID, ST_CLIENT_SECRET, load_fixture
from tests.support.oauth_provider import FakeAuthorizationServer, TokenAuthority
from tests.support.webhook_client import post_signed

IAID = "5d6e7f80-1a2b-4c3d-9e8f-0a1b2c3d4e5f"


@pytest.fixture
def provider_server():
    server = FakeAuthorizationServer(token_prefix="prov-").start()
    yield server
    server.stop()


@pytest.fixture
def app(make_app, store_kind, provider_server, smartthings_tokens):
    return make_app(store_kind, SMARTAPP_CLIENT_ID=ST_CLIENT_ID, SMARTAPP_CLIENT_SECRET=ST_CLIENT_SECRET,
                    SMARTAPP_OAUTH_PROVIDER="generic", SMARTAPP_OAUTH_CLIENT_ID="client-1",
                    SMARTAPP_OAUTH_CLIENT_SECRET="secret-1",
                    SMARTAPP_OAUTH_AUTHORIZE_URL=provider_server.authorize_url,
                    SMARTAPP_OAUTH_TOKEN_URL=provider_server.token_url)


@pytest.fixture
def keeper(app) -> TokenKeeper:
    return app.extensions["smartapp"].tokens


def quick_keeper(keeper: TokenKeeper, **options) -> TokenKeeper:
    """The same refreshers with short timeouts, for fault tests."""
    settings = {"call_timeout": 0.5, "lock_ttl": 2.0, "max_wait": 3.0, **options}
    return TokenKeeper(store=keeper.store, refreshers=keeper.refreshers, **settings)


def seed(store, authority: TokenAuthority, kind=PROVIDER, *, expires_in: float = -10, **extra) -> str:
    refresh = authority.seed_refresh_token()
    fields = {kind.access: f"old-access-{kind.name}", kind.refresh: refresh,
              kind.expires_at: time.time() + expires_in, kind.issued_at: time.time() - 3600}
    if kind is PROVIDER:
        fields["provider"] = "generic"
    fields.update(extra)
    store.update(IAID, fields)
    return refresh


def deadline() -> Deadline:
    return Deadline.after(8)


def test_a_fresh_token_needs_no_call(keeper, store, provider_server):
    seed(store, provider_server.authority, expires_in=3600)
    assert keeper.access_token(IAID, "provider", deadline=deadline()) == "old-access-provider"
    assert provider_server.authority.token_calls == []


def test_an_expiring_provider_token_is_refreshed_once_and_rotated(keeper, store, provider_server, smartapp_log):
    old_refresh = seed(store, provider_server.authority)
    token = keeper.access_token(IAID, "provider", deadline=deadline())
    record = store.get(IAID)
    authority = provider_server.authority
    assert token == record.provider_access_token and token in authority.access_tokens
    assert record.provider_refresh_token == authority.issued_refresh[-1] != old_refresh
    assert record.provider_token_expires_at > time.time() + 3500
    assert record.provider_refresh_token_issued_at > time.time() - 5
    assert keeper.access_token(IAID, "provider", deadline=deadline()) == token
    assert authority.refresh_calls == 1
    assert "token_refreshed" in smartapp_log.reasons()
    for secret in (token, old_refresh, record.provider_refresh_token, "secret-1"):
        assert secret not in smartapp_log.raw()


def test_an_expiring_smartthings_token_is_refreshed_with_basic_auth(keeper, store, smartthings_tokens, cloud,
                                                                    smartapp_log):
    old_refresh = seed(store, smartthings_tokens, SMARTTHINGS)
    token = keeper.access_token(IAID, "smartthings", deadline=deadline())
    record = store.get(IAID)
    assert token.startswith("st-at-") and record.refresh_token == smartthings_tokens.issued_refresh[-1]
    assert record.auth_token_expires_at > time.time() + 86000
    call = cloud.api.calls_to("POST", "/oauth/token")[0]
    assert call.headers["authorization"].startswith("Basic ")
    assert b"grant_type=refresh_token" in call.body and b"client_id=st-client" in call.body
    assert ST_CLIENT_SECRET not in smartapp_log.raw() and old_refresh not in smartapp_log.raw()


@pytest.mark.parametrize("kind", ["provider", "smartthings"])
def test_sixteen_threads_make_one_refresh(keeper, store, provider_server, smartthings_tokens, kind):
    authority = provider_server.authority if kind == "provider" else smartthings_tokens
    seed(store, authority, PROVIDER if kind == "provider" else SMARTTHINGS)
    barrier = threading.Barrier(16)
    tokens: list[str] = []

    def worker() -> None:
        barrier.wait()
        tokens.append(keeper.access_token(IAID, kind, deadline=Deadline.after(20)))

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert authority.refresh_calls == 1
    assert len(tokens) == 16 and set(tokens) == {getattr(store.get(IAID), KIND_FIELDS[kind])}


KIND_FIELDS = {"provider": "provider_access_token", "smartthings": "auth_token"}


@pytest.mark.parametrize("status", [500, 503])
def test_g5_a_failing_server_keeps_the_old_pair(keeper, store, provider_server, status):
    old_refresh = seed(store, provider_server.authority)
    provider_server.authority.fail_status = status
    with pytest.raises(UpstreamUnavailable):
        keeper.access_token(IAID, "provider", deadline=deadline())
    record = store.get(IAID)
    assert record.provider_refresh_token == old_refresh and record.reauth_required is None
    provider_server.authority.fail_status = None
    assert keeper.access_token(IAID, "provider", deadline=deadline()).startswith("prov-at-")


@pytest.mark.slow
def test_g5_a_timeout_keeps_the_old_pair_and_answers_quickly(keeper, store, provider_server, smartapp_log):
    old_refresh = seed(store, provider_server.authority)
    provider_server.authority.delay = 3
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable):
        quick_keeper(keeper).access_token(IAID, "provider", deadline=deadline())
    assert time.monotonic() - started < 1.5
    assert store.get(IAID).provider_refresh_token == old_refresh
    assert "refresh_outcome_unknown" in smartapp_log.reasons()


def test_g6_invalid_grant_flags_the_installation_and_stops_calling(keeper, store, provider_server, smartapp_log):
    old_refresh = seed(store, provider_server.authority)
    provider_server.authority.refresh_tokens.clear()  # revoked at the provider
    with pytest.raises(ReauthRequired):
        keeper.access_token(IAID, "provider", deadline=deadline())
    record = store.get(IAID)
    assert record.reauth_required == "provider_refresh_rejected"
    assert record.provider_refresh_token == old_refresh  # kept for the record; never sent again
    flagged = [r for r in smartapp_log.records if getattr(r, "reason", None) == "reauth_required"]
    assert len(flagged) == 1 and flagged[0].levelname == "ERROR" and "link the account again" in flagged[0].detail
    for _ in range(3):
        with pytest.raises(ReauthRequired):
            keeper.access_token(IAID, "provider", deadline=deadline())
    assert provider_server.authority.refresh_calls == 1


def test_g6_smartthings_flag_is_cleared_by_update(app, keeper, store, smartthings_tokens, signer):
    seed(store, smartthings_tokens, SMARTTHINGS)
    smartthings_tokens.refresh_tokens.clear()
    with pytest.raises(ReauthRequired):
        keeper.access_token(IAID, "smartthings", deadline=deadline())
    assert store.get(IAID).reauth_required == "smartthings_refresh_rejected"
    update = load_fixture("update.json")
    update["updateData"]["installedApp"]["installedAppId"] = IAID
    assert post_signed(app.test_client(), signer, update).status_code == 200
    assert keeper.access_token(IAID, "smartthings", deadline=deadline()) == update["updateData"]["authToken"]


def test_g7_a_non_rotating_provider_keeps_the_refresh_token(keeper, store, provider_server):
    provider_server.authority.rotate = False
    old_refresh = seed(store, provider_server.authority)
    issued_at = store.get(IAID).provider_refresh_token_issued_at
    token = keeper.access_token(IAID, "provider", deadline=deadline())
    record = store.get(IAID)
    assert token.startswith("prov-at-") and record.provider_refresh_token == old_refresh
    assert record.provider_refresh_token_issued_at == issued_at


def test_g9_a_newer_pair_from_update_wins_over_an_inflight_refresh(keeper, store, smartthings_tokens):
    seed(store, smartthings_tokens, SMARTTHINGS)
    newer_refresh = smartthings_tokens.seed_refresh_token()
    real = keeper.refreshers["smartthings"]

    def update_arrives_meanwhile(record, timeout):
        grant = real(record, timeout)
        # SmartThings delivers UPDATE with a brand-new pair while our refresh answer is in flight.
        store.update(IAID, {"auth_token": "update-access", "refresh_token": newer_refresh,
                            "auth_token_expires_at": time.time() + 86000})
        return grant

    racing = TokenKeeper(store=store, refreshers={"smartthings": update_arrives_meanwhile})
    assert racing.access_token(IAID, "smartthings", deadline=deadline()) == "update-access"
    assert store.get(IAID).refresh_token == newer_refresh
    assert newer_refresh in smartthings_tokens.refresh_tokens  # still accepted by the server


def test_an_unrelated_write_during_refresh_does_not_lose_the_new_pair(keeper, store, provider_server):
    seed(store, provider_server.authority)
    real = keeper.refreshers["provider"]

    def config_changes_meanwhile(record, timeout):
        grant = real(record, timeout)
        store.update(IAID, {"locale": "fr"})
        return grant

    racing = TokenKeeper(store=store, refreshers={"provider": config_changes_meanwhile})
    token = racing.access_token(IAID, "provider", deadline=deadline())
    record = store.get(IAID)
    assert record.provider_access_token == token and record.locale == "fr"
    assert record.provider_refresh_token == provider_server.authority.issued_refresh[-1]


@pytest.mark.slow
def test_g4_a_paused_holder_past_its_lease_still_lands_its_pair(keeper, store, provider_server):
    """Holder A gets the answer, pauses past the lock TTL; B re-reads, gets invalid_grant; A's CAS wins."""
    seed(store, provider_server.authority)
    real = keeper.refreshers["provider"]
    answered = threading.Event()
    resume = threading.Event()

    def paused_after_answer(record, timeout):
        grant = real(record, timeout)
        answered.set()
        resume.wait(10)
        return grant

    holder = TokenKeeper(store=store, refreshers={"provider": paused_after_answer}, call_timeout=0.5, lock_ttl=1.6)
    result: dict = {}
    thread = threading.Thread(target=lambda: result.update(
        token=holder.access_token(IAID, "provider", deadline=Deadline.after(20))))
    thread.start()
    assert answered.wait(5)
    time.sleep(1.8)  # the holder's lease has expired
    with pytest.raises(ReauthRequired):
        quick_keeper(keeper).access_token(IAID, "provider", deadline=deadline())
    resume.set()
    thread.join(10)
    record = store.get(IAID)
    assert record.provider_access_token == result["token"]
    assert record.provider_refresh_token == provider_server.authority.issued_refresh[-1]
    assert record.reauth_required is None  # the pair that works cleared the flag
    assert keeper.access_token(IAID, "provider", deadline=deadline()) == result["token"]


def test_a_rejected_access_token_is_refreshed_once(keeper, store, provider_server):
    seed(store, provider_server.authority, expires_in=3600)
    fresh = keeper.refresh_rejected(IAID, "provider", "old-access-provider", deadline=deadline())
    assert fresh != "old-access-provider"
    # A second worker saw the same 401: the token was replaced already, no second call.
    assert keeper.refresh_rejected(IAID, "provider", "old-access-provider", deadline=deadline()) == fresh
    assert provider_server.authority.refresh_calls == 1


@pytest.mark.slow
def test_a_held_lock_gives_a_quick_503_without_a_call(keeper, store, provider_server):
    seed(store, provider_server.authority)
    owner = store.acquire(IAID, ttl_seconds=30, wait_seconds=0)
    started = time.monotonic()
    with pytest.raises(UpstreamUnavailable) as error:
        quick_keeper(keeper, max_wait=0.3).access_token(IAID, "provider", deadline=deadline())
    assert error.value.reason == "refresh_lock_timeout" and time.monotonic() - started < 1.0
    assert provider_server.authority.token_calls == []
    store.release_lock(IAID, owner)


def test_unknown_installation(keeper):
    with pytest.raises(UnknownInstallation):
        keeper.access_token(IAID, "smartthings", deadline=deadline())


def test_a_token_linked_with_another_provider_is_not_sent_elsewhere(keeper, store, provider_server):
    seed(store, provider_server.authority, provider="github")
    with pytest.raises(ProviderRejected) as error:
        keeper.access_token(IAID, "provider", deadline=deadline())
    assert error.value.error == "provider_changed"
    assert provider_server.authority.token_calls == [] and store.get(IAID).reauth_required is None


def test_smartthings_refresh_needs_the_client_credentials(make_app, store_kind, smartthings_tokens):
    app = make_app(store_kind)
    store, keeper = app.extensions["smartapp"].store, app.extensions["smartapp"].tokens
    seed(store, smartthings_tokens, SMARTTHINGS)
    with pytest.raises(ProviderRejected) as error:
        keeper.access_token(IAID, "smartthings", deadline=deadline())
    assert error.value.error == "client_not_configured" and store.get(IAID).reauth_required is None
    assert smartthings_tokens.token_calls == []


def test_the_lock_must_outlive_the_call():
    with pytest.raises(ValueError):
        TokenKeeper(store=None, refreshers={}, lock_ttl=4, call_timeout=4)


@pytest.mark.slow
def test_g8_a_lost_reply_is_detected_on_the_next_refresh(keeper, store, provider_server, smartapp_log):
    """The server rotated but its answer never arrived: the next attempt is flagged, never silent."""
    seed(store, provider_server.authority)
    provider_server.authority.rotate_then_delay = 2
    with pytest.raises(UpstreamUnavailable):
        quick_keeper(keeper).access_token(IAID, "provider", deadline=deadline())
    assert "refresh_outcome_unknown" in smartapp_log.reasons()
    provider_server.authority.rotate_then_delay = 0
    with pytest.raises(ReauthRequired):
        keeper.access_token(IAID, "provider", deadline=deadline())
    assert store.get(IAID).reauth_required == "provider_refresh_rejected"
