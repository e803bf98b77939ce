"""The application factory: configuration becomes objects here and nowhere else."""

from __future__ import annotations

import logging
import os
import time
from typing import Any, Callable, Mapping

from flask import Flask

from smartapp import banner, logs, webhook
from smartapp.devapi import SimulatorAwareSession
from smartapp.devkey import dev_key_id, dev_key_path, load_or_create_dev_key, trusting_dev_key
from smartapp.keys import KeyResolver, load_public_key
from smartapp.oauth import build_provider
from smartapp.errors import StoreUnavailable
from smartapp.settings import ConfigError, Settings
from smartapp.signature import Verifier
from smartapp.smartthings import SmartThingsClient
from smartapp.services import Services
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


def create_app(config: Mapping[str, Any] | None = None, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the service. `config` overrides environment variables by name; `clock` is injectable for tests."""
    environ = merged_environment(config)
    settings = Settings.from_env(environ)
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    logs.configure(settings.log_format)
    provider = build_provider(settings)  # ConfigError names a missing client id, URL or region

    store = open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path,
                       cipher=build_cipher(settings), clock=clock)
    try:
        # Keys that cannot read this store must stop the start, not quietly make every token unreadable.
        store.verify_keys()
    except StoreUnavailable:
        log.warning("store_unreachable_at_start", extra={"store": store.describe()})
    configured_key = load_public_key(settings.public_key_text()) if settings.public_key else None
    resolver = KeyResolver(key_server=settings.key_server, configured_key=configured_key, clock=clock)
    resolve_key, trusted_dev_key_id = resolver.resolve, None
    if settings.dev_mode:
        # Reached only when settings.problems() found no production sign (see Settings.dev_mode_problems).
        dev_public_key = load_or_create_dev_key(dev_key_path(settings.db_path)).public_key()
        resolve_key = trusting_dev_key(resolver.resolve, dev_public_key)
        trusted_dev_key_id = dev_key_id(dev_public_key)
    app = Flask(__name__)
    # Only the webhook reads bodies, and it enforces its own limit; this covers any route added later.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    smartthings = SmartThingsClient(api_url=settings.api_url,
                                    session=SimulatorAwareSession() if settings.dev_mode else None)
    services = Services(
        store=store,
        smartthings=smartthings,
        settings=settings,
        clock=clock,
        oauth=provider,
        tokens=build_keeper(store=store, smartthings=smartthings, settings=settings, provider=provider, clock=clock),
    )
    app.extensions["smartapp"] = services
    verifier = Verifier(resolve_key=resolve_key, public_path=settings.public_path, clock=clock)
    webhook.register(app, webhook.Webhook(services, verifier))
    app.wsgi_app = logs.RequestIds(app.wsgi_app)  # type: ignore[method-assign]
    banner.announce(settings, environ, store_description=store.describe(), dev_key_id=trusted_dev_key_id)
    return app
