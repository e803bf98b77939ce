"""One made-up installation of an app and the lifecycle bodies SmartThings would send it (`simulate`, AppHarness)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import requests

from smartapp.application import SmartApp
from smartapp.context import Context, LifecycleToken
from smartapp.deadline import Deadline
from smartapp.devapi import SIMULATED_TOKEN_PREFIX, SimulatorAwareSession
from smartapp.pages import Page, Setting
from smartapp.smartthings import SmartThingsClient

# The order a real installation meets them in: OAUTH_CALLBACK happens during configuration, before INSTALL.
STEPS = ("PING", "CONFIRMATION", "CONFIGURATION/INITIALIZE", "CONFIGURATION/PAGE", "OAUTH_CALLBACK",
         "INSTALL", "UPDATE", "EVENT", "UNINSTALL")
# A value a device of each capability plausibly reports, for an event whose value was not given.
TYPICAL_VALUES = {"switch": "on", "contactSensor": "open", "motionSensor": "active", "presenceSensor": "present",
                  "lock": "locked", "waterSensor": "wet", "button": "pushed"}


def _uuid() -> str:
    return str(uuid.uuid4())


def _token(kind: str) -> str:
    # The prefix tells a development-mode instance to answer its SmartThings API calls locally.
    return f"{SIMULATED_TOKEN_PREFIX}{kind}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class DeviceEvent:
    """A device event to send: which setting's device, and what it reports."""

    setting_id: str
    value: str


@dataclass
class Installation:
    """One simulated installation: its ids, the config its pages lead to, and what its hook subscribed to."""

    installed_app_id: str = field(default_factory=_uuid)
    location_id: str = field(default_factory=_uuid)
    app_id: str = field(default_factory=_uuid)
    config: dict = field(default_factory=dict)
    permissions: list = field(default_factory=list)
    subscriptions: list = field(default_factory=list)

    def installed_app(self) -> dict:
        return {"installedAppId": self.installed_app_id, "locationId": self.location_id,
                "config": self.config, "permissions": self.permissions}

    def subscription_for(self, setting_id: str | None) -> tuple[dict, str] | None:
        """The first DEVICE or CAPABILITY subscription covering a device of the setting (any, when None),
        with that device's id."""
        devices = [entry["deviceConfig"]["deviceId"] for entry in self.config.get(setting_id or "", [])
                   if entry.get("valueType") == "DEVICE"]
        for body in self.subscriptions:
            if body.get("sourceType") == "DEVICE":
                device_id = body["device"].get("deviceId")
                if setting_id is None or device_id in devices:
                    return body["device"], device_id
            if body.get("sourceType") == "CAPABILITY" and devices:
                return body["capability"], devices[0]
        return None


def _made_up_id(sim: Installation, *names: object) -> str:
    # Derived from the installation's id, so separate runs for one installation agree on its devices.
    return str(uuid.uuid5(uuid.UUID(sim.installed_app_id), "/".join(map(str, names))))


def _config_entry(sim: Installation, setting: Setting) -> tuple[list[dict], list[str]]:
    """Made-up values for one setting, and the device permissions they grant."""
    if setting.type == "DEVICE":
        ids = [_made_up_id(sim, setting.id, 0)]
        grants = [f"{p}:devices:{device_id}" for device_id in ids for p in (setting.permissions or ("r",))]
        return [{"valueType": "DEVICE", "deviceConfig": {"deviceId": d, "componentId": "main"}} for d in ids], grants
    if setting.type == "MODE":
        return [{"valueType": "MODE", "modeConfig": {"modeId": _made_up_id(sim, setting.id)}}], []
    if setting.type == "SCENE":
        scene = {"sceneId": _made_up_id(sim, setting.id), "permissions": ["r", "x"]}
        return [{"valueType": "SCENE", "sceneConfig": scene}], []
    value = setting.default
    if value is None and setting.type == "ENUM" and setting.options:
        value = setting.options[0][0]
    if value is None and setting.type == "BOOLEAN":
        value = "false"
    if value is None:
        return [], []
    return [{"valueType": "STRING", "stringConfig": {"value": value}}], []


def detached_context(sim: Installation, services: Any, *, first_install: bool = False) -> Context:
    """A context for running the app's code outside the service (no store; API calls as `services` allows).

    `first_install`: as a page sees a first install, with no location yet (pages that call the API when
    the installation exists take their first-install branch).
    """
    return Context(services=services, installed_app_id=sim.installed_app_id,
                   location_id=None if first_install else sim.location_id,
                   locale="en", config=sim.config, permissions=sim.permissions, deadline=Deadline.after(5.0),
                   tokens=LifecycleToken(_token("dry-run")))


