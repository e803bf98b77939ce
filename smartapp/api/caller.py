"""One authenticated SmartThings API call: the bearer token, one retry after a 401 or a 429, reason-coded errors."""

from __future__ import annotations

import logging
import re
import time
from typing import Any, Callable, Mapping, Protocol
from urllib.parse import quote

import requests

from smartapp.api.errors import ApiError, error_from
from smartapp.api.rate_limit import wait_seconds
from smartapp.deadline import Deadline
from smartapp.errors import UpstreamUnavailable
from smartapp.smartthings import SmartThingsClient

log = logging.getLogger(__name__)

# Kept back from the request's budget when deciding whether a 429's wait fits: the retry needs time too.
RETRY_ROOM_SECONDS = 1.0
# A paged list follows at most this many `next` links (a loop in them must not spin until the deadline).
MAX_PAGES = 50
_LOCALE = re.compile(r"[A-Za-z0-9_-]{1,35}\Z")


class TokenSource(Protocol):
    """Where the client's bearer token comes from (a lifecycle's authToken, or the stored, refreshed one)."""

    def token(self, deadline: Deadline) -> str:
        """The current bearer token."""
        ...

    def after_unauthorized(self, token: str, deadline: Deadline) -> str | None:
        """A 401 came back for `token`: a replacement to retry once with, or None (do not retry)."""
        ...


def checked_path(path: str) -> str:
    """`path` if it is relative to the API URL; an absolute URL (or a host-changing string) is refused."""
    if not isinstance(path, str) or not path.startswith("/") or path.startswith("//"):
        raise ApiError("absolute_url_refused", why="a path must start with a single '/'")
    if any(ord(character) < 0x21 or character == "\x7f" for character in path):
        raise ApiError("invalid_path", why="a path must not contain spaces or control characters")
    return path


def segment(value: str) -> str:
    """One path segment built from an id or a name: quoted so it cannot add segments or a query."""
    # "." and ".." would be dot-segments (requests sends %2E as "."), which a server may resolve upwards.
    if not isinstance(value, str) or value in ("", ".", ".."):
        raise ValueError("an id or name must be a non-empty string other than '.' and '..'")
    return quote(value, safe="")


class ApiCaller:
    """Sends calls for one installation through the shared SmartThingsClient; caches the token it was given."""

    def __init__(self, *, http: SmartThingsClient, installed_app_id: str, tokens: TokenSource, deadline: Deadline,
                 locale: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.time) -> None:
        self.http = http
        self.installed_app_id = installed_app_id
        self.tokens = tokens
        self.deadline = deadline
        self.sleep = sleep
        self.clock = clock
        self._headers = {"Accept-Language": locale} if locale and _LOCALE.match(locale) else {}
        self._token: str | None = None

    def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, Any] | None = None,
             accept: tuple[int, ...] = ()) -> Any:
        """The JSON body of a 2xx answer (None when empty); None for a status in `accept`; else ApiError."""
        response = self._send(method, checked_path(path), json, params)
        status = response.status_code
        if status in accept:
            return None
        if not 200 <= status < 300:
            raise error_from(response, method=method, path=path)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise ApiError("smartthings_invalid_response", http_status=status, method=method, path=path) from None

    def call_object(self, method: str, path: str, *, json: Any = None,
                    params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """A call whose answer is a JSON object ({} when empty); any other JSON is an invalid response."""
        body = self.call(method, path, json=json, params=params)
        if body is None:
            return {}
        if not isinstance(body, dict):
            raise ApiError("smartthings_invalid_response", method=method, path=path)
        return body

    def items(self, path: str, params: Mapping[str, Any] | None = None) -> list[Any]:
        """Every item of a paged list (`{"items": [...], "_links": {"next": {"href": ...}}}`)."""
        found: list[Any] = []
        next_path: str | None = path
        for _ in range(MAX_PAGES):
            if next_path is None:
                break
            body = self.call("GET", next_path, params=params)
            if not isinstance(body, dict):
                break
            page = body.get("items")
            if isinstance(page, list):
                found.extend(page)
            next_path, params = self._next_page(body), None
        return found

    def _next_page(self, body: dict[str, Any]) -> str | None:
        # Only links back into the configured API are followed: a list answer must not send the token elsewhere.
        links = body.get("_links")
        following = links.get("next") if isinstance(links, dict) else None
        href = following.get("href") if isinstance(following, dict) else None
        if not isinstance(href, str):
            return None
        if href.startswith(self.http.api_url + "/"):
            return href[len(self.http.api_url):]
        return href if href.startswith("/") and not href.startswith("//") else None

    def _token_now(self) -> str:
        if self._token is None:
            self._token = self.tokens.token(self.deadline)
        return self._token

    def _send(self, method: str, path: str, json: Any, params: Mapping[str, Any] | None) -> requests.Response:
        token = self._token_now()
        retried_unauthorized = retried_rate_limit = False
        while True:
            response = self._once(method, path, token, json, params)
            if response.status_code == 401 and not retried_unauthorized:
                retried_unauthorized = True
                replacement = self.tokens.after_unauthorized(token, self.deadline)
                if replacement and replacement != token:
                    self._token = token = replacement
                    self._log_retry("smartthings_unauthorized", method, path)
                    continue
            elif response.status_code == 429 and not retried_rate_limit:
                retried_rate_limit = True
                wait = wait_seconds(response.headers, now=self.clock())
                if wait is not None and wait + RETRY_ROOM_SECONDS <= self.deadline.remaining():
                    self._log_retry("smartthings_rate_limited", method, path, wait=round(wait, 3))
                    self.sleep(wait)
                    continue
            return response

    def _once(self, method: str, path: str, token: str, json: Any,
              params: Mapping[str, Any] | None) -> requests.Response:
        try:
            return self.http.send(method, path, token=token, deadline=self.deadline, json=json, params=params,
                                  headers=self._headers)
        except UpstreamUnavailable as error:  # no time left, or no answer (connection failure, timeout)
            raise ApiError(error.reason, method=method, path=path) from None

    def _log_retry(self, reason: str, method: str, path: str, **fields: Any) -> None:
        log.info("api_retry", extra={"reason": reason, "installedAppId": self.installed_app_id,
                                     "method": method, "path": path.split("?", 1)[0], **fields})
