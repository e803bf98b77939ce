"""Redaction, proven: drive the service under gunicorn with canary secrets, then search every line it printed."""

from __future__ import annotations

import json
import secrets
import uuid

import pytest
import requests
from cryptography.fernet import Fernet

from examples.switch_logger import app as switches_app
from smartapp import simulation
from testbed import signing
from testbed.redis_server import RedisServer
from testbed.service import Gunicorn
from testbed.signing import Signer
from tests.conftest import service_environment

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# Letters that are not hex digits: a canary's 8-character prefix cannot turn up by chance in ids or digests.
ALPHABET = "ghjkmnpqrstvwxyz"


def canary() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(32))


class Canaries:
    """Every secret the run used, by name, so a failure says which one leaked."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def add(self, name: str, value: str | None = None) -> str:
        self.values[name] = value or canary()
        return self.values[name]

    def leaks(self, text: str) -> list[str]:
        found = []
        for name, value in self.values.items():
            for needle in (value, value[:8]):
                if needle in text:
                    found.append(f"{name} ({'whole' if needle == value else '8-char prefix'} {needle!r})")
        return found


@pytest.fixture(params=[("sqlite", "text"), ("redis", "json")], ids=["sqlite-text", "redis-json"])
def canary_run(request, cloud, tmp_path):
    store, log_format = request.param
    found = Canaries()
    env = service_environment(cloud, tmp_path, store="sqlite")
    env.update(LOG_FORMAT=log_format, SMARTAPP_CLIENT_SECRET=found.add("SMARTAPP_CLIENT_SECRET"),
               SMARTAPP_OAUTH_CLIENT_SECRET=found.add("SMARTAPP_OAUTH_CLIENT_SECRET"))
    redis_server = None
    if store == "redis":
        password = found.add("redis password")
        redis_server = RedisServer().start()
        import redis

        admin = redis.Redis(port=redis_server.port)
        admin.config_set("requirepass", password)  # after start: the fake's readiness probe sends no AUTH
        admin.close()
        token_key = Fernet.generate_key().decode()
        found.add("SMARTAPP_TOKEN_KEYS", token_key)
        env.update(REDIS_URL=f"redis://:{password}@127.0.0.1:{redis_server.port}/0", SMARTAPP_TOKEN_KEYS=token_key)
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path, extra_env={"GUNICORN_ACCESS_LOG": "-"})
    try:
        yield server, found, tmp_path
    finally:
        server.stop()
        if redis_server:
            redis_server.stop()


def post(server, raw: bytes, headers: dict, path: str = "/") -> int:
    return requests.post(server.url + path, data=raw, headers=headers, timeout=10).status_code


def signed(signer: Signer, body: dict, canaries: Canaries) -> tuple[bytes, dict]:
    raw = json.dumps(body).encode()
    headers = signer.headers(raw, key_id=signer.key.key_id)
    canaries.add(f"signature of {body['lifecycle']} {body['executionId'][:8]}",
                 headers["Authorization"].split('signature="')[1].split('"')[0])
    return raw, headers


def test_no_secret_reaches_any_log_line(canary_run, signer):
    server, found, tmp_path = canary_run
    sim = simulation.made_up(switches_app)
    statuses = {}

    install = simulation.body("INSTALL", sim)
    install["installData"].update(authToken=found.add("INSTALL authToken", str(uuid.uuid4())),
                                  refreshToken=found.add("INSTALL refreshToken", str(uuid.uuid4())))
    statuses["install"] = post(server, *signed(signer, install, found))

    update = simulation.body("UPDATE", sim)
    update["updateData"].update(authToken=found.add("UPDATE authToken"), refreshToken=found.add("UPDATE refreshToken"))
    statuses["update"] = post(server, *signed(signer, update, found))

    event = simulation.body("EVENT", sim)
    event["eventData"]["authToken"] = found.add("EVENT authToken")
    statuses["event"] = post(server, *signed(signer, event, found))

    callback = simulation.body("OAUTH_CALLBACK", sim)
    callback["oAuthCallbackData"]["urlPath"] = f"?code={found.add('OAuth code')}&state={sim.installed_app_id}"
    statuses["oauth callback"] = post(server, *signed(signer, callback, found))

    # A forger's request: valid shape, real tokens, signed with a key SmartThings never published.
    forged = simulation.body("INSTALL", simulation.made_up(switches_app))
    forged["installData"].update(authToken=found.add("forged authToken"), refreshToken=found.add("forged refresh"))
    statuses["bad signature"] = post(server, *signed(Signer(signing.TestKey.generate()), forged, found))
    raw, headers = signed(signer, forged, found)
    statuses["tampered body"] = post(server, raw.replace(b'"en"', b'"fr"'), headers)
    statuses["unsigned"] = post(server, raw, {"Content-Type": "application/json"})

    # Bad input carrying secrets: cut-off JSON, an unknown lifecycle, the wrong media type; then a query string
    # (not signed, so the request is accepted: the point is that the access log must not show it).
    cut = b'{"lifecycle": "INSTALL", "installData": {"authToken": "' + found.add("cut-off token").encode()
    statuses["malformed"] = post(server, cut, {"Content-Type": "application/json"})
    unknown = {"lifecycle": "REBOOT", "executionId": str(uuid.uuid4()), "rebootData": {"authToken": found.add("x")}}
    statuses["unknown lifecycle"] = post(server, *signed(signer, unknown, found))
    statuses["media type"] = post(server, raw, {"Content-Type": "text/plain"})
    statuses["query"] = post(server, raw, headers, path=f"/?code={found.add('query code')}")

    uninstall = simulation.body("UNINSTALL", sim)
    statuses["uninstall"] = post(server, *signed(signer, uninstall, found))

    assert statuses == {"install": 200, "update": 200, "event": 200, "oauth callback": 400, "bad signature": 401,
                        "tampered body": 401, "unsigned": 401, "malformed": 400, "unknown lifecycle": 400,
                        "media type": 415, "query": 200, "uninstall": 200}
    for key_file in tmp_path.glob("*.keys"):
        for number, line in enumerate(key_file.read_text().splitlines()):
            if line and not line.startswith("#"):
                found.add(f"{key_file.name} line {number}", line)

    server.stop()  # flushes everything gunicorn and the workers wrote
    output = server.output()
    # The run really was logged: one request line per request (so an empty log cannot pass), plus the access log.
    assert output.count("request") >= len(statuses)
    assert output.count('"POST / HTTP/1.1"') >= len(statuses) - 1
    assert found.leaks(output) == []


def test_every_line_of_a_request_carries_its_ids(cloud, tmp_path, signer):
    env = service_environment(cloud, tmp_path, store="sqlite")
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path, workers=1)
    try:
        sim = simulation.made_up(switches_app)
        assert post(server, *signed(signer, simulation.body("INSTALL", sim), Canaries())) == 200
        body = simulation.body("EVENT", sim)
        # A second event no handler takes: the core logs it, on a line of its own within the request.
        stray = json.loads(json.dumps(body["eventData"]["events"][0]))
        stray["deviceEvent"]["subscriptionName"] = "unknownHandler_0"
        body["eventData"]["events"].append(stray)
        event = json.dumps(body).encode()
        assert post(server, event, {**signer.headers(event), "X-ST-Correlation": "corr-canary-ids"}) == 200
    finally:
        server.stop()
    lines = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    ours = [line for line in lines if line.get("correlationId") == "corr-canary-ids"]
    assert [line["message"] for line in ours] == ["event_skipped", "request"]
    assert len({line["requestId"] for line in ours}) == 1
    assert ours[1]["value"] == "on" and ours[1]["switch"]  # the app's annotation rides on the request line
    assert all(line["requestId"] != ours[0]["requestId"] for line in lines if line not in ours and "requestId" in line)
