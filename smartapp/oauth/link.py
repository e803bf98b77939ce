"""The pending account link a CONFIGURATION page records, and the OAUTH setting that starts it."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from smartapp.oauth.authorize import authorize_url
from smartapp.oauth.pkce import new_verifier
from smartapp.oauth.provider import ProviderConfig
from smartapp.store import LinkStore

log = logging.getLogger(__name__)

SETTING_ID = "account"
# The user opens the page, signs in and consents within this time; codes live ~10 min (RFC 6749 §4.1.2).
LINK_TTL_SECONDS = 600.0
# A page rendered again (SmartThings may render it several times during one install) keeps the pending
# link, and so its PKCE verifier, while this much time is left: replacing it would break a sign-in the
# user already started in the web view. A link closer to expiry is replaced so the user gets a full window.
REUSE_WHILE_SECONDS_LEFT = 300.0


@dataclass(frozen=True)
class PendingLink:
    """What the callback must match: recorded at page time, never taken from the callback (mix-up defence)."""

    provider: str
    redirect_uri: str
    issued_at: float
    expires_at: float
    region: str | None = None
    issuer: str | None = None           # expected RFC 9207 `iss`: exact, or None to compare origins
    authorize_origin: str = ""          # scheme://host[:port] of the authorize URL
    verifier: str | None = field(default=None, repr=False)

    @classmethod
    def from_record(cls, record: Mapping[str, Any] | None) -> "PendingLink | None":
        """None for anything that is not a well-formed link (an older format, a damaged record)."""
        if not isinstance(record, Mapping):
            return None
        try:
            link = cls(**{name: record[name] for name in cls.__dataclass_fields__ if name in record})
        except TypeError:
            return None
        strings_ok = all(isinstance(getattr(link, name), str) for name in ("provider", "redirect_uri"))
        numbers_ok = all(isinstance(getattr(link, name), (int, float)) for name in ("issued_at", "expires_at"))
        return link if strings_ok and numbers_ok else None

    def record(self) -> dict:
        return asdict(self)

    def matches(self, config: ProviderConfig) -> bool:
        expected = (config.name, config.region, config.redirect_uri, config.issuer, origin(config.authorize_url))
        return (self.provider, self.region, self.redirect_uri, self.issuer, self.authorize_origin) == expected \
            and (self.verifier is not None) == config.pkce


def origin(url: str) -> str:
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme.lower()}://{(parts.hostname or '').lower()}{port}"


def prepare(store: LinkStore, config: ProviderConfig, installed_app_id: str, *,
            clock: Callable[[], float]) -> PendingLink:
    """Reuse the unexpired pending link for this installation, or record a new one."""
    now = clock()
    current = PendingLink.from_record(store.pending(installed_app_id))
    if current is not None and current.matches(config) and current.expires_at - now >= REUSE_WHILE_SECONDS_LEFT:
        log.info("oauth_link_reused", extra={"reason": "oauth_link_reused", "installedAppId": installed_app_id,
                                             "provider": config.name})
        return current
    link = PendingLink(
        provider=config.name, redirect_uri=config.redirect_uri, issued_at=now, expires_at=now + LINK_TTL_SECONDS,
        region=config.region, issuer=config.issuer, authorize_origin=origin(config.authorize_url),
        verifier=new_verifier() if config.pkce else None,
    )
    store.issue(installed_app_id, link.record(), ttl_seconds=LINK_TTL_SECONDS)
    log.info("oauth_link_issued", extra={"reason": "oauth_link_issued", "installedAppId": installed_app_id,
                                         "provider": config.name})
    return link


def setting(config: ProviderConfig, link: PendingLink, installed_app_id: str) -> dict:
    """The OAUTH setting; `state` is the installedAppId because SmartThings routes the callback by it."""
    return {
        "id": SETTING_ID,
        "name": f"Link {config.title}",
        "description": "Tap to sign in and allow access",
        "type": "OAUTH",
        "required": True,
        "urlTemplate": authorize_url(config, state=installed_app_id, code_verifier=link.verifier),
    }
