"""`api.subscriptions`: what events SmartThings sends the app, kept within its 40 per installation."""

from __future__ import annotations

import logging
from typing import Any, Iterable, Sequence

from smartapp.api.caller import ApiCaller, segment
from smartapp.api.devices import Device, JsonObjects, device_refs
from smartapp.api.errors import ApiError
from smartapp.api.installation import Installation
from smartapp.config_values import DeviceRef

log = logging.getLogger(__name__)

Names = list[str]

# SmartThings refuses the 41st subscription of an installed app (422 LimitError).
MAX_SUBSCRIPTIONS = 40
# Granted, one CAPABILITY subscription can stand in for any number of DEVICE subscriptions.
ALL_DEVICES_READ = "r:devices:*"

# The key of each sourceType's payload in a subscription body.
_PAYLOAD_KEYS = {
    "DEVICE": "device", "CAPABILITY": "capability", "MODE": "mode", "DEVICE_LIFECYCLE": "deviceLifecycle",
    "DEVICE_HEALTH": "deviceHealth", "SECURITY_ARM_STATE": "securityArmState", "HUB_HEALTH": "hubHealth",
    "SCENE_LIFECYCLE": "sceneLifecycle",
}


def _handler_name(name: str) -> str:
    # DEVICE_EVENTs are routed by the text before the first '_', which numbers the devices of one name.
    if not isinstance(name, str) or not name:
        raise ValueError("a subscription name must be a non-empty string")
    if "_" in name:
        raise ValueError(f"subscription name {name!r} must not contain '_' (it separates the device number)")
    return name


def _plain_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a subscription name must be a non-empty string")
    return name


def _attribute_and_value(attribute: str, value: str) -> tuple[str, str]:
    # "switch.on" is shorthand for attribute "switch", value "on" (the SmartThings SDKs accept it too).
    if "." in attribute and value == "*":
        attribute, value = attribute.split(".", 1)
    return attribute, value


