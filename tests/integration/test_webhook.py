"""The webhook end to end through the Flask test client, on both stores, with loopback clouds."""

from __future__ import annotations

import copy
import json
import time

import pytest

from tests.conftest import APP_ID, load_fixture
from tests.support.webhook_client import post_signed

SWITCH_A = "6f5ea629-4c05-4a90-a244-cc129b0a80c3"
SWITCH_B = "74aac3bb-91f2-4a88-8c49-ae5e0a234d76"


def with_switches(body: dict, key: str, *device_ids: str) -> dict:
    body = copy.deepcopy(body)
    body[key]["installedApp"]["config"]["switches"] = [
        {"valueType": "DEVICE", "deviceConfig": {"deviceId": d, "componentId": "main"}} for d in device_ids
    ]
    return body


@pytest.fixture
def app(make_app, store_kind):
    return make_app(store_kind)


def test_ping_is_echoed_without_a_signature(client):
    body = load_fixture("ping.json")
    response = client.post("/", json=body)
    assert response.status_code == 200
    assert response.get_json() == load_fixture("responses/ping_response.json")


def test_install_stores_encrypted_tokens_and_subscribes_each_device(client, signer, store, cloud):
    body = with_switches(load_fixture("install.json"), "installData", SWITCH_A, SWITCH_B)
    response = post_signed(client, signer, body)
    assert response.status_code == 200
    assert response.get_json() == {"installData": {}}
    iaid = body["installData"]["installedApp"]["installedAppId"]
    stored = store.get(iaid)
    assert stored.auth_token == body["installData"]["authToken"]
    assert stored.refresh_token == body["installData"]["refreshToken"]
    assert stored.location_id == body["installData"]["installedApp"]["locationId"]
    assert stored.auth_token_expires_at > time.time() + 23 * 3600
    subs = cloud.api.subscriptions[iaid]
    assert sorted(subs) == ["switchHandler_0", "switchHandler_1"]
    assert {s["device"]["deviceId"] for s in subs.values()} == {SWITCH_A, SWITCH_B}
    assert all(t == "Bearer " + body["installData"]["authToken"] for t in cloud.api.bearer_tokens())


def test_update_replaces_tokens_and_rebuilds_subscriptions(client, signer, store, cloud):
    install = with_switches(load_fixture("install_pysmartapp.json"), "installData", SWITCH_A, SWITCH_B)
    assert post_signed(client, signer, install).status_code == 200
    update = with_switches(load_fixture("update.json"), "updateData", SWITCH_B)
    response = post_signed(client, signer, update)
    assert response.status_code == 200
    assert response.get_json() == {"updateData": {}}
    iaid = update["updateData"]["installedApp"]["installedAppId"]
    assert store.get(iaid).refresh_token == update["updateData"]["refreshToken"]
    assert list(cloud.api.subscriptions[iaid]) == ["switchHandler_0"]
    assert cloud.api.calls_to("DELETE", f"/installedapps/{iaid}/subscriptions")


def test_install_keeps_provider_tokens_stored_earlier(client, signer, store):
    body = load_fixture("install.json")
    iaid = body["installData"]["installedApp"]["installedAppId"]
    store.update(iaid, {"provider": "generic", "provider_access_token": "provider-access-1"})
    assert post_signed(client, signer, body).status_code == 200
    stored = store.get(iaid)
    assert stored.provider_access_token == "provider-access-1"
    assert stored.auth_token == body["installData"]["authToken"]


def test_uninstall_deletes_everything(client, signer, store):
    install = load_fixture("install_pysmartapp.json")
    assert post_signed(client, signer, install).status_code == 200
    iaid = install["installData"]["installedApp"]["installedAppId"]
    response = post_signed(client, signer, load_fixture("uninstall.json"))
    assert response.status_code == 200
    assert response.get_json() == load_fixture("responses/uninstall_response.json")
    assert store.get(iaid) is None
    assert iaid not in list(store.installed_app_ids())


@pytest.mark.parametrize("fixture", [
    "event_device.json", "event_mixed_pysmartapp.json", "event_timer.json", "event_mode.json",
    "event_device_commands.json", "event_device_health.json", "event_device_lifecycle.json",
    "event_hub_health.json", "event_security_arm_state.json", "event_scene_lifecycle.json",
    "event_device_minimal_messagetype.json",
])
def test_every_event_type_is_acknowledged(client, signer, fixture):
    response = post_signed(client, signer, load_fixture(fixture))
    assert response.status_code == 200
    assert response.get_json() == {"eventData": {}}


