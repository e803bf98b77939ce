"""INSTALL: store the installation's tokens and config, then run the app's `installed` hook with its token."""

from __future__ import annotations

from smartapp.app_calls import call_strictly
from smartapp.context import Context, LifecycleToken
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, installed_app, require_str

# SmartThings access tokens last about 24 h; refresh a little early rather than a little late.
ACCESS_TOKEN_LIFETIME = 24 * 3600 - 300


def save(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> Context:
    """Validate the payload fully, write it in one field-level merge (provider tokens untouched), and
    return the context the app's hook runs in (acting with the lifecycle's own token)."""
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
    return Context(services=services, installed_app_id=app.installed_app_id, location_id=app.location_id,
                   locale=lifecycle.locale, config=app.config, permissions=app.permissions,
                   deadline=request.deadline, tokens=LifecycleToken(auth_token))


def run_hook(context: Context, services: Services, *, first: str) -> None:
    """The app's `installed` or `updated` hook (`first`), falling back to the other one, then its state."""
    app = services.app
    hooks = {"installed": app.installed_hook, "updated": app.updated_hook}
    hook = hooks[first] or hooks["updated" if first == "installed" else "installed"]
    if hook is not None:
        call_strictly(hook, context, installed_app_id=context.installed_app_id, what=first)
    context.save()


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    run_hook(save(lifecycle, services, request), services, first="installed")
    return {}
