"""The routes Flask serves beside the webhook: liveness, readiness, and JSON for Flask's own 404s and 405s."""

from __future__ import annotations

from flask import Flask, Response
from werkzeug.exceptions import HTTPException

from smartapp.errors import StoreUnavailable
from smartapp.handlers.services import Services
from smartapp.webhook.core import RETRY_AFTER_SECONDS, json_body


def _json_response(body: dict, status: int = 200) -> Response:
    return Response(json_body(body), status=status, mimetype="application/json")


def healthz() -> Response:
    return _json_response({"status": "ok"})


class Readiness:
    """`/readyz`: ready while the store takes a write; 503 with Retry-After while it does not."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(self) -> Response:
        store = self.services.store
        try:
            store.ping()
        except StoreUnavailable:
            response = _json_response({"error": "store_unavailable"}, 503)
            response.headers["Retry-After"] = RETRY_AFTER_SECONDS
            return response
        return _json_response({"status": "ready", "store": store.name})


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    response = _json_response({"error": (error.name or "error").lower().replace(" ", "_")}, status)
    if error.code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(error.valid_methods)
    return response


def register(app: Flask, services: Services) -> None:
    """Add the health routes to `app`, and answer its HTTP errors as JSON."""
    app.add_url_rule("/healthz", view_func=healthz, methods=["GET"])
    app.add_url_rule("/readyz", endpoint="readyz", view_func=Readiness(services), methods=["GET"])
    app.register_error_handler(HTTPException, _http_error)
