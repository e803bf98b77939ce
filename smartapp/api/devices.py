"""`api.devices`: list devices, read their status, send them commands."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Union

from smartapp.api.caller import ApiCaller, segment
from smartapp.api.errors import ApiError
from smartapp.config_values import DeviceRef

Device = Union[str, DeviceRef]
JsonObjects = list[dict[str, Any]]

# After one of these, the next device's call would fail the same way: stop instead of spending the budget.
_STOPS_EVERY_CALL = {"smartthings_unauthorized", "smartthings_rate_limited", "smartthings_unreachable",
                     "deadline_exceeded"}


def device_ref(device: Device) -> DeviceRef:
    """A DeviceRef from a DeviceRef or a device id (component `main`)."""
    if isinstance(device, DeviceRef):
        return device
    if isinstance(device, str) and device:
        return DeviceRef(device)
    raise TypeError("a device is a device id (str) or a DeviceRef")


def device_refs(devices: Device | Iterable[Device]) -> list[DeviceRef]:
    """One device, a DeviceList, or any iterable of ids and DeviceRefs, as a list of DeviceRef."""
    if isinstance(devices, (str, DeviceRef)):
        return [device_ref(devices)]
    return [device_ref(device) for device in devices]


def _command(command: Mapping[str, Any], component: str) -> dict[str, Any]:
    capability, name = command.get("capability"), command.get("command")
    arguments = command.get("arguments", [])
    if not isinstance(capability, str) or not capability or not isinstance(name, str) or not name:
        raise ValueError("a command needs a capability and a command name")
    if isinstance(arguments, (str, bytes)) or not isinstance(arguments, Sequence):
        raise ValueError("a command's arguments are a list")
    return {"component": command.get("component") or component, "capability": capability, "command": name,
            "arguments": list(arguments)}


class Devices:
    def __init__(self, caller: ApiCaller) -> None:
        self._caller = caller

    def list(self, capability: str | Sequence[str] | None = None) -> JsonObjects:
        """The devices this installation may see, optionally only those with `capability` (any of several)."""
        params = {"capability": capability} if capability else None
        return self._caller.items("/devices", params)

    def get(self, device_id: Device) -> dict[str, Any]:
        return self._caller.call_object("GET", self._path(device_id))

    def get_status(self, device_id: Device) -> dict[str, Any]:
        """Every component's status: {"components": {"main": {"switch": {"switch": {"value": "on"}}}}}."""
        return self._caller.call_object("GET", self._path(device_id) + "/status")

    def get_component_status(self, device_id: Device, component: str) -> dict[str, Any]:
        return self._caller.call_object("GET", f"{self._path(device_id)}/components/{segment(component)}/status")

    def get_capability_status(self, device_id: Device, component: str, capability: str) -> dict[str, Any]:
        """One capability's attributes: {"switch": {"value": "on", ...}}."""
        return self._caller.call_object(
            "GET", f"{self._path(device_id)}/components/{segment(component)}/capabilities/{segment(capability)}/status")

    def send_commands(self, device: Device, commands: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        """POST several commands to one device; a command without `component` goes to the DeviceRef's."""
        ref = device_ref(device)
        body = {"commands": [_command(command, ref.component_id) for command in commands]}
        return self._caller.call_object("POST", self._path(ref) + "/commands", json=body)

    def send_command(self, devices: Device | Iterable[Device], capability: str, command: str,
                     arguments: Sequence[Any] = (), component: str | None = None) -> JsonObjects:
        """One command to each device (one POST each, in order); the answers, one per device.

        A device that fails does not stop the others; the first failure is raised after all were tried.
        A failure that every further call would repeat (401, 429, no answer, no time left) stops at once.
        """
        answers, first_error = [], None
        for ref in device_refs(devices):
            entry = {"capability": capability, "command": command, "arguments": list(arguments),
                     "component": component or ref.component_id}
            try:
                answers.append(self.send_commands(ref, [entry]))
            except ApiError as error:
                if error.reason in _STOPS_EVERY_CALL:
                    raise
                first_error = first_error or error
        if first_error is not None:
            raise first_error
        return answers

    @staticmethod
    def _path(device: Device) -> str:
        return f"/devices/{segment(device_ref(device).device_id)}"
