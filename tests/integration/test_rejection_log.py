"""Rejected requests through the webhook: logged up to a cap per reason and second, the rest counted in one line."""

from __future__ import annotations

import time

import pytest

from smartapp.rejection_log import LINES_PER_REASON
from tests.conftest import load_fixture
from tests.support.webhook_client import post_signed


@pytest.fixture
def app(make_app):
    return make_app("sqlite")


def request_lines(log) -> list:
    return [record for record in log.records if record.getMessage() == "request"]


@pytest.mark.slow
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
