"""Settings become the long-lived services (cipher, store, clients, token keeper) here, for the service and tools."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

from smartapp.app_loader import check as check_app, load_app
from smartapp.application import SmartApp
from smartapp.devapi import SimulatorAwareSession
from smartapp.errors import StoreUnavailable
from smartapp.oauth import build_provider
from smartapp.services import Services
from smartapp.settings import Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import open_store
from smartapp.store.cipher import TokenCipher, load_or_create_key_file
from smartapp.tokens import build_keeper

log = logging.getLogger(__name__)


def merged_environment(config: Mapping[str, Any] | None) -> dict[str, str]:
    """The process environment with the caller's overrides, named as environment variables, on top."""
    return {**os.environ, **{name: str(value) for name, value in (config or {}).items()}}


def build_cipher(settings: Settings) -> TokenCipher:
    if settings.token_keys:
        return TokenCipher.from_env_value(settings.token_keys)
    # Development on the embedded store: a key generated once and kept beside the database file.
    return TokenCipher.from_env_value(load_or_create_key_file(settings.key_file_path))


def build_services(settings: Settings, *, app: SmartApp | None = None,
                   clock: Callable[[], float] = time.time) -> Services:
    """Everything a request or a proactive call needs; `settings` must already be free of problems."""
    provider = build_provider(settings)  # ConfigError names a missing client id, URL or region
    if app is not None:
        check_app(app)
    smartapp = app if app is not None else load_app(settings.app)
    store = open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path,
                       cipher=build_cipher(settings), clock=clock, redis_options=settings.redis_options())
    try:
        # Keys that cannot read this store must stop the start, not quietly make every token unreadable.
        store.verify_keys()
    except StoreUnavailable as error:
        log.warning("store_unreachable_at_start", extra={"store": store.describe(), "detail": error.detail})
    smartthings = SmartThingsClient(api_url=settings.api_url,
                                    session=SimulatorAwareSession() if settings.dev_mode else None)
    return Services(
        store=store,
        smartthings=smartthings,
        settings=settings,
        clock=clock,
        app=smartapp,
        oauth=provider,
        tokens=build_keeper(store=store, smartthings=smartthings, settings=settings, provider=provider, clock=clock),
    )
