"""A loopback stand-in for the SmartThings API: subscriptions and registration confirmation, recorded."""

from __future__ import annotations

import itertools

from tests.fakes.http import Call, LoopbackServer, Reply


class SmartThingsApi(LoopbackServer):
    """Keeps subscriptions per installedAppId like the real API (409 on a duplicate name)."""

    def __init__(self) -> None:
        super().__init__()
        self.subscriptions: dict[str, dict[str, dict]] = {}
        self.confirmed: list[str] = []
        self.fail_with: int | None = None  # answer every subscription call with this status
        self._ids = itertools.count(1)
        self.route("POST", r"/installedapps/([^/]+)/subscriptions", self._create)
        self.route("DELETE", r"/installedapps/([^/]+)/subscriptions", self._delete_all)
        self.route("GET", r"/apps/([^/]+)/confirm-registration", self._confirm)

    def _create(self, call: Call, match) -> Reply:
        if self.fail_with:
            return Reply(self.fail_with, {"error": {"code": "Boom"}})
        body = call.json()
        name = body[body["sourceType"].lower()]["subscriptionName"]
        existing = self.subscriptions.setdefault(match.group(1), {})
        if name in existing:
            return Reply(409, {"error": {"code": "ConflictError"}})
        existing[name] = body
        return Reply(200, {"id": str(next(self._ids)), **body})

    def _delete_all(self, call: Call, match) -> Reply:
        if self.fail_with:
            return Reply(self.fail_with, {"error": {"code": "Boom"}})
        removed = self.subscriptions.pop(match.group(1), {})
        return Reply(200, {"count": len(removed)})

    def _confirm(self, call: Call, match) -> Reply:
        self.confirmed.append(match.group(1))
        return Reply(200, {"targetUrl": "confirmed"})

    def bearer_tokens(self) -> list[str]:
        return [c.headers.get("authorization", "") for c in self.calls if c.path.startswith("/installedapps/")]
