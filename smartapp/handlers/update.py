"""UPDATE: store the new token pair and config, then rebuild the subscriptions from scratch."""

from __future__ import annotations

from smartapp.handlers import install
from smartapp.lifecycle import Lifecycle
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    installed_app_id, auth_token, config = install.save(lifecycle, services)
    # Delete first: re-creating a subscription name that still exists answers 409.
    services.smartthings.delete_subscriptions(installed_app_id, auth_token, deadline=context.deadline)
    install.subscribe(installed_app_id, auth_token, config, services, context)
    return {}
