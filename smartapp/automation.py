"""The default SmartApp: the user picks switches; we subscribe to them and record their changes."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Mapping

from smartapp.lifecycle import device_ids

log = logging.getLogger(__name__)

FIRST_PAGE_ID = "mainPage"


@dataclass(frozen=True)
class DeviceSetting:
    """A DEVICE setting on the page and the subscription each chosen device gets."""

    id: str
    name: str
    description: str
    capability: str
    attribute: str
    handler: str  # subscriptionName prefix; no underscore, because `_<n>` numbers the devices
    permissions: tuple[str, ...] = ("r",)


DEVICE_SETTINGS = (
    DeviceSetting(
        id="switches",
        name="Which switches?",
        description="Tap to choose the switches this app watches",
        capability="switch",
        attribute="switch",
        handler="switchHandler",
        permissions=("r", "x"),
    ),
)


def initialize(*, app_id: str | None) -> dict:
    """The INITIALIZE answer. `id` must be the real appId once extra permissions are asked for."""
    return {
        "id": app_id or "smartapp",
        "name": "SmartApp",
        "description": "Watches the switches you choose",
        "firstPageId": FIRST_PAGE_ID,
        "permissions": [],
        "disableCustomDisplayName": False,
        "disableRemoveApp": False,
    }


def page(page_id: str, *, extra_settings: list[dict] | None = None) -> dict:
    """The one configuration page: a section of device pickers, plus any extra settings (account link)."""
    settings: list[dict[str, Any]] = [
        {
            "id": setting.id,
            "name": setting.name,
            "description": setting.description,
            "type": "DEVICE",
            "required": False,
            "multiple": True,
            "capabilities": [setting.capability],
            "permissions": list(setting.permissions),
        }
        for setting in DEVICE_SETTINGS
    ]
    sections = [{"name": "Devices", "settings": settings}]
    if extra_settings:
        sections.insert(0, {"name": "Account", "settings": extra_settings})
    return {
        "pageId": FIRST_PAGE_ID,
        "name": "Choose devices",
        "nextPageId": None,
        "previousPageId": None,
        "complete": True,
        "sections": sections,
    }


def subscriptions(config: Mapping[str, Any]) -> list[dict]:
    """One DEVICE subscription per chosen device, named `<handler>_<n>` (there is no bulk form)."""
    bodies = []
    for setting in DEVICE_SETTINGS:
        for index, (device_id, component) in enumerate(device_ids(config, setting.id)):
            bodies.append({
                "sourceType": "DEVICE",
                "device": {
                    "deviceId": device_id,
                    "componentId": component,
                    "capability": setting.capability,
                    "attribute": setting.attribute,
                    "value": "*",
                    "stateChangeOnly": True,
                    "subscriptionName": f"{setting.handler}_{index}",
                },
            })
    return bodies


def on_switch(event: Mapping[str, Any], *, installed_app_id: str) -> None:
    """A watched switch changed: record it (ids and the new value only)."""
    log.info(
        "switch_changed",
        extra={"installedAppId": installed_app_id, "deviceId": event.get("deviceId"),
               "value": event.get("value") if isinstance(event.get("value"), str) else None},
    )
