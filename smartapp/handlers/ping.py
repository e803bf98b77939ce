"""PING: echo the challenge and nothing else (the one unsigned lifecycle)."""

from __future__ import annotations

from smartapp.lifecycle import Lifecycle, require_str
from smartapp.services import Context, Services


def handle(lifecycle: Lifecycle, services: Services, context: Context) -> dict:
    return {"challenge": require_str(lifecycle.data, "challenge")}
