"""PING: echo the challenge and nothing else (the one unsigned lifecycle)."""

from __future__ import annotations

from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import Lifecycle, require_str


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    return {"challenge": require_str(lifecycle.data, "challenge")}
