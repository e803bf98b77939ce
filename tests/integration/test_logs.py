"""Request logging: one JSON line per request with ids and reason, never a secret, never a forged line."""

from __future__ import annotations

import io
import json
import logging

import pytest

from smartapp import logs
from tests.conftest import load_fixture
from tests.support.webhook_client import post_signed


@pytest.fixture
def log_lines(make_app):
    stream = io.StringIO()
    app = make_app("sqlite")
    logs.configure("json", stream=stream)
    yield app, lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logs.configure("json")


def test_one_json_line_per_request_with_ids(log_lines, signer):
    app, lines = log_lines
    body = load_fixture("install_pysmartapp.json")
    response = post_signed(app.test_client(), signer, body)
    assert response.status_code == 200
    (entry,) = [line for line in lines() if line["message"] == "request"]
    assert entry["lifecycle"] == "INSTALL"
    assert entry["executionId"] == body["executionId"]
    assert entry["installedAppId"] == body["installData"]["installedApp"]["installedAppId"]
    assert entry["correlationId"] == "corr-test-0001"
    assert entry["status"] == 200 and entry["durationMs"] >= 0


def test_rejections_log_a_reason_code_and_no_secret(log_lines, signer):
    app, lines = log_lines
    body = load_fixture("install_pysmartapp.json")
    headers = signer.headers(body, now=0)
    response = app.test_client().post("/", json=body, headers=headers)
    assert response.status_code == 401
    (entry,) = [line for line in lines() if line["message"] == "request"]
    assert entry["reason"] == "date_out_of_window"
    text = "\n".join(json.dumps(line) for line in lines())
    for secret in (body["installData"]["authToken"], body["installData"]["refreshToken"],
                   headers["Authorization"].split('signature="')[1][:20]):
        assert secret not in text


def test_a_hostile_execution_id_cannot_forge_a_log_line(log_lines, signer):
    app, lines = log_lines
    body = load_fixture("execute.json")
    body["executionId"] = "x\n{\"level\": \"info\", \"message\": \"install_ok\"}"
    post_signed(app.test_client(), signer, body)
    assert not any(line["message"] == "install_ok" for line in lines())
