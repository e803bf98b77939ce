"""The fake SmartThings API's installed apps: their subscriptions (40 at most) and schedules, per installation."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable

from smartapp.fakes.loopback import Call, LoopbackServer, Reply
from smartapp.fakes.replies import FakePart, error_reply, segments

# SmartThings answers the 41st subscription of an installed app with 422 LimitError.
SUBSCRIPTION_LIMIT = 40

# The key of each sourceType's payload, and the fields the fake insists on (what SmartThings rejects without).
_SOURCES: dict[str, tuple[str, tuple[str, ...]]] = {
    "DEVICE": ("device", ("deviceId", "capability", "attribute")),
    "CAPABILITY": ("capability", ("locationId", "capability", "attribute")),
    "MODE": ("mode", ("locationId",)),
    "DEVICE_LIFECYCLE": ("deviceLifecycle", ()),
    "DEVICE_HEALTH": ("deviceHealth", ()),
    "SECURITY_ARM_STATE": ("securityArmState", ("locationId",)),
    "HUB_HEALTH": ("hubHealth", ("locationId",)),
    "SCENE_LIFECYCLE": ("sceneLifecycle", ("locationId",)),
}


def _json(call: Call) -> Any:
    try:
        return call.json()
    except ValueError:
        return None


def _subscription_payload(body: Any) -> dict[str, Any] | None:
    """The payload of a well-formed subscription body, or None."""
    if not isinstance(body, dict) or body.get("sourceType") not in _SOURCES:
        return None
    key, required = _SOURCES[body["sourceType"]]
    payload = body.get(key)
    if not isinstance(payload, dict) or not isinstance(payload.get("subscriptionName"), str):
        return None
    if not all(isinstance(payload.get(field), str) and payload[field] for field in required):
        return None
    if key in ("deviceLifecycle", "deviceHealth") and not (
            isinstance(payload.get("locationId"), str) or isinstance(payload.get("deviceIds"), list)):
        return None
    return payload


def _valid_schedule(body: Any) -> bool:
    if not isinstance(body, dict) or not isinstance(body.get("name"), str) or not body["name"]:
        return False
    once, cron = body.get("once"), body.get("cron")
    if (once is None) == (cron is None):
        return False
    if once is not None:
        return isinstance(once, dict) and isinstance(once.get("time"), int) and not isinstance(once["time"], bool)
    return isinstance(cron, dict) and all(isinstance(cron.get(key), str) and cron[key]
                                          for key in ("expression", "timezone"))


class FakeInstalledApps(FakePart):
    """Subscriptions and schedules by installedAppId, in creation order; installed apps made known by `add`."""

    def __init__(self, server: LoopbackServer, lock: threading.Lock, *, page_size: Callable[[], int]) -> None:
        super().__init__(server, lock, page_size=page_size)
        self.installed_apps: dict[str, dict[str, Any]] = {}
        self.subscriptions: dict[str, dict[str, dict[str, Any]]] = {}
        self.schedules: dict[str, dict[str, dict[str, Any]]] = {}
        self.subscription_limit = SUBSCRIPTION_LIMIT
        self._ids = itertools.count(1)
        base = r"/installedapps/([^/]+)"
        server.route("GET", base, self._get)
        server.route("POST", base + "/subscriptions", self._subscribe)
        server.route("GET", base + "/subscriptions", self._list_subscriptions)
        server.route("DELETE", base + "/subscriptions", self._delete_subscriptions)
        server.route("DELETE", base + "/subscriptions/([^/]+)", self._delete_subscription)
        server.route("POST", base + "/schedules", self._schedule)
        server.route("GET", base + "/schedules", self._list_schedules)
        server.route("GET", base + "/schedules/([^/]+)", self._get_schedule)
        server.route("DELETE", base + "/schedules", self._delete_schedules)
        server.route("DELETE", base + "/schedules/([^/]+)", self._delete_schedule)

    def add(self, installed_app_id: str, *, location_id: str) -> dict[str, Any]:
        with self._lock:
            self.installed_apps[installed_app_id] = {
                "installedAppId": installed_app_id, "locationId": location_id, "installedAppType": "WEBHOOK_SMART_APP",
                "installedAppStatus": "AUTHORIZED"}
            return self.installed_apps[installed_app_id]

    def subscriptions_of(self, installed_app_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(body) for body in self.subscriptions.get(installed_app_id, {}).values()]

    def schedules_of(self, installed_app_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(body) for body in self.schedules.get(installed_app_id, {}).values()]

    def _get(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            found = self.installed_apps.get(*segments(match))
        return Reply(200, found) if found else error_reply(404, "NotFoundError", "no such installed app")

    def _subscribe(self, call: Call, match: re.Match) -> Reply:
        (installed_app_id,) = segments(match)
        body = _json(call)
        payload = _subscription_payload(body)
        if payload is None:
            return error_reply(422, "ConstraintViolationError", "not a well-formed subscription")
        with self._lock:
            existing = self.subscriptions.setdefault(installed_app_id, {})
            if payload["subscriptionName"] in existing:
                return error_reply(409, "ConflictError", "a subscription of that name exists")
            if len(existing) >= self.subscription_limit:
                return error_reply(422, "LimitError", f"limit of {self.subscription_limit} subscriptions reached")
            stored = {"id": f"subscription-{next(self._ids)}", "installedAppId": installed_app_id, **body}
            existing[payload["subscriptionName"]] = stored
        return Reply(200, stored)

    def _list_subscriptions(self, call: Call, match: re.Match) -> Reply:
        return self.paged(call, self.subscriptions_of(*segments(match)))

    def _delete_subscriptions(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            removed = self.subscriptions.pop(segments(match)[0], {})
        return Reply(200, {"count": len(removed)})

    def _delete_subscription(self, call: Call, match: re.Match) -> Reply:
        installed_app_id, name_or_id = segments(match)
        with self._lock:
            existing = self.subscriptions.get(installed_app_id, {})
            for name, body in list(existing.items()):
                if name_or_id in (name, body["id"]):
                    del existing[name]
                    return Reply(200, {"count": 1})
        return error_reply(404, "NotFoundError", "no such subscription")

    def _schedule(self, call: Call, match: re.Match) -> Reply:
        """A once-schedule with `overwrite` replaces one of its name; any other duplicate name is a 409."""
        (installed_app_id,) = segments(match)
        body = _json(call)
        if not _valid_schedule(body):
            return error_reply(422, "ConstraintViolationError", "not a well-formed schedule")
        with self._lock:
            existing = self.schedules.setdefault(installed_app_id, {})
            overwrite = isinstance(body.get("once"), dict) and body["once"].get("overwrite") is True
            if body["name"] in existing and not overwrite:
                return error_reply(409, "ConflictError", "a schedule of that name exists")
            existing.pop(body["name"], None)
            stored = {"installedAppId": installed_app_id, **body}
            existing[body["name"]] = stored
        return Reply(200, stored)

    def _list_schedules(self, call: Call, match: re.Match) -> Reply:
        return self.paged(call, self.schedules_of(*segments(match)))

    def _get_schedule(self, call: Call, match: re.Match) -> Reply:
        installed_app_id, name = segments(match)
        with self._lock:
            found = self.schedules.get(installed_app_id, {}).get(name)
        return Reply(200, found) if found else error_reply(404, "NotFoundError", "no such schedule")

    def _delete_schedules(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            self.schedules.pop(segments(match)[0], None)
        return Reply(200, {})

    def _delete_schedule(self, call: Call, match: re.Match) -> Reply:
        installed_app_id, name = segments(match)
        with self._lock:
            removed = self.schedules.get(installed_app_id, {}).pop(name, None)
        return Reply(200, {}) if removed else error_reply(404, "NotFoundError", "no such schedule")
