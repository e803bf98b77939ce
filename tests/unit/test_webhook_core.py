"""The webhook's core on its own, without WSGI or Flask: (method, path, headers, body) in, (status, headers, body) out."""

from __future__ import annotations

import json

import pytest
from werkzeug.datastructures import Headers

from smartapp.keys import KeyResolver
from smartapp.signature import Verifier
from smartapp.webhook import Webhook
from tests.conftest import load_fixture

PING = load_fixture("ping.json")


@pytest.fixture
def webhook(make_app, cloud):
    services = make_app("sqlite", SMARTAPP_PUBLIC_PATH="/smartapp").extensions["smartapp"]
    resolver = KeyResolver(key_server=cloud.keys.url, share=services.store)
    return Webhook(services, Verifier(resolve_key=resolver.resolve, public_path="/smartapp"))


def json_headers(**more: str) -> Headers:
    return Headers({"Content-Type": "application/json", **more})


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/smartapp"])
def test_another_method_on_a_webhook_path_is_405_naming_post(webhook, method, path):
    status, headers, body = webhook.answer(method, path, json_headers(), json.dumps(PING).encode())
    assert status == 405
    assert dict(headers)["Allow"] == "POST"
    assert json.loads(body) == {"error": "method_not_allowed"}


def test_a_ping_is_answered_with_its_challenge(webhook):
    status, headers, body = webhook.answer("POST", "/", json_headers(), json.dumps(PING).encode())
    assert status == 200
    assert dict(headers)["Content-Type"] == "application/json"
    assert dict(headers)["Content-Length"] == str(len(body))
    assert json.loads(body) == {"pingData": {"challenge": PING["pingData"]["challenge"]}}


def test_a_path_the_webhook_does_not_own_is_404(webhook):
    status, _, body = webhook.answer("POST", "/elsewhere", json_headers(), json.dumps(PING).encode())
    assert status == 404 and json.loads(body) == {"error": "not_found"}


def test_an_unsigned_lifecycle_is_401(webhook):
    status, _, body = webhook.answer("POST", "/", json_headers(), json.dumps(load_fixture("execute.json")).encode())
    assert status == 401 and json.loads(body) == {"error": "unauthorized"}


def test_a_signed_lifecycle_is_verified_against_the_headers_given(webhook, signer):
    raw = json.dumps(load_fixture("execute.json")).encode()
    status, _, body = webhook.answer("POST", "/smartapp", json_headers(**signer.headers(raw, path="/smartapp")), raw)
    assert status == 200, body
