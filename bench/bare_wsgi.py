"""Ceiling: a WSGI callable that answers 200 with no framework and no work; no webhook can be faster."""

from typing import Any, Callable, Iterable

_BODY = b"{}"
_HEADERS = [("Content-Type", "application/json"), ("Content-Length", str(len(_BODY)))]


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    start_response("200 OK", _HEADERS)
    return [_BODY]
