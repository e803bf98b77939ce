"""How an Installation is stored: field validation, encryption of secrets, and decoding back."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Mapping
from dataclasses import fields as dataclass_fields
from typing import Any

from smartapp.store.cipher import CorruptRecord, TokenCipher
from smartapp.store.installation import SECRET_FIELDS, Installation

log = logging.getLogger(__name__)

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

