"""CONFIGURATION: INITIALIZE describes the app, PAGE runs the app's page handler for the page asked for."""

from __future__ import annotations

import logging

from smartapp.app_calls import call_strictly
from smartapp.context import Context
from smartapp.errors import MalformedRequest
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, optional_str
from smartapp.oauth import link

log = logging.getLogger(__name__)


def initialize(services: Services) -> dict:
    """The INITIALIZE answer. `id` must be the real appId once extra permissions are asked for."""
    app = services.app
    return {
        "id": services.settings.app_id or "smartapp",
        "name": app.name,
        "description": app.description,
        "firstPageId": app.first_page_id,
        "permissions": app.initialize_permissions(),
        "disableCustomDisplayName": app.disable_custom_display_name,
        "disableRemoveApp": app.disable_remove_app,
    }


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    phase = optional_str(lifecycle.data, "phase")
    if phase == "INITIALIZE":
        return {"initialize": initialize(services)}
    if phase != "PAGE":
        raise MalformedRequest("unsupported_phase", f"phase {phase!r}"[:60])
    app = services.app
    # An empty pageId means the first page (NodeSDK does the same). So does one the app does not have:
    # the user gets a page to go on from instead of an error screen, and the log names the mistake.
    page_id = optional_str(lifecycle.data, "pageId") or app.first_page_id
    if page_id not in app.pages:
        log.warning("unknown_page", extra={"reason": "unknown_page", "installedAppId": lifecycle.installed_app_id,
                                           "pageId": page_id[:64]})
        page_id = app.first_page_id
    config = lifecycle.data.get("config")
    # CONFIGURATION carries no token: a page of an installation that exists acts with the stored one.
    context = Context.from_store_lazily(services=services, installed_app_id=lifecycle.installed_app_id,
                                        locale=lifecycle.locale, config=config if isinstance(config, dict) else {},
                                        deadline=request.deadline)
    page = call_strictly(app.render, page_id, context, installed_app_id=lifecycle.installed_app_id,
                         what=f"page {page_id}")
    answer = page.to_json(app.locales.translator(lifecycle.locale))
    if page_id == app.first_page_id:
        account = _account_setting(lifecycle, services)
        if account is not None:
            answer["sections"].insert(0, {"name": "Account", "settings": [account]})
    return {"page": answer}


def _account_setting(lifecycle: Lifecycle, services: Services) -> dict | None:
    """The OAUTH setting when a provider is configured; serving it records (or reuses) the pending link."""
    if services.oauth is None or lifecycle.installed_app_id is None:
        return None
    config = services.oauth.config
    pending = link.prepare(services.store, config, lifecycle.installed_app_id, clock=services.clock)
    return link.setting(config, pending, lifecycle.installed_app_id)
