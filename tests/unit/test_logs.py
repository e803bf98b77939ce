"""The log formats: secrets scrubbed from text, one line per record, each JSON record's own timestamp."""

from __future__ import annotations

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
