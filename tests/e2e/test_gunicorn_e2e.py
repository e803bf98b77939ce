"""Every lifecycle through a real gunicorn process, with real Redis (and SQLite) and loopback clouds."""

from __future__ import annotations

import copy
import email.utils
import json
import time

import pytest
import requests

from testbed.service import Gunicorn
from testbed.signing import Signer
from tests.conftest import service_environment, load_fixture
from tests.support.stores import open_store_like

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture
def service(cloud, tmp_path, store_kind, request):
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    env = service_environment(cloud, tmp_path, store=store_kind, redis_url=redis_url)
    server = Gunicorn(env, tmp_path / "gunicorn.log")
    server.env = env
    yield server
    server.stop()


def send(service, signer: Signer, body: dict):
    raw = json.dumps(body).encode()
    return requests.post(service.url + "/", data=raw, headers=signer.headers(raw), timeout=10)


def test_every_lifecycle_end_to_end(service, signer, cloud):
    ping = load_fixture("ping.json")
    answered = requests.post(service.url + "/", json=ping, timeout=5)
    assert answered.json() == {"pingData": ping["pingData"]}
    # The worker's Date text is made once a second (smartapp/gunicorn_date.py): still the current time.
    assert abs(email.utils.parsedate_to_datetime(answered.headers["Date"]).timestamp() - time.time()) < 5

    confirmation = {
        "lifecycle": "CONFIRMATION", "appId": service.env["SMARTAPP_APP_ID"],
        "confirmationData": {"appId": service.env["SMARTAPP_APP_ID"],
                             "confirmationUrl": f"{cloud.api.url}/apps/x/confirm-registration?token=t"},
    }
    assert send(service, signer, confirmation).json() == {"targetUrl": "https://smartapp.example.test/"}
    assert cloud.api.confirmed == ["x"]

    assert "initialize" in send(service, signer, load_fixture("configuration_initialize.json")).json()["configurationData"]
    assert "page" in send(service, signer, load_fixture("configuration_page.json")).json()["configurationData"]

    install = copy.deepcopy(load_fixture("install.json"))
    iaid = install["installData"]["installedApp"]["installedAppId"]
    install["installData"]["installedApp"]["config"]["switches"] = [
        {"valueType": "DEVICE", "deviceConfig": {"deviceId": "6f5ea629-4c05-4a90-a244-cc129b0a80c3", "componentId": "main"}}
    ]
    assert send(service, signer, install).json() == {"installData": {}}
    assert list(cloud.api.subscriptions[iaid]) == ["switchHandler_0"]

    update = copy.deepcopy(install)
    update["lifecycle"] = "UPDATE"
    update["updateData"] = update.pop("installData")
    update["updateData"]["refreshToken"] = "refresh-after-update"
    assert send(service, signer, update).json() == {"updateData": {}}

    store = open_store_like(service.env)
    try:
        stored = store.get(iaid)
        assert stored.refresh_token == "refresh-after-update"
        assert stored.auth_token == install["installData"]["authToken"]

        event = load_fixture("event_device.json")
        event["eventData"]["installedApp"]["installedAppId"] = iaid
        assert send(service, signer, event).json() == {"eventData": {}}
        assert store.get(iaid).version == stored.version

        assert send(service, signer, load_fixture("execute.json")).json() == {"executeData": {}}
        assert send(service, signer, load_fixture("oauth_callback.json")).status_code == 400

        uninstall = load_fixture("uninstall_nodesdk.json")
        uninstall["uninstallData"]["installedApp"]["installedAppId"] = iaid
        assert send(service, signer, uninstall).json() == {"uninstallData": {}}
        assert store.get(iaid) is None
    finally:
        store.close()


def test_bad_input_through_gunicorn(service, signer):
    url = service.url + "/"
    assert requests.post(url, json=load_fixture("install.json"), timeout=5).status_code == 401
    assert requests.get(url, timeout=5).status_code == 405
    assert requests.post(url, data=b"[" * 20000, headers={"Content-Type": "application/json"},
                         timeout=5).status_code == 400
    big = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    assert requests.post(url, data=big, headers={"Content-Type": "application/json"}, timeout=5).status_code == 413
    assert requests.post(url, data=b"{}", headers={"Content-Type": "text/plain"}, timeout=5).status_code == 415


