"""FakeSmartThings: an in-memory SmartThings API on 127.0.0.1 that records what an app asked of it."""

from __future__ import annotations

import collections
import itertools
import re
import secrets
import threading
from typing import Any, Iterable
from urllib.parse import parse_qs

from smartapp.fakes.fake_devices import FakeDevices
from smartapp.fakes.fake_installed_apps import FakeInstalledApps
from smartapp.fakes.fake_locations import FakeLocations
from smartapp.fakes.loopback import Call, LoopbackServer, Reply
from smartapp.fakes.replies import error_reply

TOKEN_PATH = "/oauth/token"
_CONFIRM_PATH = re.compile(r"/apps/[^/]+/confirm-registration\Z")


_DEVICE_PATH = re.compile(r"/devices/([^/?]+)(/commands)?")


def _device_scope(call: Call) -> frozenset[str] | None:
    """The scopes that allow a device call (either one): x: to command a device, r: to read it."""
    match = _DEVICE_PATH.match(call.path)
    if match is None:
        return None
    kind = "x" if match.group(2) else "r"
    return frozenset({f"{kind}:devices:{match.group(1)}", f"{kind}:devices:*"})


class FakeSmartThings(LoopbackServer):
    """The SmartThings REST API in memory: point `SMARTAPP_API_URL` (and `SMARTAPP_TOKEN_URL`) at it.

    Implements devices (status settable, commands recorded per device), subscriptions per installation
    (409 on a duplicate name, 422 LimitError beyond 40), schedules per installation (a once-schedule
    with `overwrite` replaces its namesake), locations with a time zone, modes, scenes, installed apps,
    registration confirmation and the token endpoint's refresh grant (for refresh tokens from `issue_tokens`
    or an earlier refresh; each is single-use).
    Lists are paged `page_size` at a time. Failures are injected with `fail_next`, `rate_limit_next`,
    `fail_with` and `reject_token`; they apply to API calls, not to the token endpoint or confirmation.

        with FakeSmartThings() as st:
            st.add_location("loc-1", time_zone_id="Europe/Berlin")
            ...  # run the app against st.url
            assert st.commands_for("light-1") == [{"component": "main", "capability": "switch",
                                                   "command": "on", "arguments": []}]
    """

    def __init__(self, *, page_size: int = 100) -> None:
        super().__init__()
        self.page_size = page_size
        self.fail_with: int | None = None     # while set, every API call answers this status
        self.confirmed: list[str] = []        # appIds whose registration was confirmed
        self.token_refreshes = 0
        self._state = threading.Lock()
        self._injected: collections.deque[Reply] = collections.deque()
        self._rejected_tokens: set[str] = set()
        self._grants: dict[str, frozenset[str]] = {}
        self._refresh_tokens: set[str] = set()      # refresh tokens the token endpoint accepts, once each
        self._token_ids = itertools.count(1)
        self.route("GET", r"/apps/([^/]+)/confirm-registration", self._confirm)
        self.route("POST", TOKEN_PATH, self._refresh)
        page_size_now = lambda: self.page_size  # noqa: E731 (read at each list, so a test may change it)
        self.devices = FakeDevices(self, self._state, page_size=page_size_now)
        self.installed_apps = FakeInstalledApps(self, self._state, page_size=page_size_now)
        self.locations = FakeLocations(self, self._state, page_size=page_size_now)

    # --- setting the scene ---------------------------------------------------------------------------

    def add_device(self, device_id: str, *, label: str | None = None, capabilities: Iterable[str] = ("switch",),
                   location_id: str | None = None, component: str = "main") -> dict[str, Any]:
        return self.devices.add(device_id, label=label, capabilities=capabilities, location_id=location_id,
                                component=component)

    def set_status(self, device_id: str, capability: str, attribute: str, value: Any, *, component: str = "main",
                   unit: str | None = None) -> None:
        self.devices.set_status(device_id, capability, attribute, value, component=component, unit=unit)

    def add_location(self, location_id: str, *, name: str = "Home", time_zone_id: str | None = "UTC",
                     modes: Iterable[str] = ("Home", "Away", "Night")) -> dict[str, Any]:
        return self.locations.add(location_id, name=name, time_zone_id=time_zone_id, modes=modes)

    def add_scene(self, location_id: str, scene_id: str, name: str = "") -> dict[str, Any]:
        return self.locations.add_scene(location_id, scene_id, name)

    def add_installed_app(self, installed_app_id: str, *, location_id: str) -> dict[str, Any]:
        return self.installed_apps.add(installed_app_id, location_id=location_id)

    def issue_tokens(self) -> tuple[str, str]:
        """A new (access token, refresh token) pair, as INSTALL would bring; the refresh token works once."""
        with self._state:
            return self._new_tokens()

    # --- failures --------------------------------------------------------------------------------------

    def fail_next(self, count: int = 1, status: int = 500, *, code: str = "InjectedError",
                  headers: dict[str, str] | None = None) -> None:
        """The next `count` API calls answer `status` with SmartThings' error shape."""
        with self._state:
            self._injected.extend(error_reply(status, code, headers=headers) for _ in range(count))

    def rate_limit_next(self, count: int = 1, *, reset: float | str = 1) -> None:
        """The next `count` API calls answer 429 with `x-ratelimit-reset: reset` (seconds, or a reset time)."""
        self.fail_next(count, 429, code="TooManyRequestError", headers={"x-ratelimit-reset": str(reset)})

    def grant(self, token: str, scopes: Iterable[str]) -> None:
        """Calls made with `token` may only do what `scopes` allow, as on SmartThings: a device command
        needs `x:devices:<id>` (or `x:devices:*`), a device read `r:devices:<id>`; else 403.
        Tokens never granted are not checked."""
        with self._state:
            self._grants[token] = frozenset(scopes)

    def reject_token(self, token: str) -> None:
        """Calls made with this bearer token answer 401 from now on (an expired or revoked token)."""
        with self._state:
            self._rejected_tokens.add(token)

    # --- what the app did ------------------------------------------------------------------------------

    def commands_for(self, device_id: str) -> list[dict[str, Any]]:
        """Every command the device received, in order: {"component", "capability", "command", "arguments"}."""
        return self.devices.commands_for(device_id)

    def subscriptions_of(self, installed_app_id: str) -> list[dict[str, Any]]:
        """The installation's subscriptions as created (with "id"), in creation order."""
        return self.installed_apps.subscriptions_of(installed_app_id)

    def schedules_of(self, installed_app_id: str) -> list[dict[str, Any]]:
        """The installation's pending schedules as created ({"name", "once"} or {"name", "cron"})."""
        return self.installed_apps.schedules_of(installed_app_id)

    def current_mode(self, location_id: str) -> str | None:
        with self._state:
            return self.locations.current_mode.get(location_id)

    @property
    def scenes_executed(self) -> list[str]:
        with self._state:
            return list(self.locations.scenes_executed)

    @property
    def subscriptions(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Live view: installedAppId -> subscriptionName -> subscription."""
        return self.installed_apps.subscriptions

    @property
    def schedules(self) -> dict[str, dict[str, dict[str, Any]]]:
        """Live view: installedAppId -> schedule name -> schedule."""
        return self.installed_apps.schedules

    def bearer_tokens(self) -> list[str]:
        """The Authorization header ("Bearer …") of every API call, in order."""
        with self._lock:
            return [call.headers.get("authorization", "") for call in self.calls if self._is_api_call(call)]

    # --- serving ---------------------------------------------------------------------------------------

    @staticmethod
    def _is_api_call(call: Call) -> bool:
        path = call.path.split("?", 1)[0]
        return path != TOKEN_PATH and not _CONFIRM_PATH.match(path)

    def _route(self, call: Call) -> Reply:
        if self._is_api_call(call):
            token = call.headers.get("authorization", "").removeprefix("Bearer ")
            with self._state:
                injected = self._injected.popleft() if self._injected else None
                rejected = token in self._rejected_tokens
                granted = self._grants.get(token)
            if injected is not None:
                return injected
            if self.fail_with:
                return error_reply(self.fail_with, "InjectedError")
            if rejected:
                return error_reply(401, "UnauthorizedError", "token rejected")
            needed = _device_scope(call)
            if granted is not None and needed is not None and not granted & needed:
                return error_reply(403, "ForbiddenError", f"the token lacks {min(needed)}")
        return super()._route(call)

    def _confirm(self, call: Call, match: re.Match) -> Reply:
        with self._state:
            self.confirmed.append(match.group(1))
        return Reply(200, {"targetUrl": "confirmed"})

    def _refresh(self, call: Call, match: re.Match) -> Reply:
        form = parse_qs(call.body.decode("utf-8", "replace"))
        refresh_token = form.get("refresh_token", [""])[0]
        if form.get("grant_type") != ["refresh_token"] or not refresh_token:
            return Reply(400, {"error": "invalid_request"})
        with self._state:
            if refresh_token not in self._refresh_tokens:
                return Reply(400, {"error": "invalid_grant", "error_description": "Invalid refresh token"})
            self._refresh_tokens.discard(refresh_token)
            self.token_refreshes += 1
            access_token, new_refresh_token = self._new_tokens()
        return Reply(200, {"access_token": access_token, "token_type": "bearer", "refresh_token": new_refresh_token,
                           "expires_in": 86399, "scope": "r:devices:* x:devices:* r:locations:*"})

    def _new_tokens(self) -> tuple[str, str]:
        number = next(self._token_ids)
        refresh_token = f"fake-refresh-{number}-{secrets.token_hex(8)}"
        self._refresh_tokens.add(refresh_token)
        return f"fake-access-{number}-{secrets.token_hex(8)}", refresh_token
