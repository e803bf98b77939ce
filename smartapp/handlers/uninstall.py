"""UNINSTALL: forget everything stored for the installation (SmartThings removes its subscriptions)."""

from __future__ import annotations

from smartapp.lifecycle import Lifecycle, installed_app
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    app = installed_app(lifecycle.data, require_config=False)
    services.store.delete(app.installed_app_id)
    return {}
