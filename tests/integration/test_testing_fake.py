"""The public FakeSmartThings itself, through plain HTTP: what it refuses, injects and issues."""

from __future__ import annotations

import requests

from smartapp.testing import FakeSmartThings

IAPP = "iapp-1"


def post(fake: FakeSmartThings, path: str, body, token: str = "t") -> requests.Response:
    return requests.post(fake.url + path, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=5)


def test_malformed_bodies_are_refused_like_smartthings_would(fake_st):
    subscriptions, schedules = f"/installedapps/{IAPP}/subscriptions", f"/installedapps/{IAPP}/schedules"
    no_device = {"sourceType": "DEVICE", "device": {"subscriptionName": "x"}}
    assert post(fake_st, subscriptions, no_device).status_code == 422
    assert post(fake_st, subscriptions, {"sourceType": "NOPE", "nope": {}}).status_code == 422
    assert post(fake_st, schedules, {"name": "x", "once": 1700000000}).status_code == 422
    assert post(fake_st, schedules, {"name": "x", "cron": {"expression": "0 1 * * ? *"}}).status_code == 422
    assert post(fake_st, "/devices/d/commands", {"commands": [{"capability": "switch"}]}).status_code == 422
    assert post(fake_st, "/devices/d/commands", {"commands": [
        {"component": "main", "capability": "switch", "command": "on"}] * 11}).status_code == 422
    assert fake_st.subscriptions_of(IAPP) == [] and fake_st.schedules_of(IAPP) == [] and fake_st.commands_for("d") == []


def test_a_duplicate_schedule_name_without_overwrite_is_a_conflict(fake_st):
    path = f"/installedapps/{IAPP}/schedules"
    cron = {"name": "daily", "cron": {"expression": "0 1 * * ? *", "timezone": "UTC"}}
    assert post(fake_st, path, cron).status_code == 200
    assert post(fake_st, path, cron).status_code == 409
    assert post(fake_st, path, {"name": "daily", "once": {"time": 1, "overwrite": True}}).status_code == 200
    assert fake_st.schedules_of(IAPP) == [{"installedAppId": IAPP, "name": "daily",
                                           "once": {"time": 1, "overwrite": True}}]


def test_injected_failures_hit_api_calls_in_order_then_stop(fake_st):
    fake_st.fail_next(1, 503)
    fake_st.rate_limit_next(1, reset=7)
    first = requests.get(fake_st.url + "/locations", timeout=5)
    second = requests.get(fake_st.url + "/locations", timeout=5)
    assert (first.status_code, first.json()["error"]["code"]) == (503, "InjectedError")
    assert (second.status_code, second.headers["x-ratelimit-reset"]) == (429, "7")
    assert requests.get(fake_st.url + "/locations", timeout=5).status_code == 200
    fake_st.fail_with = 500
    assert requests.get(fake_st.url + "/locations", timeout=5).status_code == 500
    assert requests.get(fake_st.url + "/apps/app-1/confirm-registration", timeout=5).status_code == 200
    assert fake_st.confirmed == ["app-1"]


def test_the_token_endpoint_rotates_refresh_tokens_it_issued_once_each(fake_st):
    access, refresh = fake_st.issue_tokens()
    form = {"grant_type": "refresh_token", "client_id": "c", "refresh_token": refresh}
    answer = requests.post(fake_st.url + "/oauth/token", data=form, auth=("c", "s"), timeout=5)
    assert answer.status_code == 200
    grant = answer.json()
    assert grant["access_token"] != access and grant["refresh_token"] != refresh and grant["expires_in"] > 0
    reused = requests.post(fake_st.url + "/oauth/token", data=form, auth=("c", "s"), timeout=5)
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")
    unknown = requests.post(fake_st.url + "/oauth/token", data={**form, "refresh_token": "made-up"}, timeout=5)
    assert unknown.json()["error"] == "invalid_grant"
    assert fake_st.token_refreshes == 1 and fake_st.bearer_tokens() == []


def test_page_links_keep_the_query(fake_st):
    fake_st.page_size = 1
    for number in range(3):
        fake_st.add_device(f"sensor-{number}", capabilities=("contactSensor",))
    fake_st.add_device("light", capabilities=("switch",))
    page = requests.get(fake_st.url + "/devices", params={"capability": "contactSensor"}, timeout=5).json()
    assert [device["deviceId"] for device in page["items"]] == ["sensor-0"]
    following = requests.get(page["_links"]["next"]["href"], timeout=5).json()
    assert [device["deviceId"] for device in following["items"]] == ["sensor-1"]
