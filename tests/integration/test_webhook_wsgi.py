"""The webhook's own WSGI path at the edges: routing past Flask, transport checks, streams and response headers."""

from __future__ import annotations

import io
import json

import pytest
from werkzeug.datastructures import Headers
from werkzeug.test import EnvironBuilder

from testbed.redis_server import free_port
from tests.conftest import load_fixture
from tests.support.webhook_client import post_signed

PING = load_fixture("ping.json")
CHALLENGE = {"pingData": {"challenge": PING["pingData"]["challenge"]}}
LIMIT = 512


@pytest.fixture
def app(make_app):
    return make_app("sqlite", SMARTAPP_MAX_BODY_BYTES=str(LIMIT))


class Unreadable(io.RawIOBase):
    """A request stream that nobody may read: on a real socket this read would wait for a body that never comes."""

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        raise AssertionError(f"the webhook read a stream it cannot know the end of (size={size})")

    readinto = readline = read


def post_environ(body: bytes = b"", *, path: str = "/", **changes) -> dict:
    """A WSGI environ for a POST of `body`, with entries replaced (None removes one)."""
    environ = EnvironBuilder(method="POST", path=path, data=body, content_type="application/json").get_environ()
    for name, value in changes.items():
        if value is None:
            environ.pop(name, None)
        else:
            environ[name] = value
    return environ


def call(app, environ: dict) -> tuple[int, Headers, bytes]:
    """Runs the whole WSGI stack (Flask's __call__, the middlewares, the webhook) on a hand-built environ."""
    answer = {}

    def start_response(status: str, headers: list, exc_info=None):
        answer.update(status=int(status.split(" ", 1)[0]), headers=Headers(headers))

    body = b"".join(app(environ, start_response))
    return answer["status"], answer["headers"], body


def padded_ping(size: int) -> bytes:
    raw = json.dumps(PING).encode()
    return raw[:-1] + b" " * (size - len(raw)) + b"}"


@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "DELETE"])
def test_other_methods_on_the_webhook_path_are_405_naming_post(client, method):
    response = client.open("/", method=method, json=PING if method == "PUT" else None)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.mimetype == "application/json"
    if method != "HEAD":
        assert response.get_json() == {"error": "method_not_allowed"}


def test_options_on_the_webhook_path_is_a_json_405_too(client):
    response = client.options("/")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert response.get_json() == {"error": "method_not_allowed"}


def test_a_405_elsewhere_names_that_route_s_own_methods(client):
    response = client.post("/healthz", json=PING)
    assert response.status_code == 405
    assert "POST" not in response.headers["Allow"] and "GET" in response.headers["Allow"]


def test_other_methods_on_the_public_path_are_405_too(make_app):
    client = make_app("sqlite", SMARTAPP_PUBLIC_PATH="/smartapp").test_client()
    response = client.get("/smartapp")
    assert response.status_code == 405 and response.headers["Allow"] == "POST"
    assert client.post("/smartapp", json=PING).get_json() == CHALLENGE


@pytest.mark.parametrize("path", ["/nope", "/smartapp", "/healthz/"])
def test_a_post_to_an_unknown_path_is_404_not_the_webhook(client, path):
    response = client.post(path, json=PING)
    assert response.status_code == 404
    assert response.get_json() == {"error": "not_found"}


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON",
                                          "application/json ; charset=UTF-8"])
def test_json_with_parameters_or_other_case_is_accepted(client, content_type):
    response = client.post("/", data=json.dumps(PING), headers={"Content-Type": content_type})
    assert response.status_code == 200
    assert response.get_json() == CHALLENGE


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded",
                                          "application/jsonx", "application/json-patch+json"])
def test_a_body_that_is_not_declared_json_is_415(client, content_type):
    response = client.post("/", data=json.dumps(PING), headers={"Content-Type": content_type})
    assert response.status_code == 415
    assert response.get_json() == {"error": "unsupported_media_type"}


def test_a_missing_content_type_is_415(app):
    status, _, body = call(app, post_environ(json.dumps(PING).encode(), CONTENT_TYPE=None))
    assert status == 415 and json.loads(body) == {"error": "unsupported_media_type"}


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br", "identity, gzip"])
def test_a_compressed_body_is_415_with_its_reason(client, encoding):
    response = client.post("/", json=PING, headers={"Content-Encoding": encoding})
    assert response.status_code == 415
    assert response.get_json() == {"error": "unsupported_content_encoding"}


