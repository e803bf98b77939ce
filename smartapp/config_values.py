"""Typed reads of an installation's settings (a SmartThings ConfigMap): devices, numbers, strings, times."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, time as time_of_day
from collections.abc import Mapping
from typing import Any, overload

_MAX_ID_LENGTH = 128


class ConfigValueError(ValueError):
    """A setting holds a value of the wrong type (text in a NUMBER setting, say); names the setting, not the value."""

    reason = "config_value_invalid"

    def __init__(self, setting_id: str, expected: str) -> None:
        self.setting_id = setting_id
        self.expected = expected
        super().__init__(f"setting {setting_id!r} does not hold {expected}")


@dataclass(frozen=True)
class DeviceRef:
    """One chosen device (and component) of a DEVICE setting."""

    device_id: str
    component_id: str = "main"


class DeviceList(tuple[DeviceRef, ...]):
    """The devices of one DEVICE setting; remembers the setting so a subscription can name it."""

    setting_id: str | None

    def __new__(cls, devices: Any = (), setting_id: str | None = None) -> "DeviceList":
        made = super().__new__(cls, devices)
        made.setting_id = setting_id
        return made

    @property
    def ids(self) -> list[str]:
        return [device.device_id for device in self]


def _entries(config: Mapping[str, Any], setting_id: str) -> list[dict]:
    # Tolerates quirks such as `permissions` nested inside config (a published fixture does that).
    entries = config.get(setting_id)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


class ConfigValues:
    """Read-only typed accessors over a ConfigMap; a missing setting gives the default, a wrong type raises."""

    def __init__(self, config: Mapping[str, Any] | None) -> None:
        self.raw: Mapping[str, Any] = config if isinstance(config, Mapping) else {}

    def __contains__(self, setting_id: object) -> bool:
        return isinstance(setting_id, str) and bool(_entries(self.raw, setting_id))

    def devices(self, setting_id: str) -> DeviceList:
        found = []
        for entry in _entries(self.raw, setting_id):
            device = entry.get("deviceConfig")
            if entry.get("valueType") != "DEVICE" or not isinstance(device, dict):
                continue
            device_id, component = device.get("deviceId"), device.get("componentId") or "main"
            if isinstance(device_id, str) and isinstance(component, str) and len(device_id) <= _MAX_ID_LENGTH:
                found.append(DeviceRef(device_id, component))
        return DeviceList(found, setting_id)

    def strings(self, setting_id: str) -> list[str]:
        """Every string value of a setting (ENUM with `multiple`, say)."""
        values = []
        for entry in _entries(self.raw, setting_id):
            payload = entry.get("stringConfig")
            if isinstance(payload, dict) and isinstance(payload.get("value"), str):
                values.append(payload["value"])
        return values

    @overload
    def string(self, setting_id: str) -> str | None: ...

    @overload
    def string(self, setting_id: str, default: str) -> str: ...

    def string(self, setting_id: str, default: str | None = None) -> str | None:
        values = self.strings(setting_id)
        return values[0] if values else default

    @overload
    def number(self, setting_id: str) -> float | None: ...

    @overload
    def number(self, setting_id: str, default: float) -> float: ...

    def number(self, setting_id: str, default: float | None = None) -> float | None:
        """A NUMBER or DECIMAL setting (`default` when it is not set); whole numbers come back as int."""
        text = self.string(setting_id)
        if text is None:
            return default
        try:
            value = float(text.strip())
        except ValueError:
            raise ConfigValueError(setting_id, "a number") from None
        if not math.isfinite(value):
            raise ConfigValueError(setting_id, "a finite number")
        return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value

    def boolean(self, setting_id: str, default: bool = False) -> bool:
        text = self.string(setting_id)
        if text is None:
            return default
        lowered = text.strip().lower()
        if lowered not in ("true", "false"):
            raise ConfigValueError(setting_id, "true or false")
        return lowered == "true"

    def datetime(self, setting_id: str) -> datetime | None:
        """A TIME setting: SmartThings sends an ISO date-time string; its time of day is what the user chose."""
        text = self.string(setting_id)
        if text is None:
            return None
        try:
            return datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise ConfigValueError(setting_id, "an ISO date-time") from None

    def time(self, setting_id: str) -> time_of_day | None:
        """The time of day of a TIME setting (hour and minute as the user picked them)."""
        moment = self.datetime(setting_id)
        return None if moment is None else moment.timetz().replace(second=0, microsecond=0)

    def mode_ids(self, setting_id: str) -> list[str]:
        return self._ids(setting_id, "MODE", "modeConfig", "modeId")

    def scene_ids(self, setting_id: str) -> list[str]:
        return self._ids(setting_id, "SCENE", "sceneConfig", "sceneId")

    def _ids(self, setting_id: str, value_type: str, payload_key: str, id_key: str) -> list[str]:
        found = []
        for entry in _entries(self.raw, setting_id):
            payload = entry.get(payload_key)
            if entry.get("valueType") == value_type and isinstance(payload, dict) \
                    and isinstance(payload.get(id_key), str):
                found.append(payload[id_key])
        return found
