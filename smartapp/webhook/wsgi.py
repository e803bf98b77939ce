"""The webhook's WSGI side: it owns the webhook's paths in front of Flask, reads each body within the limits.

Every request to `/` and to SMARTAPP_PUBLIC_PATH, whatever its method, is answered here from the core
(webhook/core.py), so none of Flask's request machinery applies to these paths: no before_request,
after_request or teardown_request hooks, no error handlers, no request signals, no `flask.request`, `g`
or session, no URL rule (one added at these paths never runs) and no MAX_CONTENT_LENGTH (the limit here
is SMARTAPP_MAX_BODY_BYTES). WSGI middleware wrapped around `app.wsgi_app` after the mount does see them,
as logs.RequestIds does. Skipping Flask saves about 50 µs on every SmartThings call.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any

from werkzeug.datastructures import EnvironHeaders
from werkzeug.wrappers import Request

from smartapp.errors import MalformedRequest, PayloadTooLarge, SmartAppError, UnsupportedMediaType
from smartapp.webhook.core import Webhook

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}


class WebhookMount:
    """WSGI middleware: every request to the webhook's paths goes to the webhook, everything else to `app`."""

    def __init__(self, webhook: Webhook, app: WsgiApp) -> None:
        self.webhook = webhook
        self.paths = webhook.paths
        self.max_body_bytes = webhook.services.settings.max_body_bytes
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if path not in self.paths:
            return self.app(environ, start_response)
        started = time.perf_counter()
        method = environ.get("REQUEST_METHOD", "")
        if method != "POST":
            # Refused by the core (405) without reading a body.
            status, headers, body = self.webhook.answer(method, path, EnvironHeaders(environ), b"", started=started)
        else:
            try:
                length = check_transport(environ, self.max_body_bytes)
                received = read_body(environ, length, self.max_body_bytes)
            except SmartAppError as error:
                status, headers, body = self.webhook.refuse(error, started=started)
            else:
                status, headers, body = self.webhook.answer(
                    method, path, EnvironHeaders(environ), received, started=started,
                    host_url=lambda: Request(environ).host_url)  # honours the proxies the server trusts
        start_response(_STATUS_LINES[status], headers)
        return [] if method == "HEAD" else [body]


def check_transport(environ: dict, max_body_bytes: int) -> int | None:
    """The declared body length (None when chunked), once size, media type and encoding are acceptable."""
    declared = environ.get("CONTENT_LENGTH")
    length = None
    if declared:
        if not (declared.isascii() and declared.isdigit()):  # gunicorn refuses these; other servers may not
            raise MalformedRequest("malformed_request", "Content-Length is not a number")
        length = int(declared)
        if length > max_body_bytes:
            raise PayloadTooLarge()
    if environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower() != "application/json":
        raise UnsupportedMediaType()
    if environ.get("HTTP_CONTENT_ENCODING", "identity").lower() != "identity":
        raise UnsupportedMediaType("unsupported_content_encoding")
    return length


def read_body(environ: dict, length: int | None, max_body_bytes: int) -> bytes:
    """The whole body, never more than `max_body_bytes`, never waiting on a stream with no known end."""
    stream = environ["wsgi.input"]
    try:
        if length is not None:
            return stream.read(length) if length else b""
        if not environ.get("wsgi.input_terminated"):
            return b""  # neither a length nor a server that ends the stream: reading could block forever
        body = stream.read(max_body_bytes + 1)  # chunked: one byte past the limit tells "over" from "exactly at"
    except OSError:
        # The server's read timed out (the body stalled) or the connection broke: the client's doing.
        raise MalformedRequest("body_incomplete", "the body stopped arriving") from None
    if len(body) > max_body_bytes:
        raise PayloadTooLarge()
    return body