def test_identity_encoding_is_accepted(client):
    response = client.post("/", json=PING, headers={"Content-Encoding": "Identity"})
    assert response.status_code == 200 and response.get_json() == CHALLENGE


@pytest.mark.parametrize("declared", [
    "abc", "12abc", "-1", "+12", " 12", "0x10", "1e3", "1_0",
    "\u00b2", "\u0663",  # str.isdigit() says yes to superscripts and other scripts' digits
])
def test_a_non_numeric_content_length_is_400_never_500(app, declared):
    status, _, body = call(app, post_environ(json.dumps(PING).encode(), CONTENT_LENGTH=declared))
    assert status == 400
    assert json.loads(body) == {"error": "malformed_request"}


def test_a_declared_length_over_the_limit_is_413_before_reading(app):
    status, _, body = call(app, post_environ(CONTENT_LENGTH=str(LIMIT + 1), **{"wsgi.input": Unreadable()}))
    assert status == 413 and json.loads(body) == {"error": "payload_too_large"}


@pytest.mark.parametrize("length", [None, ""])
def test_without_a_length_or_a_terminated_stream_the_body_is_empty_and_never_read(app, length):
    environ = post_environ(CONTENT_LENGTH=length, **{"wsgi.input": Unreadable()})
    environ.pop("wsgi.input_terminated", None)
    status, _, body = call(app, environ)
    assert status == 400
    assert json.loads(body) == {"error": "malformed_json"}


class Stalled(io.RawIOBase):
    """A body that stopped arriving: the server's read timed out (gunicorn's per-request socket timeout)."""

    def readable(self) -> bool:
        return True

    def read(self, size=-1):
        raise TimeoutError("timed out")

    readinto = readline = read


def test_a_body_that_stops_arriving_is_400_never_500(app, smartapp_log):
    status, _, body = call(app, post_environ(CONTENT_LENGTH="100", **{"wsgi.input": Stalled()}))
    assert status == 400 and json.loads(body) == {"error": "body_incomplete"}
    assert not [record for record in smartapp_log.records if record.exc_info]


def test_a_chunked_body_exactly_at_the_limit_is_processed(app):
    body = padded_ping(LIMIT)
    assert len(body) == LIMIT
    environ = post_environ(body, CONTENT_LENGTH=None, **{"wsgi.input_terminated": True})
    status, _, answer = call(app, environ)
    assert status == 200
    assert json.loads(answer) == CHALLENGE


def test_a_chunked_body_one_byte_over_the_limit_is_413(app):
    body = padded_ping(LIMIT + 1)
    environ = post_environ(body, CONTENT_LENGTH=None, **{"wsgi.input_terminated": True})
    status, _, answer = call(app, environ)
    assert status == 413
    assert json.loads(answer) == {"error": "payload_too_large"}


def test_an_empty_path_is_the_root(app):
    status, _, body = call(app, post_environ(json.dumps(PING).encode(), PATH_INFO=""))
    assert status == 200
    assert json.loads(body) == CHALLENGE


@pytest.fixture
def answers(make_app, signer):
    """One webhook answer of each status, as the client saw it."""
    client = make_app("sqlite", SMARTAPP_MAX_BODY_BYTES=str(LIMIT)).test_client()
    down = make_app("redis", REDIS_URL=f"redis://127.0.0.1:{free_port()}/0").test_client()
    return {
        200: client.post("/", json=PING),
        400: client.post("/", data=b"{", content_type="application/json"),
        401: client.post("/", json={"lifecycle": "EVENT", "eventData": {}}),  # unsigned
        413: client.post("/", data=padded_ping(LIMIT + 1), content_type="application/json"),
        415: client.post("/", data=json.dumps(PING), content_type="text/plain"),
        503: post_signed(down, signer, load_fixture("execute.json")),
    }


def test_every_webhook_answer_is_json_with_an_exact_length(answers):
    for status, response in answers.items():
        assert response.status_code == status
        assert response.headers["Content-Type"] == "application/json", status
        assert response.headers["Content-Length"] == str(len(response.data)), status
        assert isinstance(json.loads(response.data), dict), status


def test_only_a_503_carries_retry_after(answers):
    assert answers[503].get_json() == {"error": "store_unavailable"}
    assert answers[503].headers["Retry-After"] == "5"
    assert [status for status, response in answers.items() if "Retry-After" in response.headers] == [503]