def test_event_token_is_never_stored_over_the_long_lived_pair(client, signer, store):
    install = load_fixture("install_pysmartapp.json")
    post_signed(client, signer, install)
    iaid = install["installData"]["installedApp"]["installedAppId"]
    before = store.get(iaid)
    event = load_fixture("event_mixed_pysmartapp.json")
    assert post_signed(client, signer, event).status_code == 200
    after = store.get(iaid)
    assert after.auth_token == before.auth_token == install["installData"]["authToken"]
    assert after.version == before.version


def test_installed_app_delete_event_forgets_the_installation(client, signer, store):
    body = load_fixture("event_installed_app_lifecycle_delete.json")
    iaid = body["eventData"]["installedApp"]["installedAppId"]
    store.update(iaid, {"auth_token": "t", "refresh_token": "r"})
    assert post_signed(client, signer, body).status_code == 200
    assert store.get(iaid) is None


def test_a_failing_event_handler_still_answers_200(client, signer, monkeypatch):
    from examples.switch_logger import app as switches_app

    def boom(ctx, event):
        raise RuntimeError("handler bug")

    monkeypatch.setitem(switches_app.subscription_handlers, "switchHandler", boom)
    body = load_fixture("event_device.json")
    body["eventData"]["events"][0]["deviceEvent"]["subscriptionName"] = "switchHandler_0"
    body["eventData"]["events"].append(load_fixture("event_timer.json")["eventData"]["events"][0])
    response = post_signed(client, signer, body)
    assert response.status_code == 200
    assert response.get_json() == {"eventData": {}}


def test_unknown_event_types_are_skipped(client, signer):
    body = load_fixture("event_mode.json")
    body["eventData"]["events"].insert(0, {"eventType": "FUTURE_EVENT", "futureEvent": {}})
    assert post_signed(client, signer, body).status_code == 200


def test_configuration_initialize_and_page(client, signer):
    init = post_signed(client, signer, load_fixture("configuration_initialize.json")).get_json()
    initialize = init["configurationData"]["initialize"]
    assert initialize["id"] == APP_ID
    assert initialize["firstPageId"] == "mainPage"
    assert initialize["permissions"] == []
    for name in ("configuration_page.json", "configuration_page_no_pageid.json"):
        page = post_signed(client, signer, load_fixture(name)).get_json()["configurationData"]["page"]
        assert page["pageId"] == "mainPage" and page["complete"] is True
        setting = page["sections"][-1]["settings"][0]
        assert setting["type"] == "DEVICE" and setting["capabilities"] == ["switch"]
        assert setting["multiple"] is True and setting["permissions"] == ["r", "x"]


def test_execute_answers_execute_data(client, signer):
    response = post_signed(client, signer, load_fixture("execute.json"))
    assert response.status_code == 200
    assert response.get_json() == {"executeData": {}}


@pytest.mark.parametrize("fixture", ["oauth_callback.json", "oauth_callback_pysmartapp.json"])
def test_oauth_callback_without_a_provider_is_a_clear_400(client, signer, fixture):
    response = post_signed(client, signer, load_fixture(fixture))
    assert response.status_code == 400
    assert response.get_json() == {"error": "oauth_not_configured"}


def confirmation_body(cloud, app_id: str = APP_ID, url: str | None = None) -> dict:
    return {
        "lifecycle": "CONFIRMATION", "executionId": "8F8F2B2C-0000-4000-8000-000000000000", "appId": app_id,
        "locale": "en", "version": "0.1.0",
        "confirmationData": {
            "appId": app_id,
            "confirmationUrl": url or f"{cloud.api.url}/apps/{app_id}/confirm-registration?token=abc",
        },
        "settings": {},
    }


def test_confirmation_is_fetched_for_our_app_on_the_api_host(client, signer, cloud):
    response = post_signed(client, signer, confirmation_body(cloud))
    assert response.status_code == 200
    assert response.get_json() == {"targetUrl": "https://smartapp.example.test/"}
    assert cloud.api.confirmed == [APP_ID]


@pytest.mark.parametrize("case", ["other_app", "other_host", "userinfo", "file", "messageType"])
def test_confirmation_is_not_fetched_when_not_ours(client, signer, cloud, case):
    from smartapp.testing import LoopbackServer

    attacker = LoopbackServer().start()
    try:
        urls = {
            "other_host": attacker.url + f"/apps/{APP_ID}/confirm-registration?token=abc",
            "userinfo": cloud.api.url.replace("http://", "http://x@") + f"/apps/{APP_ID}/confirm-registration",
            "file": "file:///etc/passwd",
        }
        body = confirmation_body(cloud, app_id="f9a665e7-5a76-4b1e-bdfe-31135eccc2f3" if case == "other_app" else APP_ID,
                                 url=urls.get(case))
        if case == "messageType":
            body = load_fixture("confirmation.json")
        response = post_signed(client, signer, body)
        assert response.status_code == 200
        assert cloud.api.confirmed == []
        assert attacker.connections == 0
    finally:
        attacker.stop()


