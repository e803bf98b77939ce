"""Tuya: the documented signature examples, the signed token calls, envelopes as errors, regions, the link."""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid

import pytest
import requests

from smartapp.deadline import Deadline
from smartapp.errors import ProviderRejected, UpstreamUnavailable
from smartapp.oauth.presets import TUYA_HOSTS
from smartapp.oauth.provider import ProviderConfig, provider_problems
from smartapp.oauth.tuya import TuyaProvider, canonical_url, sign, string_to_sign
from smartapp.settings import Settings
from smartapp.testing import LoopbackServer, Reply
from tests.support.oauth_provider import FakeTuya
from tests.support.webhook_client import post_signed

# Tuya's worked example from its "Sign Requests" documentation.
CLIENT_ID = "1KAD46OrT9HafiKdsXeg"
SECRET = "4OHBOnWOqaEC1mWXOpVL3yV50s0qGSRC"
T = "1588925778000"
NONCE = "5138cc3a9033d69856923fd07b491173"
SIGNED_HEADERS = [("area_id", "29a33e8796834b1efa6"), ("call_id", "8afdb70ab2ed11eb85290242ac130003")]
IAID = "6a5b4c3d-2e1f-4a0b-9c8d-7e6f5a4b3c2d"


def test_token_request_example_signature():
    message = string_to_sign("GET", "/v1.0/token", query=[("grant_type", "1")], signed_headers=SIGNED_HEADERS)
    assert sign(client_id=CLIENT_ID, secret=SECRET, t=T, nonce=NONCE, message=message) == (
        "9E48A3E93B302EEECC803C7241985D0A34EB944F40FB573C7B5C2A82158AF13E")


def test_business_request_example_signature():
    message = string_to_sign("GET", "/v2.0/apps/schema/users", query=[("page_size", "50"), ("page_no", "1")],
                             signed_headers=SIGNED_HEADERS)
    assert sign(client_id=CLIENT_ID, secret=SECRET, t=T, nonce=NONCE, message=message,
                access_token="3f4eda2bdec17232f67c0b188af3eec1") == (
        "AE4481C692AA80B25F3A7E12C3A5FD9BBF6251539DD78E565A1A72A508A88784")


def test_token_request_without_nonce_or_signed_headers():
    message = string_to_sign("GET", "/v1.0/token", query=[("grant_type", "1")])
    empty_body = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert message == f"GET\n{empty_body}\n\n/v1.0/token?grant_type=1"
    assert sign(client_id=CLIENT_ID, secret=SECRET, t=T, message=message) == (
        "7BA26C076E5ECB1E959BE274A0FFB397B2B1865FC7BCED8F1C78AC5653C20CAA")


def test_query_is_sorted_and_not_encoded():
    assert canonical_url("/v1.0/token", [("grant_type", "2"), ("code", "ab:c")]) == "/v1.0/token?code=ab:c&grant_type=2"
    assert canonical_url("/v1.0/token/abc") == "/v1.0/token/abc"


@pytest.fixture
def tuya():
    server = FakeTuya().start()
    yield server
    server.stop()


def config(base_url: str | None, region: str = "us") -> ProviderConfig:
    return ProviderConfig(name="tuya", title="Tuya", client_id="tuya-client", client_secret="tuya-secret",
                          authorize_url="https://h5.example.test/authorize", token_url=base_url, scope=None,
                          pkce=False, auth_method="tuya_signature",
                          redirect_uri="https://api.smartthings.com/oauth/callback",
                          region=region)


def exchange(provider: TuyaProvider, code: str):
    return provider.exchange_code(code=code, code_verifier=None, redirect_uri="unused", region="eu", timeout=2)


