"""EVENT: route each event of the batch to the app (DEVICE_EVENT by subscription, TIMER_EVENT by schedule name)."""

from __future__ import annotations

import logging
from typing import Any, Mapping

from smartapp.app_calls import call_leniently
from smartapp.application import EventHandler, SmartApp
from smartapp.context import Context, LifecycleToken
from smartapp.errors import MalformedRequest
from smartapp.handlers.services import RequestInfo, Services
from smartapp.handlers.uninstall import forget
from smartapp.lifecycle import Lifecycle, installed_app

log = logging.getLogger(__name__)

# eventType -> the key of its payload object.
PAYLOAD_KEYS: dict[str, str] = {
    "DEVICE_EVENT": "deviceEvent",
    "TIMER_EVENT": "timerEvent",
    "MODE_EVENT": "modeEvent",
    "DEVICE_COMMANDS_EVENT": "deviceCommandsEvent",
    "DEVICE_LIFECYCLE_EVENT": "deviceLifecycleEvent",
    "DEVICE_HEALTH_EVENT": "deviceHealthEvent",
    "HUB_HEALTH_EVENT": "hubHealthEvent",
    "SECURITY_ARM_STATE_EVENT": "securityArmStateEvent",
    "SCENE_LIFECYCLE_EVENT": "sceneLifecycleEvent",
    "INSTALLED_APP_LIFECYCLE_EVENT": "installedAppLifecycleEvent",
}


def _skip(reason: str, context: Context, **fields: Any) -> None:
    log.warning("event_skipped", extra={"reason": reason, "installedAppId": context.installed_app_id, **fields})


def device_event_handler(app: SmartApp, event: Mapping[str, Any], context: Context) -> EventHandler | None:
    """The handler of `<name>_<n>` (one subscription per device) or `<name>_<settingId>` (one subscription
    for a whole capability, standing in for a setting's devices: other devices' events are dropped)."""
    name = event.get("subscriptionName")
    prefix, _, suffix = name.partition("_") if isinstance(name, str) else ("", "", "")
    handler = app.subscription_handlers.get(prefix)
    if handler is None:
        _skip("unknown_subscription", context, subscriptionName=str(name)[:64])
        return None
    if suffix and not suffix.isdigit() and event.get("deviceId") not in context.config.devices(suffix).ids:
        return None  # a device the user did not choose, reported by a capability-wide subscription
    return handler


def route(app: SmartApp, event_type: str, payload: Mapping[str, Any], context: Context) -> EventHandler | None:
    if event_type == "DEVICE_EVENT":
        return device_event_handler(app, payload, context)
    if event_type == "TIMER_EVENT":
        handler = app.schedule_handlers.get(payload.get("name"))  # type: ignore[arg-type]
        if handler is None:
            _skip("unknown_schedule", context, scheduleName=str(payload.get("name"))[:64])
        return handler
    handler = app.event_handlers.get(event_type)
    if handler is None:
        _skip("no_handler", context, eventType=event_type)
    return handler


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    app = installed_app(lifecycle.data, require_config=False)
    events = lifecycle.data.get("events")
    token = lifecycle.data.get("authToken")
    if not isinstance(events, list) or (token is not None and not isinstance(token, str)):
        raise MalformedRequest("malformed_request", "eventData.events is not a list")
    # The EVENT's own ~5-minute token acts for this request only and is never stored. API-access apps'
    # events carry none: the stored token acts then.
    context = Context(services=services, installed_app_id=app.installed_app_id, location_id=app.location_id,
                      locale=lifecycle.locale, config=app.config, permissions=app.permissions,
                      deadline=request.deadline, tokens=LifecycleToken(token) if token else None)
    for event in events:
        event_type = event.get("eventType") if isinstance(event, dict) else None
        payload_key = PAYLOAD_KEYS.get(event_type) if isinstance(event_type, str) else None
        if payload_key is None:
            _skip("unknown_event_type", context, eventType=str(event_type)[:64])
            continue
        payload = event.get(payload_key)
        if not isinstance(payload, dict):
            _skip("missing_event_payload", context, eventType=event_type)
            continue
        if event_type == "INSTALLED_APP_LIFECYCLE_EVENT":
            # API-access apps learn of their uninstall through this event instead of UNINSTALL.
            if payload.get("lifecycle") == "DELETE":
                forget(context, services)
                return {}
            continue
        handler = route(services.app, event_type, payload, context)
        if handler is not None:
            call_leniently(handler, context, payload, installed_app_id=app.installed_app_id, what=event_type)
    context.save()
    return {}