# --- bad input: clear 4xx, nothing stored ---------------------------------------------------------

def stored_ids(store) -> list[str]:
    return sorted(store.installed_app_ids())


def test_unsigned_install_is_401_and_stores_nothing(client, store):
    response = client.post("/", json=load_fixture("install.json"))
    assert response.status_code == 401
    assert response.get_json() == {"error": "unauthorized"}
    assert stored_ids(store) == []


def test_swapped_body_is_401(client, signer, store):
    body = load_fixture("install.json")
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    evil = json.loads(raw)
    evil["installData"]["refreshToken"] = "attacker"
    response = client.post("/", data=json.dumps(evil).encode(), headers=headers)
    assert response.status_code == 401
    assert stored_ids(store) == []


def test_every_401_is_byte_identical(client, signer):
    body = load_fixture("install.json")
    answers = [
        client.post("/", json=body),
        post_signed(client, signer, body, algorithm="hmac-sha256"),
        post_signed(client, signer, body, now=time.time() - 3600),
        post_signed(client, signer, body, key_id="/pl/useast1/ab-cd"),
        post_signed(client, signer, body, signed_path="/other"),
    ]
    assert {(r.status_code, r.data, r.headers.get("Content-Type")) for r in answers} == {
        (401, answers[0].data, "application/json")
    }


@pytest.mark.parametrize("raw,status", [
    (b"{", 400),
    (b"[" * 20000, 400),
    (b'{"lifecycle": "INSTALL", "n": ' + b"9" * 5000 + b"}", 400),
    (b'{"lifecycle": "INSTALL", "n": NaN}', 400),
    (b'{"lifecycle": "INSTALL", "n": 1e999999}', 400),
    (b'{"lifecycle": "INSTALL", "lifecycle": "EVENT"}', 400),
    (b'{"lifecycle": "INSTALL", "x": "\xff\xfe"}', 400),
    (b'{"lifecycle": "INSTALL", "x": "\\ud800"}', 400),
    (b'"just a string"', 400),
])
def test_malformed_json_is_400_never_500(client, signer, store, raw, status):
    response = post_signed(client, signer, raw)
    assert response.status_code == status
    assert stored_ids(store) == []


@pytest.mark.parametrize("mutate", [
    lambda b: b["installData"]["installedApp"].__setitem__("installedAppId", 42),
    lambda b: b["installData"]["installedApp"].__setitem__("installedAppId", "a:*"),
    lambda b: b["installData"]["installedApp"].__setitem__("installedAppId", "../x"),
    lambda b: b["installData"]["installedApp"].__setitem__("installedAppId", "x\r\nFLUSHALL"),
    lambda b: b["installData"]["installedApp"].__setitem__("installedAppId", "a" * 10000),
    lambda b: b["installData"].__setitem__("authToken", ["list"]),
    lambda b: b["installData"].pop("refreshToken"),
    lambda b: b.pop("installData"),
    lambda b: b["installData"]["installedApp"].__setitem__("config", "nope"),
    lambda b: b["installData"]["installedApp"].__setitem__("permissions", [1]),
])
def test_wrong_types_are_400_and_store_nothing(client, signer, store, cloud, mutate):
    body = load_fixture("install_pysmartapp.json")
    mutate(body)
    response = post_signed(client, signer, body)
    assert response.status_code == 400
    assert stored_ids(store) == []
    assert cloud.api.calls_to("POST") == []


def test_unknown_lifecycle_is_400_with_reason(client, signer):
    response = post_signed(client, signer, {"lifecycle": "DASHBOARD", "dashboardData": {}})
    assert response.status_code == 400
    assert response.get_json() == {"error": "unsupported_lifecycle"}


def test_unknown_lifecycle_unsigned_is_401(client):
    assert client.post("/", json={"lifecycle": "DASHBOARD"}).status_code == 401


def test_oversized_body_is_413(client, signer):
    raw = b'{"lifecycle":"EVENT","pad":"' + b"x" * (1024 * 1024) + b'"}'
    response = post_signed(client, signer, raw)
    assert response.status_code == 413


