"""Waiting for a per-installation lease (refresh lock) the same way on every backend."""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable


def poll_for_lock(try_take: Callable[[str], bool], *, wait_seconds: float) -> str | None:
    """Retry `try_take(owner)` under one random owner token until it succeeds or the wait is over."""
    owner = secrets.token_hex(16)
    deadline = time.monotonic() + max(0.0, wait_seconds)
    while not try_take(owner):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        # Jittered, so waiters on one installation do not retry in lockstep.
        time.sleep(min(remaining, 0.03 + random.random() * 0.04))
    return owner
