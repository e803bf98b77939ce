"""The token store's interfaces, the Installation record and the factory that picks Redis or SQLite."""

from __future__ import annotations

import json
import logging
import math
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields as dataclass_fields
from typing import Any, Protocol

from smartapp.store.cipher import CorruptRecord, TokenCipher

log = logging.getLogger(__name__)

SECRET_FIELDS = frozenset({"auth_token", "refresh_token", "provider_access_token", "provider_refresh_token"})


@dataclass(frozen=True)
class Installation:
    installed_app_id: str
    version: int = 0                       # bumped by every successful update; used for compare-and-set
    location_id: str | None = None
    locale: str | None = None
    config: dict = field(default_factory=dict)       # SmartThings ConfigMap as received
    permissions: list = field(default_factory=list)
    auth_token: str | None = None          # SmartThings access token (encrypted at rest)
    refresh_token: str | None = None       # SmartThings refresh token (encrypted at rest)
    auth_token_expires_at: float | None = None
    refresh_token_issued_at: float | None = None
    provider: str | None = None
    provider_access_token: str | None = None
    provider_refresh_token: str | None = None
    provider_token_expires_at: float | None = None
    provider_refresh_token_issued_at: float | None = None
    provider_scope: str | None = None
    reauth_required: str | None = None     # reason code when a refresh token proved dead
    created_at: float | None = None
    updated_at: float | None = None


class TokenStore(Protocol):
    def get(self, installed_app_id: str) -> Installation | None: ...

    def update(self, installed_app_id: str, fields: Mapping[str, Any], *,
               expected_version: int | None = None) -> int:
        """Field-level merge/upsert (None clears a field); VersionConflict if expected_version is stale."""
        ...

    def delete(self, installed_app_id: str) -> None: ...

    def installed_app_ids(self) -> Iterator[str]: ...

    def ping(self) -> None: ...


class LinkStore(Protocol):
    """One pending third-party account link per installation (OAuth state + PKCE verifier)."""

    def issue(self, installed_app_id: str, data: Mapping[str, Any], *, ttl_seconds: float) -> None: ...

    def consume(self, installed_app_id: str) -> dict | None: ...


class ReplayGuard(Protocol):
    def claim(self, marker: str, *, ttl_seconds: float) -> bool: ...

    def release_marker(self, marker: str) -> None: ...  # undo a claim so a legitimate retry is processed


class RefreshLock(Protocol):
    """Cross-process, cross-host per-installation lease that expires if its holder dies."""

    def acquire(self, installed_app_id: str, *, ttl_seconds: float, wait_seconds: float) -> str | None: ...

    def release_lock(self, installed_app_id: str, owner: str) -> None: ...  # compare-and-delete


class Store(TokenStore, LinkStore, ReplayGuard, RefreshLock, Protocol):
    name: str  # "redis" or "sqlite"

    def describe(self) -> str:
        """For the startup banner; never contains a password."""
        ...

    def verify_keys(self) -> None:
        """CorruptRecord if the keys cannot read what this store already holds (startup/doctor check)."""
        ...

    def rotate_keys(self) -> int:
        """Re-encrypts every stored secret under the first key; returns how many installations changed."""
        ...

    def close(self) -> None: ...


def open_store(*, redis_url: str | None, sqlite_path: str, cipher: TokenCipher,
               clock: Callable[[], float] = time.time) -> Store:
    """Redis when a URL is configured, the embedded SQLite file otherwise; never one in place of the other."""
    if redis_url is not None:
        if not redis_url.strip():
            # An empty REDIS_URL is a mistake, not a request for SQLite: say so instead of guessing.
            raise ValueError("REDIS_URL is set but empty")
        from smartapp.store.redis_store import RedisStore, make_redis_client

        return RedisStore(make_redis_client(redis_url), cipher, clock=clock)
    from smartapp.store.sqlite_store import SqliteStore

    return SqliteStore(sqlite_path, cipher, clock=clock)


# --- the record codec both backends share -------------------------------------------------------

# Fields the store maintains itself; update() refuses them so a caller cannot fake history.
MANAGED_FIELDS = frozenset({"installed_app_id", "version", "created_at", "updated_at"})
WRITABLE_FIELDS = frozenset(f.name for f in dataclass_fields(Installation)) - MANAGED_FIELDS
_TIME_FIELDS = frozenset({"auth_token_expires_at", "refresh_token_issued_at",
                          "provider_token_expires_at", "provider_refresh_token_issued_at"})
_STRUCTURED_FIELDS = frozenset({"config", "permissions"})
_STRING_FIELDS = WRITABLE_FIELDS - _TIME_FIELDS - _STRUCTURED_FIELDS

