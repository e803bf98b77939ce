"""UPDATE: store the new token pair and config, clear subscriptions and schedules, run the `updated` hook."""

from __future__ import annotations

from smartapp.handlers import install
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    context = install.save(lifecycle, services, request)
    # Delete first: re-creating a subscription name that still exists answers 409, and the new settings
    # may no longer want what the old ones scheduled.
    context.api.subscriptions.delete_all()
    context.api.schedules.delete_all()
    install.run_hook(context, services, first="updated")
    return {}