def test_frozen_redis_answers_503_inside_the_time_limit(cloud, tmp_path, signer):
    from testbed.redis_server import RedisServer

    redis = RedisServer().start()
    server = Gunicorn(service_environment(cloud, tmp_path, store="redis", redis_url=redis.url), tmp_path / "g.log")
    try:
        assert send(server, signer, load_fixture("execute.json")).status_code == 200
        redis.pause()
        started = time.monotonic()
        response = send(server, signer, load_fixture("install.json"))
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.headers["Retry-After"]
        assert elapsed < 3.0
        assert requests.get(server.url + "/readyz", timeout=5).status_code == 503
        redis.resume()
        assert send(server, signer, load_fixture("install.json")).status_code == 200
    finally:
        redis.resume()
        server.stop()
        redis.stop()


def test_replay_is_suppressed_across_workers(service, signer):
    body = load_fixture("install_pysmartapp.json")
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    store = open_store_like(service.env)
    try:
        assert requests.post(service.url + "/", data=raw, headers=headers, timeout=5).status_code == 200
        iaid = body["installData"]["installedApp"]["installedAppId"]
        version = store.get(iaid).version
        # New connections each time, so the two sync workers both get a turn at the replay.
        for _ in range(6):
            replay = requests.post(service.url + "/", data=raw, headers={**headers, "Connection": "close"}, timeout=5)
            assert replay.status_code == 200
        assert store.get(iaid).version == version
    finally:
        store.close()


def raw_http(port: int, payload: bytes, *, wait: float = 5.0) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=wait) as sock:
        sock.sendall(payload)
        try:
            return sock.recv(4096)
        except socket.timeout:
            return b""


def test_gunicorn_limits_refuse_oversized_headers(service):
    many = b"".join(b"X-Filler-%d: x\r\n" % i for i in range(150))
    answer = raw_http(service.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + many + b"\r\n")
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 431")
    huge_auth = b'Authorization: Signature keyId="/pl/a/00",signature="' + b"A" * 9000 + b'"\r\n'
    answer = raw_http(service.port, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n" + huge_auth + b"\r\n")
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 431")


def test_a_stalled_body_does_not_stop_the_service(cloud, tmp_path, signer):
    import socket

    env = service_environment(cloud, tmp_path, store="sqlite")
    env["GUNICORN_TIMEOUT"] = "3"
    server = Gunicorn(env, tmp_path / "g.log")
    try:
        stalled = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        stalled.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                        b"Content-Length: 1000\r\n\r\n{\"lifecycle\"")
        started = time.monotonic()
        assert send(server, signer, load_fixture("execute.json")).status_code == 200
        closed = stalled.recv(4096)  # the worker gives up on the stalled client and frees itself
        assert time.monotonic() - started < 10
        assert not closed.startswith(b"HTTP/1.1 200")
        stalled.close()
        assert send(server, signer, load_fixture("install.json")).status_code == 200
    finally:
        server.stop()


def chunked(payload: bytes, size: int = 65536) -> bytes:
    pieces = [payload[i:i + size] for i in range(0, len(payload), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"


def test_a_chunked_body_is_limited_too(service, signer):
    """No Content-Length to check up front: the size limit must hold while the body streams in."""
    big = b'{"lifecycle":"EVENT","pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Connection: close\r\n\r\n")
    answer = raw_http(service.port, head + chunked(big), wait=10)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:80]

    small = json.dumps(load_fixture("execute.json")).encode()
    signed = signer.headers(small)
    head = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n" + b"".join(
        f"{name}: {value}\r\n".encode() for name, value in signed.items()) + b"\r\n"
    answer = raw_http(service.port, head + chunked(small, 100), wait=10)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]


@pytest.mark.parametrize("duplicate", ["Date", "Digest", "Authorization"])
def test_duplicate_signature_headers_are_refused(service, signer, duplicate):
    """Two Date/Digest/Authorization lines are ambiguous: never accepted, whichever copy is genuine."""
    body = json.dumps(load_fixture("execute.json")).encode()
    signed = signer.headers(body)
    lines = [f"{name}: {value}\r\n".encode() for name, value in signed.items()]
    lines.append(f"{duplicate}: {signed[duplicate]}\r\n".encode())
    head = (b"POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: %d\r\n" % len(body)
            + b"".join(lines) + b"\r\n")
    answer = raw_http(service.port, head + body)
    assert answer[:12] in (b"HTTP/1.1 400", b"HTTP/1.1 401"), answer[:200]
