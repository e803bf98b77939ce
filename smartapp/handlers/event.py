"""EVENT: route each event of the batch by eventType (DEVICE_EVENT further by subscription name)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from smartapp import automation
from smartapp.errors import MalformedRequest, StoreUnavailable
from smartapp.lifecycle import Lifecycle, installed_app
from smartapp.services import Context, Services

log = logging.getLogger(__name__)

EventHandler = Callable[[Mapping[str, Any], "EventScope"], None]


class EventScope:
    """What an event handler may use. The EVENT's own ~5-minute token lives here and is never stored."""

    def __init__(self, *, installed_app_id: str, auth_token: str | None, services: Services, context: Context) -> None:
        self.installed_app_id = installed_app_id
        self.auth_token = auth_token
        self.services = services
        self.context = context


def _on_device_event(event: Mapping[str, Any], scope: EventScope) -> None:
    name = event.get("subscriptionName")
    # Subscriptions are named `<handler>_<n>`, one per device: route by the handler part.
    prefix = name.split("_", 1)[0] if isinstance(name, str) else None
    handler = DEVICE_EVENT_HANDLERS.get(prefix)
    if handler is None:
        log.warning("event_skipped", extra={"reason": "unknown_subscription", "installedAppId": scope.installed_app_id,
                                            "subscriptionName": str(name)[:64]})
        return
    handler(event, scope)


def _on_installed_app_deleted(event: Mapping[str, Any], scope: EventScope) -> None:
    # API-access apps learn of their uninstall through this event instead of UNINSTALL.
    if event.get("lifecycle") == "DELETE":
        scope.services.store.delete(scope.installed_app_id)


def _record(event: Mapping[str, Any], scope: EventScope) -> None:
    log.info("event_received", extra={"installedAppId": scope.installed_app_id, "eventId": str(event.get("eventId"))[:64]})


DEVICE_EVENT_HANDLERS: dict[str, EventHandler] = {
    "switchHandler": lambda event, scope: automation.on_switch(event, installed_app_id=scope.installed_app_id),
}

# eventType -> (payload key, handler). Types this app does not subscribe to are still acknowledged.
EVENT_HANDLERS: dict[str, tuple[str, EventHandler]] = {
    "DEVICE_EVENT": ("deviceEvent", _on_device_event),
    "TIMER_EVENT": ("timerEvent", _record),
    "MODE_EVENT": ("modeEvent", _record),
    "DEVICE_COMMANDS_EVENT": ("deviceCommandsEvent", _record),
    "DEVICE_LIFECYCLE_EVENT": ("deviceLifecycleEvent", _record),
    "DEVICE_HEALTH_EVENT": ("deviceHealthEvent", _record),
    "HUB_HEALTH_EVENT": ("hubHealthEvent", _record),
    "SECURITY_ARM_STATE_EVENT": ("securityArmStateEvent", _record),
    "SCENE_LIFECYCLE_EVENT": ("sceneLifecycleEvent", _record),
    "INSTALLED_APP_LIFECYCLE_EVENT": ("installedAppLifecycleEvent", _on_installed_app_deleted),
}


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    app = installed_app(lifecycle.data, require_config=False)
    events = lifecycle.data.get("events")
    token = lifecycle.data.get("authToken")
    if not isinstance(events, list) or (token is not None and not isinstance(token, str)):
        raise MalformedRequest("malformed_request", "eventData.events is not a list")
    scope = EventScope(installed_app_id=app.installed_app_id, auth_token=token, services=services, context=context)
    for event in events:
        event_type = event.get("eventType") if isinstance(event, dict) else None
        route = EVENT_HANDLERS.get(event_type) if isinstance(event_type, str) else None
        if route is None:
            log.warning("event_skipped", extra={"reason": "unknown_event_type", "installedAppId": app.installed_app_id,
                                                "eventType": str(event_type)[:64]})
            continue
        payload_key, handler = route
        payload = event.get(payload_key)
        if not isinstance(payload, dict):
            log.warning("event_skipped", extra={"reason": "missing_event_payload", "installedAppId": app.installed_app_id,
                                                "eventType": event_type})
            continue
        try:
            handler(payload, scope)
        except StoreUnavailable:
            raise  # 503: SmartThings delivers again, instead of us dropping the event's effect
        except Exception:  # noqa: BLE001 - one failing handler must not fail the batch
            # SmartThings disables subscriptions whose deliveries keep failing, so answer 200 anyway.
            log.exception("event_handler_failed", extra={"reason": "event_handler_failed",
                                                         "installedAppId": app.installed_app_id, "eventType": event_type})
    return {}
