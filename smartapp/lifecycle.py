"""A lifecycle request as a typed value: its wire name, ids and payload, validated before any side effect."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from smartapp.errors import MalformedRequest, UnsupportedLifecycle

# Wire name -> the request payload key(s); sources disagree on OAUTH_CALLBACK's casing, so both are read.
PAYLOAD_KEYS: dict[str, tuple[str, ...]] = {
    "PING": ("pingData",),
    "CONFIRMATION": ("confirmationData",),
    "CONFIGURATION": ("configurationData",),
    "INSTALL": ("installData",),
    "UPDATE": ("updateData",),
    "UNINSTALL": ("uninstallData",),
    "EVENT": ("eventData",),
    "OAUTH_CALLBACK": ("oauthCallbackData", "oAuthCallbackData"),
    "EXECUTE": ("executeData",),
}

# Wire name -> the response envelope key; CONFIRMATION answers a bare object.
ENVELOPE_KEYS: dict[str, str | None] = {
    "PING": "pingData",
    "CONFIRMATION": None,
    "CONFIGURATION": "configurationData",
    "INSTALL": "installData",
    "UPDATE": "updateData",
    "UNINSTALL": "uninstallData",
    "EVENT": "eventData",
    "OAUTH_CALLBACK": "oAuthCallbackData",
    "EXECUTE": "executeData",
}

_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_MAX_ID_LENGTH = 128


@dataclass(frozen=True)
class Lifecycle:
    name: str
    data: Mapping[str, Any]
    execution_id: str | None = None
    locale: str | None = None
    app_id: str | None = None
    installed_app_id: str | None = None
    settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class InstalledApp:
    installed_app_id: str
    location_id: str | None
    config: dict
    permissions: list


def lifecycle_name(document: Any) -> str | None:
    """The dispatch key: `lifecycle` for SmartApps, `messageType` for API-access apps."""
    if not isinstance(document, dict):
        return None
    name = document.get("lifecycle", document.get("messageType"))
    return name if isinstance(name, str) else None


def parse(document: Any) -> Lifecycle:
    """Validate the envelope and return a Lifecycle; unknown names and wrong shapes raise 400s."""
    if not isinstance(document, dict):
        raise MalformedRequest("malformed_request", "body is not an object")
    name = lifecycle_name(document)
    if name not in PAYLOAD_KEYS:
        raise UnsupportedLifecycle(detail=f"lifecycle {name!r}"[:80])
    data = None
    for key in PAYLOAD_KEYS[name]:
        if key in document:
            data = document[key]
            break
    if not isinstance(data, dict):
        raise MalformedRequest("malformed_request", f"{name} without its payload object")
    installed_app_id = _installed_app_id(data)
    settings = document.get("settings") or {}
    if not isinstance(settings, dict):
        raise MalformedRequest("malformed_request", "settings is not an object")
    return Lifecycle(
        name=name,
        data=data,
        execution_id=optional_str(document, "executionId"),
        locale=optional_str(document, "locale"),
        app_id=optional_str(document, "appId"),
        installed_app_id=installed_app_id,
        settings=settings,
    )


def _installed_app_id(data: Mapping[str, Any]) -> str | None:
    """The installation this request is about, wherever its payload keeps it, validated as a UUID."""
    candidate = data.get("installedAppId")
    if candidate is None and isinstance(data.get("installedApp"), dict):
        candidate = data["installedApp"].get("installedAppId")
    if candidate is None:
        return None
    return validate_installed_app_id(candidate)


def validate_installed_app_id(value: Any) -> str:
    # Store keys are built from this id, so nothing but a UUID may pass (no `*`, `..`, CR/LF, braces).
    if not isinstance(value, str) or not _UUID.match(value):
        raise MalformedRequest("malformed_request", "installedAppId is not a UUID")
    return value.lower()


def optional_str(mapping: Mapping[str, Any], key: str) -> str | None:
    value = mapping.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > 4096:
        raise MalformedRequest("malformed_request", f"{key} is not a string")
    return value


def require_str(mapping: Mapping[str, Any], key: str) -> str:
    value = optional_str(mapping, key)
    if not value:
        raise MalformedRequest("malformed_request", f"{key} is missing")
    return value


def require_dict(mapping: Mapping[str, Any], key: str) -> dict:
    value = mapping.get(key)
    if not isinstance(value, dict):
        raise MalformedRequest("malformed_request", f"{key} is not an object")
    return value


def installed_app(data: Mapping[str, Any], *, require_config: bool = True) -> InstalledApp:
    """The `installedApp` object of INSTALL/UPDATE/UNINSTALL/EVENT/EXECUTE payloads."""
    app = require_dict(data, "installedApp")
    config = app.get("config", None if require_config else {})
    if not isinstance(config, dict):
        raise MalformedRequest("malformed_request", "installedApp.config is not an object")
    permissions = app.get("permissions", [])
    if not isinstance(permissions, list) or not all(isinstance(p, str) for p in permissions):
        raise MalformedRequest("malformed_request", "installedApp.permissions is not a list of strings")
    return InstalledApp(
        installed_app_id=validate_installed_app_id(app.get("installedAppId")),
        location_id=optional_str(app, "locationId"),
        config=config,
        permissions=permissions,
    )


def config_entries(config: Mapping[str, Any], setting_id: str) -> list[dict]:
    """A ConfigMap entry list; tolerates quirks such as permissions nested inside config (pysmartapp fixture)."""
    entries = config.get(setting_id)
    if not isinstance(entries, list):
        return []
    return [entry for entry in entries if isinstance(entry, dict)]


def device_ids(config: Mapping[str, Any], setting_id: str) -> list[tuple[str, str]]:
    """(deviceId, componentId) for each DEVICE entry of one setting."""
    found = []
    for entry in config_entries(config, setting_id):
        device = entry.get("deviceConfig")
        if entry.get("valueType") != "DEVICE" or not isinstance(device, dict):
            continue
        device_id, component = device.get("deviceId"), device.get("componentId") or "main"
        if isinstance(device_id, str) and isinstance(component, str) and len(device_id) <= _MAX_ID_LENGTH:
            found.append((device_id, component))
    return found
