"""The log formats: secrets scrubbed from text, one line per record, each JSON record's own timestamp."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import time

import pytest

from smartapp import logs


@pytest.mark.parametrize("secret,text", [
    ("eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", "token eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"),
    ("abc123secret", "Authorization: Bearer abc123secret"),
    ("s3cr3t-code", "urlPath=code=s3cr3t-code&state=x"),
    ("gAAAAABlongfernettokenvalue", "value gAAAAABlongfernettokenvalue"),
    ("topsecret", '{"refresh_token": "topsecret"}'),
])
def test_scrubber_removes_token_shapes(secret, text):
    assert secret not in logs.scrub(text)


def test_text_format_is_one_line(capsys):
    logs.configure("text")
    try:
        logging.getLogger("smartapp.test").warning("hello\nforged", extra={"reason": "x\ny"})
    finally:
        logs.configure("json")
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "forged" in out


def test_json_timestamps_are_each_records_own_even_out_of_order():
    formatter = logs.JsonFormatter()
    # Forward, back a second (threads finish out of order), across a minute and across midnight.
    for when in (1764374400.123, 1764374401.5, 1764374400.999, 1764374459.001, 1764374460.0, 1764460799.75,
                 1764460800.0):
        record = logging.makeLogRecord({"name": "smartapp.test", "levelno": logging.INFO, "levelname": "INFO",
                                        "msg": "tick", "created": when, "msecs": (when % 1) * 1000})
        stamp = json.loads(formatter.format(record))["time"]
        expected = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(when))) + f".{int((when % 1) * 1000):03d}Z"
        assert stamp == expected


@pytest.fixture
def json_stream():
    """configure("json") to a string; pytest's own capture handlers are set aside while the test runs."""
    stream = io.StringIO()
    logs.configure("json", stream=stream)
    yield stream
    logs.configure("json")


@contextlib.contextmanager
def only_configured_handler():
    """pytest adds its capture handlers to the `smartapp` logger as a test starts: without them for a while."""
    package = logging.getLogger("smartapp")
    captures = [handler for handler in package.handlers if not getattr(handler, "_smartapp", False)]
    for handler in captures:
        package.removeHandler(handler)
    try:
        yield
    finally:
        for handler in captures:
            package.addHandler(handler)


REQUEST_FIELDS = {"lifecycle": "EVENT", "executionId": "0d6d8b2f-9f5a-4a43-9b0e-2f3a64e8b7c1",
                  "installedAppId": "5f8a7c2e-3d1b-4e6f-9a0c-7b2d1e4f6a8c", "detail": "caf\u00e9\n{\"forged\": 1}",
                  "status": 400, "reason": None, "durationMs": 1.25, "counts": {"a": 1}, "flag": True}


def test_the_direct_request_line_is_the_formatters_line(json_stream):
    with only_configured_handler():
        write_both_ways()
    direct, through_logging = json_stream.getvalue().splitlines()
    assert direct.split('"level"')[1] == through_logging.split('"level"')[1]  # all but the time
    assert json.loads(direct) == {**json.loads(through_logging), "time": json.loads(direct)["time"]}
    assert json.loads(direct)["detail"] == REQUEST_FIELDS["detail"] and direct.isascii()


def write_both_ways() -> None:
    ids = logs._request_ids.set({"requestId": "a1b2c3d4e5f6", "correlationId": "corr-1"})
    made = logging.getLogRecordFactory()
    records: list[logging.LogRecord] = []
    logging.setLogRecordFactory(lambda *args, **kwargs: records.append(made(*args, **kwargs)) or records[-1])
    try:
        logs.log_request(logging.WARNING, dict(REQUEST_FIELDS))
        assert records == []  # written straight to the stream
        # A filter on the logger takes the line through logging and JsonFormatter instead.
        logging.getLogger("smartapp.request").addFilter(lambda record: True)
        try:
            logs.log_request(logging.WARNING, dict(REQUEST_FIELDS))
        finally:
            logging.getLogger("smartapp.request").filters.clear()
        assert len(records) == 1
    finally:
        logging.setLogRecordFactory(made)
        logs._request_ids.reset(ids)


def test_the_direct_request_line_is_scrubbed(json_stream):
    with only_configured_handler():
        logs.log_request(logging.INFO, {"detail": "Authorization: Bearer abc123secret", "state": "s3cr3t"})
    line = json_stream.getvalue()
    assert "abc123secret" not in line and "s3cr3t" not in line and line.count("\n") == 1


def test_a_request_line_below_the_level_is_not_written(json_stream):
    logging.getLogger("smartapp").setLevel(logging.WARNING)
    with only_configured_handler():
        logs.log_request(logging.INFO, {"status": 200})
    assert json_stream.getvalue() == ""


def test_the_request_line_goes_through_logging_for_an_added_handler(json_stream):
    seen: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = seen.append  # type: ignore[method-assign]
    logging.getLogger("smartapp.request").addHandler(handler)
    try:
        with only_configured_handler():
            logs.log_request(logging.INFO, {"status": 200})
    finally:
        logging.getLogger("smartapp.request").removeHandler(handler)
    assert [record.status for record in seen] == [200]  # type: ignore[attr-defined]
    assert json.loads(json_stream.getvalue())["status"] == 200  # and still to the configured stream


class CountingStream(io.StringIO):
    """A string stream that counts its writes."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_request_lines_of_one_turn_leave_in_one_write_at_its_end(gevent_turns):
    stream = CountingStream()
    logs.configure("json", stream=stream)
    try:
        with only_configured_handler():
            logs.log_request(logging.INFO, {"status": 200, "lifecycle": "EVENT"})
            logs.log_request(logging.WARNING, {"status": 401, "reason": "bad_signature"})
            assert stream.getvalue() == ""  # waiting for the end of the turn
            gevent_turns.sleep(0)
    finally:
        logs.configure("json")
    assert [json.loads(line)["status"] for line in stream.getvalue().splitlines()] == [200, 401]
    assert stream.writes == 1


def test_a_line_through_logging_writes_the_waiting_request_lines_first(gevent_turns):
    stream = CountingStream()
    logs.configure("json", stream=stream)
    try:
        with only_configured_handler():
            logs.log_request(logging.INFO, {"status": 200})
            logging.getLogger("smartapp.request").warning("replay_marker_not_completed")
            gevent_turns.sleep(0)  # nothing left to write
    finally:
        logs.configure("json")
    assert [json.loads(line)["message"] for line in stream.getvalue().splitlines()] == [
        "request", "replay_marker_not_completed"]


def test_outside_gevent_each_request_line_is_written_at_once(json_stream):
    with only_configured_handler():
        logs.log_request(logging.INFO, {"status": 200})
        assert json.loads(json_stream.getvalue())["status"] == 200
