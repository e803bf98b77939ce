"""The cap on rejection lines: so many per reason and interval, the rest reported once per interval as counts."""

from __future__ import annotations

import pytest

from smartapp.rejection_log import RejectionLogLimit
from tests.support.clock import FakeClock


def test_each_reason_has_its_own_cap_per_interval():
    clock = FakeClock(1000.0)
    limit = RejectionLogLimit(lines_per_reason=3, interval_seconds=1.0, clock=clock)
    assert [limit.admit("bad_signature") for _ in range(5)] == [True, True, True, False, False]
    assert limit.admit("date_out_of_window") is True
    clock.now += 1.01
    # A new interval, a new allowance, whether or not anyone asked for a report in between.
    assert [limit.admit("bad_signature") for _ in range(4)] == [True, True, True, False]


def test_unlogged_rejections_are_reported_at_most_once_per_interval():
    clock = FakeClock(1000.0)
    limit = RejectionLogLimit(lines_per_reason=1, interval_seconds=1.0, clock=clock)
    assert limit.unlogged_report() == {}
    for reason in ("bad_signature", "bad_signature", "bad_signature", "invalid_key_id", "invalid_key_id"):
        limit.admit(reason)
    clock.now += 0.99
    assert limit.unlogged_report() == {}  # the interval is not over
    clock.now += 0.02
    assert limit.unlogged_report() == {"bad_signature": 2, "invalid_key_id": 1}
    assert limit.unlogged_report() == {}  # reported once
    assert [limit.admit("bad_signature") for _ in range(2)] == [True, False]  # a new interval: one line, one over
    assert limit.unlogged_report() == {}  # the next report waits for the next interval
    clock.now += 1.0
    assert limit.unlogged_report() == {"bad_signature": 1}


def test_an_interval_without_unlogged_rejections_reports_nothing():
    clock = FakeClock(1000.0)
    limit = RejectionLogLimit(lines_per_reason=3, interval_seconds=1.0, clock=clock)
    limit.admit("bad_signature")
    clock.now += 5
    assert limit.unlogged_report() == {}


def test_the_key_resolver_logs_a_rejected_key_id_again_in_a_later_second(smartapp_log):
    """Its cap is only ever asked to admit: it must still start a new allowance every interval."""
    from smartapp.errors import SignatureError
    from smartapp.keys import KeyResolver

    clock = FakeClock(1000.0)
    resolver = KeyResolver(key_server="http://127.0.0.1:9")
    resolver._rejection_log = RejectionLogLimit(lines_per_reason=2, interval_seconds=1.0, clock=clock)

    def rejected_lines_after(attempts: int) -> int:
        for _ in range(attempts):
            with pytest.raises(SignatureError):
                resolver.resolve("/pl/not valid/zz")
        return sum(r.getMessage().startswith("key_rejected reason=invalid_key_id") for r in smartapp_log.records)

    assert rejected_lines_after(3) == 2
    clock.now += 1.5
    assert rejected_lines_after(1) == 3
