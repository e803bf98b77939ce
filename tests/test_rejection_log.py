"""Rejected requests are logged up to a cap per reason and second; the rest are counted in one summary line."""

from __future__ import annotations

import time

import pytest

from smartapp.rejection_log import LINES_PER_REASON, RejectionLogLimit
from tests.conftest import load_fixture
from tests.fakes.clock import FakeClock
from tests.webhook_client import post_signed


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


@pytest.fixture
def app(make_app):
    return make_app("sqlite")


def request_lines(log) -> list:
    return [record for record in log.records if record.getMessage() == "request"]


def test_a_flood_of_forged_requests_logs_a_few_lines_and_a_count(client, signer, smartapp_log):
    body = load_fixture("install.json")
    limit = LINES_PER_REASON
    for _ in range(limit + 15):
        assert post_signed(client, signer, body, signature="AAAA" * 86 + "AA==").status_code == 401
    rejected = [r for r in request_lines(smartapp_log) if r.status == 401]
    assert len(rejected) == limit and {r.reason for r in rejected} == {"bad_signature"}

    time.sleep(1.05)  # the interval ends; the next request of any kind reports it
    assert client.post("/", json=load_fixture("ping.json")).status_code == 200
    summaries = [r for r in smartapp_log.records if r.getMessage() == "rejections_not_logged"]
    # One summary, or two if the burst straddled an interval's end: every unlogged rejection is counted.
    assert summaries and sum(r.counts["bad_signature"] for r in summaries) == 15
    assert all(r.requestId is None for r in summaries)  # not the id of the request it was written with
    assert [r.status for r in request_lines(smartapp_log)][-1] == 200


@pytest.mark.parametrize("key_id", ["/SmartThings/00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff", "/pl/not valid/zz"])
def test_forged_key_ids_rejected_without_a_fetch_are_capped_too(client, signer, smartapp_log, key_id):
    body = load_fixture("install.json")
    for _ in range(LINES_PER_REASON + 30):
        assert post_signed(client, signer, body, key_id=key_id).status_code == 401
    messages = [record.getMessage().split(" key_id")[0] for record in smartapp_log.records]
    assert {message: messages.count(message) for message in set(messages)} == {
        "request": LINES_PER_REASON, messages[0]: LINES_PER_REASON}
    assert messages[0].startswith("key_rejected reason=")


def test_answered_requests_are_never_capped(client, smartapp_log):
    for _ in range(40):
        assert client.post("/", json=load_fixture("ping.json")).status_code == 200
    assert len(request_lines(smartapp_log)) == 40
