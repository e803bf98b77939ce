"""The default serving model (gunicorn's gevent workers, as the Procfile and the image run them): slow clients
do not stop the service, and nothing a request waits for blocks the other requests of its worker."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import threading
import time

import pytest
import requests

from smartapp.testing import Reply
from testbed import signing
from testbed.keyserver import KeyServer
from testbed.service import GUNICORN_CONFIG, ROOT, Gunicorn
from testbed.signing import Signer
from tests.conftest import load_fixture, service_environment
from tests.support.tls import loopback_certificate, serve_tls

pytestmark = pytest.mark.e2e

SLOW_CONNECTIONS = 256


@pytest.mark.slow
def test_the_default_worker_class_is_gevent(tmp_path):
    from gunicorn.util import load_class
    from gunicorn.workers.ggevent import GeventWorker

    from tests.support.deploy_kit import gunicorn_config

    default = gunicorn_config(tmp_path, {})["worker_class"]
    assert issubclass(load_class(default), GeventWorker)
    assert gunicorn_config(tmp_path, {"GUNICORN_WORKER_CLASS": "gevent"})["worker_class"] == "gevent"


def test_the_procfile_and_the_image_serve_with_the_config_s_worker_class():
    """So what the tests below prove of config/gunicorn.conf.py is what both deployments run."""
    from tests.support.deploy_kit import dockerfile

    web = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())["web"]
    steps = dockerfile()
    for command in (web, dict(steps)["CMD"]):
        assert "config/gunicorn.conf.py" in command
        assert not any(flag in command for flag in ("-k ", "--worker-class", "-w ", "--workers"))
    settings = " ".join(args for keyword, args in steps if keyword in ("ENV", "ARG"))
    assert "GUNICORN_WORKER_CLASS" not in settings and "WEB_CONCURRENCY" not in settings


def test_the_gunicorn_master_imports_nothing_a_gevent_worker_must_patch(tmp_path):
    """The config and the worker class gunicorn loads from it run in the master before the fork; modules they
    import are never patched in the workers."""
    script = (f"import runpy, sys; from gunicorn.util import load_class; "
              f"load_class(runpy.run_path({str(GUNICORN_CONFIG)!r})['worker_class']); "
              "print(sorted(m for m in ('smartapp.app', 'requests', 'urllib3', 'redis', 'flask', 'cryptography') "
              "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                            timeout=60, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def signed_post(url: str, signer: Signer, body: dict, *, timeout: float = 10) -> requests.Response:
    raw = json.dumps(body).encode()
    headers = {**signer.headers(raw), "Connection": "close"}
    return requests.post(url + "/", data=raw, headers=headers, timeout=timeout)


def execute(n: int) -> dict:
    body = load_fixture("execute.json")
    body["executionId"] = f"00000000-0000-4000-8000-{n:012d}"
    return body


# --- slow clients ---------------------------------------------------------------------------------------------

class Tricklers:
    """Many connections that send a request one byte a second and never finish it."""

    def __init__(self, port: int, mode: str, count: int) -> None:
        self.sockets: list[socket.socket] = []
        self.stop = threading.Event()
        for number in range(count):
            sock = socket.create_connection(("127.0.0.1", port), timeout=5)
            if mode == "headers":
                start = f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{number}: "
            else:
                start = "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            sock.sendall(start.encode())
            self.sockets.append(sock)
        self.thread = threading.Thread(target=self._trickle, args=(b"a" if mode == "headers" else b" ",), daemon=True)
        self.thread.start()

    def _trickle(self, byte: bytes) -> None:
        while not self.stop.wait(1.0):
            for sock in self.sockets:
                try:
                    sock.send(byte)
                except OSError:
                    pass  # the server gave up on this one: fine

    def close(self) -> None:
        self.stop.set()
        self.thread.join(5)
        for sock in self.sockets:
            sock.close()


@pytest.fixture
def default_deployment(cloud, tmp_path, redis_url):
    """As the Procfile runs it: config/gunicorn.conf.py with its defaults (four workers on this machine)."""
    server = Gunicorn(service_environment(cloud, tmp_path, store="redis", redis_url=redis_url),
                      tmp_path / "gunicorn.log", workers=4)
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["headers", "body"])
def test_256_slow_clients_do_not_stop_signed_requests(default_deployment, signer, mode):
    tricklers = Tricklers(default_deployment.port, mode, SLOW_CONNECTIONS)
    try:
        time.sleep(2)  # every slow client has sent a few bytes since
        statuses = [signed_post(default_deployment.url, signer, execute(n), timeout=5).status_code for n in range(20)]
        health = requests.get(default_deployment.url + "/healthz", timeout=5).status_code
    finally:
        tricklers.close()
    assert statuses == [200] * 20 and health == 200


# --- one worker: what a request waits for does not block the others -------------------------------------------

def finish_order(slow, quick) -> list[str]:
    """Start `slow`, wait until it is waiting (its `started` event), run `quick`; the order they finish in."""
    order: list[str] = []
    lock = threading.Lock()

    def run(name: str, call) -> None:
        try:
            call()
        finally:
            with lock:
                order.append(name)

    slow_thread = threading.Thread(target=run, args=("slow", slow.call), daemon=True)
    slow_thread.start()
    assert slow.started.wait(10), "the slow request never reached the slow dependency"
    run("quick", quick)
    slow_thread.join(20)
    return order


class SlowRequest:
    def __init__(self, call) -> None:
        self.call = call
        self.started = threading.Event()


@pytest.fixture
def one_worker(cloud, tmp_path, redis_url):
    def start(**env_overrides) -> Gunicorn:
        env = {**service_environment(cloud, tmp_path, store="redis", redis_url=redis_url), **env_overrides}
        server = Gunicorn(env, tmp_path / "gunicorn.log", workers=1)
        started.append(server)
        return server

    started: list[Gunicorn] = []
    yield start
    for server in started:
        server.stop()


@pytest.mark.slow
def test_a_slow_key_server_over_https_does_not_block_other_requests_in_the_worker(one_worker, tmp_path, signer):
    certificate, private_key = loopback_certificate(tmp_path)
    keys = KeyServer()
    keys_url = serve_tls(keys, certificate, private_key)
    keys.start()
    new_key = signing.TestKey.generate(region="slow1")
    keys.publish(signer.key.key_id, signer.key.certificate_pem)
    keys.publish(new_key.key_id, new_key.certificate_pem)
    try:
        server = one_worker(SMARTAPP_KEY_SERVER=keys_url, REQUESTS_CA_BUNDLE=certificate)
        assert signed_post(server.url, signer, execute(1)).status_code == 200  # this key is cached now

        slow = SlowRequest(lambda: signed_post(server.url, Signer(new_key), execute(2)))
        keys.route("GET", re.escape(new_key.key_id), lambda call, match: (slow.started.set(), Reply(
            200, new_key.certificate_pem, delay=1.5))[1])
        quick_statuses = []
        order = finish_order(slow, lambda: quick_statuses.extend(
            [signed_post(server.url, signer, execute(3)).status_code,
             requests.post(server.url + "/", json=load_fixture("ping.json"), timeout=10).status_code]))
    finally:
        keys.stop()
    assert quick_statuses == [200, 200]
    assert order == ["quick", "slow"]
    assert "MonkeyPatchWarning" not in server.output()


@pytest.mark.slow
def test_a_redis_call_waiting_for_its_reply_does_not_block_other_requests_in_the_worker(one_worker, redis_server,
                                                                                       signer):
    from tests.support.redis_proxy import HoldingProxy

    proxy = HoldingProxy(redis_server.port, hold_pattern=b"smartapp:replay:")  # the replay claim gets no reply
    server = one_worker(REDIS_URL=proxy.url)
    slow = SlowRequest(lambda: signed_post(server.url, signer, execute(1)))
    slow.started = proxy.held
    try:
        order = finish_order(slow, lambda: requests.post(server.url + "/", json=load_fixture("ping.json"),
                                                         timeout=10).raise_for_status())
    finally:
        proxy.close()
    assert order == ["quick", "slow"]


@pytest.mark.slow
def test_a_slow_smartthings_api_does_not_block_other_requests_in_the_worker(one_worker, cloud, signer):
    server = one_worker()
    install = load_fixture("install.json")
    install["installData"]["installedApp"]["config"]["switches"] = [
        {"valueType": "DEVICE", "deviceConfig": {"deviceId": "6f5ea629-4c05-4a90-a244-cc129b0a80c3",
                                                  "componentId": "main"}}]
    slow = SlowRequest(lambda: signed_post(server.url, signer, install))
    cloud.api.route("POST", r"/installedapps/([^/]+)/subscriptions",
                    lambda call, match: (slow.started.set(), Reply(200, {"id": "1"}, delay=2.0))[1])
    order = finish_order(slow, lambda: requests.post(server.url + "/", json=load_fixture("ping.json"),
                                                     timeout=10).raise_for_status())
    assert order == ["quick", "slow"]
