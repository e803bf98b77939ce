"""A per-process cap on log lines for rejected requests, so a flood of bad requests cannot flood the logs."""

from __future__ import annotations

import threading
import time
from typing import Callable

# Enough lines in every second to diagnose a real problem (a skewed clock, a wrong target URL), while a
# flood of forged requests costs a summary line per second instead of a line (and its CPU) per request.
LINES_PER_REASON = 10
INTERVAL_SECONDS = 1.0


class RejectionLogLimit:
    """Lets the first few rejections of each reason in every interval be logged, and counts the rest."""

    def __init__(self, *, lines_per_reason: int = LINES_PER_REASON, interval_seconds: float = INTERVAL_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.lines_per_reason = lines_per_reason
        self.interval_seconds = interval_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._interval_ends = clock() + interval_seconds
        self._logged: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}

    def finished_interval(self) -> dict[str, int]:
        """Once an interval is over: how many rejections per reason it did not log (once; {} if none)."""
        now = self._clock()
        if now < self._interval_ends:  # every request asks: no lock until an interval is over
            return {}
        with self._lock:
            if now < self._interval_ends:
                return {}
            unlogged, self._unlogged, self._logged = self._unlogged, {}, {}
            self._interval_ends = now + self.interval_seconds
        return unlogged

    def admit(self, reason: str) -> bool:
        """Whether this rejection gets its own log line; if not, it is counted for the summary."""
        with self._lock:
            logged = self._logged.get(reason, 0)
            if logged < self.lines_per_reason:
                self._logged[reason] = logged + 1
                return True
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return False
