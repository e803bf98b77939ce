"""The application factory: configuration becomes objects here and nowhere else."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

from flask import Flask

from smartapp import banner, logs, webhook
from smartapp.application import SmartApp
from smartapp.devkey import dev_key_id, dev_key_path, load_or_create_dev_key, trusting_dev_key
from smartapp.keys import KeyResolver, load_public_key
from smartapp.settings import ConfigError, Settings
from smartapp.signature import Verifier
from smartapp.wiring import build_services, merged_environment


def create_app(config: Mapping[str, Any] | None = None, *, app: SmartApp | None = None,
               clock: Callable[[], float] = time.time) -> Flask:
    """Build the service around `app` (default: SMARTAPP_APP, else the bundled app).

    `config` overrides environment variables by name; `clock` is injectable for tests.
    """
    environ = merged_environment(config)
    settings = Settings.from_env(environ)
    problems = settings.problems()
    if problems:
        raise ConfigError(problems)
    logs.configure(settings.log_format)
    services = build_services(settings, app=app, clock=clock)
    configured_key = load_public_key(settings.public_key_text()) if settings.public_key else None
    resolver = KeyResolver(key_server=settings.key_server, configured_key=configured_key, clock=clock, share=services.store)
    resolve_key, trusted_dev_key_id = resolver.resolve, None
    if settings.dev_mode:
        # Reached only when settings.problems() found no production sign (see Settings.dev_mode_problems).
        dev_public_key = load_or_create_dev_key(dev_key_path(settings.db_path)).public_key()
        resolve_key = trusting_dev_key(resolver.resolve, dev_public_key)
        trusted_dev_key_id = dev_key_id(dev_public_key)
    flask_app = Flask(__name__)
    # Only the webhook reads bodies, and it enforces its own limit; this covers any route added later.
    flask_app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    flask_app.extensions["smartapp"] = services
    verifier = Verifier(resolve_key=resolve_key, public_path=settings.public_path, clock=clock)
    webhook.register(flask_app, webhook.Webhook(services, verifier))
    flask_app.wsgi_app = logs.RequestIds(flask_app.wsgi_app)  # type: ignore[method-assign]
    banner.announce(settings, environ, store_description=services.store.describe(), dev_key_id=trusted_dev_key_id)
    return flask_app
