"""What the fake SmartThings API's parts share: SmartThings-shaped errors, paged lists, decoded ids."""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, Sequence
from urllib.parse import unquote, urlencode

from smartapp.fakes.loopback import Call, LoopbackServer, Reply


def error_reply(status: int, code: str, message: str = "", headers: dict[str, str] | None = None) -> Reply:
    """An error in SmartThings' shape: {"requestId": ..., "error": {"code": ..., "message": ...}}."""
    return Reply(status, {"requestId": "fake", "error": {"code": code, "message": message or code}}, headers)


def paged_reply(call: Call, items: Sequence[Any], *, base_url: str, page_size: int) -> Reply:
    """`items` a page at a time (`?page=N`), with `_links.next.href` to the next page while there is one."""
    try:
        page = max(0, int(call.query.get("page", ["0"])[0]))
    except ValueError:
        return error_reply(422, "ConstraintViolationError", "page must be a number")
    start = page * page_size
    body: dict[str, Any] = {"items": list(items[start:start + page_size]), "_links": {}}
    if start + page_size < len(items):
        query = [(name, value) for name, values in call.query.items() if name != "page" for value in values]
        path = call.path.split("?", 1)[0]
        body["_links"]["next"] = {"href": f"{base_url}{path}?{urlencode(query + [('page', page + 1)])}"}
    return Reply(200, body)


def segments(match: re.Match) -> tuple[str, ...]:
    """The ids a route's pattern captured, decoded (the client quotes every id it puts in a path)."""
    return tuple(unquote(group) for group in match.groups())


class FakePart:
    """One part of the fake (devices, installed apps, locations): mounted on `server`, sharing its state lock."""

    def __init__(self, server: LoopbackServer, lock: threading.Lock, *, page_size: Callable[[], int]) -> None:
        self._server = server
        self._lock = lock
        self._page_size = page_size

    def paged(self, call: Call, items: Sequence[Any]) -> Reply:
        return paged_reply(call, items, base_url=self._server.url, page_size=self._page_size())
