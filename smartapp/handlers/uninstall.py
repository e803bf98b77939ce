"""UNINSTALL: run the app's `uninstalled` hook, then forget everything stored for the installation."""

from __future__ import annotations

from smartapp.app_calls import call_leniently
from smartapp.context import Context
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, installed_app


def forget(context: Context, services: Services) -> None:
    """The hook may read state or the linked account one last time; its failure never keeps the data."""
    hook = services.app.uninstalled_hook
    if hook is not None:
        call_leniently(hook, context, installed_app_id=context.installed_app_id, what="uninstalled")
    services.store.delete(context.installed_app_id)


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    app = installed_app(lifecycle.data, require_config=False)
    # No token: SmartThings has removed the app's subscriptions and schedules itself.
    context = Context(services=services, installed_app_id=app.installed_app_id, location_id=app.location_id,
                      locale=lifecycle.locale, config=app.config, permissions=app.permissions,
                      deadline=request.deadline, tokens=None)
    forget(context, services)
    return {}
