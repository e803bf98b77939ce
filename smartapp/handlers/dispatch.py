"""The one table from lifecycle wire name to handler, and the envelope each answer is wrapped in."""

from __future__ import annotations

from typing import Callable

from smartapp.handlers import (
    configuration, confirmation, event, execute, install, oauth_callback, ping, uninstall, update,
)
from smartapp.handlers.services import RequestInfo, Services
from smartapp.lifecycle import ENVELOPE_KEYS, Lifecycle

Handler = Callable[[Lifecycle, Services, RequestInfo], dict]

HANDLERS: dict[str, Handler] = {
    "PING": ping.handle,
    "CONFIRMATION": confirmation.handle,
    "CONFIGURATION": configuration.handle,
    "INSTALL": install.handle,
    "UPDATE": update.handle,
    "UNINSTALL": uninstall.handle,
    "EVENT": event.handle,
    "OAUTH_CALLBACK": oauth_callback.handle,
    "EXECUTE": execute.handle,
}


def envelope(name: str, inner: dict) -> dict:
    key = ENVELOPE_KEYS[name]
    return inner if key is None else {key: inner}


def dispatch(lifecycle: Lifecycle, services: Services, request: RequestInfo) -> dict:
    """Run the lifecycle's handler and wrap its inner data (`installData`, `eventData`, ...)."""
    return envelope(lifecycle.name, HANDLERS[lifecycle.name](lifecycle, services, request))
