"""The fake SmartThings API's devices: descriptions, settable status, and every command received."""

from __future__ import annotations

import itertools
import re
import threading
from typing import Any, Callable, Iterable

from smartapp.fakes.loopback import Call, LoopbackServer, Reply
from smartapp.fakes.replies import FakePart, error_reply, segments

# SmartThings takes at most this many commands in one request.
MAX_COMMANDS_PER_REQUEST = 10


def _valid_command(command: Any) -> bool:
    return (isinstance(command, dict) and all(isinstance(command.get(key), str) and command[key]
                                              for key in ("component", "capability", "command"))
            and isinstance(command.get("arguments", []), list))


class FakeDevices(FakePart):
    """Devices known to the fake; commands to any device id are accepted and recorded, reads need a known one."""

    def __init__(self, server: LoopbackServer, lock: threading.Lock, *, page_size: Callable[[], int]) -> None:
        super().__init__(server, lock, page_size=page_size)
        self.devices: dict[str, dict[str, Any]] = {}
        self.status: dict[str, dict[str, dict[str, dict[str, dict[str, Any]]]]] = {}
        self.commands: dict[str, list[dict[str, Any]]] = {}
        self._command_ids = itertools.count(1)
        server.route("GET", r"/devices", self._list)
        server.route("GET", r"/devices/([^/]+)", self._get)
        server.route("GET", r"/devices/([^/]+)/status", self._status)
        server.route("GET", r"/devices/([^/]+)/components/([^/]+)/status", self._component_status)
        server.route("GET", r"/devices/([^/]+)/components/([^/]+)/capabilities/([^/]+)/status",
                     self._capability_status)
        server.route("POST", r"/devices/([^/]+)/commands", self._commands)

    def add(self, device_id: str, *, label: str | None = None, capabilities: Iterable[str] = ("switch",),
            location_id: str | None = None, component: str = "main") -> dict[str, Any]:
        """Make a device known (or add a component to it); its status starts empty."""
        with self._lock:
            device = self.devices.setdefault(device_id, {
                "deviceId": device_id, "name": label or device_id, "label": label or device_id,
                "locationId": location_id, "components": []})
            device["components"].append({"id": component, "capabilities": [{"id": name, "version": 1}
                                                                           for name in capabilities]})
            self.status.setdefault(device_id, {}).setdefault(component, {})
            return device

    def set_status(self, device_id: str, capability: str, attribute: str, value: Any, *, component: str = "main",
                   unit: str | None = None) -> None:
        """Set one attribute's value, as the device would report it; the device is made known if it is not."""
        if device_id not in self.devices:
            self.add(device_id, capabilities=(capability,), component=component)
        with self._lock:
            state: dict[str, Any] = {"value": value}
            if unit is not None:
                state["unit"] = unit
            self.status[device_id].setdefault(component, {}).setdefault(capability, {})[attribute] = state

    def commands_for(self, device_id: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(command) for command in self.commands.get(device_id, [])]

    def _list(self, call: Call, match: re.Match) -> Reply:
        wanted = set(call.query.get("capability", []))
        with self._lock:
            found = [device for device in self.devices.values() if not wanted or wanted & {
                capability["id"] for component in device["components"] for capability in component["capabilities"]}]
        return self.paged(call, found)

    def _get(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            device = self.devices.get(*segments(match))
        return Reply(200, device) if device else error_reply(404, "NotFoundError", "no such device")

    def _status(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            status = self.status.get(*segments(match))
            return Reply(200, {"components": status}) if status is not None else self._not_found()

    def _component_status(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            device_id, component_id = segments(match)
            component = self.status.get(device_id, {}).get(component_id)
            return Reply(200, component) if component is not None else self._not_found()

    def _capability_status(self, call: Call, match: re.Match) -> Reply:
        with self._lock:
            device_id, component_id, capability_id = segments(match)
            capability = self.status.get(device_id, {}).get(component_id, {}).get(capability_id)
            return Reply(200, capability) if capability is not None else self._not_found()

    def _commands(self, call: Call, match: re.Match) -> Reply:
        try:
            commands = call.json().get("commands")
        except (ValueError, AttributeError):
            commands = None
        if not isinstance(commands, list) or not commands or not all(map(_valid_command, commands)):
            return error_reply(422, "ConstraintViolationError", "commands: a list of component/capability/command")
        if len(commands) > MAX_COMMANDS_PER_REQUEST:
            return error_reply(422, "ConstraintViolationError", "too many commands in one request")
        (device_id,) = segments(match)
        with self._lock:
            self.commands.setdefault(device_id, []).extend(
                {"arguments": [], **command} for command in commands)
            results = [{"id": f"command-{next(self._command_ids)}", "status": "ACCEPTED"} for _ in commands]
        return Reply(200, {"results": results})

    @staticmethod
    def _not_found() -> Reply:
        return error_reply(404, "NotFoundError", "no such device, component or capability")
