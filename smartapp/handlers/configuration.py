"""CONFIGURATION: INITIALIZE describes the app, PAGE returns the page the user fills in."""

from __future__ import annotations

from smartapp import automation
from smartapp.errors import MalformedRequest
from smartapp.lifecycle import Lifecycle, optional_str
from smartapp.oauth import link
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    phase = optional_str(lifecycle.data, "phase")
    if phase == "INITIALIZE":
        return {"initialize": automation.initialize(app_id=services.settings.app_id)}
    if phase == "PAGE":
        # An empty pageId means the first page (NodeSDK does the same); this app has one page.
        page_id = optional_str(lifecycle.data, "pageId") or automation.FIRST_PAGE_ID
        return {"page": automation.page(page_id, extra_settings=_account_settings(lifecycle, services))}
    raise MalformedRequest("unsupported_phase", f"phase {phase!r}"[:60])


def _account_settings(lifecycle: Lifecycle, services: Services) -> list[dict]:
    """The OAUTH setting when a provider is configured; serving it records (or reuses) the pending link."""
    if services.oauth is None or lifecycle.installed_app_id is None:
        return []
    config = services.oauth.config
    pending = link.prepare(services.store, config, lifecycle.installed_app_id, clock=services.clock)
    return [link.setting(config, pending, lifecycle.installed_app_id)]
