"""Development mode: the dev key is trusted through the same Verifier, only on a local instance, never in production."""

from __future__ import annotations

import json
import time

import pytest

from examples.switch_logger import app as switches_app
from smartapp import simulation
from smartapp.devkey import DEV_KEY_PREFIX, dev_key_id, dev_key_path, load_or_create_dev_key
from smartapp.settings import ConfigError
from smartapp.signer import signed_headers


@pytest.fixture
def dev_app(make_app, tmp_path):
    # service_environment sets a public https URL (a production sign); development mode runs without one.
    return make_app("sqlite", SMARTAPP_DEV_MODE="1", SMARTAPP_PUBLIC_URL="http://127.0.0.1:8000/")


def dev_key(tmp_path):
    return load_or_create_dev_key(dev_key_path(str(tmp_path / "smartapp.db")))


def post(client, body: dict, key, *, key_id: str | None = None, now: float | None = None, tamper: bool = False):
    raw = json.dumps(body).encode()
    headers = signed_headers(body=raw, private_key=key, key_id=key_id or dev_key_id(key.public_key()), now=now)
    if tamper:
        raw = raw.replace(b'"en"', b'"fr"')
    return client.post("/", data=raw, headers=headers)


def test_the_instance_trusts_its_development_key(dev_app, tmp_path, cloud):
    sim = simulation.made_up(switches_app)
    response = post(dev_app.test_client(), simulation.body("INSTALL", sim), dev_key(tmp_path))
    assert response.status_code == 200 and response.get_json() == {"installData": {}}
    assert cloud.keys.calls == []


@pytest.mark.parametrize("change", ["tampered body", "stale date", "other dev key", "unknown dev id"])
def test_every_signature_check_still_applies_to_the_development_key(dev_app, tmp_path, change):
    key = dev_key(tmp_path)
    body = simulation.body("INSTALL", simulation.made_up(switches_app))
    client = dev_app.test_client()
    if change == "tampered body":
        response = post(client, body, key, tamper=True)
    elif change == "stale date":
        response = post(client, body, key, now=time.time() - 3600)
    elif change == "other dev key":
        other = load_or_create_dev_key(tmp_path / "other.keys")
        response = post(client, body, other, key_id=dev_key_id(key.public_key()))
    else:
        response = post(client, body, key, key_id=DEV_KEY_PREFIX + "0" * 32)
    assert response.status_code == 401


def test_an_instance_outside_development_mode_refuses_the_development_key(make_app, tmp_path, cloud):
    app = make_app("sqlite")
    response = post(app.test_client(), simulation.body("INSTALL", simulation.made_up(switches_app)), dev_key(tmp_path))
    assert response.status_code == 401
    assert cloud.keys.calls == []  # the keyId's shape is refused before any fetch


@pytest.mark.parametrize("overrides", [
    {"SMARTAPP_PUBLIC_URL": "https://smartapp.example.com/"},
    {"DYNO": "web.1", "SMARTAPP_PUBLIC_URL": "http://localhost/"},
])
def test_development_mode_with_production_signs_does_not_start(make_app, overrides):
    with pytest.raises(ConfigError, match="SMARTAPP_DEV_MODE"):
        make_app("sqlite", SMARTAPP_DEV_MODE="1", **overrides)


def test_development_mode_with_redis_does_not_start(make_app):
    with pytest.raises(ConfigError, match="REDIS_URL"):
        make_app("redis", SMARTAPP_DEV_MODE="1", SMARTAPP_PUBLIC_URL="http://localhost/")


def test_simulated_tokens_stay_local_and_real_tokens_still_reach_the_api(dev_app, cloud, signer):
    from tests.support.webhook_client import post_signed

    sim = simulation.made_up(switches_app)
    client = dev_app.test_client()
    assert post(client, simulation.body("UPDATE", sim), load_or_create_dev_key(
        dev_key_path(dev_app.extensions["smartapp"].settings.db_path))).status_code == 200
    assert cloud.api.calls == []
    # A real installation (signed by "SmartThings", real-looking tokens) on the same development instance.
    real = simulation.body("INSTALL", simulation.made_up(switches_app))
    real["installData"]["authToken"] = "0b9c1f4e-2a6d-4c8e-9f01-23456789abcd"
    assert post_signed(client, signer, real).status_code == 200
    assert cloud.api.bearer_tokens() == ["Bearer 0b9c1f4e-2a6d-4c8e-9f01-23456789abcd"]


def test_a_simulated_refresh_rotates_locally_and_a_real_one_is_sent(cloud):
    from smartapp.devapi import SimulatorAwareSession
    from smartapp.smartthings import SmartThingsClient

    client = SmartThingsClient(api_url=cloud.api.url, session=SimulatorAwareSession())
    grant = client.refresh_token("simulated-refresh-abc", token_url=cloud.api.url + "/oauth/token",
                                 client_id="id", client_secret="secret", timeout=2.0)
    assert grant.access_token.startswith("simulated-auth-") and grant.refresh_token.startswith("simulated-refresh-")
    assert cloud.api.calls == []
    from smartapp.errors import SmartAppError

    with pytest.raises(SmartAppError):  # the loopback API knows no such token: what matters is that it was asked
        client.refresh_token("0b9c1f4e-real-refresh", token_url=cloud.api.url + "/oauth/token",
                             client_id="id", client_secret="secret", timeout=2.0)
    assert [call.path for call in cloud.api.calls] == ["/oauth/token"]
