"""The sans-I/O pieces of account linking: PKCE, the authorize URL, urlPath parsing, token responses, config."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from smartapp.errors import OAuthLinkError, ProviderRejected
from smartapp.oauth.authorize import MAX_URL_TEMPLATE, authorize_url
from smartapp.oauth.callback import parse_url_path
from smartapp.grant import Grant, grant_from_token_response
from smartapp.oauth.factory import build_provider
from smartapp.oauth.link import PendingLink, origin
from smartapp.oauth.pkce import new_verifier, s256_challenge
from smartapp.oauth.presets import PRESETS
from smartapp.oauth.provider import ProviderConfig, provider_config, provider_problems
from smartapp.settings import ConfigError, Settings

STATE = "8a0dcdc9-1ab4-4c60-9de7-cb78f59a1121"


def make_config(**overrides) -> ProviderConfig:
    values = dict(name="generic", title="Example", client_id="client 1", client_secret="s",
                  authorize_url="https://as.example/authorize", token_url="https://as.example/token",
                  scope="openid offline_access", pkce=True, auth_method="client_secret_basic",
                  redirect_uri="https://api.smartthings.com/oauth/callback")
    values.update(overrides)
    return ProviderConfig(**values)


def test_pkce_matches_rfc_7636_appendix_b():
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert s256_challenge(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def test_verifiers_are_long_random_and_unreserved():
    verifiers = {new_verifier() for _ in range(50)}
    assert len(verifiers) == 50
    for verifier in verifiers:
        assert 43 <= len(verifier) <= 128 and set(verifier) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def test_authorize_url_is_fully_encoded():
    url = authorize_url(make_config(), state=STATE, code_verifier="v" * 64)
    assert url.startswith("https://as.example/authorize?client_id=client%201&response_type=code&")
    assert "redirect_uri=https%3A%2F%2Fapi.smartthings.com%2Foauth%2Fcallback" in url
    assert "scope=openid%20offline_access" in url and f"state={STATE}" in url
    assert f"code_challenge={s256_challenge('v' * 64)}&code_challenge_method=S256" in url


def test_authorize_url_keeps_configured_parameters_but_ours_win():
    config = make_config(authorize_url="https://as.example/auth?prompt=consent&state=evil&audience=api")
    params = parse_qsl(urlsplit(authorize_url(config, state=STATE, code_verifier=None)).query)
    assert ("prompt", "consent") in params and ("audience", "api") in params
    assert [value for name, value in params if name == "state"] == [STATE]
    assert "code_challenge" not in dict(params)


def test_an_overlong_authorize_url_is_a_configuration_error():
    with pytest.raises(ValueError):
        authorize_url(make_config(scope="x" * MAX_URL_TEMPLATE), state=STATE, code_verifier=None)
    with pytest.raises(ConfigError):
        build_provider(Settings(oauth_provider="generic", oauth_client_id="c", oauth_client_secret="s",
                                oauth_authorize_url="https://as.example/a", oauth_token_url="https://as.example/t",
                                oauth_scope="x" * MAX_URL_TEMPLATE))


@pytest.mark.parametrize("url_path", [
    f"code=abc&state={STATE}", f"?code=abc&state={STATE}", f"/oauth/callback?code=abc&state={STATE}",
    f"https://api.smartthings.com/oauth/callback?code=abc&state={STATE}#frag",
])
def test_url_path_forms(url_path):
    params = parse_url_path(url_path)
    assert (params.code, params.state, params.error, params.iss) == ("abc", STATE, None, None)


def test_url_path_error_and_iss():
    params = parse_url_path(f"error=access_denied&error_description=no%20way&state={STATE}&iss=https%3A%2F%2Fas")
    assert (params.error, params.code, params.iss) == ("access_denied", None, "https://as")
    assert parse_url_path("error=%0Aforged%20line&state=x").error == "invalid_error_code"


@pytest.mark.parametrize("url_path", ["code=a&code=b", "state=a&state=b", "iss=a&iss=b", "error=a&error=b",
                                      "code=a%2541", "code=a%20b", "code=" + "a" * 3000, "x" * 5000])
def test_ambiguous_url_paths(url_path):
    with pytest.raises(OAuthLinkError) as error:
        parse_url_path(url_path)
    assert error.value.reason == "oauth_callback_ambiguous"


def test_fixtures_urlpaths_carry_no_state():
    assert parse_url_path("localhost").state is None and parse_url_path("string").code is None


def test_token_response_validation():
    grant = grant_from_token_response({"access_token": "a", "token_type": "Bearer", "expires_in": "3600",
                                       "refresh_token": "r", "scope": "read"}, initial=True)
    assert (grant.access_token, grant.refresh_token, grant.expires_in, grant.scope) == ("a", "r", 3600.0, "read")
    assert "canary" not in repr(Grant(access_token="at-canary", refresh_token="rt-canary"))
    for bad in ({"access_token": "a"}, {"access_token": "a", "token_type": "mac"}, {"token_type": "bearer"},
                {"access_token": "a b", "token_type": "bearer"}, [], "x",
                {"access_token": "a", "token_type": "bearer", "refresh_token": 7}):
        with pytest.raises(ProviderRejected):
            grant_from_token_response(bad, initial=False)
    with pytest.raises(ProviderRejected) as error:
        grant_from_token_response({"error": "invalid_grant", "error_description": "secret stuff"}, initial=False)
    assert error.value.error == "invalid_grant" and "secret" not in error.value.detail
    # Non-expiring tokens without a refresh token (GitHub OAuth Apps, LIFX) are fine; expiring ones are not.
    assert grant_from_token_response({"access_token": "a", "token_type": "bearer"}, initial=True).expires_in is None
    with pytest.raises(ProviderRejected):
        grant_from_token_response({"access_token": "a", "token_type": "bearer", "expires_in": 60}, initial=True)
    assert grant_from_token_response({"access_token": "a", "token_type": "bearer", "expires_in": -5,
                                      "refresh_token": "r"}, initial=True).expires_in is None


def test_pending_link_records_round_trip_and_reject_junk():
    link = PendingLink(provider="tuya", redirect_uri="https://cb", issued_at=1.0, expires_at=2.0, region="eu",
                       verifier=None, authorize_origin="https://h5.example")
    assert PendingLink.from_record(link.record()) == link
    assert "verifier" not in repr(PendingLink(provider="p", redirect_uri="r", issued_at=1, expires_at=2, verifier="v"))
    for junk in (None, {}, {"verifier": "v"}, {"provider": 1, "redirect_uri": "r", "issued_at": 1, "expires_at": 2},
                 {"provider": "p", "redirect_uri": "r", "issued_at": "1", "expires_at": 2}, {"unknown": 1}):
        assert PendingLink.from_record(junk) is None


def test_origin_normalises_case_and_keeps_ports():
    assert origin("HTTPS://AS.Example:8443/x?y") == "https://as.example:8443"
    assert origin("http://127.0.0.1:9000") == "http://127.0.0.1:9000"


def test_presets_are_complete_data():
    assert set(PRESETS) == {"generic", "github", "lifx", "tuya"}
    assert PRESETS["github"].pkce and not PRESETS["lifx"].pkce and not PRESETS["tuya"].pkce
    assert PRESETS["github"].auth_method == "client_secret_post"
    assert PRESETS["generic"].auth_method == "client_secret_basic"
    assert PRESETS["lifx"].scope == "remote_control:all"


def test_no_provider_means_no_config():
    assert provider_config(Settings()) is None and build_provider(Settings()) is None
    assert provider_problems(Settings()) == []


def test_generic_needs_its_urls_and_credentials():
    problems = " ".join(provider_problems(Settings(oauth_provider="generic")))
    for name in ("CLIENT_ID", "CLIENT_SECRET", "AUTHORIZE_URL", "TOKEN_URL"):
        assert f"SMARTAPP_OAUTH_{name}" in problems
    assert provider_problems(Settings(oauth_provider="github", oauth_client_id="c", oauth_client_secret="s")) == []


def test_settings_override_presets_and_choose_the_auth_method():
    settings = Settings(oauth_provider="github", oauth_client_id="c", oauth_client_secret="s",
                        oauth_token_url="http://127.0.0.1:1/token", oauth_scope="repo")
    config = provider_config(settings)
    assert config.token_url == "http://127.0.0.1:1/token" and config.scope == "repo"
    assert config.authorize_url == "https://github.com/login/oauth/authorize"
    assert provider_config(settings, auth_method="client_secret_basic").auth_method == "client_secret_basic"
    with pytest.raises(ConfigError):
        provider_config(settings, auth_method="private_key_jwt")


def test_client_authentication_and_issuer_come_from_settings():
    from smartapp.oauth.provider import provider_config
    from smartapp.settings import Settings

    base = {"SMARTAPP_OAUTH_PROVIDER": "generic", "SMARTAPP_OAUTH_CLIENT_ID": "id",
            "SMARTAPP_OAUTH_CLIENT_SECRET": "secret", "SMARTAPP_OAUTH_AUTHORIZE_URL": "https://as.test/auth",
            "SMARTAPP_OAUTH_TOKEN_URL": "https://as.test/token"}
    default = provider_config(Settings.from_env(base, dotenv=None))
    assert default.auth_method == "client_secret_basic" and default.issuer is None
    chosen = provider_config(Settings.from_env({**base, "SMARTAPP_OAUTH_CLIENT_AUTH": "client_secret_post",
                                                "SMARTAPP_OAUTH_ISSUER": "https://as.test"}, dotenv=None))
    assert chosen.auth_method == "client_secret_post" and chosen.issuer == "https://as.test"
