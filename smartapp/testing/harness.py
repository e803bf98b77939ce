"""`AppHarness`: drive a SmartApp through signed lifecycle requests in a test, as SmartThings would."""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from smartapp.app import create_app
from smartapp.application import SmartApp
from smartapp.keys import LEGACY_PREFIX, openssh_md5_fingerprint
from smartapp.pages import Setting
from smartapp.signer import signed_headers
from smartapp.simulation import page_settings

DeviceIds = Iterable[str]


class TestSigner:
    """A signing key the service is told to trust (as a legacy pasted key), so tests sign like SmartThings."""

    __test__ = False  # not a pytest test class

    def __init__(self) -> None:
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        public = self.private_key.public_key()
        self.key_id = LEGACY_PREFIX + openssh_md5_fingerprint(public)
        self.public_pem = public.public_bytes(serialization.Encoding.PEM,
                                              serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def environment(self) -> dict[str, str]:
        """What the service needs to trust this key (merge into its environment)."""
        return {"SMARTAPP_PUBLIC_KEY": self.public_pem}

    def headers(self, body: bytes, *, path: str = "/") -> dict[str, str]:
        return signed_headers(body=body, private_key=self.private_key, key_id=self.key_id, path=path)


class AppHarness:
    """One installation of `app`, served in-process (Flask test client) or by a running service (`url`).

        with FakeSmartThings() as smartthings:
            harness = AppHarness(app, smartthings=smartthings)
            harness.install({"sensors": ["door-1"], "lights": ["lamp-1"]})
            harness.device_event("door-1", "open")
            assert smartthings.commands_for("lamp-1")[0]["command"] == "on"
    """

    def __init__(self, app: SmartApp, *, smartthings: Any, config: Mapping[str, str] | None = None,
                 directory: str | Path | None = None, url: str | None = None,
                 signer: TestSigner | None = None, strict: bool = True) -> None:
        """`strict` (in-process only): a handler that fails, or an event no handler takes, fails the call
        that sent it with AssertionError, although the service itself answers SmartThings 200."""
        self.app = app
        self.strict = strict and url is None
        self.smartthings = smartthings
        self.signer = signer or TestSigner()
        self.installed_app_id = str(uuid.uuid4())
        self.location_id = str(uuid.uuid4())
        self.config: dict[str, list[dict]] = {}
        self.permissions: list[str] = []
        self._url = url
        self._client = None
        self._directory = Path(directory) if directory else Path(tempfile.mkdtemp(prefix="smartapp-test-"))
        if url is None:
            self.service = create_app({**self.environment(), **(config or {})}, app=app)
            self._client = self.service.test_client()
        add_location = getattr(smartthings, "add_location", None)
        if add_location is not None:
            add_location(self.location_id)

    def environment(self) -> dict[str, str]:
        """The environment a service needs for this harness: the fake API and its token endpoint (with client
        credentials, so stored tokens can be refreshed), the trusted key, a private store."""
        return {"SMARTAPP_API_URL": self.smartthings.url, "SMARTAPP_TOKEN_URL": self.smartthings.url + "/oauth/token",
                "SMARTAPP_CLIENT_ID": "test-client", "SMARTAPP_CLIENT_SECRET": "test-client-secret",
                "SMARTAPP_DB_PATH": str(self._directory / "smartapp.db"), **self.signer.environment()}

    # --- sending ----------------------------------------------------------------------------------

    def post(self, body: Mapping[str, Any]) -> tuple[int, Any]:
        """Sign and send one lifecycle body; the status and the decoded JSON answer."""
        raw = json.dumps(body).encode()
        headers = {"Content-Type": "application/json", **self.signer.headers(raw)}
        if self._client is not None:
            response = self._client.post("/", data=raw, headers=headers)
            return response.status_code, response.get_json(silent=True)
        answer = requests.post(self._url, data=raw, headers=headers, timeout=15)
        try:
            return answer.status_code, answer.json()
        except ValueError:
            return answer.status_code, None

    def _send(self, lifecycle: str, key: str, data: Mapping[str, Any]) -> Any:
        with _CollectedProblems(enabled=self.strict) as problems:
            status, answer = self._post_lifecycle(lifecycle, key, data)
        if problems.found:
            raise AssertionError(f"{lifecycle} answered {status}, but the app did not handle it: "
                                 + "; ".join(problems.found))
        if status != 200:
            raise AssertionError(f"{lifecycle} answered {status}: {answer}")
        return answer

    def _post_lifecycle(self, lifecycle: str, key: str, data: Mapping[str, Any]) -> tuple[int, Any]:
        return self.post({"lifecycle": lifecycle, "executionId": str(uuid.uuid4()), "locale": "en",
                          "version": "1.0.0", key: data, "settings": {}})

    def installed_app(self) -> dict:
        return {"installedAppId": self.installed_app_id, "locationId": self.location_id, "config": self.config,
                "permissions": self.permissions}

    # --- lifecycles -------------------------------------------------------------------------------

    def page(self, page_id: str = "", config: Mapping[str, Any] | None = None) -> dict:
        """The page JSON the app answers (the first page by default)."""
        data = {"installedAppId": self.installed_app_id, "phase": "PAGE", "pageId": page_id, "previousPageId": "",
                "config": self._config_map(config or {})}
        return self._send("CONFIGURATION", "configurationData", data)["configurationData"]["page"]

    def install(self, config: Mapping[str, Any], *, grant: Iterable[str] = ()) -> None:
        """INSTALL with these settings: device settings take device ids, others plain values."""
        self._configure(config, grant)
        self._send("INSTALL", "installData", {"authToken": self._token(), "refreshToken": self._token(),
                                              "installedApp": self.installed_app()})

    def update(self, config: Mapping[str, Any], *, grant: Iterable[str] = ()) -> None:
        self._configure(config, grant)
        self._send("UPDATE", "updateData", {"authToken": self._token(), "refreshToken": self._token(),
                                            "installedApp": self.installed_app(), "previousConfig": {},
                                            "previousPermissions": []})

    def uninstall(self) -> None:
        self._send("UNINSTALL", "uninstallData", {"installedApp": self.installed_app()})

    def events(self, *events: Mapping[str, Any]) -> None:
        """One EVENT carrying these raw event objects (`{"eventType": ..., "<payloadKey>": {...}}`)."""
        self._send("EVENT", "eventData", {"authToken": self._token(), "installedApp": self.installed_app(),
                                          "events": list(events)})

    def device_event(self, device_id: str, value: Any, *, attribute: str | None = None) -> None:
        """The device reports `value`, under the subscription the app made for it (found in the fake API)."""
        subscription = self._subscription_covering(device_id, attribute)
        self.events({"eventType": "DEVICE_EVENT", "deviceEvent": {
            "eventId": str(uuid.uuid4()), "locationId": self.location_id, "deviceId": device_id,
            "componentId": subscription.get("componentId", "main"), "capability": subscription["capability"],
            "attribute": subscription["attribute"], "value": value, "valueType": "string", "stateChange": True,
            "data": {}, "subscriptionName": subscription["subscriptionName"]}})

    def timer(self, name: str) -> None:
        """The schedule `name` fires."""
        self.events({"eventType": "TIMER_EVENT", "timerEvent": {"eventId": str(uuid.uuid4()), "name": name,
                                                                "type": "ONCE", "time": "2026-01-01T00:00:00Z"}})

    def execute(self, parameters: Mapping[str, Any]) -> dict:
        answer = self._send("EXECUTE", "executeData", {"authToken": self._token(), "installedApp": self.installed_app(),
                                                       "parameters": dict(parameters)})
        return answer["executeData"]

    # --- plumbing ---------------------------------------------------------------------------------

    def _token(self) -> str:
        """A new lifecycle token; the fake API lets it do only what the installation was granted."""
        token = f"test-token-{uuid.uuid4().hex}"
        grant = getattr(self.smartthings, "grant", None)
        if grant is not None:
            grant(token, self.permissions)
        return token

    def _setting_types(self) -> dict[str, Setting]:
        return page_settings(self.app)[1]

    def _config_map(self, values: Mapping[str, Any]) -> dict[str, list[dict]]:
        settings = self._setting_types()
        config: dict[str, list[dict]] = {}
        for setting_id, value in values.items():
            setting = settings.get(setting_id)
            kind = setting.type if setting is not None else "STRING"
            items = value if isinstance(value, (list, tuple)) else [value]
            if kind == "DEVICE":
                config[setting_id] = [{"valueType": "DEVICE", "deviceConfig": {"deviceId": str(device),
                                                                               "componentId": "main"}}
                                      for device in items]
            elif kind == "MODE":
                config[setting_id] = [{"valueType": "MODE", "modeConfig": {"modeId": str(i)}} for i in items]
            elif kind == "SCENE":
                config[setting_id] = [{"valueType": "SCENE", "sceneConfig": {"sceneId": str(i)}} for i in items]
            else:
                config[setting_id] = [{"valueType": "STRING", "stringConfig": {"value": _wire_text(item)}}
                                      for item in items]
        return config

    def _configure(self, values: Mapping[str, Any], grant: Iterable[str]) -> None:
        settings = self._setting_types()
        self.config = self._config_map(values)
        permissions = []
        for setting_id, entries in self.config.items():
            setting = settings.get(setting_id)
            if setting is not None and setting.type == "DEVICE":
                permissions += [f"{p}:devices:{entry['deviceConfig']['deviceId']}"
                                for entry in entries for p in (setting.permissions or ("r",))]
        self.permissions = permissions + list(grant)

    def _subscription_covering(self, device_id: str, attribute: str | None) -> dict:
        for body in self.smartthings.subscriptions_of(self.installed_app_id):
            source = body.get(body.get("sourceType", "").lower(), {})
            if attribute is not None and source.get("attribute") != attribute:
                continue
            if body.get("sourceType") == "DEVICE" and source.get("deviceId") == device_id:
                return source
            if body.get("sourceType") == "CAPABILITY":
                return source
        raise AssertionError(f"the app has no subscription covering device {device_id}")


class _CollectedProblems(logging.Handler):
    """Collects, while a request is served in this process, the service's lines saying the app did not
    handle something (a handler raised, an event had no handler)."""

    MESSAGES = frozenset({"app_handler_failed", "event_skipped"})

    def __init__(self, *, enabled: bool) -> None:
        super().__init__(logging.WARNING)
        self.enabled = enabled
        self.found: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage() in self.MESSAGES:
            detail = getattr(record, "handler", None) or getattr(record, "subscriptionName", None) \
                or getattr(record, "scheduleName", None) or getattr(record, "eventType", None)
            self.found.append(f"{record.getMessage()} ({getattr(record, 'reason', None)}: {detail})")

    def __enter__(self) -> "_CollectedProblems":
        if self.enabled:
            logging.getLogger("smartapp").addHandler(self)
        return self

    def __exit__(self, *exc: object) -> None:
        logging.getLogger("smartapp").removeHandler(self)


def _wire_text(value: Any) -> str:
    """Settings arrive as strings: booleans as true/false, numbers as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
