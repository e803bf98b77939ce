"""What a token endpoint handed out (SmartThings or a provider), validated before anything is stored (RFC 6749 §5.1)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from smartapp.errors import ProviderRejected

# Tokens go into Authorization headers and URL paths later: printable ASCII without spaces only, so a
# hostile value ("\r\nX-Injected: 1") can never split a header.
_TOKEN = re.compile(r"[\x21-\x7e]{1,4096}\Z")
_ERROR_CODE = re.compile(r"[A-Za-z0-9_.-]{1,64}\Z")
_MAX_LIFETIME = 400 * 24 * 3600


@dataclass(frozen=True)
class Grant:
    access_token: str = field(repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    expires_in: float | None = None    # seconds from the request; None: the provider gave no lifetime
    scope: str | None = None
    user_id: str | None = None         # the account at the provider, when it says (Tuya uid)


def is_token(value: Any) -> bool:
    return isinstance(value, str) and bool(_TOKEN.match(value))


def error_code(value: Any) -> str:
    """An OAuth `error` value fit for a log line; anything odd becomes `invalid_error_code`."""
    return value if isinstance(value, str) and _ERROR_CODE.match(value) else "invalid_error_code"


def lifetime(value: Any) -> float | None:
    """A positive lifetime in seconds from a number or a string of digits; nonsense is no lifetime."""
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(min(value, _MAX_LIFETIME))


def grant_from_token_response(body: Any, *, initial: bool) -> Grant:
    """A Grant from a standard JSON token response, or ProviderRejected naming what was wrong."""
    if not isinstance(body, Mapping):
        raise ProviderRejected("invalid_token_response", "token response is not a JSON object")
    if "error" in body:
        raise ProviderRejected(error_code(body.get("error")))
    access_token, refresh_token = body.get("access_token"), body.get("refresh_token")
    if not is_token(access_token):
        raise ProviderRejected("invalid_token_response", "access_token missing or not a token")
    token_type = body.get("token_type")
    if not isinstance(token_type, str) or token_type.lower() != "bearer":
        raise ProviderRejected("invalid_token_response", "token_type is not bearer")
    if refresh_token is not None and not is_token(refresh_token):
        raise ProviderRejected("invalid_token_response", "refresh_token is not a token")
    expires_in = lifetime(body.get("expires_in"))
    if initial and expires_in is not None and refresh_token is None:
        # A token that dies in hours with no way to renew it is a link that silently breaks: refuse it now.
        raise ProviderRejected("invalid_token_response", "expiring access token without a refresh_token")
    scope = body.get("scope")
    return Grant(access_token=access_token, refresh_token=refresh_token, expires_in=expires_in,
                 scope=scope[:1024] if isinstance(scope, str) else None)
