"""The OAUTH_CALLBACK `urlPath`, parsed strictly: the provider's redirect parameters or a reason code."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from smartapp.errors import OAuthLinkError
from smartapp.grant import error_code

MAX_URL_PATH = 4096
_SINGLE = ("code", "state", "error", "iss")
# RFC 6749 Appendix A: code is VSCHAR. A '%' left after one decoding means double encoding: refused.
_CODE = re.compile(r"[\x21-\x24\x26-\x7e]{1,2048}\Z")


@dataclass(frozen=True)
class CallbackParams:
    state: str | None
    code: str | None = field(default=None, repr=False)
    error: str | None = None
    iss: str | None = None


def parse_url_path(url_path: str) -> CallbackParams:
    """`code=..&state=..`, `?code=..` or `/oauth/callback?code=..`; ambiguity (a parameter twice) is an error."""
    if len(url_path) > MAX_URL_PATH:
        raise OAuthLinkError("oauth_callback_ambiguous", "urlPath too long")
    query = url_path.split("?", 1)[1] if "?" in url_path else url_path
    query = query.split("#", 1)[0]
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64,
                          errors="strict")
    except (ValueError, UnicodeDecodeError):
        raise OAuthLinkError("oauth_callback_ambiguous", "urlPath does not parse") from None
    values: dict[str, str] = {}
    for name, value in pairs:
        if name in _SINGLE:
            if name in values:
                raise OAuthLinkError("oauth_callback_ambiguous", f"{name} given twice")
            values[name] = value
    code = values.get("code")
    if code is not None and not _CODE.match(code):
        raise OAuthLinkError("oauth_callback_ambiguous", "code is not a plain code")
    error = values.get("error")
    return CallbackParams(
        state=values.get("state") or None,
        code=code or None,
        error=error_code(error) if error else None,
        iss=values.get("iss") or None,
    )
