"""A worker killed mid-request leaves no "done" behind: SmartThings' identical retry is processed (real gunicorn)."""

from __future__ import annotations

import copy
import json
import os
import signal
import threading
import time

import pytest
import requests

from smartapp.testing import Reply
from smartapp.webhook import CLAIM_LEASE_SECONDS
from testbed.service import Gunicorn
from tests.conftest import load_fixture, service_environment
from tests.support.redis_proxy import HoldingProxy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SWITCH = "6f5ea629-4c05-4a90-a244-cc129b0a80c3"


def install_body() -> dict:
    body = copy.deepcopy(load_fixture("install.json"))
    body["installData"]["installedApp"]["config"]["switches"] = [
        {"valueType": "DEVICE", "deviceConfig": {"deviceId": SWITCH, "componentId": "main"}}]
    return body


def the_worker(server: Gunicorn) -> int:
    children = open(f"/proc/{server.process.pid}/task/{server.process.pid}/children").read().split()
    assert len(children) == 1, children
    return int(children[0])


def kill_the_worker(server: Gunicorn) -> None:
    """SIGKILL the only worker (as the OOM killer would) and wait until gunicorn has replaced it."""
    killed = the_worker(server)
    os.kill(killed, signal.SIGKILL)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            if the_worker(server) != killed and requests.get(server.url + "/healthz", timeout=2).status_code == 200:
                return
        except (AssertionError, requests.RequestException):
            pass
        time.sleep(0.1)
    raise AssertionError("gunicorn did not replace the killed worker")


def post_in_background(server: Gunicorn, raw: bytes, headers: dict) -> threading.Thread:
    """The request whose worker is killed: its connection simply breaks."""
    def post() -> None:
        try:
            requests.post(server.url + "/", data=raw, headers=headers, timeout=30)
        except requests.RequestException:
            pass

    thread = threading.Thread(target=post, daemon=True)
    thread.start()
    return thread


def retry_until_answered(server: Gunicorn, raw: bytes, headers: dict) -> list[requests.Response]:
    """SmartThings delivering the identical request again, every second, until it is not a 503."""
    answers = []
    deadline = time.monotonic() + CLAIM_LEASE_SECONDS + 15
    while time.monotonic() < deadline:
        answers.append(requests.post(server.url + "/", data=raw, headers=headers, timeout=15))
        if answers[-1].status_code != 503:
            return answers
        time.sleep(1)
    raise AssertionError(f"still 503 after the lease: {[a.status_code for a in answers]}")


def assert_in_progress_then_processed(answers: list[requests.Response]) -> None:
    first = answers[0]
    # Within the lease the dead worker's request still counts as in progress: retry later, never "done".
    assert first.status_code == 503 and first.json() == {"error": "request_in_progress"}
    assert first.headers["Retry-After"]
    assert answers[-1].status_code == 200 and answers[-1].json() == {"installData": {}}


def test_a_worker_killed_between_the_claim_and_the_write_leaves_the_retry_to_be_processed(
        cloud, tmp_path, signer, redis_server, redis_url):
    body = install_body()
    iaid = body["installData"]["installedApp"]["installedAppId"]
    # The worker's write of the installation never reaches Redis: it is stuck right after its claim.
    proxy = HoldingProxy(redis_server.port, hold_pattern=f"installation:{{{iaid}}}".encode())
    env = service_environment(cloud, tmp_path, store="redis", redis_url=proxy.url)
    server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1)
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    try:
        post_in_background(server, raw, headers)
        assert proxy.held.wait(10)
        kill_the_worker(server)
        answers = retry_until_answered(server, raw, headers)
    finally:
        server.stop()
        proxy.close()
    assert_in_progress_then_processed(answers)
    from tests.support.stores import open_store_like

    store = open_store_like({**env, "REDIS_URL": redis_url})
    try:
        assert store.get(iaid).refresh_token == body["installData"]["refreshToken"]
    finally:
        store.close()
    assert list(cloud.api.subscriptions[iaid]) == ["switchHandler_0"]


def test_a_worker_killed_before_it_answered_leaves_the_retry_to_be_processed(cloud, tmp_path, signer,
                                                                            store_kind, request):
    body = install_body()
    iaid = body["installData"]["installedApp"]["installedAppId"]
    arrived, release = threading.Event(), threading.Event()
    creates = []
    subscribe = next(handler for method, pattern, handler in cloud.api.routes
                     if method == "POST" and pattern.match(f"/installedapps/{iaid}/subscriptions"))

    def stall_the_first_subscription(call, match):
        creates.append(call)
        if len(creates) == 1:
            arrived.set()
            release.wait(30)  # the worker is killed while it waits for SmartThings
            return Reply(503, {"error": {"code": "Gone"}})
        return subscribe(call, match)

    cloud.api.route("POST", r"/installedapps/([^/]+)/subscriptions", stall_the_first_subscription)
    redis_url = request.getfixturevalue("redis_url") if store_kind == "redis" else None
    server = Gunicorn(service_environment(cloud, tmp_path, store=store_kind, redis_url=redis_url),
                      tmp_path / "gunicorn.log", workers=1)
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    try:
        post_in_background(server, raw, headers)
        assert arrived.wait(10)
        kill_the_worker(server)
        release.set()
        answers = retry_until_answered(server, raw, headers)
    finally:
        release.set()
        server.stop()
    assert_in_progress_then_processed(answers)
    assert list(cloud.api.subscriptions[iaid]) == ["switchHandler_0"]  # the retry did the whole INSTALL
