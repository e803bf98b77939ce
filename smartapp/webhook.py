"""The webhook: a plain WSGI callable that checks, verifies, parses, dispatches and answers each lifecycle POST."""

from __future__ import annotations

import functools
import json
import logging
import secrets
import sys
import time
from http import HTTPStatus
from typing import Any, Callable, Iterable

from flask import Flask, Response, current_app
from werkzeug.datastructures import EnvironHeaders
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request

from smartapp.deadline import Deadline
from smartapp.dispatch import dispatch, envelope
from smartapp.errors import (
    MalformedRequest, PayloadTooLarge, RequestInProgress, SmartAppError, StoreUnavailable, UnsupportedMediaType,
)
from smartapp.jsonbody import parse_json
from smartapp.lifecycle import lifecycle_name, parse
from smartapp.rejection_log import RejectionLogLimit
from smartapp.services import RequestInfo, Services
from smartapp.settings import Settings
from smartapp.signature import Verifier
from smartapp.store import ReplayState

log = logging.getLogger("smartapp.request")

# SmartThings waits 10 s; remote calls of one request must be done well before that.
REQUEST_BUDGET_SECONDS = 8.0
RETRY_AFTER_SECONDS = "5"
# A signed request stays acceptable while its Date is within ±300 s, so remember it a little longer.
REPLAY_TTL_SECONDS = 2 * 300 + 30
# While a request is processed its marker is only leased: if the worker dies (OOM, SIGKILL, gunicorn's
# timeout) the lease runs out and SmartThings' identical retry is processed. SmartThings stops waiting
# after 10 s, and remote calls stop at REQUEST_BUDGET_SECONDS, so a lease this old belongs to a request
# that failed or died.
CLAIM_LEASE_SECONDS = REQUEST_BUDGET_SECONDS + 2

WsgiApp = Callable[[dict, Callable[..., Any]], Iterable[bytes]]
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
_UNAUTHORIZED = b'{"error":"unauthorized"}'


def _json(body: dict) -> bytes:
    # Compact and unsorted: this runs on every request and SmartThings reads it as JSON anyway.
    return json.dumps(body, separators=(",", ":")).encode()


@functools.lru_cache(maxsize=128)  # reasons are this service's own codes: a small, fixed set
def _error_body(status: int, reason: str) -> bytes:
    # One body for every authentication failure, so a 401 says nothing about which check failed.
    return _UNAUTHORIZED if status == 401 else _json({"error": reason})


def _check_transport(environ: dict, max_body_bytes: int) -> int | None:
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


def _read_body(environ: dict, length: int | None, max_body_bytes: int) -> bytes:
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


def _target_url(environ: dict, settings: Settings) -> str:
    """The URL SmartThings called: configured, or rebuilt from the request (honouring trusted proxies)."""
    return settings.public_url or Request(environ).host_url.rstrip("/") + settings.public_path


def _short(value: object) -> str | None:
    return value[:64] if isinstance(value, str) else None