def test_exchange_and_refresh_are_signed_gets(tuya):
    provider = TuyaProvider(config(tuya.url))
    grant = exchange(provider, tuya.issue_code())
    assert grant.refresh_token in tuya.refresh_tokens and grant.expires_in == 7200 and grant.user_id == "ay000001"
    again = provider.refresh(refresh_token=grant.refresh_token, region="eu", timeout=2)
    assert again.refresh_token != grant.refresh_token and grant.refresh_token not in tuya.refresh_tokens
    first, second = tuya.calls
    assert first.method == second.method == "GET"
    assert first.path.startswith("/v1.0/token?code=") and first.path.endswith("&grant_type=2")
    assert second.path == f"/v1.0/token/{grant.refresh_token}"
    for call in tuya.calls:
        assert call.headers["sign_method"] == "HMAC-SHA256" and len(call.headers["nonce"]) == 32
        assert "tuya-secret" not in repr(call)  # the secret only keys the HMAC


def test_the_lifetime_may_be_called_expire(tuya):
    tuya.lifetime_key = "expire"
    assert exchange(TuyaProvider(config(tuya.url)), tuya.issue_code()).expires_in == 7200


@pytest.mark.parametrize("code,error", [(1107, "invalid_grant"), (1010, "invalid_grant"), (1012, "invalid_grant"),
                                        (1004, "invalid_client"), (1106, "invalid_client"), (1109, "tuya_1109")])
def test_success_false_envelopes_are_errors(tuya, code, error):
    tuya.fail_code = code
    with pytest.raises(ProviderRejected) as raised:
        exchange(TuyaProvider(config(tuya.url)), tuya.issue_code())
    assert raised.value.error == error


@pytest.mark.parametrize("code", [1013, 500])
def test_transient_codes_keep_the_token(tuya, code):
    tuya.fail_code = code
    with pytest.raises(UpstreamUnavailable):
        TuyaProvider(config(tuya.url)).refresh(refresh_token="ab12", region="us", timeout=2)


def test_a_bad_signature_is_refused(tuya):
    provider = TuyaProvider(dataclasses.replace(config(tuya.url), client_secret="wrong"))
    with pytest.raises(ProviderRejected) as raised:
        exchange(provider, tuya.issue_code())
    assert raised.value.error == "invalid_client"


@pytest.mark.parametrize("reply,kind", [
    (Reply(502, "<html>bad gateway</html>"), UpstreamUnavailable),
    (Reply(200, "<html>hello</html>"), ProviderRejected),
    (Reply(200, {"success": True, "result": {"access_token": "a"}}), ProviderRejected),
    (Reply(200, {"success": True, "result": {"access_token": "a\r\nb", "refresh_token": "ab"}}), ProviderRejected),
])
def test_unusable_replies(reply, kind):
    server = LoopbackServer()
    server.route("GET", r"/v1\.0/token.*", lambda call, match: reply)
    server.start()
    try:
        with pytest.raises(kind):
            exchange(TuyaProvider(config(server.url)), "abc123")
    finally:
        server.stop()


def test_odd_codes_and_tokens_never_reach_a_url(tuya):
    provider = TuyaProvider(config(tuya.url))
    with pytest.raises(ProviderRejected):
        exchange(provider, "abc&grant_type=1")
    with pytest.raises(ProviderRejected):
        provider.refresh(refresh_token="../../v1.0/users", region="us", timeout=2)
    assert tuya.calls == []


def test_each_region_has_its_host():
    for region, host in TUYA_HOSTS.items():
        assert TuyaProvider(config(None, region)).base_url(None) == host
        assert TuyaProvider(config(None, "us")).base_url(region) == host  # the link's region wins
    assert TUYA_HOSTS["eu"] == "https://openapi.tuyaeu.com" and TUYA_HOSTS["cn"] == "https://openapi.tuyacn.com"


def test_configuration_problems_name_the_variables():
    problems = provider_problems(Settings(oauth_provider="tuya", tuya_region="mars"))
    text = " ".join(problems)
    for name in ("SMARTAPP_OAUTH_CLIENT_ID", "SMARTAPP_OAUTH_CLIENT_SECRET", "SMARTAPP_OAUTH_AUTHORIZE_URL",
                 "SMARTAPP_TUYA_REGION"):
        assert name in text


# --- the whole link and refresh through the service ----------------------------------------------


