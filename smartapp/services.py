"""What handlers work with: the long-lived services built once by the app factory, and per-request context."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from smartapp.deadline import Deadline
from smartapp.settings import Settings
from smartapp.smartthings import SmartThingsClient
from smartapp.store import Store


@dataclass(frozen=True)
class Services:
    store: Store
    smartthings: SmartThingsClient
    settings: Settings
    clock: Callable[[], float]


@dataclass(frozen=True)
class Context:
    """Per request: the time budget for remote calls and the public URL SmartThings called."""

    deadline: Deadline
    target_url: str