class Webhook:
    """Answers lifecycle POSTs without Flask's request machinery: this runs for every SmartThings call."""

    def __init__(self, services: Services, verifier: Verifier) -> None:
        self.services = services
        self.verifier = verifier
        self.rejection_log = RejectionLogLimit()

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> list[bytes]:
        status, body = self._answer(environ)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        if status == 503:
            headers.append(("Retry-After", RETRY_AFTER_SECONDS))
        start_response(_STATUS_LINES[status], headers)
        return [body]

    def _answer(self, environ: dict) -> tuple[int, bytes]:
        started = time.perf_counter()
        services = self.services
        settings = services.settings
        # correlationId and requestId are already on every line of this request (logs.RequestIds).
        fields: dict[str, object] = {}
        claimed: tuple[str, str, str | None] | None = None  # (replay marker, our lease's owner, installedAppId)
        status, reason, failure = 200, None, None
        try:
            length = _check_transport(environ, settings.max_body_bytes)
            body = _read_body(environ, length, settings.max_body_bytes)
            document = parse_json(body)
            name = lifecycle_name(document)
            fields["lifecycle"] = _short(name)
            verified = None
            if name != "PING":  # PING is the one lifecycle SmartThings does not sign
                verified = self.verifier.verify(method="POST", headers=EnvironHeaders(environ), body=body)
            lifecycle = parse(document)
            fields.update(executionId=_short(lifecycle.execution_id), installedAppId=lifecycle.installed_app_id)
            if verified is not None:
                owner = secrets.token_hex(8)
                state = services.store.claim(verified.replay_marker, owner=owner, lease_seconds=CLAIM_LEASE_SECONDS,
                                             installed_app_id=lifecycle.installed_app_id)
                if state is ReplayState.DONE:
                    reason = "replay_suppressed"
                    return 200, _json(envelope(lifecycle.name, {}))
                if state is ReplayState.IN_PROGRESS:
                    raise RequestInProgress()
                claimed = (verified.replay_marker, owner, lifecycle.installed_app_id)
            request = RequestInfo(deadline=Deadline.after(REQUEST_BUDGET_SECONDS),
                                  target_url_of=lambda: _target_url(environ, settings))
            answer = _json(dispatch(lifecycle, services, request))
            if claimed is not None:
                _complete(services, claimed[0], claimed[2])
            return 200, answer
        except SmartAppError as error:
            status, reason = error.status, error.reason
            if error.detail:
                fields["detail"] = error.detail
            if claimed is not None:
                _release(services, *claimed)
            return status, _error_body(status, reason)
        except Exception:  # noqa: BLE001 - the caller gets a generic 500, never the exception text
            status, reason, failure = 500, "internal_error", sys.exc_info()
            if claimed is not None:
                _release(services, *claimed)
            return status, _error_body(status, reason)
        finally:
            self._log(status, reason, fields, started, failure)

    def _log(self, status: int, reason: str | None, fields: dict[str, object], started: float,
             failure: Any = None) -> None:
        unlogged = self.rejection_log.unlogged_report()
        if unlogged:
            # Written while serving another request, but not about it: blank that request's ids.
            log.warning("rejections_not_logged", extra={
                "requestId": None, "correlationId": None, "reason": "log_rate_limited", "counts": unlogged,
                "linesPerReason": self.rejection_log.lines_per_reason,
                "intervalSeconds": self.rejection_log.interval_seconds})
        # Every failure is capped per reason, a 500 too: input that trips one of our bugs can be sent in a flood.
        if status >= 400 and not self.rejection_log.admit(str(reason)):
            return
        level = logging.ERROR if status == 500 else logging.WARNING if status >= 400 else logging.INFO
        log.log(level, "request", exc_info=failure, extra={
            **fields, "status": status, "reason": reason,
            "durationMs": round((time.perf_counter() - started) * 1000, 2),
        })


def _complete(services: Services, marker: str, installed_app_id: str | None) -> None:
    """The effects are stored: from now on an identical request is a replay."""
    try:
        services.store.complete(marker, ttl_seconds=REPLAY_TTL_SECONDS, installed_app_id=installed_app_id)
    except StoreUnavailable:
        # Answered 200 all the same: the work is done, and a retry after the lease would redo it harmlessly.
        log.warning("replay_marker_not_completed", extra={"reason": "store_unavailable"})


def _release(services: Services, marker: str, owner: str, installed_app_id: str | None) -> None:
    """The request failed: let an identical legitimate retry be processed later."""
    try:
        services.store.release_marker(marker, owner=owner, installed_app_id=installed_app_id)
    except StoreUnavailable:
        pass  # the lease expires on its own


class WebhookFirst:
    """WSGI middleware: POSTs to the webhook's paths go straight to it, everything else to the Flask app."""

    def __init__(self, webhook: WsgiApp, paths: Iterable[str], app: WsgiApp) -> None:
        self.webhook = webhook
        self.paths = frozenset(paths)
        self.app = app

    def __call__(self, environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST" and (environ.get("PATH_INFO") or "/") in self.paths:
            return self.webhook(environ, start_response)
        return self.app(environ, start_response)


def _json_response(body: dict, status: int = 200) -> Response:
    return Response(_json(body), status=status, mimetype="application/json")


def healthz() -> Response:
    return _json_response({"status": "ok"})


def readyz() -> Response:
    services: Services = current_app.extensions["smartapp"]
    try:
        services.store.ping()
    except StoreUnavailable:
        response = _json_response({"error": "store_unavailable"}, 503)
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
        return response
    return _json_response({"status": "ready", "store": services.store.name})


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    response = _json_response({"error": (error.name or "error").lower().replace(" ", "_")}, status)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def register(app: Flask, webhook: Webhook) -> None:
    """Mount the webhook at `/` and at the public path (behind a proxy that strips a prefix they differ)."""
    paths = list(dict.fromkeys(["/", webhook.services.settings.public_path]))
    # Flask still owns these paths for every other method, so a GET is a 405 naming POST.
    for rule in paths:
        app.add_url_rule(rule, endpoint=f"webhook:{rule}", view_func=_post_only, methods=["POST"],
                         provide_automatic_options=False)
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
    app.wsgi_app = WebhookFirst(webhook, paths, app.wsgi_app)  # type: ignore[method-assign]


def _post_only() -> Response:
    # Unreachable in service (WebhookFirst answers every POST here); kept so Flask's router knows the route.
    return _json_response({"error": "not_found"}, 404)
