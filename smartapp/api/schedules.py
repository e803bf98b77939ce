"""`api.schedules`: timers that come back as TIMER_EVENTs by name (once, after a delay, daily, cron)."""

from __future__ import annotations

import math
from datetime import datetime, time as time_of_day
from typing import Any, Callable

from smartapp.api.caller import ApiCaller, segment
from smartapp.api.devices import JsonObjects
from smartapp.api.installation import Installation


def _epoch_ms(when: datetime | float, name: str) -> int:
    # A naive datetime is local time, as datetime.timestamp() reads it.
    seconds = when.timestamp() if isinstance(when, datetime) else when
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise TypeError(f"schedule {name!r}: `when` is a datetime or epoch seconds")
    return int(round(seconds * 1000))


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("a schedule name must be a non-empty string")
    return name


class Schedules:
    def __init__(self, caller: ApiCaller, installation: Installation, *, clock: Callable[[], float]) -> None:
        self._caller = caller
        self._installation = installation
        self._clock = clock

    def run_once(self, name: str, when: datetime | float) -> dict[str, Any]:
        """One TIMER_EVENT `name` at `when` (a datetime, or epoch seconds), replacing a pending one of that name."""
        body = {"name": _check_name(name), "once": {"time": _epoch_ms(when, name), "overwrite": True}}
        return self._create(body)

    def run_in(self, name: str, seconds: float) -> dict[str, Any]:
        """One TIMER_EVENT `name` after `seconds`, replacing a pending one of that name."""
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0 \
                or not math.isfinite(seconds):
            raise ValueError(f"schedule {name!r}: the delay must be a finite number of seconds, 0 or more")
        return self.run_once(name, self._clock() + seconds)

    def run_daily(self, name: str, at: time_of_day | datetime, *, timezone: str | None = None) -> dict[str, Any]:
        """A TIMER_EVENT `name` every day at `at`'s hour and minute, as the location's clocks show them.

        `at` is a time of day or a TIME setting's datetime: its wall-clock reading is what the user chose,
        so its UTC offset (the phone's, when it was picked) is not applied.
        """
        if not isinstance(at, (time_of_day, datetime)):
            raise TypeError(f"schedule {name!r}: `at` is a datetime.time or a datetime")
        return self.schedule(name, f"{at.minute} {at.hour} * * ? *", timezone=timezone)

    def schedule(self, name: str, cron_expression: str, timezone: str | None = None) -> dict[str, Any]:
        """A TIMER_EVENT `name` on a Quartz cron without seconds ("30 7 * * ? *"), in `timezone` or the location's."""
        if not isinstance(cron_expression, str) or not cron_expression.strip():
            raise ValueError(f"schedule {name!r}: the cron expression must be a non-empty string")
        body = {"name": _check_name(name),
                "cron": {"expression": cron_expression.strip(), "timezone": timezone or self._installation.time_zone()}}
        return self._create(body)

    def list(self) -> JsonObjects:
        return self._caller.items(self._path)

    def delete(self, name: str) -> None:
        """Delete one schedule; one that already fired or never existed is not an error."""
        self._caller.call("DELETE", f"{self._path}/{segment(name)}", accept=(404,))

    def delete_all(self) -> None:
        self._caller.call("DELETE", self._path)

    @property
    def _path(self) -> str:
        return self._installation.path + "/schedules"

    def _create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self._caller.call_object("POST", self._path, json=body)
