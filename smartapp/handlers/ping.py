"""PING: echo the challenge and nothing else (the one unsigned lifecycle)."""

from __future__ import annotations

from smartapp.lifecycle import Lifecycle, require_str
from smartapp.services import RequestInfo, Services


def handle(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    return {"challenge": require_str(lifecycle.data, "challenge")}
