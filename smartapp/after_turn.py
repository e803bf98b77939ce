"""Run a callable once the event loop's current turn is over (gevent workers), or at once (threads, tests)."""

from __future__ import annotations

import sys
from typing import Any, Callable

_UNKNOWN = object()
_loop: Any = _UNKNOWN  # the gevent hub's loop of this process, None without gevent's patching


def patched_by_gevent() -> bool:
    """A gevent worker: the socket module waits by switching greenlets, and an event loop runs them."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("socket")


def _event_loop() -> Any:
    global _loop
    if _loop is _UNKNOWN:
        if patched_by_gevent():
            from gevent import get_hub

            _loop = get_hub().loop
        else:
            _loop = None
    return _loop


def call_after_turn(function: Callable[[], None]) -> bool:
    """Schedule `function` for when every greenlet made ready in this turn has run; False (not scheduled,
    the caller does it now) outside a gevent worker.

    Work that several requests of one turn each need done (writing their log lines) is then done once for
    all of them, still before the loop waits for anything. The loop runs `function` itself: it must not wait
    for a socket.
    """
    loop = _event_loop()
    if loop is None:
        return False
    loop.run_callback(function)
    return True
