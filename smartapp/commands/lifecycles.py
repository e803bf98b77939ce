"""The lifecycle bodies `smartapp simulate` sends, shaped like SmartThings' own, for one made-up installation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from smartapp import automation
from smartapp.devapi import SIMULATED_TOKEN_PREFIX

# The order a real installation meets them in: OAUTH_CALLBACK happens during configuration, before INSTALL.
STEPS = ("PING", "CONFIRMATION", "CONFIGURATION/INITIALIZE", "CONFIGURATION/PAGE", "OAUTH_CALLBACK",
         "INSTALL", "UPDATE", "EVENT", "UNINSTALL")


def _uuid() -> str:
    return str(uuid.uuid4())


def _token(kind: str) -> str:
    # The prefix tells a development-mode instance to answer its SmartThings API calls locally.
    return f"{SIMULATED_TOKEN_PREFIX}{kind}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Installation:
    """One simulated installation: its ids and the device the user "picked"."""

    installed_app_id: str = field(default_factory=_uuid)
    location_id: str = field(default_factory=_uuid)
    app_id: str = field(default_factory=_uuid)
    device_id: str = field(default_factory=_uuid)

    def config(self) -> dict:
        setting = automation.DEVICE_SETTINGS[0]
        return {setting.id: [{"valueType": "DEVICE",
                              "deviceConfig": {"deviceId": self.device_id, "componentId": "main"}}]}

    def installed_app(self) -> dict:
        permissions = [f"{p}:devices:{self.device_id}" for p in automation.DEVICE_SETTINGS[0].permissions]
        return {"installedAppId": self.installed_app_id, "locationId": self.location_id,
                "config": self.config(), "permissions": permissions}


def _envelope(lifecycle: str, key: str, data: dict, *, app_id: str) -> dict:
    return {"lifecycle": lifecycle, "executionId": _uuid(), "appId": app_id, "locale": "en", "version": "0.1.0",
            "client": {"os": "simulator", "version": "0.0.0", "language": "en-US"}, key: data, "settings": {}}


def body(step: str, sim: Installation) -> dict:
    """The request body for one of STEPS."""
    if step == "PING":
        return {"lifecycle": "PING", "executionId": _uuid(), "locale": "en", "version": "1.0.0",
                "pingData": {"challenge": _uuid()}}
    if step == "CONFIRMATION":
        # An unresolvable host (.invalid, RFC 2606): the instance logs the URL and never fetches it.
        url = f"https://confirmation.simulated.invalid/apps/{sim.app_id}/confirm-registration?token=simulated"
        return {"lifecycle": "CONFIRMATION", "executionId": _uuid(), "appId": sim.app_id, "locale": "en",
                "version": "1.0.0", "confirmationData": {"appId": sim.app_id, "confirmationUrl": url}}
    if step.startswith("CONFIGURATION/"):
        phase = step.split("/", 1)[1]
        data = {"installedAppId": sim.installed_app_id, "phase": phase, "pageId": "", "previousPageId": "",
                "config": {}}
        return _envelope("CONFIGURATION", "configurationData", data, app_id=sim.app_id)
    if step == "OAUTH_CALLBACK":
        data = {"installedAppId": sim.installed_app_id,
                "urlPath": f"?code=simulated-code&state={sim.installed_app_id}"}
        return _envelope("OAUTH_CALLBACK", "oAuthCallbackData", data, app_id=sim.app_id)
    if step in ("INSTALL", "UPDATE"):
        data = {"authToken": _token("auth"), "refreshToken": _token("refresh"), "installedApp": sim.installed_app()}
        return _envelope(step, step.lower() + "Data", data, app_id=sim.app_id)
    if step == "EVENT":
        setting = automation.DEVICE_SETTINGS[0]
        event = {"eventTime": "1970-01-01T00:00:00Z", "eventType": "DEVICE_EVENT", "deviceEvent": {
            "eventId": _uuid(), "locationId": sim.location_id, "deviceId": sim.device_id, "componentId": "main",
            "capability": setting.capability, "attribute": setting.attribute, "value": "on",
            "valueType": "string", "stateChange": True, "data": {}, "subscriptionName": f"{setting.handler}_0"}}
        data = {"authToken": _token("event"), "installedApp": sim.installed_app(), "events": [event]}
        return _envelope("EVENT", "eventData", data, app_id=sim.app_id)
    if step == "UNINSTALL":
        return _envelope("UNINSTALL", "uninstallData", {"installedApp": sim.installed_app()}, app_id=sim.app_id)
    raise ValueError(f"unknown step {step!r}")