# Ids go into key names (inside a Redis hash tag) and SCAN patterns: no braces, glob characters,
# whitespace or control characters. lifecycle.py already insists on a UUID; this is the backstop.
_SAFE_ID = re.compile(r"[^\s{}*?\[\]\\\x00-\x1f\x7f]{1,200}\Z")
_SAFE_MARKER = re.compile(r"[A-Za-z0-9:_-]{1,200}\Z")


def check_installed_app_id(installed_app_id: str) -> str:
    if not isinstance(installed_app_id, str) or not _SAFE_ID.match(installed_app_id):
        raise ValueError("installed_app_id is empty or holds characters not allowed in a store key")
    return installed_app_id


def check_marker(marker: str) -> str:
    # Markers are digests; this also refuses a raw base64 signature handed in by mistake.
    if not isinstance(marker, str) or not _SAFE_MARKER.match(marker):
        raise ValueError("replay marker must be a digest (letters, digits, ':', '_', '-')")
    return marker


def encode_fields(cipher: TokenCipher, installed_app_id: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Validates an update and returns its stored form: secrets as Fernet tokens, None for a clear.

    Everything is checked before anything is written, so a bad update changes nothing.
    """
    unknown = set(fields) - WRITABLE_FIELDS
    if unknown:
        raise ValueError(f"not installation fields (or managed by the store): {', '.join(sorted(unknown))}")
    stored: dict[str, Any] = {}
    for name, value in fields.items():
        if value is None:
            stored[name] = None
        elif name in SECRET_FIELDS:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            stored[name] = cipher.encrypt(installed_app_id, name, value)
        elif name in _STRING_FIELDS:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string")
            stored[name] = value
        elif name in _TIME_FIELDS:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number of seconds")
            stored[name] = float(value)
        elif name == "config":
            if not isinstance(value, Mapping):
                raise ValueError("config must be a mapping")
            stored[name] = dict(value)
        else:  # permissions
            if not isinstance(value, (list, tuple)):
                raise ValueError("permissions must be a list")
            stored[name] = list(value)
    return stored


def decode_installation(cipher: TokenCipher, installed_app_id: str, values: Mapping[str, Any], *,
                        version: int, created_at: float | None, updated_at: float | None) -> Installation:
    """Builds the record from stored values; a secret that fails its check is dropped, loudly."""
    kwargs: dict[str, Any] = {}
    for name, value in values.items():
        if name not in WRITABLE_FIELDS or value is None:
            continue  # fields from a newer schema (or bookkeeping) are not ours to interpret
        if name in SECRET_FIELDS:
            try:
                value = cipher.decrypt(installed_app_id, name, value)
            except CorruptRecord as error:
                # Never hand out a token that is not provably this installation's; treat it as absent
                # so INSTALL/UPDATE can write a fresh one, and alert. No token text reaches the log.
                log.error("corrupt_record", extra={"reason": error.reason, "installedAppId": installed_app_id,
                                                   "field": name, "detail": error.detail})
                continue
        kwargs[name] = value
    return Installation(installed_app_id=installed_app_id, version=version,
                        created_at=created_at, updated_at=updated_at, **kwargs)


def encode_link(cipher: TokenCipher, installed_app_id: str, data: Mapping[str, Any]) -> str:
    # A pending link holds the PKCE verifier, a secret, so it is sealed like the tokens.
    return cipher.encrypt(installed_app_id, "link", json.dumps(dict(data), separators=(",", ":")))


def decode_link(cipher: TokenCipher, installed_app_id: str, token: str | bytes) -> dict | None:
    """The pending link, or None (logged) when it fails its check: the user simply links again."""
    try:
        return json.loads(cipher.decrypt(installed_app_id, "link", token))
    except CorruptRecord as error:
        log.error("corrupt_record", extra={"reason": error.reason, "installedAppId": installed_app_id,
                                           "field": "link", "detail": error.detail})
        return None


def rotate_secrets(cipher: TokenCipher, installed_app_id: str, stored: Mapping[str, Any]) -> dict[str, str]:
    """The stored secrets re-encrypted under the first key; corrupt ones are left alone (and reported)."""
    rotated: dict[str, str] = {}
    for name in sorted(SECRET_FIELDS & stored.keys()):
        token = stored[name]
        if token is None:
            continue
        try:
            cipher.decrypt(installed_app_id, name, token)  # never re-seal a blob copied from elsewhere
            rotated[name] = cipher.rotate(token)
        except CorruptRecord as error:
            log.error("corrupt_record", extra={"reason": error.reason, "installedAppId": installed_app_id,
                                               "field": name, "detail": error.detail})
    return rotated


KEYCHECK_ID = ""          # the key-check record belongs to no installation
KEYCHECK_KIND = "keycheck"
KEYCHECK_VALUE = "smartapp-keycheck-v1"

__all__ = [
    "SECRET_FIELDS", "Installation", "TokenStore", "LinkStore", "ReplayGuard", "RefreshLock", "Store",
    "open_store", "TokenCipher", "CorruptRecord",
]
