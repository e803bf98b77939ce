"""The whole account link against a real OAuth server (npm oidc-provider) on 127.0.0.1.

configuration page -> authorize URL -> login/consent -> code -> signed OAUTH_CALLBACK -> tokens stored ->
INSTALL keeps them -> refresh rotates them. The fixture installs the pinned server (npm ci) when
tests/oidc/node_modules is missing and fails loudly when node or npm is not installed.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import pytest
import requests

from smartapp.deadline import Deadline
from smartapp.oauth.authorize import authorize_url
from smartapp.oauth.pkce import new_verifier
from smartapp.oauth.provider import ProviderConfig
from smartapp.oauth.standard import StandardProvider
from tests.conftest import load_fixture
from tests.support.webhook_client import post_signed

pytestmark = pytest.mark.slow

OIDC_DIR = Path(__file__).resolve().parents[1] / "support" / "oidc"
REDIRECT_URI = "https://api.smartthings.com/oauth/callback"
SECRET = "oidc-client-secret-canary-91c2"
IAID = "c7a1e2b3-4d5f-4a6b-8c9d-0e1f2a3b4c5d"


def _npm_install(npm: str) -> None:
    if (OIDC_DIR / "node_modules" / "oidc-provider" / "package.json").exists():
        return
    # The lockfile pins oidc-provider and everything under it; `npm ci` installs exactly that.
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=OIDC_DIR,
                            capture_output=True, text=True, timeout=300)
    if result.returncode != 0:
        pytest.fail(f"`npm ci` in {OIDC_DIR} failed (needs the npm registry):\n{result.stderr[-2000:]}", pytrace=False)


@pytest.fixture(scope="module")
def oidc_server():
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.fail("the end-to-end OAuth test needs Node.js >= 20.19 with npm on PATH (it runs the "
                    "oidc-provider server in tests/oidc); install Node.js and run the tests again", pytrace=False)
    _npm_install(npm)
    stderr = tempfile.TemporaryFile()
    process = subprocess.Popen([node, "server.js"], cwd=OIDC_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=stderr, env={**os.environ, "OIDC_CLIENT_SECRET": SECRET,
                                                   "OIDC_REDIRECT_URI": REDIRECT_URI})
    try:
        ready, _, _ = select.select([process.stdout], [], [], 20)
        line = process.stdout.readline() if ready else b""
        if not line:
            stderr.seek(0)
            pytest.fail(f"oidc-provider did not start:\n{stderr.read().decode(errors='replace')[-2000:]}",
                        pytrace=False)
        issuer = json.loads(line)["issuer"]
        requests.get(issuer + "/.well-known/openid-configuration", timeout=5).raise_for_status()
        yield issuer
    finally:
        process.stdin.close()  # the server exits when its stdin closes
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        stderr.close()


def sign_in(url: str, *, deny: bool = False) -> str:
    """Drive oidc-provider's development login and consent pages; return the callback's query."""
    browser = requests.Session()
    response = browser.get(url, allow_redirects=False, timeout=5)
    for _ in range(10):
        assert response.status_code in (302, 303), response.text[:500]
        location = urljoin(response.url, response.headers["Location"])
        if location.startswith(REDIRECT_URI):
            return urlsplit(location).query  # not followed: SmartThings would receive it
        page = browser.get(location, allow_redirects=False, timeout=5)
        if page.status_code in (302, 303):
            response = page
            continue
        uid = re.search(r"/interaction/([^/?#\"]+)", location).group(1)
        base = location.split("/interaction/")[0]
        if deny:
            response = browser.get(f"{base}/interaction/{uid}/abort", allow_redirects=False, timeout=5)
        elif 'name="prompt" value="login"' in page.text:
            response = browser.post(f"{base}/interaction/{uid}", allow_redirects=False, timeout=5,
                                    data={"prompt": "login", "login": "user-42", "password": "any"})
        else:
            assert 'name="prompt" value="consent"' in page.text, page.text[:500]
            response = browser.post(f"{base}/interaction/{uid}", allow_redirects=False, timeout=5,
                                    data={"prompt": "consent"})
    raise AssertionError("no redirect to the SmartThings callback")


def introspect(issuer: str, token: str) -> bool:
    response = requests.post(issuer + "/token/introspection", data={"token": token},
                             auth=("smartapp-basic", SECRET), timeout=5)
    response.raise_for_status()
    return response.json()["active"]


def signed(client, signer, body: dict):
    body["executionId"] = str(uuid.uuid4())
    return post_signed(client, signer, body)


@pytest.fixture
def app(make_app, store_kind, oidc_server):
    return make_app(
        store_kind,
        SMARTAPP_OAUTH_PROVIDER="generic",
        SMARTAPP_OAUTH_CLIENT_ID="smartapp-basic",
        SMARTAPP_OAUTH_CLIENT_SECRET=SECRET,
        # offline_access (a refresh token) is only granted with prompt=consent; kept from the configured URL.
        SMARTAPP_OAUTH_AUTHORIZE_URL=oidc_server + "/auth?prompt=consent",
        SMARTAPP_OAUTH_TOKEN_URL=oidc_server + "/token",
        SMARTAPP_OAUTH_SCOPE="openid offline_access read",
    )


def test_account_link_end_to_end(app, signer, oidc_server, smartapp_log):
    client = app.test_client()
    services = app.extensions["smartapp"]
    store = services.store

    page = load_fixture("configuration_page.json")
    page["configurationData"]["installedAppId"] = IAID
    answer = signed(client, signer, page)
    setting = answer.get_json()["configurationData"]["page"]["sections"][0]["settings"][0]
    assert setting["type"] == "OAUTH" and setting["urlTemplate"].startswith(oidc_server + "/auth?prompt=consent&")

    url_path = sign_in(setting["urlTemplate"])
    query = parse_qs(url_path)
    assert query["state"] == [IAID] and query["iss"] == [oidc_server]  # RFC 9207 iss, checked by the callback

    callback = {"lifecycle": "OAUTH_CALLBACK", "locale": "en", "version": "1.0.0", "settings": {},
                "oAuthCallbackData": {"installedAppId": IAID, "urlPath": "?" + url_path}}
    response = signed(client, signer, callback)
    assert response.status_code == 200 and response.get_json() == {"oAuthCallbackData": {}}
    linked = store.get(IAID)
    assert linked.provider == "generic" and linked.provider_refresh_token
    assert introspect(oidc_server, linked.provider_access_token)
    assert "offline_access" in linked.provider_scope

    install = load_fixture("install.json")
    install["installData"]["installedApp"]["installedAppId"] = IAID
    assert signed(client, signer, install).status_code == 200
    installed = store.get(IAID)
    assert installed.provider_access_token == linked.provider_access_token
    assert installed.provider_refresh_token == linked.provider_refresh_token
    assert installed.auth_token == install["installData"]["authToken"]

    # The provider token is about to expire: asking for it refreshes once and rotates the pair.
    store.update(IAID, {"provider_token_expires_at": time.time() + 5})
    token = services.tokens.access_token(IAID, "provider", deadline=Deadline.after(8))
    refreshed = store.get(IAID)
    assert token == refreshed.provider_access_token != linked.provider_access_token
    assert refreshed.provider_refresh_token != linked.provider_refresh_token
    assert refreshed.provider_token_expires_at > time.time() + 3000
    assert introspect(oidc_server, token)
    assert introspect(oidc_server, refreshed.provider_refresh_token)
    assert not introspect(oidc_server, linked.provider_refresh_token)  # rotation retired the old one
    assert services.tokens.access_token(IAID, "provider", deadline=Deadline.after(8)) == token  # no second call

    # Replaying the callback (duplicate delivery) exchanges nothing: the code would revoke the grant.
    assert signed(client, signer, callback).get_json() == {"error": "oauth_link_not_pending"}
    assert introspect(oidc_server, refreshed.provider_refresh_token)

    log = smartapp_log.raw()
    for secret in (query["code"][0], SECRET, linked.provider_access_token, linked.provider_refresh_token, token,
                   refreshed.provider_refresh_token):
        assert secret not in log


def test_denied_consent_is_acknowledged_and_stores_nothing(app, signer, oidc_server):
    client = app.test_client()
    page = load_fixture("configuration_page.json")
    page["configurationData"]["installedAppId"] = IAID
    setting = signed(client, signer, page).get_json()["configurationData"]["page"]["sections"][0]["settings"][0]
    url_path = sign_in(setting["urlTemplate"], deny=True)
    assert parse_qs(url_path)["error"] == ["access_denied"]
    callback = {"lifecycle": "OAUTH_CALLBACK", "locale": "en", "version": "1.0.0", "settings": {},
                "oauthCallbackData": {"installedAppId": IAID, "urlPath": url_path}}
    assert signed(client, signer, callback).get_json() == {"oAuthCallbackData": {}}
    assert app.extensions["smartapp"].store.get(IAID) is None


@pytest.mark.parametrize("client_id,method", [("smartapp-basic", "client_secret_basic"),
                                              ("smartapp-post", "client_secret_post")])
def test_both_client_authentication_methods_against_the_real_server(oidc_server, client_id, method):
    config = ProviderConfig(name="generic", title="t", client_id=client_id, client_secret=SECRET,
                            authorize_url=oidc_server + "/auth?prompt=consent", token_url=oidc_server + "/token",
                            scope="openid offline_access", pkce=True, auth_method=method, redirect_uri=REDIRECT_URI)
    provider = StandardProvider(config)
    verifier = new_verifier()
    code = parse_qs(sign_in(authorize_url(config, state="s-1", code_verifier=verifier)))["code"][0]
    grant = provider.exchange_code(code=code, code_verifier=verifier, redirect_uri=REDIRECT_URI, region=None,
                                   timeout=4)
    assert grant.refresh_token and grant.expires_in
    again = provider.refresh(refresh_token=grant.refresh_token, region=None, timeout=4)
    assert again.refresh_token and again.refresh_token != grant.refresh_token
    from smartapp.errors import ProviderRejected

    with pytest.raises(ProviderRejected) as rejected:  # the rotated-out token is dead (and revokes the grant)
        provider.refresh(refresh_token=grant.refresh_token, region=None, timeout=4)
    assert rejected.value.error == "invalid_grant"
