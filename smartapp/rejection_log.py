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
        self._interval_ends = self._next_report = clock() + interval_seconds
        self._logged: dict[str, int] = {}
        self._unlogged: dict[str, int] = {}

    def admit(self, reason: str) -> bool:
        """Whether this rejection gets its own log line; if not, it is counted for the next report."""
        now = self._clock()
        with self._lock:
            if now >= self._interval_ends:
                self._logged, self._interval_ends = {}, now + self.interval_seconds
            logged = self._logged.get(reason, 0)
            if logged < self.lines_per_reason:
                self._logged[reason] = logged + 1
                return True
            self._unlogged[reason] = self._unlogged.get(reason, 0) + 1
            return False

    def unlogged_report(self) -> dict[str, int]:
        """At most once per interval: the rejections not logged since the last report, per reason ({} if none).

        Owners that never ask (per-request detail lines) simply drop what is over the cap.
        """
        if not self._unlogged:  # every request asks: no clock read and no lock in the usual case
            return {}
        now = self._clock()
        if now < self._next_report:
            return {}
        with self._lock:
            if now < self._next_report:
                return {}
            unlogged, self._unlogged = self._unlogged, {}
            self._next_report = now + self.interval_seconds
        return unlogged
