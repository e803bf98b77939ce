"""Loopback authorization servers: an RFC 6749 AS (also GitHub-style and SmartThings' token endpoint) and Tuya."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import secrets
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote_plus, urlencode, urlsplit

from smartapp.testing import Call, LoopbackServer, Reply

REDIRECT_URI = "https://api.smartthings.com/oauth/callback"


@dataclass
class CodeGrant:
    client_id: str
    redirect_uri: str
    challenge: str | None
    used: bool = False
    issued: list[str] = field(default_factory=list)   # refresh tokens issued from this code


class TokenAuthority:
    """The token endpoint's state: single-use codes and refresh tokens, call counts, injectable faults.

    Mount it on any LoopbackServer (its own, or the SmartThings API fake for SMARTAPP_TOKEN_URL).
    """

    def __init__(self, *, client_id: str = "client-1", client_secret: str = "secret-1",
                 auth_method: str = "client_secret_basic", style: str = "rfc", rotate: bool = True,
                 expires_in: int | None = 3600, issue_refresh: bool = True, revoke_family_on_reuse: bool = False,
                 token_prefix: str = "") -> None:
        self.client_id, self.client_secret = client_id, client_secret
        self.auth_method = auth_method          # client_secret_basic | client_secret_post | any
        self.style = style                      # rfc | github (errors with HTTP 200)
        self.rotate, self.expires_in, self.issue_refresh = rotate, expires_in, issue_refresh
        self.revoke_family_on_reuse = revoke_family_on_reuse
        self.token_prefix = token_prefix
        self.codes: dict[str, CodeGrant] = {}
        self.refresh_tokens: dict[str, str] = {}      # active refresh token -> family (the code)
        self.families: dict[str, str] = {}            # every refresh token ever issued -> family
        self.access_tokens: set[str] = set()
        self.issued_refresh: list[str] = []           # every refresh token ever issued, in order
        self.token_calls: list[str] = []              # grant_type of every accepted-for-processing call
        self.refresh_attempts: list[str] = []         # refresh tokens presented, in order
        self.delay = 0.0
        self.fail_status: int | None = None           # answer every token call with this status
        self.override: Reply | None = None            # answer every token call with this reply
        self.rotate_then_delay = 0.0                  # rotate, then answer this late (a lost reply)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def mount(self, server: LoopbackServer, *, token_path: str = "/token", authorize_path: str = "/authorize"):
        server.route("POST", token_path, self._token)
        server.route("GET", authorize_path, self._authorize)
        return self

    # --- the authorization step (what the user's browser would do) --------------------------------

    def issue_code(self, *, challenge: str | None = None, redirect_uri: str = REDIRECT_URI,
                   client_id: str | None = None) -> str:
        code = f"code-{next(self._ids)}-{secrets.token_hex(8)}"
        with self._lock:
            self.codes[code] = CodeGrant(client_id or self.client_id, redirect_uri, challenge)
        return code

    def seed_refresh_token(self, token: str | None = None) -> str:
        """A refresh token as if issued earlier (for refresh tests that skip the link)."""
        token = token or f"{self.token_prefix}rt-seed-{next(self._ids)}-{secrets.token_hex(6)}"
        with self._lock:
            self.refresh_tokens[token] = self.families[token] = "seed"
            self.issued_refresh.append(token)
        return token

    @property
    def refresh_calls(self) -> int:
        return self.token_calls.count("refresh_token")

    def _authorize(self, call: Call, match) -> Reply:
        params = dict(parse_qsl(urlsplit(call.path).query))
        if params.get("client_id") != self.client_id or params.get("response_type") != "code":
            return Reply(400, "bad authorization request")
        state = params.get("state", "")
        if params.get("deny"):
            query = {"error": "access_denied", "state": state}
        else:
            code = self.issue_code(challenge=params.get("code_challenge"), redirect_uri=params["redirect_uri"])
            query = {"code": code, "state": state}
        return Reply(302, b"", {"Location": params["redirect_uri"] + "?" + urlencode(query)})

    # --- the token endpoint ---------------------------------------------------------------------

    def _error(self, status: int, error: str) -> Reply:
        if self.style == "github":
            status = 200  # GitHub answers token errors with HTTP 200
        return Reply(status, {"error": error, "error_description": "no details for you"},
                     {"Cache-Control": "no-store"})

    def _client_ok(self, call: Call, form: dict) -> bool:
        header = call.headers.get("authorization", "")
        basic = post = False
        if header.startswith("Basic "):
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
            basic = (unquote_plus(user), unquote_plus(password)) == (self.client_id, self.client_secret)
        if "client_secret" in form:
            post = (form.get("client_id"), form.get("client_secret")) == (self.client_id, self.client_secret)
        if self.auth_method == "client_secret_basic":
            return basic and "client_secret" not in form
        if self.auth_method == "client_secret_post":
            return post and not header
        return basic or post

    def _token(self, call: Call, match) -> Reply:
        if self.delay:
            threading.Event().wait(self.delay)
        if self.override is not None:
            return self.override
        if self.fail_status:
            return Reply(self.fail_status, "<html>upstream trouble</html>", {"Content-Type": "text/html"})
        form = dict(parse_qsl(call.body.decode()))
        if not self._client_ok(call, form):
            return self._error(401, "invalid_client")
        grant_type = form.get("grant_type")
        with self._lock:
            self.token_calls.append(str(grant_type))
            if grant_type == "authorization_code":
                reply, family = self._exchange(form)
            elif grant_type == "refresh_token":
                reply, family = self._refresh(form)
            else:
                return self._error(400, "unsupported_grant_type")
            if family is None:
                return reply
            body = self._issue(family, rotate=grant_type == "authorization_code" or self.rotate)
        if self.rotate_then_delay:
            threading.Event().wait(self.rotate_then_delay)
        return Reply(200, body, {"Cache-Control": "no-store"})

    def _exchange(self, form: dict) -> tuple[Reply | None, str | None]:
        code = form.get("code", "")
        grant = self.codes.get(code)
        if grant is None or grant.client_id != self.client_id:
            return self._error(400, "invalid_grant"), None
        if grant.used:
            # RFC 6749 §4.1.2: a reused code is refused and what it issued is revoked.
            for token in grant.issued:
                self.refresh_tokens.pop(token, None)
            return self._error(400, "invalid_grant"), None
        if form.get("redirect_uri") != grant.redirect_uri:
            return self._error(400, "invalid_grant"), None
        if grant.challenge is not None:
            verifier = form.get("code_verifier", "")
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if digest != grant.challenge:
                return self._error(400, "invalid_grant"), None  # code not consumed, like oidc-provider
        elif "code_verifier" in form:
            return self._error(400, "invalid_grant"), None      # PKCE downgrade (RFC 9700 §4.8)
        grant.used = True
        return None, code

    def _refresh(self, form: dict) -> tuple[Reply | None, str | None]:
        token = form.get("refresh_token", "")
        self.refresh_attempts.append(token)
        family = self.refresh_tokens.get(token)
        if family is None:
            if self.revoke_family_on_reuse and token in self.families:
                # RFC 9700 §4.14.2: a replayed rotated token revokes the whole grant.
                for active in [t for t, f in self.refresh_tokens.items() if f == self.families[token]]:
                    self.refresh_tokens.pop(active)
            return self._error(400, "invalid_grant"), None
        if self.rotate:
            self.refresh_tokens.pop(token)
        return None, family

    def _issue(self, family: str, *, rotate: bool) -> dict:
        n = next(self._ids)
        access = f"{self.token_prefix}at-{n}-{secrets.token_hex(6)}"
        self.access_tokens.add(access)
        body: dict = {"access_token": access, "token_type": "Bearer" if self.style == "rfc" else "bearer"}
        if self.expires_in is not None:
            body["expires_in"] = self.expires_in
        if self.issue_refresh and rotate:
            refresh = f"{self.token_prefix}rt-{n}-{secrets.token_hex(6)}"
            self.refresh_tokens[refresh] = self.families[refresh] = family
            self.issued_refresh.append(refresh)
            if family in self.codes:
                self.codes[family].issued.append(refresh)
            body["refresh_token"] = refresh
        body["scope"] = "read"
        return body


class FakeAuthorizationServer(LoopbackServer):
    """A standalone AS on 127.0.0.1: GET /authorize (redirects at once) and POST /token."""

    def __init__(self, **options) -> None:
        super().__init__()
        self.authority = TokenAuthority(**options).mount(self)

    @property
    def authorize_url(self) -> str:
        return self.url + "/authorize"

    @property
    def token_url(self) -> str:
        return self.url + "/token"


# --- Tuya --------------------------------------------------------------------------------------


class FakeTuya(LoopbackServer):
    """Tuya's OpenAPI token calls: signature checked, `{success, code, msg, t, result}` envelopes, single-use."""

    def __init__(self, *, client_id: str = "tuya-client", secret: str = "tuya-secret", expire_time: int = 7200,
                 lifetime_key: str = "expire_time") -> None:
        super().__init__()
        self.client_id, self.secret = client_id, secret
        self.expire_time, self.lifetime_key = expire_time, lifetime_key
        self.codes: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.token_calls: list[str] = []
        self.fail_code: int | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.route("GET", r"/v1\.0/token", self._get_token)
        self.route("GET", r"/v1\.0/token/([0-9a-f]+)", self._refresh)

    def issue_code(self) -> str:
        code = secrets.token_hex(16)
        self.codes.add(code)
        return code

    def _signature_ok(self, call: Call) -> bool:
        # Recomputed here from Tuya's signing recipe, independently of smartapp.oauth.tuya.
        headers = call.headers
        if headers.get("client_id") != self.client_id or headers.get("sign_method") != "HMAC-SHA256":
            return False
        path, _, query = call.path.partition("?")
        pairs = sorted(parse_qsl(query, keep_blank_values=True))
        url = path + ("?" + "&".join(f"{k}={v}" for k, v in pairs) if pairs else "")
        message = "GET\n" + hashlib.sha256(b"").hexdigest() + "\n\n" + url
        text = self.client_id + headers.get("t", "") + headers.get("nonce", "") + message
        expected = hmac.new(self.secret.encode(), text.encode(), hashlib.sha256).hexdigest().upper()
        return hmac.compare_digest(expected, headers.get("sign", ""))

    def _envelope_error(self, code: int, msg: str) -> Reply:
        return Reply(200, {"success": False, "code": code, "msg": msg, "t": 1_700_000_000_000})

    def _result(self) -> Reply:
        n = next(self._ids)
        refresh = secrets.token_hex(16)
        self.refresh_tokens.add(refresh)
        return Reply(200, {"success": True, "t": 1_700_000_000_000, "result": {
            "access_token": secrets.token_hex(16), "refresh_token": refresh, "uid": f"ay{n:06d}",
            self.lifetime_key: self.expire_time}})

    def _get_token(self, call: Call, match) -> Reply:
        if not self._signature_ok(call):
            return self._envelope_error(1004, "sign invalid")
        params = dict(parse_qsl(urlsplit(call.path).query))
        with self._lock:
            self.token_calls.append("code")
            if self.fail_code:
                return self._envelope_error(self.fail_code, "injected")
            if params.get("grant_type") != "2" or params.get("code") not in self.codes:
                return self._envelope_error(1107, "code invalid")
            self.codes.discard(params["code"])
            return self._result()

    def _refresh(self, call: Call, match) -> Reply:
        if not self._signature_ok(call):
            return self._envelope_error(1004, "sign invalid")
        with self._lock:
            self.token_calls.append("refresh")
            if self.fail_code:
                return self._envelope_error(self.fail_code, "injected")
            token = match.group(1)
            if token not in self.refresh_tokens:
                return self._envelope_error(1012, "token status is invalid")
            self.refresh_tokens.discard(token)
            return self._result()