@pytest.mark.parametrize("headers", [
    {"Content-Type": "text/plain"},
    {"Content-Type": "multipart/form-data; boundary=x"},
    {"Content-Encoding": "gzip"},
])
def test_wrong_media_type_is_415(client, signer, headers):
    response = post_signed(client, signer, load_fixture("install.json"), headers=headers)
    assert response.status_code == 415


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_methods_are_405(client, method):
    response = client.open("/", method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"


def test_other_paths_are_404(client, signer):
    assert post_signed(client, signer, load_fixture("ping.json"), path="/elsewhere").status_code == 404


# --- replay ------------------------------------------------------------------------------------

def test_replayed_install_changes_nothing(client, signer, store, cloud):
    body = with_switches(load_fixture("install.json"), "installData", SWITCH_A)
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    assert client.post("/", data=raw, headers=headers).status_code == 200
    iaid = body["installData"]["installedApp"]["installedAppId"]
    version = store.get(iaid).version
    calls = len(cloud.api.calls)
    replay = client.post("/", data=raw, headers=headers)
    assert replay.status_code == 200
    assert replay.get_json() == {"installData": {}}
    assert store.get(iaid).version == version
    assert len(cloud.api.calls) == calls


def test_replayed_older_update_cannot_roll_tokens_back(client, signer, store):
    first = load_fixture("update.json")
    second = copy.deepcopy(first)
    second["updateData"]["refreshToken"] = "newer-refresh-token"
    raw1 = json.dumps(first).encode()
    headers1 = signer.headers(raw1)
    assert client.post("/", data=raw1, headers=headers1).status_code == 200
    assert post_signed(client, signer, second).status_code == 200
    assert client.post("/", data=raw1, headers=headers1).status_code == 200
    iaid = first["updateData"]["installedApp"]["installedAppId"]
    assert store.get(iaid).refresh_token == "newer-refresh-token"


def test_a_failed_request_can_be_retried(client, signer, store, cloud):
    body = with_switches(load_fixture("install.json"), "installData", SWITCH_A)
    raw = json.dumps(body).encode()
    headers = signer.headers(raw)
    cloud.api.fail_with = 500
    failed = client.post("/", data=raw, headers=headers)
    assert failed.status_code == 503 and failed.headers["Retry-After"]
    cloud.api.fail_with = None
    assert client.post("/", data=raw, headers=headers).status_code == 200
    assert list(cloud.api.subscriptions[body["installData"]["installedApp"]["installedAppId"]]) == ["switchHandler_0"]


def test_health_and_readiness(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200


def test_public_path_is_what_gets_verified(make_app, signer):
    client = make_app("sqlite", SMARTAPP_PUBLIC_PATH="/smartapp").test_client()
    body = load_fixture("execute.json")
    assert post_signed(client, signer, body, path="/smartapp").status_code == 200
    # A proxy that strips the prefix: the app sees "/", SmartThings signed "/smartapp".
    assert post_signed(client, signer, body, path="/", signed_path="/smartapp", now=time.time() + 1).status_code == 200
    assert post_signed(client, signer, body, path="/smartapp", signed_path="/", now=time.time() + 2).status_code == 401


def test_legacy_pasted_key_verifies_smartthings_key_ids(make_app, test_key):
    from smartapp.keys import load_public_key, openssh_md5_fingerprint
    from testbed.signing import Signer

    key_id = "/SmartThings/" + openssh_md5_fingerprint(load_public_key(test_key.public_key_pem))
    client = make_app("sqlite", SMARTAPP_PUBLIC_KEY=test_key.public_key_pem.decode()).test_client()
    body = load_fixture("execute.json")
    assert post_signed(client, Signer(test_key), body, key_id=key_id).status_code == 200
    wrong = "/SmartThings/" + ":".join(["00"] * 16)
    assert post_signed(client, Signer(test_key), body, key_id=wrong, now=time.time() + 1).status_code == 401


def test_startup_refuses_keys_that_cannot_read_the_store(make_app, tmp_path):
    from smartapp.store.cipher import CorruptRecord

    make_app("sqlite")
    (tmp_path / "smartapp.keys").unlink()  # a lost key file must not silently mint a new key
    with pytest.raises(CorruptRecord):
        make_app("sqlite")


@pytest.mark.slow
def test_redis_down_is_503_with_retry_after_and_nothing_written(make_app, signer, redis_server):
    app = make_app("redis")
    client = app.test_client()
    assert post_signed(client, signer, load_fixture("execute.json")).status_code == 200  # the key is cached
    redis_server.pause()
    try:
        started = time.monotonic()
        response = post_signed(client, signer, load_fixture("install.json"))
        assert time.monotonic() - started < 2.0
    finally:
        redis_server.resume()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "5"
    assert sorted(app.extensions["smartapp"].store.installed_app_ids()) == []


def test_the_body_limit_is_exact(make_app, signer):
    client = make_app("sqlite", SMARTAPP_MAX_BODY_BYTES="2000").test_client()
    body = load_fixture("execute.json")
    raw = json.dumps(body).encode()
    at_limit = raw[:-1] + b" " * (2000 - len(raw)) + b"}"
    assert len(at_limit) == 2000
    assert post_signed(client, signer, at_limit).status_code == 200
    assert post_signed(client, signer, at_limit + b" ", now=time.time() + 1).status_code == 413
