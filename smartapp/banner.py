"""The startup banner: what this instance is, which store it uses, and the warnings worth seeing at start."""

from __future__ import annotations

import logging
from typing import Mapping

from smartapp.ephemeral import ephemeral_disk_reason
from smartapp.settings import Settings

log = logging.getLogger("smartapp.app")


def startup_fields(settings: Settings, *, store_description: str, dev_key_id: str | None) -> dict[str, object]:
    """One line's worth of facts; nothing in it is secret (the store description carries no password)."""
    signatures = f"verified; ST_PADLOCK keys from {settings.key_server}"
    if settings.public_key:
        signatures += "; legacy pasted key for /SmartThings/ keyIds"
    if dev_key_id:
        signatures += f"; development key {dev_key_id}"
    return {
        "kind": "webhook SmartApp (WEBHOOK_SMART_APP)",
        "store": store_description,
        "appId": settings.app_id or "not set",
        "targetUrl": settings.public_url or f"derived from each request, path {settings.public_path}",
        "signatures": signatures,
        "oauthProvider": settings.oauth_provider or "none",
        "devMode": settings.dev_mode,
    }


def startup_warnings(settings: Settings, environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """(reason code, message) pairs for conditions that work now but lose data or trust later."""
    warnings = []
    if settings.store_kind == "sqlite":
        reason = ephemeral_disk_reason(settings.db_path, environ)
        if reason:
            warnings.append(("embedded_store_on_ephemeral_disk",
                             f"tokens in the embedded store would be lost: {reason}. Put SMARTAPP_DB_PATH on "
                             "a persistent volume, or set REDIS_URL"))
    if settings.dev_mode:
        warnings.append(("development_mode",
                         "development mode: requests signed with the local development key are trusted "
                         "(smartapp simulate); never run this in production"))
    return warnings


def announce(settings: Settings, environ: Mapping[str, str], *, store_description: str,
             dev_key_id: str | None) -> None:
    log.info("smartapp_started", extra=startup_fields(settings, store_description=store_description,
                                                       dev_key_id=dev_key_id))
    for reason, message in startup_warnings(settings, environ):
        log.warning(message, extra={"reason": reason})
