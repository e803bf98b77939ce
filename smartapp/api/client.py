"""SmartThingsApi: the per-installation SmartThings API client a handler gets as `ctx.api`."""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

from smartapp.api.caller import ApiCaller, TokenSource
from smartapp.api.devices import Devices
from smartapp.api.installation import Installation
from smartapp.api.locations import InstalledApp, Locations, Modes, Scenes
from smartapp.api.schedules import Schedules
from smartapp.api.subscriptions import Subscriptions
from smartapp.deadline import Deadline
from smartapp.smartthings import SmartThingsClient

_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})


class SmartThingsApi:
    """Calls SmartThings for one installation, with its token and inside the request's time budget.

    Every call: timeouts bounded by `deadline`, no redirects followed, `Accept-Language` from `locale`.
    A 401 asks `tokens` for a replacement and retries once with it; a 429 is waited out (with `sleep`) and
    retried once when its reset time fits the budget. Failures raise `ApiError` with a reason code; errors
    of the token source itself (reauth required, store down) pass through unchanged.
    """

    def __init__(self, *, http: SmartThingsClient, installed_app_id: str, location_id: str | None,
                 tokens: TokenSource, deadline: Deadline, permissions: Sequence[str] = (),
                 locale: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self._caller = ApiCaller(http=http, installed_app_id=installed_app_id, tokens=tokens, deadline=deadline,
                                 locale=locale, sleep=sleep, clock=clock)
        installation = Installation(self._caller, installed_app_id=installed_app_id, location_id=location_id,
                                    permissions=permissions)
        self.installed_app_id = installed_app_id
        self.devices = Devices(self._caller)
        self.subscriptions = Subscriptions(self._caller, installation)
        self.schedules = Schedules(self._caller, installation, clock=clock)
        self.locations = Locations(self._caller, installation)
        self.modes = Modes(self._caller, installation)
        self.scenes = Scenes(self._caller, installation)
        self.installed_app = InstalledApp(self._caller, installation)

    def request(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None) -> Any:
        """Any call, e.g. request("GET", "/devices/<id>/health"); the JSON body back, None when empty.

        `path` is relative to the configured API URL and starts with '/'; an absolute URL raises ApiError
        `absolute_url_refused` (the token goes to SmartThings only).
        """
        verb = method.upper() if isinstance(method, str) else ""
        if verb not in _METHODS:
            raise ValueError(f"method must be one of {', '.join(sorted(_METHODS))}")
        return self._caller.call(verb, path, json=json, params=params)
