"""A loopback LIFX HTTP API: `PUT /v1/lights/{selector}/state`, recording each call's bearer token and body."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from smartapp.testing import Call, LoopbackServer, Reply


@dataclass(frozen=True)
class StateChange:
    """One `set state` call as it arrived."""

    selector: str
    token: str
    body: Any


class FakeLifx(LoopbackServer):
    """Point `LIFX_API_URL` at `api_url`; `changes` lists every accepted state change, in order.

    Like LIFX, a call without a valid bearer token (none, or one named in `revoked`) answers 401 and one
    whose body is not JSON 422; a change answers 207 with one result per light.
    """

    def __init__(self) -> None:
        super().__init__()
        self.changes: list[StateChange] = []
        self.revoked: set[str] = set()
        self.route("PUT", r"/v1/lights/([^/]+)/state", self._set_state)

    @property
    def api_url(self) -> str:
        return self.url + "/v1"

    def _set_state(self, call: Call, match: re.Match) -> Reply:
        scheme, _, token = call.headers.get("authorization", "").partition(" ")
        with self._lock:
            refused = scheme != "Bearer" or not token or token in self.revoked
        if refused:
            return Reply(401, {"error": "Invalid token"})
        try:
            body = json.loads(call.body)
        except ValueError:
            return Reply(422, {"error": "body is not JSON"})
        selector = unquote(match.group(1))
        with self._lock:
            self.changes.append(StateChange(selector, token, body))
        return Reply(207, {"results": [{"id": "d073d5000001", "label": "Lamp", "status": "ok"}]})
