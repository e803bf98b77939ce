"""OAUTH_CALLBACK through the signed webhook against a loopback AS: every refusal stores nothing, both stores."""

from __future__ import annotations

import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from smartapp.settings import ConfigError
from smartapp.testing import Reply
from tests.conftest import load_fixture
from tests.support.oauth_provider import FakeAuthorizationServer
from tests.support.webhook_client import post_signed

IAID = "3b1f8a52-7c1e-4d6a-9f0b-2a4c6e8d0f13"
OTHER = "9e2d4c6b-8a0f-4e1d-b3c5-7a9f1e3d5b70"
CLIENT_SECRET = "secret-1-canary-5f3e"


@pytest.fixture
def provider_server():
    server = FakeAuthorizationServer(client_secret=CLIENT_SECRET).start()
    yield server
    server.stop()


@pytest.fixture
def build(make_app, store_kind, provider_server):
    def factory(**overrides):
        env = {
            "SMARTAPP_OAUTH_PROVIDER": "generic",
            "SMARTAPP_OAUTH_CLIENT_ID": "client-1",
            "SMARTAPP_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
            "SMARTAPP_OAUTH_AUTHORIZE_URL": provider_server.authorize_url,
            "SMARTAPP_OAUTH_TOKEN_URL": provider_server.token_url,
            "SMARTAPP_OAUTH_SCOPE": "read write",
        }
        env.update(overrides)
        return make_app(store_kind, **{name: value for name, value in env.items() if value is not None})
    return factory


@pytest.fixture
def app(build):
    return build()


