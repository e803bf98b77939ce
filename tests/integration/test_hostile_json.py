"""Input deep enough to exhaust a recursive parser is a 400, and a 500 that does happen writes a bounded, capped log."""

from __future__ import annotations

import json
import sys
import time

import pytest

from smartapp import logs
from smartapp.errors import MalformedRequest
from smartapp.handlers import dispatch
from smartapp.jsonbody import MAX_DEPTH, parse_json
from smartapp.rejection_log import LINES_PER_REASON
from tests.conftest import load_fixture
from tests.support.webhook_client import post_signed


def nested(depth: int, leaf: str = '"\\ud800"') -> bytes:
    """A PING whose challenge sits inside `depth` levels of lists and objects, alternating."""
    opening = ["[" if level % 2 else '{"a":' for level in reversed(range(depth))]
    closing = ["]" if level % 2 else "}" for level in range(depth)]
    inner = "".join(opening) + leaf + "".join(closing)
    return f'{{"lifecycle":"PING","pingData":{{"challenge":"c"}},"x":{inner}}}'.encode()


@pytest.fixture
def app(make_app):
    return make_app("sqlite")


@pytest.mark.parametrize("depth", [325, 990, 5000, 200_000])
def test_a_deep_unsigned_ping_with_a_lone_surrogate_is_400(client, smartapp_log, depth):
    response = client.post("/", data=nested(depth), headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.get_json() == {"error": "malformed_json"}
    assert not [r for r in smartapp_log.records if r.exc_info]


@pytest.mark.parametrize("depth", [325, 990])
def test_a_deep_signed_request_is_400(client, signer, store, depth):
    assert post_signed(client, signer, nested(depth, leaf='"fine"')).status_code == 400


def test_nesting_up_to_the_limit_is_accepted_and_one_more_level_is_not():
    # The document itself is the first level.
    assert parse_json(nested(MAX_DEPTH - 1, leaf="1"))["pingData"] == {"challenge": "c"}
    with pytest.raises(MalformedRequest, match="malformed_json"):
        parse_json(nested(MAX_DEPTH, leaf="1"))


def test_the_checks_never_recurse():
    """With almost no recursion left, the walk over a parsed document still finishes."""
    from smartapp.jsonbody import _problem

    deep: list = ["\ud800"]
    for _ in range(5000):
        deep = [deep]
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(__import__("inspect").stack()) + 20)
    try:
        found = _problem(deep, surrogates=True), _problem({"a": [{"\udc00": 1}]}, surrogates=True)
    finally:
        sys.setrecursionlimit(limit)
    assert found == ("nested too deeply", "unpaired surrogate")


def test_a_lone_surrogate_in_a_key_is_found_too():
    with pytest.raises(MalformedRequest) as raised:
        parse_json(b'{"lifecycle":"PING","a":[{"\\udc00":1}]}')
    assert raised.value.detail == "unpaired surrogate"


def test_a_paired_surrogate_is_fine():
    assert parse_json(b'{"x":["\\ud83d\\ude00"]}') == {"x": ["\U0001F600"]}


# --- a 500 that does happen --------------------------------------------------------------------

def recurse(depth: int) -> None:
    recurse(depth + 1)


@pytest.mark.slow
def test_a_500_logs_a_bounded_traceback_capped_per_interval(client, smartapp_log, monkeypatch):
    def bug(lifecycle, services, context):
        recurse(0)

    monkeypatch.setitem(dispatch.HANDLERS, "PING", bug)
    sent = LINES_PER_REASON + 20
    for _ in range(sent):
        response = client.post("/", json=load_fixture("ping.json"))
        assert response.status_code == 500 and response.get_json() == {"error": "internal_error"}
    failed = [r for r in smartapp_log.records if getattr(r, "status", None) == 500]
    assert len(failed) == LINES_PER_REASON
    assert all(r.exc_info and r.reason == "internal_error" for r in failed)
    text = logs.bounded_traceback(failed[0].exc_info)
    assert len(text) <= logs.TRACEBACK_CHARS + 100
    assert "RecursionError" in text and "recurse(depth + 1)" in text

    time.sleep(1.05)  # the interval ends; the next request reports what was not logged
    assert client.post("/", json={"lifecycle": "PING", "pingData": {"challenge": "x"}}).status_code == 500
    summaries = [r for r in smartapp_log.records if r.getMessage() == "rejections_not_logged"]
    assert sum(r.counts.get("internal_error", 0) for r in summaries) == sent - LINES_PER_REASON


def test_the_formatters_cut_a_huge_exception_to_the_bound():
    import logging

    try:
        raise ValueError("x" * 200_000)
    except ValueError:
        record = logging.LogRecord("smartapp.request", logging.ERROR, __file__, 1, "request", None, sys.exc_info())
    for formatter in (logs.JsonFormatter(), logs.TextFormatter()):
        line = formatter.format(record)
        assert len(line) < logs.TRACEBACK_CHARS + 300
        assert "characters cut" in line and "ValueError" in line
