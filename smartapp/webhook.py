"""The webhook route: the only code that reads `flask.request`; it verifies, parses, dispatches, answers."""

from __future__ import annotations

import json
import logging
import time

from flask import Flask, Request, Response, current_app, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from smartapp.deadline import Deadline
from smartapp.dispatch import dispatch, envelope
from smartapp.errors import (
    PayloadTooLarge, SmartAppError, StoreUnavailable, UnsupportedMediaType,
)
from smartapp.jsonbody import parse_json
from smartapp.lifecycle import lifecycle_name, parse
from smartapp.services import Context, Services
from smartapp.settings import Settings
from smartapp.signature import Verifier

log = logging.getLogger("smartapp.request")

# SmartThings waits 10 s; remote calls of one request must be done well before that.
REQUEST_BUDGET_SECONDS = 8.0
RETRY_AFTER_SECONDS = "5"
# A signed request stays acceptable while its Date is within ±300 s, so remember it a little longer.
REPLAY_TTL_SECONDS = 2 * 300 + 30


def _json_response(body: dict, status: int = 200) -> Response:
    # Compact and unsorted: this runs on every request and SmartThings reads it as JSON anyway.
    return Response(json.dumps(body, separators=(",", ":")), status=status, mimetype="application/json")


def _error_response(status: int, reason: str) -> Response:
    # One body for every authentication failure, so a 401 says nothing about which check failed.
    response = _json_response({"error": "unauthorized"} if status == 401 else {"error": reason}, status)
    if status == 503:
        response.headers["Retry-After"] = RETRY_AFTER_SECONDS
    return response


def _check_transport(req: Request, max_body_bytes: int) -> None:
    if req.content_length is not None and req.content_length > max_body_bytes:
        raise PayloadTooLarge()
    if req.mimetype != "application/json":
        raise UnsupportedMediaType()
    if req.environ.get("HTTP_CONTENT_ENCODING", "identity").lower() != "identity":
        raise UnsupportedMediaType("unsupported_content_encoding")


def _short(value: object) -> str | None:
    return value[:64] if isinstance(value, str) else None


def receive() -> Response:
    started = time.perf_counter()
    # The objects behind Flask's proxies, fetched once: each proxy access costs about a microsecond.
    req: Request = request._get_current_object()  # type: ignore[attr-defined]
    extensions = current_app.extensions
    services: Services = extensions["smartapp"]
    verifier: Verifier = extensions["smartapp.verifier"]
    settings = services.settings
    # correlationId and requestId are already on every line of this request (logs.RequestIds).
    fields: dict[str, object] = {}
    claimed_marker: str | None = None
    status, reason = 200, None
    try:
        _check_transport(req, settings.max_body_bytes)
        try:
            body = req.get_data(cache=False)
        except RequestEntityTooLarge:
            raise PayloadTooLarge() from None
        if len(body) > settings.max_body_bytes:
            raise PayloadTooLarge()  # a chunked body, cut by werkzeug one byte past the limit
        document = parse_json(body)
        name = lifecycle_name(document)
        fields["lifecycle"] = _short(name)
        verified = None
        if name != "PING":  # PING is the one lifecycle SmartThings does not sign
            verified = verifier.verify(method=req.method, headers=req.headers, body=body)
        lifecycle = parse(document)
        fields.update(executionId=_short(lifecycle.execution_id), installedAppId=lifecycle.installed_app_id)
        if verified is not None:
            if not services.store.claim(verified.replay_marker, ttl_seconds=REPLAY_TTL_SECONDS):
                reason = "replay_suppressed"
                return _json_response(envelope(lifecycle.name, {}))
            claimed_marker = verified.replay_marker
        context = Context(
            deadline=Deadline.after(REQUEST_BUDGET_SECONDS),
            target_url_of=lambda: settings.public_url or req.host_url.rstrip("/") + settings.public_path,
        )
        return _json_response(dispatch(lifecycle, services, context))
    except SmartAppError as error:
        status, reason = error.status, error.reason
        if error.detail:
            fields["detail"] = error.detail
        if claimed_marker is not None:
            _release(services, claimed_marker)
        return _error_response(status, reason)
    except Exception:  # noqa: BLE001 - the caller gets a generic 500, never the exception text
        status, reason = 500, "internal_error"
        log.exception("unhandled_error", extra={"reason": reason, **fields})
        if claimed_marker is not None:
            _release(services, claimed_marker)
        return _error_response(status, reason)
    finally:
        level = logging.WARNING if status >= 400 else logging.INFO
        log.log(level, "request", extra={
            **fields, "status": status, "reason": reason,
            "durationMs": round((time.perf_counter() - started) * 1000, 2),
        })


def _release(services: Services, marker: str) -> None:
    """The request failed: let an identical legitimate retry be processed later."""
    try:
        services.store.release_marker(marker)
    except StoreUnavailable:
        pass  # the marker expires on its own


def healthz() -> Response:
    return _json_response({"status": "ok"})


def readyz() -> Response:
    services: Services = current_app.extensions["smartapp"]
    try:
        services.store.ping()
    except StoreUnavailable:
        return _error_response(503, "store_unavailable")
    return _json_response({"status": "ready", "store": services.store.name})


def _http_error(error: HTTPException) -> Response:
    response = _error_response(error.code or 500, (error.name or "error").lower().replace(" ", "_"))
    if error.code == 405:
        response.headers["Allow"] = "POST"
    return response


def register(app: Flask, settings: Settings) -> None:
    """Mount the webhook at `/` and at the public path (behind a proxy that strips a prefix they differ)."""
    for rule in dict.fromkeys(["/", settings.public_path]):
        app.add_url_rule(rule, endpoint=f"webhook:{rule}", view_func=receive, methods=["POST"])
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/readyz", view_func=readyz, methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
