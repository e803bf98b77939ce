"""The apps in examples/ do what their docstrings say, against loopback SmartThings, LIFX and OAuth fakes."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

import smartapp
from examples import daily_switch_off
from smartapp.errors import UnknownInstallation
from smartapp.testing import AppHarness, FakeSmartThings
from testbed.service import Gunicorn
from tests.support.lifx_api import FakeLifx
from tests.support.oauth_provider import FakeAuthorizationServer

ROOT = Path(__file__).resolve().parents[2]
LIFX_CLIENT_ID, LIFX_CLIENT_SECRET = "lifx-client", "lifx-secret-canary-3a9d"


def commands(smartthings: FakeSmartThings, device_id: str) -> list[str]:
    return [command["command"] for command in smartthings.commands_for(device_id)]


# --- examples.daily_switch_off ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def served_daily_switch_off(smartthings, harness_signer, tmp_path_factory):
    """The example served by gunicorn, loaded the way a developer deploys their own app: SMARTAPP_APP."""
    directory = tmp_path_factory.mktemp("daily")
    env = {"SMARTAPP_APP": "examples.daily_switch_off:app", "SMARTAPP_API_URL": smartthings.url,
           "SMARTAPP_DB_PATH": str(directory / "smartapp.db"), **harness_signer.environment()}
    server = Gunicorn(env, directory / "gunicorn.log", workers=1)
    yield server
    server.stop()


@pytest.fixture(params=["in-process", pytest.param("gunicorn", marks=pytest.mark.e2e)])
def daily(request, smartthings, harness_signer, tmp_path):
    """One new installation of the daily switch-off app, at a location in New York."""
    url = request.getfixturevalue("served_daily_switch_off").url + "/" if request.param == "gunicorn" else None
    harness = AppHarness(daily_switch_off.app, smartthings=smartthings, signer=harness_signer, url=url, directory=tmp_path)
    smartthings.add_location(harness.location_id, time_zone_id="America/New_York")
    return harness


def test_the_daily_page_asks_for_switches_and_a_time(daily):
    page = daily.page()
    settings = {setting["id"]: setting for section in page["sections"] for setting in section["settings"]}
    assert settings["offAt"]["type"] == "TIME" and settings["offAt"]["required"] is True
    assert settings["switches"]["type"] == "DEVICE" and settings["switches"]["capabilities"] == ["switch"]
    assert settings["switches"]["permissions"] == ["r", "x"]


def test_install_schedules_a_daily_cron_at_the_chosen_time_in_the_location_time_zone(daily, smartthings):
    # The time as the phone sent it: its wall-clock reading (22:15) is what the user picked.
    daily.install({"switches": ["sw-1", "sw-2"], "offAt": "2026-03-01T22:15:00.000-0500"})
    (schedule,) = smartthings.schedules_of(daily.installed_app_id)
    assert schedule["name"] == "switchOff"
    assert schedule["cron"] == {"expression": "15 22 * * ? *", "timezone": "America/New_York"}


def test_update_replaces_the_schedule_with_the_new_time(daily, smartthings):
    daily.install({"switches": ["sw-1"], "offAt": "2026-03-01T22:15:00.000-0500"})
    daily.update({"switches": ["sw-1"], "offAt": "2026-03-01T06:05:00.000-0500"})
    (schedule,) = smartthings.schedules_of(daily.installed_app_id)
    assert schedule["cron"]["expression"] == "5 6 * * ? *"


def test_the_timer_switches_the_chosen_switches_off(daily, smartthings):
    switches = [f"sw-{uuid.uuid4().hex[:8]}" for _ in range(2)]
    daily.install({"switches": switches, "offAt": "2026-03-01T22:15:00.000-0500"})
    daily.timer("switchOff")
    assert [commands(smartthings, switch) for switch in switches] == [["off"], ["off"]]
    assert smartthings.commands_for(switches[0])[0]["capability"] == "switch"


# --- examples.lifx_mirror --------------------------------------------------------------------------------------


@pytest.fixture
def lifx():
    with FakeLifx() as fake:
        yield fake


@pytest.fixture
def lifx_mirror(lifx, monkeypatch):
    """The example, imported with LIFX_API_URL pointing at the fake (the module reads it when imported)."""
    monkeypatch.setenv("LIFX_API_URL", lifx.api_url)
    monkeypatch.delitem(sys.modules, "examples.lifx_mirror", raising=False)
    module = importlib.import_module("examples.lifx_mirror")
    yield module
    sys.modules.pop("examples.lifx_mirror", None)


@pytest.fixture
def lifx_accounts():
    """LIFX's OAuth server as a loopback fake: credentials in the form (the preset's way), no PKCE."""
    server = FakeAuthorizationServer(client_id=LIFX_CLIENT_ID, client_secret=LIFX_CLIENT_SECRET,
                                     auth_method="client_secret_post").start()
    yield server
    server.stop()


@pytest.fixture
def mirror(lifx_mirror, lifx_accounts, smartthings, harness_signer, tmp_path):
    """An installation of the LIFX mirror served with SMARTAPP_OAUTH_PROVIDER=lifx, its endpoints on the fake."""
    return AppHarness(lifx_mirror.app, smartthings=smartthings, signer=harness_signer, directory=tmp_path, config={
        "SMARTAPP_OAUTH_PROVIDER": "lifx", "SMARTAPP_OAUTH_CLIENT_ID": LIFX_CLIENT_ID,
        "SMARTAPP_OAUTH_CLIENT_SECRET": LIFX_CLIENT_SECRET,
        "SMARTAPP_OAUTH_AUTHORIZE_URL": lifx_accounts.authorize_url,
        "SMARTAPP_OAUTH_TOKEN_URL": lifx_accounts.token_url})


def link_lifx(harness: AppHarness) -> None:
    """What the user does on the first page: tap "Connect LIFX", sign in; SmartThings then sends OAUTH_CALLBACK."""
    page = harness.page()
    (account,) = [setting for section in page["sections"] for setting in section["settings"]
                  if setting["type"] == "OAUTH"]
    assert page["sections"][0]["settings"] == [account]  # on top of the first page
    signed_in = requests.get(account["urlTemplate"], allow_redirects=False, timeout=5)
    assert signed_in.status_code == 302
    status, answer = harness.post({"lifecycle": "OAUTH_CALLBACK", "executionId": str(uuid.uuid4()), "locale": "en",
                                   "version": "1.0.0", "settings": {}, "oAuthCallbackData": {
                                       "installedAppId": harness.installed_app_id,
                                       "urlPath": urlsplit(signed_in.headers["Location"]).query}})
    assert (status, answer) == (200, {"oAuthCallbackData": {}})


def store_of(harness: AppHarness):
    return harness.service.extensions["smartapp"].store


def test_a_switch_event_sets_the_lifx_lights_with_the_linked_account_token(mirror, lifx, lifx_accounts, smartthings,
                                                                          smartapp_log):
    link_lifx(mirror)
    mirror.install({"switch": ["mirrored-switch"], "selector": "group:Living Room"})
    mirror.device_event("mirrored-switch", "on")
    mirror.device_event("mirrored-switch", "off")
    linked = store_of(mirror).get(mirror.installed_app_id)
    assert linked.provider == "lifx" and linked.provider_access_token in lifx_accounts.authority.access_tokens
    assert [(change.selector, change.token, change.body) for change in lifx.changes] == [
        ("group:Living Room", linked.provider_access_token, {"power": "on"}),
        ("group:Living Room", linked.provider_access_token, {"power": "off"})]
    assert linked.provider_access_token not in smartapp_log.raw()


@pytest.mark.slow
def test_an_expired_lifx_token_is_refreshed_once_for_concurrent_events_and_the_new_one_used(
        mirror, lifx, lifx_accounts, smartthings):
    link_lifx(mirror)
    mirror.install({"switch": ["mirrored-switch"]})
    store = store_of(mirror)
    expired = store.get(mirror.installed_app_id).provider_access_token
    store.update(mirror.installed_app_id, {"provider_token_expires_at": time.time() - 1})
    # A slow token endpoint keeps the first refresh in flight while the second event asks for a token.
    # Refresh tokens rotate: a second refresh with the same one would be refused (invalid_grant).
    lifx_accounts.authority.delay = 0.5
    failures: list[BaseException] = []

    def switch_event(value: str) -> None:
        try:
            mirror.device_event("mirrored-switch", value)
        except BaseException as error:  # noqa: BLE001 - reported by the main thread
            failures.append(error)

    events = [threading.Thread(target=switch_event, args=(value,)) for value in ("on", "off")]
    for event in events:
        event.start()
    for event in events:
        event.join(15)
    assert failures == []
    refreshed = store.get(mirror.installed_app_id)
    assert lifx_accounts.authority.refresh_calls == 1
    assert refreshed.provider_access_token != expired and refreshed.provider_token_expires_at > time.time() + 3000
    assert refreshed.reauth_required is None
    assert sorted(change.body["power"] for change in lifx.changes) == ["off", "on"]
    assert {change.token for change in lifx.changes} == {refreshed.provider_access_token}


def test_a_lifx_token_refused_with_401_is_refreshed_once_and_the_call_retried(mirror, lifx, lifx_accounts):
    link_lifx(mirror)
    mirror.install({"switch": ["mirrored-switch"]})
    store = store_of(mirror)
    revoked = store.get(mirror.installed_app_id).provider_access_token  # unexpired, but LIFX no longer takes it
    lifx.revoked.add(revoked)
    mirror.device_event("mirrored-switch", "on")
    renewed = store.get(mirror.installed_app_id).provider_access_token
    assert lifx_accounts.authority.refresh_calls == 1 and renewed != revoked
    assert [(change.token, change.body) for change in lifx.changes] == [(renewed, {"power": "on"})]
    assert [call.headers["authorization"] for call in lifx.calls] == [f"Bearer {revoked}", f"Bearer {renewed}"]


def test_without_a_linked_account_the_event_does_nothing_and_is_answered(mirror, lifx, smartthings, smartapp_log):
    mirror.install({"switch": ["unlinked-switch"]})
    mirror.device_event("unlinked-switch", "on")  # raises unless answered 200
    assert lifx.changes == [] and lifx.calls == []
    assert "app_handler_failed" not in smartapp_log.reasons()


# --- examples.status_from_cron ---------------------------------------------------------------------------------


@pytest.fixture
def installed(smartthings, harness_signer, tmp_path):
    """A stored installation (of the daily switch-off app) whose tokens the fake's token endpoint knows."""
    harness = AppHarness(daily_switch_off.app, smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    harness.install({"switches": ["cron-switch"], "offAt": "2026-03-01T22:15:00.000-0500"})
    access_token, refresh_token = smartthings.issue_tokens()
    store_of(harness).update(harness.installed_app_id, {"auth_token": access_token, "refresh_token": refresh_token,
                                                        "auth_token_expires_at": time.time() + 3600})
    return harness


def run_cron_job(harness: AppHarness, device_id: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTAPP_")}
    env.update(harness.environment(), PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "examples.status_from_cron", harness.installed_app_id, device_id],
                          env=env, cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_the_cron_job_refreshes_an_expired_token_first_then_sends_the_command(installed, smartthings):
    device = f"cron-{uuid.uuid4().hex[:8]}"
    smartthings.add_device(device)
    smartthings.set_status(device, "switch", "switch", "on")
    store = store_of(installed)
    before = store.get(installed.installed_app_id)
    store.update(installed.installed_app_id, {"auth_token_expires_at": time.time() - 60})
    refreshes, calls = smartthings.token_refreshes, len(smartthings.bearer_tokens())

    result = run_cron_job(installed, device)

    assert result.returncode == 0, result.stderr
    assert commands(smartthings, device) == ["off"]
    after = store.get(installed.installed_app_id)
    assert smartthings.token_refreshes == refreshes + 1
    assert after.auth_token != before.auth_token and after.refresh_token != before.refresh_token
    assert after.auth_token_expires_at > time.time() + 3600
    # Both calls (status, then command) went out with the new token; the expired one never left.
    assert smartthings.bearer_tokens()[calls:] == [f"Bearer {after.auth_token}"] * 2
    assert before.auth_token not in result.stdout + result.stderr
    assert after.auth_token not in result.stdout + result.stderr


@pytest.mark.slow
def test_the_cron_job_leaves_a_switch_that_is_already_off_alone(installed, smartthings):
    device = f"cron-{uuid.uuid4().hex[:8]}"
    smartthings.add_device(device)
    smartthings.set_status(device, "switch", "switch", "off")
    result = run_cron_job(installed, device)
    assert result.returncode == 0, result.stderr
    assert commands(smartthings, device) == []


def test_a_proactive_call_refused_with_401_refreshes_once_and_retries(installed, smartthings):
    device = f"proactive-{uuid.uuid4().hex[:8]}"
    smartthings.add_device(device)
    store = store_of(installed)
    revoked = store.get(installed.installed_app_id).auth_token  # not expired by its clock, but refused
    smartthings.reject_token(revoked)
    refreshes = smartthings.token_refreshes

    with smartapp.installation(installed.installed_app_id, config=installed.environment()) as ctx:
        ctx.api.devices.send_command(device, "switch", "on")

    assert commands(smartthings, device) == ["on"]
    assert smartthings.token_refreshes == refreshes + 1
    renewed = store.get(installed.installed_app_id).auth_token
    assert renewed != revoked
    assert smartthings.bearer_tokens()[-2:] == [f"Bearer {revoked}", f"Bearer {renewed}"]


def test_a_proactive_call_for_an_unknown_installation_says_so(installed):
    with pytest.raises(UnknownInstallation):
        with smartapp.installation(str(uuid.uuid4()), config=installed.environment()):
            pass
