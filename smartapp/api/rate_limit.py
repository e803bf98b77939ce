"""How long a 429 from SmartThings asks the caller to wait, read from its reset headers."""

from __future__ import annotations

import math
from email.utils import parsedate_to_datetime
from typing import Mapping

# x-ratelimit-reset is documented as seconds until the reset; some answers carry the reset moment itself.
# No wait worth considering is this many seconds long, so larger numbers are read as a moment.
_EPOCH_MS_FROM = 1e12
_EPOCH_SECONDS_FROM = 1e9


def _number(text: str | None) -> float | None:
    if text is None:
        return None
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) and value >= 0 else None


def _reset_wait(value: float, now: float) -> float:
    if value >= _EPOCH_MS_FROM:
        return max(0.0, value / 1000 - now)
    if value >= _EPOCH_SECONDS_FROM:
        return max(0.0, value - now)
    return value


def _retry_after_wait(text: str, now: float) -> float | None:
    seconds = _number(text)
    if seconds is not None:
        return seconds
    try:
        moment = parsedate_to_datetime(text)  # the HTTP-date form
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def wait_seconds(headers: Mapping[str, str], *, now: float) -> float | None:
    """Seconds to wait before a retry, or None when the answer does not say; `now` is epoch seconds."""
    reset = _number(headers.get("x-ratelimit-reset"))
    if reset is not None:
        return _reset_wait(reset, now)
    retry_after = headers.get("retry-after")
    return None if retry_after is None else _retry_after_wait(retry_after, now)