def configuration_page(client, signer, iaid: str = IAID) -> dict:
    body = load_fixture("configuration_page.json")
    body["executionId"] = str(uuid.uuid4())  # distinct signatures: the replay guard must not swallow a re-render
    body["configurationData"]["installedAppId"] = iaid
    response = post_signed(client, signer, body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["configurationData"]["page"]


def url_template(client, signer, iaid: str = IAID) -> str:
    settings = configuration_page(client, signer, iaid)["sections"][0]["settings"]
    assert settings[0]["type"] == "OAUTH"
    return settings[0]["urlTemplate"]


def sign_in(url: str, **extra) -> str:
    """What the user's browser does: open the authorize URL; return the redirect's query (the urlPath)."""
    response = requests.get(url, params=extra or None, allow_redirects=False, timeout=5)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith("https://api.smartthings.com/oauth/callback?")
    return urlsplit(location).query


def callback(client, signer, url_path: str, iaid: str = IAID, key: str = "oauthCallbackData"):
    body = {"lifecycle": "OAUTH_CALLBACK", "executionId": str(uuid.uuid4()), "locale": "en", "version": "1.0.0",
            key: {"installedAppId": iaid, "urlPath": url_path}, "settings": {}}
    return post_signed(client, signer, body)


def test_page_shows_the_oauth_setting_with_a_complete_authorize_url(client, signer, store, provider_server):
    page = configuration_page(client, signer)
    account, devices = page["sections"]
    setting = account["settings"][0]
    assert setting["type"] == "OAUTH" and setting["required"] is True and setting["id"] == "account"
    assert devices["settings"][0]["type"] == "DEVICE"
    url = setting["urlTemplate"]
    assert url.startswith(provider_server.authorize_url + "?")
    assert "redirect_uri=https%3A%2F%2Fapi.smartthings.com%2Foauth%2Fcallback" in url
    assert "scope=read%20write" in url
    query = parse_qs(urlsplit(url).query)
    assert query["state"] == [IAID] and query["client_id"] == ["client-1"] and query["response_type"] == ["code"]
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert store.pending(IAID)["provider"] == "generic"


@pytest.mark.parametrize("key", ["oauthCallbackData", "oAuthCallbackData"])
@pytest.mark.parametrize("shape", ["{}", "?{}", "/oauth/callback?{}"])
def test_link_stores_encrypted_tokens_and_answers_the_envelope(client, signer, store, provider_server,
                                                               smartapp_log, key, shape):
    """The whole link: tokens stored encrypted, nothing secret in the log, state consumed."""
    url_path = sign_in(url_template(client, signer))
    response = callback(client, signer, shape.format(url_path), key=key)
    assert response.status_code == 200
    assert response.get_json() == {"oAuthCallbackData": {}}
    stored = store.get(IAID)
    authority = provider_server.authority
    assert stored.provider == "generic"
    assert stored.provider_access_token in authority.access_tokens
    assert stored.provider_refresh_token == authority.issued_refresh[-1]
    assert stored.provider_token_expires_at > time.time() + 3500
    assert stored.provider_scope == "read"
    assert store.pending(IAID) is None
    assert "oauth_linked" in smartapp_log.reasons()
    code = parse_qs(url_path)["code"][0]
    secrets = [code, stored.provider_access_token, stored.provider_refresh_token, CLIENT_SECRET]
    for secret in secrets:
        assert secret not in smartapp_log.raw()
    call = provider_server.calls_to("POST", "/token")[0]
    assert call.headers["authorization"].startswith("Basic ") and b"client_secret" not in call.body
    for name in ("provider_access_token", "provider_refresh_token"):
        assert stored_at_rest(store, name).startswith("gAAAAA")  # Fernet, bound to this installation


def stored_at_rest(store, name: str) -> str:
    """The raw stored value of one field, read behind the store's back."""
    if store.name == "redis":
        return store.client.hget(store.installation_key(IAID), name).decode()
    import json
    import sqlite3

    with sqlite3.connect(store.path) as connection:
        row = connection.execute("SELECT data FROM installations WHERE installed_app_id = ?", (IAID,)).fetchone()
    return json.loads(row[0])[name]


def test_install_after_the_link_keeps_the_provider_tokens(client, signer, store):
    callback_ok = callback(client, signer, sign_in(url_template(client, signer)))
    assert callback_ok.status_code == 200
    linked = store.get(IAID)
    install = load_fixture("install.json")
    install["installData"]["installedApp"]["installedAppId"] = IAID
    assert post_signed(client, signer, install).status_code == 200
    after = store.get(IAID)
    assert after.provider_access_token == linked.provider_access_token
    assert after.provider_refresh_token == linked.provider_refresh_token
    assert after.auth_token == install["installData"]["authToken"]


def test_a_rerendered_page_reuses_the_pending_verifier(client, signer, store):
    first = url_template(client, signer)
    verifier = store.pending(IAID)["verifier"]
    second = url_template(client, signer)
    assert first == second and store.pending(IAID)["verifier"] == verifier
    # The sign-in begun from the first rendering still completes.
    assert callback(client, signer, sign_in(first)).status_code == 200


def test_a_nearly_expired_pending_link_is_replaced(client, signer, store, app):
    from smartapp.oauth import link

    url_template(client, signer)
    record = store.pending(IAID)
    record["expires_at"] = time.time() + link.REUSE_WHILE_SECONDS_LEFT - 1
    store.issue(IAID, record, ttl_seconds=60)
    url_template(client, signer)
    assert store.pending(IAID)["verifier"] != record["verifier"]


def test_no_oauth_setting_without_a_provider(make_app, store_kind, signer):
    client = make_app(store_kind).test_client()
    page = configuration_page(client, signer)
    assert [s["type"] for section in page["sections"] for s in section["settings"]] == ["DEVICE"]


# --- every failure stores nothing and exchanges at most what it must -----------------------------


def assert_nothing_stored(store, provider_server, *, exchanges: int = 0):
    assert store.get(IAID) is None
    assert len(provider_server.calls_to("POST", "/token")) == exchanges


def test_f1_callback_without_state_is_refused_without_exchange(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    without_state = "&".join(p for p in url_path.split("&") if not p.startswith("state="))
    response = callback(client, signer, without_state)
    assert response.status_code == 400 and response.get_json() == {"error": "oauth_state_missing"}
    assert_nothing_stored(store, provider_server)
    assert store.pending(IAID) is not None  # a malformed callback does not burn the user's link


def test_f2_state_for_another_installation_is_refused(client, signer, store, provider_server, smartapp_log):
    url_template(client, signer, OTHER)
    url_path = sign_in(url_template(client, signer))
    response = callback(client, signer, url_path.replace(f"state={IAID}", f"state={OTHER}"))
    assert response.status_code == 400 and response.get_json() == {"error": "oauth_state_mismatch"}
    assert_nothing_stored(store, provider_server)
    assert store.get(OTHER) is None


def test_f3_second_delivery_is_a_no_op(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    assert callback(client, signer, url_path).status_code == 200
    linked = store.get(IAID)
    again = callback(client, signer, url_path)
    assert again.status_code == 400 and again.get_json() == {"error": "oauth_link_not_pending"}
    assert len(provider_server.calls_to("POST", "/token")) == 1
    assert store.get(IAID) == linked


@pytest.mark.slow
def test_f4_expired_pending_link_is_refused(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    record = store.pending(IAID)
    store.issue(IAID, record, ttl_seconds=0.1)
    time.sleep(0.3)
    response = callback(client, signer, url_path)
    assert response.status_code == 400 and response.get_json() == {"error": "oauth_link_not_pending"}
    assert_nothing_stored(store, provider_server)


def test_f4_link_past_its_recorded_expiry_is_refused(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    record = store.pending(IAID)
    record["expires_at"] = time.time() - 1
    store.issue(IAID, record, ttl_seconds=60)
    response = callback(client, signer, url_path)
    assert response.get_json() == {"error": "oauth_link_expired"}
    assert_nothing_stored(store, provider_server)


def test_f5_injected_code_from_another_session_is_refused(client, signer, store, provider_server, smartapp_log):
    url_template(client, signer)
    # The attacker's own code, bound to the attacker's PKCE challenge.
    attacker_code = provider_server.authority.issue_code(challenge="A" * 43)
    response = callback(client, signer, f"code={attacker_code}&state={IAID}")
    assert response.status_code == 400 and response.get_json() == {"error": "oauth_exchange_failed"}
    assert_nothing_stored(store, provider_server, exchanges=1)
    assert attacker_code not in smartapp_log.raw()


@pytest.mark.parametrize("url_path,reason", [
    ("code=a&code=b&state=" + IAID, "oauth_callback_ambiguous"),
    ("code=a&state=" + IAID + "&state=" + IAID, "oauth_callback_ambiguous"),
    ("code=a%2541&state=" + IAID, "oauth_callback_ambiguous"),           # double-encoded
    ("code=a&state=" + IAID + "&pad=" + "x" * 8192, "malformed_request"),  # refused as it is parsed
])
def test_f6_ambiguous_callbacks_are_refused(client, signer, store, provider_server, url_path, reason):
    url_template(client, signer)
    response = callback(client, signer, url_path)
    assert response.status_code == 400 and response.get_json() == {"error": reason}
    assert_nothing_stored(store, provider_server)


def test_f7_access_denied_is_acknowledged_and_leaves_the_link(client, signer, store, provider_server,
                                                              smartapp_log):
    url_path = sign_in(url_template(client, signer), deny="1")
    assert "error=access_denied" in url_path
    response = callback(client, signer, url_path)
    assert response.status_code == 200 and response.get_json() == {"oAuthCallbackData": {}}
    assert_nothing_stored(store, provider_server)
    assert "oauth_access_denied" in smartapp_log.reasons()
    # Anyone can send a denial for the installation: the user can still sign in on the same link.
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200
    assert store.get(IAID).provider == "generic"


# --- a stranger's callbacks cannot end the user's pending link ------------------------------------

def stranger_code(provider_server) -> str:
    """A code the provider issued to someone else (another PKCE challenge): its exchange fails."""
    return provider_server.authority.issue_code(challenge="A" * 43)


def test_a_strangers_failed_code_leaves_the_pending_link_for_the_user(client, signer, store, provider_server):
    users_callback = sign_in(url_template(client, signer))
    stranger = callback(client, signer, f"code={stranger_code(provider_server)}&state={IAID}")
    assert stranger.status_code == 400 and stranger.get_json() == {"error": "oauth_exchange_failed"}
    assert store.pending(IAID) is not None
    assert callback(client, signer, users_callback).status_code == 200
    assert store.get(IAID).provider_access_token in provider_server.authority.access_tokens
    assert store.pending(IAID) is None  # a successful exchange ends the link


def test_a_code_is_exchanged_at_most_once_even_after_a_failure(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    provider_server.authority.fail_status = 502
    assert callback(client, signer, url_path).get_json() == {"error": "oauth_provider_unavailable"}
    provider_server.authority.fail_status = None
    again = callback(client, signer, url_path)  # a new delivery (another signature) of the same code
    assert again.status_code == 400 and again.get_json() == {"error": "oauth_code_reused"}
    assert_nothing_stored(store, provider_server, exchanges=1)
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200


@pytest.mark.slow
def test_the_same_code_sent_twice_at_once_is_exchanged_once(client, signer, store, provider_server):
    from concurrent.futures import ThreadPoolExecutor

    url_path = sign_in(url_template(client, signer))
    provider_server.authority.delay = 0.5  # both callbacks are in flight together
    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(lambda _: callback(client, signer, url_path), range(2)))
    assert sorted(a.status_code for a in answers) == [200, 400]
    assert {"error": "oauth_code_reused"} in [a.get_json() for a in answers]
    assert len(provider_server.calls_to("POST", "/token")) == 1


def test_five_failed_codes_end_the_pending_link(client, signer, store, provider_server):
    from smartapp.handlers.oauth_callback import MAX_FAILED_ATTEMPTS

    users_callback = sign_in(url_template(client, signer))
    for _ in range(MAX_FAILED_ATTEMPTS):
        failed = callback(client, signer, f"code={stranger_code(provider_server)}&state={IAID}")
        assert failed.get_json() == {"error": "oauth_exchange_failed"}
        assert store.pending(IAID) is not None
    refused = callback(client, signer, users_callback)
    assert refused.status_code == 400 and refused.get_json() == {"error": "oauth_link_attempts_exhausted"}
    assert_nothing_stored(store, provider_server, exchanges=MAX_FAILED_ATTEMPTS)
    assert store.pending(IAID) is None
    # The user starts again from the page: a new link with a full allowance.
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200


def test_other_authorization_errors_and_a_missing_code_are_refused(client, signer, store, provider_server):
    url_template(client, signer)
    response = callback(client, signer, f"error=server_error&state={IAID}")
    assert response.get_json() == {"error": "oauth_authorization_error"}
    url_template(client, signer)
    response = callback(client, signer, f"state={IAID}")
    assert response.get_json() == {"error": "oauth_code_missing"}
    assert_nothing_stored(store, provider_server)


@pytest.mark.slow
def test_f8_a_stalled_provider_is_given_up_on_within_the_budget(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    provider_server.authority.delay = 15
    started = time.monotonic()
    response = callback(client, signer, url_path)
    elapsed = time.monotonic() - started
    assert response.status_code == 503 and response.get_json() == {"error": "oauth_provider_unavailable"}
    assert 3.5 < elapsed < 5.5
    assert_nothing_stored(store, provider_server, exchanges=1)  # the single-use code is not retried


@pytest.mark.parametrize("reply,reason", [
    (Reply(200, "<html>welcome</html>", {"Content-Type": "text/html"}), "oauth_token_response_invalid"),
    (Reply(200, {"access_token": "x", "token_type": "bearer", "expires_in": 3600}), "oauth_token_response_invalid"),
    (Reply(200, {"access_token": "x", "token_type": "mac", "refresh_token": "r"}), "oauth_token_response_invalid"),
    (Reply(200, {"access_token": "x\r\nX-Evil: 1", "token_type": "bearer"}), "oauth_token_response_invalid"),
    (Reply(200, {"token_type": "bearer"}), "oauth_token_response_invalid"),
    (Reply(400, {"error": "invalid_grant"}), "oauth_exchange_failed"),
    (Reply(401, {"error": "invalid_client"}), "oauth_exchange_failed"),
    (Reply(404, "<html>not here</html>"), "oauth_token_response_invalid"),
])
def test_f9_unusable_token_responses_store_nothing(client, signer, store, provider_server, reply, reason):
    url_path = sign_in(url_template(client, signer))
    provider_server.authority.override = reply
    response = callback(client, signer, url_path)
    assert response.status_code == 400 and response.get_json() == {"error": reason}
    assert_nothing_stored(store, provider_server, exchanges=1)


def test_a_provider_500_is_503_and_stores_nothing(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    provider_server.authority.fail_status = 502
    response = callback(client, signer, url_path)
    assert response.status_code == 503 and response.get_json() == {"error": "oauth_provider_unavailable"}
    assert_nothing_stored(store, provider_server, exchanges=1)


def test_f10_iss_from_another_server_is_refused(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    response = callback(client, signer, url_path + "&iss=https%3A%2F%2Fattacker.example")
    assert response.status_code == 400 and response.get_json() == {"error": "oauth_issuer_mismatch"}
    assert_nothing_stored(store, provider_server)


def test_f10_iss_on_the_authorize_origin_is_accepted(client, signer, store, provider_server):
    url_path = sign_in(url_template(client, signer))
    assert callback(client, signer, url_path + "&iss=" + provider_server.url).status_code == 200


def test_a_failed_relink_never_overwrites_good_tokens(client, signer, store, provider_server):
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200
    good = store.get(IAID)
    url_path = sign_in(url_template(client, signer))
    provider_server.authority.override = Reply(400, {"error": "invalid_grant"})
    assert callback(client, signer, url_path).status_code == 400
    assert store.get(IAID) == good


def test_a_relink_replaces_the_provider_tokens_and_clears_the_flag(client, signer, store):
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200
    store.update(IAID, {"reauth_required": "provider_refresh_rejected"})
    old = store.get(IAID)
    assert callback(client, signer, sign_in(url_template(client, signer))).status_code == 200
    new = store.get(IAID)
    assert new.provider_refresh_token != old.provider_refresh_token and new.reauth_required is None


def test_a_link_made_for_another_provider_is_refused(build, signer, provider_server):
    app = build()
    client = app.test_client()
    url_path = sign_in(url_template(client, signer))
    other = build(SMARTAPP_OAUTH_PROVIDER="lifx")  # redeployed with another provider, same store
    response = callback(other.test_client(), signer, url_path)
    assert response.get_json() == {"error": "oauth_provider_changed"}
    assert len(provider_server.calls_to("POST", "/token")) == 0


def test_unknown_installation_has_no_pending_link(client, signer, store, provider_server):
    response = callback(client, signer, f"code=abc&state={OTHER}", iaid=OTHER)
    assert response.get_json() == {"error": "oauth_link_not_pending"}
    assert store.get(OTHER) is None and provider_server.calls == []


# --- provider styles ------------------------------------------------------------------------------


@pytest.fixture
def github_server():
    server = FakeAuthorizationServer(client_secret=CLIENT_SECRET, auth_method="client_secret_post",
                                     style="github", expires_in=28800).start()
    yield server
    server.stop()


def test_github_link_uses_form_credentials_and_json(build, signer, github_server):
    app = build(SMARTAPP_OAUTH_PROVIDER="github", SMARTAPP_OAUTH_AUTHORIZE_URL=github_server.authorize_url,
                SMARTAPP_OAUTH_TOKEN_URL=github_server.token_url, SMARTAPP_OAUTH_SCOPE="read:user")
    client = app.test_client()
    url = url_template(client, signer)
    assert "code_challenge=" in url  # GitHub supports S256 PKCE
    assert callback(client, signer, sign_in(url)).status_code == 200
    call = github_server.calls_to("POST", "/token")[0]
    assert "authorization" not in call.headers and b"client_secret=" in call.body
    assert call.headers["accept"] == "application/json"
    assert app.extensions["smartapp"].store.get(IAID).provider == "github"


def test_github_errors_with_http_200_are_errors(build, signer, github_server):
    app = build(SMARTAPP_OAUTH_PROVIDER="github", SMARTAPP_OAUTH_AUTHORIZE_URL=github_server.authorize_url,
                SMARTAPP_OAUTH_TOKEN_URL=github_server.token_url)
    client = app.test_client()
    url_path = sign_in(url_template(client, signer))
    github_server.authority.override = Reply(200, {"error": "bad_verification_code"})
    response = callback(client, signer, url_path)
    assert response.get_json() == {"error": "oauth_exchange_failed"}
    assert app.extensions["smartapp"].store.get(IAID) is None


def test_lifx_link_without_refresh_token_or_pkce(build, signer):
    server = FakeAuthorizationServer(client_secret=CLIENT_SECRET, auth_method="client_secret_post",
                                     expires_in=None, issue_refresh=False).start()
    try:
        app = build(SMARTAPP_OAUTH_PROVIDER="lifx", SMARTAPP_OAUTH_AUTHORIZE_URL=server.authorize_url,
                    SMARTAPP_OAUTH_TOKEN_URL=server.token_url, SMARTAPP_OAUTH_SCOPE=None)
        client = app.test_client()
        url = url_template(client, signer)
        assert "code_challenge" not in url and "scope=remote_control%3Aall" in url
        assert callback(client, signer, sign_in(url)).status_code == 200
        stored = app.extensions["smartapp"].store.get(IAID)
        assert stored.provider == "lifx" and stored.provider_refresh_token is None
        assert stored.provider_token_expires_at is None
        assert server.calls_to("POST", "/token")[0].headers["user-agent"].startswith("smartapp/")
    finally:
        server.stop()