class Subscriptions:
    """Counts the subscriptions it created (from 0 after `delete_all`) and never asks for more than 40."""

    def __init__(self, caller: ApiCaller, installation: Installation) -> None:
        self._caller = caller
        self._installation = installation
        self._created: dict[str, str | None] = {}   # subscriptionName -> id (None when a 409 said it existed)
        self._next_number: dict[str, int] = {}

    @property
    def count(self) -> int:
        """Subscriptions this client created (or found existing) since it was made or last deleted all."""
        return len(self._created)

    def subscribe_to_devices(self, devices: Device | Iterable[Device], capability: str, attribute: str, name: str,
                             *, value: str = "*", state_change_only: bool = True,
                             modes: Sequence[str] | None = None) -> Names:
        """One DEVICE subscription per device, named `<name>_<n>`; the names made, in order.

        When the devices do not fit under the 40: with `r:devices:*` granted and the devices a DeviceList of
        one setting, one CAPABILITY subscription `<name>_<settingId>` covers the location instead (events of
        other devices arrive and are the dispatcher's to drop). Without that, the devices that fit are
        subscribed and the rest named in one WARNING line with reason `subscription_limit`.
        """
        _handler_name(name)
        refs = device_refs(devices)
        attribute, value = _attribute_and_value(attribute, value)
        room = MAX_SUBSCRIPTIONS - self.count
        if len(refs) > room:
            setting_id = getattr(devices, "setting_id", None)
            if room >= 1 and setting_id and self._may_subscribe_by_capability():
                return [self._subscribe_capability(capability, attribute, f"{name}_{setting_id}", value=value,
                                                   state_change_only=state_change_only, modes=modes,
                                                   location_id=self._installation.known_location_id)]
            self._warn_left_out(name, refs[max(room, 0):])
            refs = refs[:max(room, 0)]
        return [self._subscribe_device(ref, capability, attribute, name, value=value,
                                       state_change_only=state_change_only, modes=modes) for ref in refs]

    def subscribe_to_capability(self, capability: str, attribute: str, name: str, *, value: str = "*",
                                state_change_only: bool = True, modes: Sequence[str] | None = None) -> str:
        """Every device of the location with `capability` (needs `r:devices:*`)."""
        attribute, value = _attribute_and_value(attribute, value)
        return self._subscribe_capability(capability, attribute, _handler_name(name), value=value,
                                          state_change_only=state_change_only, modes=modes,
                                          location_id=self._installation.location_id())

    def subscribe_to_modes(self, name: str) -> str:
        """The location's mode changes; they arrive as MODE_EVENTs at `@app.event("MODE_EVENT")` (event
        types other than device events are routed by type, not by this name)."""
        return self._create("MODE", {"locationId": self._installation.location_id(), "subscriptionName": name})

    def subscribe_to_device_health(self, name: str, devices: Iterable[Device] | None = None) -> str:
        """Devices going online/offline: those given, or every device of the location."""
        return self._create("DEVICE_HEALTH", self._location_or_devices(name, devices))

    def subscribe_to_device_lifecycle(self, name: str, devices: Iterable[Device] | None = None) -> str:
        """Devices created, deleted, renamed…: those given, or every device of the location."""
        return self._create("DEVICE_LIFECYCLE", self._location_or_devices(name, devices))

    def subscribe_to_security_arm_state(self, name: str) -> str:
        return self._create("SECURITY_ARM_STATE", {"locationId": self._installation.location_id(),
                                                   "subscriptionName": name})

    def subscribe_to_hub_health(self, name: str) -> str:
        return self._create("HUB_HEALTH", {"locationId": self._installation.location_id(), "subscriptionName": name})

    def subscribe_to_scene_lifecycle(self, name: str) -> str:
        return self._create("SCENE_LIFECYCLE", {"locationId": self._installation.location_id(),
                                                "subscriptionName": name})

    def list(self) -> JsonObjects:
        return self._caller.items(self._path)

    def delete(self, name_or_id: str) -> None:
        """Delete one subscription by name or id; one that is already gone is not an error."""
        self._caller.call("DELETE", f"{self._path}/{segment(name_or_id)}", accept=(404,))
        for name, subscription_id in list(self._created.items()):
            if name_or_id in (name, subscription_id):
                del self._created[name]

    def delete_all(self) -> None:
        self._caller.call("DELETE", self._path)
        self._created.clear()
        self._next_number.clear()

    @property
    def _path(self) -> str:
        return self._installation.path + "/subscriptions"

    def _may_subscribe_by_capability(self) -> bool:
        return ALL_DEVICES_READ in self._installation.permissions and bool(self._installation.known_location_id)

    def _subscribe_device(self, ref: DeviceRef, capability: str, attribute: str, name: str, *, value: str,
                          state_change_only: bool, modes: Sequence[str] | None) -> str:
        # Numbers continue across calls with one name, so two settings can share a handler without a clash.
        number = self._next_number.get(name, 0)
        self._next_number[name] = number + 1
        payload = {"deviceId": ref.device_id, "componentId": ref.component_id, "capability": capability,
                   "attribute": attribute, "value": value, "stateChangeOnly": state_change_only,
                   "subscriptionName": f"{name}_{number}"}
        return self._create("DEVICE", payload, modes=modes)

    def _subscribe_capability(self, capability: str, attribute: str, name: str, *, value: str,
                              state_change_only: bool, modes: Sequence[str] | None, location_id: str | None) -> str:
        payload = {"locationId": location_id, "capability": capability, "attribute": attribute, "value": value,
                   "stateChangeOnly": state_change_only, "subscriptionName": name}
        return self._create("CAPABILITY", payload, modes=modes)

    def _location_or_devices(self, name: str, devices: Iterable[Device] | None) -> dict[str, Any]:
        if devices is None:
            return {"locationId": self._installation.location_id(), "subscriptionName": name}
        return {"deviceIds": [ref.device_id for ref in device_refs(devices)], "subscriptionName": name}

    def _create(self, source_type: str, payload: dict[str, Any], *, modes: Sequence[str] | None = None) -> str:
        name = _plain_name(payload["subscriptionName"])
        if name not in self._created and self.count >= MAX_SUBSCRIPTIONS:
            raise ApiError("subscription_limit", method="POST", path=self._path,
                           why=f"not sent: {MAX_SUBSCRIPTIONS} subscriptions made already")
        if modes is not None:
            payload["modes"] = list(modes)
        # 409: a subscription of this name exists already (a retried INSTALL); it counts, and is not an error.
        answer = self._caller.call("POST", self._path, json={"sourceType": source_type,
                                                            _PAYLOAD_KEYS[source_type]: payload}, accept=(409,))
        subscription_id = answer.get("id") if isinstance(answer, dict) else None
        self._created[name] = subscription_id if isinstance(subscription_id, str) else None
        return name

    def _warn_left_out(self, name: str, left_out: Sequence[DeviceRef]) -> None:
        log.warning("subscription_limit", extra={
            "reason": "subscription_limit", "installedAppId": self._installation.installed_app_id,
            "subscriptionName": name, "limit": MAX_SUBSCRIPTIONS, "count": len(left_out),
            "deviceIds": [ref.device_id for ref in left_out],
        })
