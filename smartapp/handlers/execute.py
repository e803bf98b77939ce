"""EXECUTE: a request/response call from a SmartThings client; this app has nothing to compute."""

from __future__ import annotations

from smartapp.errors import MalformedRequest
from smartapp.lifecycle import Lifecycle
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    parameters = lifecycle.data.get("parameters", {})
    if not isinstance(parameters, dict):
        raise MalformedRequest("malformed_request", "executeData.parameters is not an object")
    return {}
