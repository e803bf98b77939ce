"""A request's time budget, so remote calls together stay inside SmartThings' 10 s limit."""

from __future__ import annotations

import time
from dataclasses import dataclass

from smartapp.errors import UpstreamUnavailable


@dataclass(frozen=True)
class Deadline:
    ends_at: float  # time.monotonic() value

    @classmethod
    def after(cls, seconds: float) -> "Deadline":
        return cls(time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.ends_at - time.monotonic()

    def timeout(self, *, cap: float) -> float:
        """A per-call timeout no longer than `cap` nor than what is left; none left raises."""
        left = self.remaining()
        if left <= 0.05:
            raise UpstreamUnavailable("deadline_exceeded")
        return min(cap, left)
