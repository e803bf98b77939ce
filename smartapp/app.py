"""The application factory: configuration becomes objects here and nowhere else."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

from flask import Flask

from smartapp import logs, webhook
from smartapp.keys import KeyResolver, load_public_key
from smartapp.errors import StoreUnavailable
from smartapp.settings import ConfigError, Settings
from smartapp.signature import Verifier
from smartapp.smartthings import SmartThingsClient
from smartapp.services import Services
from smartapp.store import open_store
from smartapp.store.cipher import TokenCipher, load_or_create_key_file

log = logging.getLogger(__name__)


def build_settings(config: Mapping[str, Any] | None) -> Settings:
    """Environment (and `.env`) first, then the caller's overrides, named as environment variables."""
    environ = dict(os.environ)
    environ.update({name: str(value) for name, value in (config or {}).items()})
    return Settings.from_env(environ)


def build_cipher(settings: Settings) -> TokenCipher:
    if settings.token_keys:
        return TokenCipher.from_env_value(settings.token_keys)
    # Development on the embedded store: a key generated once and kept beside the database file.
    return TokenCipher.from_env_value(load_or_create_key_file(settings.key_file_path))


def create_app(config: Mapping[str, Any] | None = None, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the service. `config` overrides environment variables by name; `clock` is injectable for tests."""
    settings = build_settings(config)
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    logs.configure(settings.log_format)

    store = open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path,
                       cipher=build_cipher(settings), clock=clock)
    try:
        # Keys that cannot read this store must stop the start, not quietly make every token unreadable.
        store.verify_keys()
    except StoreUnavailable:
        log.warning("store_unreachable_at_start", extra={"store": store.describe()})
    configured_key = load_public_key(settings.public_key_text()) if settings.public_key else None
    resolver = KeyResolver(key_server=settings.key_server, configured_key=configured_key, clock=clock)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["smartapp"] = Services(
        store=store,
        smartthings=SmartThingsClient(api_url=settings.api_url),
        settings=settings,
        clock=clock,
    )
    app.extensions["smartapp.verifier"] = Verifier(
        resolve_key=resolver.resolve, public_path=settings.public_path, clock=clock,
    )
    webhook.register(app, settings)
    log.info("smartapp_started", extra={"store": store.describe(), "publicPath": settings.public_path})
    return app
