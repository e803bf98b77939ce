"""ApiError: a SmartThings API call that failed, with a reason code a handler can branch on."""

from __future__ import annotations

import re

import requests

from smartapp.errors import UpstreamUnavailable

# SmartThings' own error codes are short identifiers (LimitError, ConstraintViolationError); anything
# else in that field is not trusted into a log line.
_ERROR_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_.-]{0,63}\Z")
_MAX_PATH_IN_DETAIL = 160


class ApiError(UpstreamUnavailable):
    """A SmartThings API call failed.

    `reason` is one of: smartthings_unauthorized (401), smartthings_forbidden (403), smartthings_not_found
    (404), smartthings_rate_limited (429), subscription_limit (422 LimitError, or 40 reached),
    smartthings_rejected (any other 4xx), smartthings_error (5xx or another unexpected answer),
    smartthings_invalid_response (a 2xx whose body is not JSON), smartthings_unreachable (connection
    failure or timeout), deadline_exceeded (no time left in the request's budget), absolute_url_refused.
    `http_status` is SmartThings' status (None when no answer came) and `code` its error code, if any.
    `status` stays 503: uncaught, the webhook answers "try again later", whatever SmartThings said.
    The text names the call (method, path without query) and never a token or a response body.
    """

    reason = "smartthings_error"

    def __init__(self, reason: str, *, http_status: int | None = None, code: str | None = None,
                 method: str = "", path: str = "", why: str = "") -> None:
        self.http_status = http_status
        self.code = code
        self.method = method
        self.path = path.split("?", 1)[0][:_MAX_PATH_IN_DETAIL]
        answer = why or (f"HTTP {http_status}" if http_status is not None else "no answer")
        call = f"{method} {self.path} -> " if method else ""
        super().__init__(reason, f"{call}{answer}" + (f" ({code})" if code else ""))

    def __str__(self) -> str:
        return f"{self.reason}: {self.detail}"


def reason_for(status: int, code: str | None) -> str:
    """The reason code of a non-2xx answer."""
    if status == 422 and code == "LimitError":
        return "subscription_limit"
    named = {401: "smartthings_unauthorized", 403: "smartthings_forbidden", 404: "smartthings_not_found",
             429: "smartthings_rate_limited"}
    if status in named:
        return named[status]
    return "smartthings_rejected" if 400 <= status < 500 else "smartthings_error"


def error_code(response: requests.Response) -> str | None:
    """SmartThings' `error.code` from an error body, when it has the expected shape."""
    try:
        body = response.json()
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) and _ERROR_CODE.match(code) else None


def error_from(response: requests.Response, *, method: str, path: str) -> ApiError:
    code = error_code(response)
    return ApiError(reason_for(response.status_code, code), http_status=response.status_code, code=code,
                    method=method, path=path)