def stand_in_services() -> Any:
    """What a detached context acts through: a SmartThings API that answers locally and records each call."""
    return SimpleNamespace(smartthings=SmartThingsClient(api_url="https://api.smartthings.invalid",
                                                         session=_RecordingSession()))


def page_settings(app: SmartApp, sim: Installation | None = None) -> tuple[list[Page], dict[str, Setting]]:
    """Every page of `app` as a first install renders it, and their settings by id."""
    sim = sim or Installation()
    context = detached_context(sim, stand_in_services(), first_install=True)
    pages = []
    for page_id in app.pages:
        try:
            pages.append(app.render(page_id, context))
        except Exception:  # noqa: BLE001 - a page that fails outside the service contributes nothing
            continue
    return pages, {setting.id: setting for page in pages for setting in page.settings}


def made_up(app: SmartApp, *, installed_app_id: str | None = None, app_id: str | None = None) -> Installation:
    """An installation as if a user had filled in every page of `app` (each DEVICE setting gets made-up
    devices), with the subscriptions the app's install hook makes for it, learnt by running the hook here
    against a recording stand-in of the SmartThings API."""
    sim = Installation(installed_app_id=installed_app_id or _uuid(), app_id=app_id or _uuid())
    sim.location_id = _made_up_id(sim, "location")
    for setting in page_settings(app, sim)[1].values():
        entries, grants = _config_entry(sim, setting)
        if entries:
            sim.config[setting.id] = entries
            sim.permissions.extend(grants)
    services = stand_in_services()
    hook = app.installed_hook or app.updated_hook
    if hook is not None:
        try:
            hook(detached_context(sim, services))
        except Exception:  # noqa: BLE001 - the real INSTALL will show the failure; no subscriptions are known
            pass
    sim.subscriptions = [body for method, path, body in services.smartthings.session.calls
                         if method == "POST" and path.endswith("/subscriptions") and isinstance(body, dict)]
    return sim


class _RecordingSession(SimulatorAwareSession):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, str, Any]] = []

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> requests.Response:
        self.calls.append((str(method).upper(), str(url), kwargs.get("json")))
        return super().request(method, url, *args, **kwargs)


def _envelope(lifecycle: str, key: str, data: dict, *, app_id: str) -> dict:
    return {"lifecycle": lifecycle, "executionId": _uuid(), "appId": app_id, "locale": "en", "version": "0.1.0",
            "client": {"os": "simulator", "version": "0.0.0", "language": "en-US"}, key: data, "settings": {}}


def device_event(sim: Installation, wanted: DeviceEvent | None) -> dict | None:
    """A DEVICE_EVENT for a subscribed device of the wanted setting (any, when None); None when none is."""
    found = sim.subscription_for(wanted.setting_id if wanted else None)
    if found is None:
        return None
    subscription, device_id = found
    capability = subscription.get("capability", "")
    value = wanted.value if wanted else TYPICAL_VALUES.get(capability, "on")
    return {"eventTime": "1970-01-01T00:00:00Z", "eventType": "DEVICE_EVENT", "deviceEvent": {
        "eventId": _uuid(), "locationId": sim.location_id, "deviceId": device_id, "componentId": "main",
        "capability": capability, "attribute": subscription.get("attribute"), "value": value,
        "valueType": "string", "stateChange": True, "data": {}, "subscriptionName": subscription["subscriptionName"]}}


def timer_event(name: str) -> dict:
    return {"eventTime": "1970-01-01T00:00:00Z", "eventType": "TIMER_EVENT", "timerEvent": {
        "eventId": _uuid(), "name": name, "type": "ONCE", "time": "1970-01-01T00:00:00Z", "expression": None}}


def body(step: str, sim: Installation, *, events: list[dict] | None = None) -> dict:
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
        if events is None:  # a device event for whatever the app subscribed to first
            events = [event for event in [device_event(sim, None)] if event is not None]
        data = {"authToken": _token("event"), "installedApp": sim.installed_app(), "events": events}
        return _envelope("EVENT", "eventData", data, app_id=sim.app_id)
    if step == "UNINSTALL":
        return _envelope("UNINSTALL", "uninstallData", {"installedApp": sim.installed_app()}, app_id=sim.app_id)
    raise ValueError(f"unknown step {step!r}")
