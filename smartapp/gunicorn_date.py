"""gunicorn's `Date` response header, formatted once a second instead of once per response."""

from __future__ import annotations

import email.utils
import time

from gunicorn import util

_original_http_date = util.http_date
_last: tuple[int, str] = (-1, "")  # (whole second, its text), replaced whole so threads never see half of it


def http_date(timestamp: float | None = None) -> str:
    """The header text for `timestamp`, by default now; the same text all through one second."""
    global _last
    if timestamp is not None:
        return _original_http_date(timestamp)
    second = int(time.time())
    cached_second, text = _last
    if second != cached_second:
        text = email.utils.formatdate(second, usegmt=True)
        _last = (second, text)
    return text


def install() -> None:
    """Make gunicorn's responses take the cached text (called in each worker, from the config)."""
    util.http_date = http_date
