"""INSTALL: store the installation's tokens and config, then subscribe to the chosen devices."""

from __future__ import annotations

from smartapp import automation
from smartapp.lifecycle import Lifecycle, installed_app, require_str
from smartapp.services import Context, Services

# SmartThings access tokens last about 24 h; refresh a little early rather than a little late.
ACCESS_TOKEN_LIFETIME = 24 * 3600 - 300


def save(lifecycle: Lifecycle, services: Services) -> tuple[str, str, dict]:
    """Validate the payload fully, then write it in one field-level merge (provider tokens untouched)."""
    auth_token = require_str(lifecycle.data, "authToken")
    refresh_token = require_str(lifecycle.data, "refreshToken")
    app = installed_app(lifecycle.data)
    now = services.clock()
    services.store.update(app.installed_app_id, {
        "location_id": app.location_id,
        "locale": lifecycle.locale,
        "config": app.config,
        "permissions": app.permissions,
        "auth_token": auth_token,
        "refresh_token": refresh_token,
        "auth_token_expires_at": now + ACCESS_TOKEN_LIFETIME,
        "refresh_token_issued_at": now,
        "reauth_required": None,
    })
    return app.installed_app_id, auth_token, app.config


def subscribe(installed_app_id: str, auth_token: str, config: dict, services: Services, context: Context) -> None:
    for body in automation.subscriptions(config):
        services.smartthings.create_subscription(installed_app_id, auth_token, body, deadline=context.deadline)


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    installed_app_id, auth_token, config = save(lifecycle, services)
    subscribe(installed_app_id, auth_token, config, services, context)
    return {}
