"""Tuya's token calls: signed GETs (HMAC-SHA256 over Tuya's stringToSign) to the user's data-centre host."""

from __future__ import annotations

import hashlib
import hmac
import re
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import requests

from smartapp.errors import ProviderRejected, UpstreamUnavailable
from smartapp.outbound import settle_environment
from smartapp.grant import Grant, is_token, lifetime
from smartapp.oauth.presets import TUYA_HOSTS
from smartapp.oauth.provider import ProviderConfig

# Tuya result codes that mean "this code or refresh token is dead" (1010-1012 token, 1107 code): the user re-links.
_DEAD_GRANT = {1010, 1011, 1012, 1107}
# Codes that mean our client set-up is wrong (key, id, permission); the stored token may still be good.
_BAD_CLIENT = {1004, 1005, 1106}
# Codes worth a later retry: clock skew against Tuya's server, Tuya's own failures.
_TRANSIENT = {1013, 500}
# Tuya tokens are hex; anything else must not be put into a URL path.
_PATH_SAFE = re.compile(r"[A-Za-z0-9._~-]{1,512}\Z")


def canonical_url(path: str, query: Iterable[tuple[str, str]] = ()) -> str:
    """The path plus query parameters sorted by name, values not encoded (what Tuya signs)."""
    pairs = sorted(query)
    return path + ("?" + "&".join(f"{name}={value}" for name, value in pairs) if pairs else "")


def string_to_sign(method: str, path: str, *, query: Iterable[tuple[str, str]] = (), body: bytes = b"",
                   signed_headers: Sequence[tuple[str, str]] = ()) -> str:
    """Method, SHA-256 of the body, one `name:value\\n` per signed header, and the canonical URL."""
    headers = "".join(f"{name}:{value}\n" for name, value in signed_headers)
    return "\n".join([method.upper(), hashlib.sha256(body).hexdigest(), headers, canonical_url(path, query)])


def sign(*, client_id: str, secret: str, t: str, message: str, nonce: str = "", access_token: str = "") -> str:
    """Token calls leave access_token empty; business calls put it between client_id and t."""
    text = client_id + access_token + t + nonce + message
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest().upper()


class TuyaRequestSigner(requests.auth.AuthBase):
    """Signs a business call (any method, query and body) with the client secret and the user's access token."""

    def __init__(self, config: ProviderConfig, access_token: str, *, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: uuid.uuid4().hex) -> None:
        self.config = config
        self.access_token = access_token
        self.clock = clock
        self.nonce = nonce

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        parts = urlsplit(request.url or "")
        body = request.body if isinstance(request.body, bytes) else (request.body or "").encode()
        t, nonce = str(int(self.clock() * 1000)), self.nonce()
        message = string_to_sign(request.method or "GET", parts.path, body=body,
                                 query=parse_qsl(parts.query, keep_blank_values=True))
        request.headers.update({
            "client_id": self.config.client_id, "access_token": self.access_token, "t": t, "nonce": nonce,
            "sign_method": "HMAC-SHA256",
            "sign": sign(client_id=self.config.client_id, secret=self.config.client_secret, t=t, nonce=nonce,
                         message=message, access_token=self.access_token)})
        return request


class TuyaProvider:
    def __init__(self, config: ProviderConfig, *, clock: Callable[[], float] = time.time,
                 nonce: Callable[[], str] = lambda: uuid.uuid4().hex,
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.clock = clock
        self.nonce = nonce
        self.session = session or settle_environment(requests.Session(), self.base_url(config.region))

    def base_url(self, region: str | None) -> str:
        # A Tuya code is redeemable only in the user's data centre: the exchange and every refresh go
        # where the link was made.
        if self.config.token_url:
            return self.config.token_url.rstrip("/")
        return TUYA_HOSTS[region or self.config.region or "us"]

    def exchange_code(self, *, code: str, code_verifier: str | None, redirect_uri: str, region: str | None,
                      timeout: float) -> Grant:
        if not _PATH_SAFE.match(code):
            raise ProviderRejected("invalid_grant", "code is not a Tuya code")
        return self._token_call("/v1.0/token", [("grant_type", "2"), ("code", code)], region=region, timeout=timeout)

    def refresh(self, *, refresh_token: str, region: str | None, timeout: float) -> Grant:
        if not _PATH_SAFE.match(refresh_token):
            raise ProviderRejected("invalid_grant", "stored refresh token is not a Tuya token")
        return self._token_call(f"/v1.0/token/{refresh_token}", [], region=region, timeout=timeout)

    def _token_call(self, path: str, query: list[tuple[str, str]], *, region: str | None, timeout: float) -> Grant:
        t, nonce = str(int(self.clock() * 1000)), self.nonce()
        signature = sign(client_id=self.config.client_id, secret=self.config.client_secret, t=t, nonce=nonce,
                         message=string_to_sign("GET", path, query=query))
        headers = {"client_id": self.config.client_id, "sign": signature, "t": t, "nonce": nonce,
                   "sign_method": "HMAC-SHA256", "Accept": "application/json"}
        # Send the URL exactly as signed (sorted, values unencoded; codes and tokens are plain hex).
        url = self.base_url(region) + canonical_url(path, query)
        try:
            response = self.session.get(url, headers=headers, timeout=(min(self.config.connect_timeout, timeout),
                                                                       timeout), allow_redirects=False)
        except requests.Timeout as error:
            raise UpstreamUnavailable("oauth_provider_timeout", type(error).__name__) from None
        except requests.RequestException as error:
            raise UpstreamUnavailable("oauth_provider_unreachable", type(error).__name__) from None
        return _grant(response)


def _grant(response: requests.Response) -> Grant:
    """Decide on the envelope's `success`/`code`, not the HTTP status (what Tuya's SDKs do)."""
    try:
        envelope: Any = response.json()
    except ValueError:
        envelope = None
    if not isinstance(envelope, dict):
        if response.status_code >= 500:
            raise UpstreamUnavailable("oauth_provider_error", f"HTTP {response.status_code}")
        raise ProviderRejected("invalid_token_response", f"HTTP {response.status_code}, not a Tuya envelope")
    if envelope.get("success") is not True:
        code = envelope.get("code")
        code = code if isinstance(code, int) else -1
        if code in _DEAD_GRANT:
            raise ProviderRejected("invalid_grant", f"tuya code {code}")
        if code in _BAD_CLIENT:
            raise ProviderRejected("invalid_client", f"tuya code {code}")
        if code in _TRANSIENT:
            raise UpstreamUnavailable("oauth_provider_error", f"tuya code {code}")
        raise ProviderRejected(f"tuya_{code}")
    result = envelope.get("result")
    if not isinstance(result, dict):
        raise ProviderRejected("invalid_token_response", "success without a result")
    access_token, refresh_token, uid = result.get("access_token"), result.get("refresh_token"), result.get("uid")
    if not (is_token(access_token) and isinstance(refresh_token, str) and _PATH_SAFE.match(refresh_token)):
        raise ProviderRejected("invalid_token_response", "result without usable tokens")
    # Some documents call the lifetime `expire_time`, one calls it `expire`; the SDKs accept either.
    expires_in = lifetime(result.get("expire_time", result.get("expire")))
    return Grant(access_token=access_token, refresh_token=refresh_token, expires_in=expires_in,
                 user_id=uid[:128] if isinstance(uid, str) and uid.isprintable() else None)