@pytest.fixture
def app(make_app, store_kind, tuya):
    return make_app(store_kind, SMARTAPP_OAUTH_PROVIDER="tuya", SMARTAPP_OAUTH_CLIENT_ID="tuya-client",
                    SMARTAPP_OAUTH_CLIENT_SECRET="tuya-secret",
                    SMARTAPP_OAUTH_AUTHORIZE_URL="https://openapi.tuyaeu.com/login/auth?lang=en",
                    SMARTAPP_OAUTH_TOKEN_URL=tuya.url, SMARTAPP_TUYA_REGION="eu")


def signed(client, signer, body: dict):
    body["executionId"] = str(uuid.uuid4())
    return post_signed(client, signer, body)


def test_tuya_link_and_single_flight_refresh(app, signer, tuya, smartapp_log):
    client = app.test_client()
    services = app.extensions["smartapp"]
    page = {"lifecycle": "CONFIGURATION", "locale": "en", "settings": {},
            "configurationData": {"installedAppId": IAID, "phase": "PAGE", "pageId": "", "config": {}}}
    setting = signed(client, signer, page).get_json()["configurationData"]["page"]["sections"][0]["settings"][0]
    assert setting["urlTemplate"].startswith("https://openapi.tuyaeu.com/login/auth?lang=en&client_id=tuya-client")
    assert "code_challenge" not in setting["urlTemplate"]
    assert services.store.pending(IAID)["region"] == "eu"

    code = tuya.issue_code()
    callback = {"lifecycle": "OAUTH_CALLBACK", "locale": "en", "settings": {},
                "oauthCallbackData": {"installedAppId": IAID, "urlPath": f"code={code}&state={IAID}"}}
    assert signed(client, signer, callback).get_json() == {"oAuthCallbackData": {}}
    linked = services.store.get(IAID)
    assert linked.provider == "tuya" and linked.provider_region == "eu" and linked.provider_user_id == "ay000001"
    assert linked.provider_token_expires_at > time.time() + 7000

    services.store.update(IAID, {"provider_token_expires_at": time.time() - 1})
    tokens: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        tokens.append(services.tokens.access_token(IAID, "provider", deadline=Deadline.after(20)))

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    refreshed = services.store.get(IAID)
    assert tuya.token_calls == ["code", "refresh"]
    assert set(tokens) == {refreshed.provider_access_token}
    assert refreshed.provider_refresh_token in tuya.refresh_tokens
    assert linked.provider_refresh_token not in tuya.refresh_tokens
    for secret in (code, "tuya-secret", linked.provider_refresh_token, refreshed.provider_access_token):
        assert secret not in smartapp_log.raw()


def test_tuya_dead_refresh_token_flags_reauth(app, tuya):
    services = app.extensions["smartapp"]
    services.store.update(IAID, {"provider": "tuya", "provider_region": "eu", "provider_access_token": "a1",
                                 "provider_refresh_token": "deadbeef", "provider_token_expires_at": time.time() - 1})
    from smartapp.errors import ReauthRequired

    with pytest.raises(ReauthRequired):
        services.tokens.access_token(IAID, "provider", deadline=Deadline.after(8))
    assert services.store.get(IAID).reauth_required == "provider_refresh_rejected"


def test_business_calls_are_signed_with_the_users_access_token():
    from smartapp.oauth.tuya import TuyaRequestSigner

    signer = TuyaRequestSigner(config(None), "3f4eda2bdec17232f67c0b188af3eec1", clock=lambda: int(T) / 1000,
                               nonce=lambda: NONCE)
    request = requests.Request("POST", "https://openapi.tuyaus.com/v1.0/devices/d1/commands?b=2&a=1",
                               json={"commands": [{"code": "switch_1", "value": True}]}).prepare()
    signed = signer(request)
    message = string_to_sign("POST", "/v1.0/devices/d1/commands", query=[("a", "1"), ("b", "2")],
                             body=request.body)
    assert signed.headers["sign"] == sign(client_id="tuya-client", secret="tuya-secret", t=T, nonce=NONCE,
                                          message=message, access_token="3f4eda2bdec17232f67c0b188af3eec1")
    assert signed.headers["access_token"] == "3f4eda2bdec17232f67c0b188af3eec1" and signed.headers["t"] == T
    assert "Authorization" not in signed.headers
