"""The bundled "lights follow sensors" app's wire behaviour, in-process and under real gunicorn."""

from __future__ import annotations

import logging
import time

import pytest

from smartapp.default_app import app as default_app
from smartapp.testing import AppHarness
from testbed.service import Gunicorn

SENSORS = [f"sensor-{n}" for n in range(45)]
LIGHTS = ["light-a", "light-b"]


@pytest.fixture(scope="module")
def served(smartthings, harness_signer, tmp_path_factory):
    """The default app as the Procfile serves it: gunicorn, no SMARTAPP_APP, the embedded store."""
    directory = tmp_path_factory.mktemp("served")
    env = {"SMARTAPP_API_URL": smartthings.url, "SMARTAPP_DB_PATH": str(directory / "smartapp.db"),
           **harness_signer.environment()}
    server = Gunicorn(env, directory / "gunicorn.log", workers=2)
    yield server
    server.stop()


@pytest.fixture(params=["in-process", "gunicorn"])
def harness(request, smartthings, harness_signer):
    if request.param == "gunicorn":
        return AppHarness(default_app, smartthings=smartthings, signer=harness_signer,
                          url=request.getfixturevalue("served").url + "/")
    return AppHarness(default_app, smartthings=smartthings, signer=harness_signer)


def commands(smartthings, device_id: str) -> list[str]:
    return [command["command"] for command in smartthings.commands_for(device_id)]


def test_the_page_has_the_three_settings_with_fixed_ids(harness):
    page = harness.page()
    assert page["pageId"] == "mainPage" and page["complete"] is True
    settings = {setting["id"]: setting for section in page["sections"] for setting in section["settings"]}
    assert list(settings) == ["sensors", "lights", "offDelayMinutes"]
    assert settings["sensors"]["type"] == "DEVICE" and settings["sensors"]["capabilities"] == ["contactSensor"]
    assert settings["sensors"]["multiple"] is True and settings["sensors"]["required"] is True
    assert settings["sensors"]["permissions"] == ["r"]
    assert settings["lights"]["capabilities"] == ["switch"] and settings["lights"]["permissions"] == ["r", "x"]
    assert settings["offDelayMinutes"]["type"] == "NUMBER" and settings["offDelayMinutes"]["defaultValue"] == "5"
    assert settings["sensors"]["name"] == "Which contact sensors?"  # from smartapp/locales/en.json


def test_install_subscribes_to_each_sensor_never_to_the_lights(harness, smartthings):
    harness.install({"sensors": SENSORS[:3], "lights": LIGHTS})
    subscriptions = smartthings.subscriptions_of(harness.installed_app_id)
    assert [s["device"]["subscriptionName"] for s in subscriptions] == [f"contactHandler_{n}" for n in range(3)]
    assert {s["device"]["deviceId"] for s in subscriptions} == set(SENSORS[:3])
    assert all(s["device"]["attribute"] == "contact" and s["device"]["stateChangeOnly"] for s in subscriptions)


def test_open_switches_lights_on_and_closed_schedules_them_off(harness, smartthings):
    harness.install({"sensors": SENSORS[:3], "lights": LIGHTS, "offDelayMinutes": 5})
    harness.device_event(SENSORS[1], "open")
    assert commands(smartthings, "light-a")[-1:] == ["on"] and commands(smartthings, "light-b")[-1:] == ["on"]
    assert smartthings.schedules_of(harness.installed_app_id) == []
    before = time.time()
    harness.device_event(SENSORS[1], "closed")
    (schedule,) = smartthings.schedules_of(harness.installed_app_id)
    assert schedule["name"] == "lightsOff" and schedule["once"]["overwrite"] is True
    assert before + 299 <= schedule["once"]["time"] / 1000 <= time.time() + 301
    harness.device_event(SENSORS[2], "open")  # opening again cancels the pending switch-off
    assert smartthings.schedules_of(harness.installed_app_id) == []


def test_the_timer_switches_every_light_off(harness, smartthings):
    harness.install({"sensors": SENSORS[:1], "lights": LIGHTS})
    harness.timer("lightsOff")
    assert commands(smartthings, "light-a")[-1:] == ["off"] and commands(smartthings, "light-b")[-1:] == ["off"]


def test_a_zero_delay_never_schedules_a_switch_off(harness, smartthings):
    harness.install({"sensors": SENSORS[:1], "lights": LIGHTS, "offDelayMinutes": 0})
    harness.device_event(SENSORS[0], "closed")
    assert smartthings.schedules_of(harness.installed_app_id) == []


def test_update_deletes_subscriptions_and_schedules_then_subscribes_again(harness, smartthings):
    harness.install({"sensors": SENSORS[:3], "lights": LIGHTS})
    harness.device_event(SENSORS[0], "closed")
    assert smartthings.schedules_of(harness.installed_app_id)
    harness.update({"sensors": SENSORS[5:7], "lights": LIGHTS})
    subscriptions = smartthings.subscriptions_of(harness.installed_app_id)
    assert {s["device"]["deviceId"] for s in subscriptions} == set(SENSORS[5:7])
    assert smartthings.schedules_of(harness.installed_app_id) == []


def test_45_sensors_with_all_device_access_get_one_capability_subscription(harness, smartthings):
    harness.install({"sensors": SENSORS, "lights": LIGHTS}, grant=["r:devices:*"])
    (subscription,) = smartthings.subscriptions_of(harness.installed_app_id)
    assert subscription["sourceType"] == "CAPABILITY"
    assert subscription["capability"]["capability"] == "contactSensor"
    harness.device_event(SENSORS[44], "open")
    assert commands(smartthings, "light-a")[-1:] == ["on"]
    # A sensor the user did not choose reports through the same subscription: ignored.
    before = len(smartthings.commands_for("light-a"))
    harness.events({"eventType": "DEVICE_EVENT", "deviceEvent": {
        "deviceId": "someone-elses-sensor", "componentId": "main", "capability": "contactSensor",
        "attribute": "contact", "value": "open", "subscriptionName": subscription["capability"]["subscriptionName"]}})
    assert len(smartthings.commands_for("light-a")) == before


def test_45_sensors_without_it_subscribe_40_and_name_the_rest(smartthings, harness_signer, caplog):
    harness = AppHarness(default_app, smartthings=smartthings, signer=harness_signer)
    with caplog.at_level(logging.WARNING, logger="smartapp"):
        harness.install({"sensors": SENSORS, "lights": LIGHTS})
    assert len(smartthings.subscriptions_of(harness.installed_app_id)) == 40
    (warning,) = [r for r in caplog.records if getattr(r, "reason", None) == "subscription_limit"]
    assert warning.deviceIds == SENSORS[40:] and warning.count == 5


@pytest.mark.slow
def test_a_429_is_waited_out_when_its_reset_fits_the_budget(harness, smartthings):
    light = f"light-{harness.installed_app_id}"
    harness.install({"sensors": SENSORS[:1], "lights": [light]})
    smartthings.rate_limit_next(1, reset=1)
    harness.device_event(SENSORS[0], "open")
    assert commands(smartthings, light) == ["on"]


def test_a_429_that_does_not_fit_is_logged_and_the_event_still_answered(smartthings, harness_signer, caplog):
    harness = AppHarness(default_app, smartthings=smartthings, signer=harness_signer, strict=False)
    harness.install({"sensors": SENSORS[:1], "lights": ["light-busy"]})
    smartthings.rate_limit_next(1, reset=60)
    with caplog.at_level(logging.WARNING, logger="smartapp"):
        harness.device_event(SENSORS[0], "open")  # raises if the EVENT was not answered 200
    assert commands(smartthings, "light-busy") == []
    assert "smartthings_rate_limited" in [getattr(r, "reason", None) for r in caplog.records]


def test_the_harness_fails_a_test_whose_handler_failed(smartthings, harness_signer):
    harness = AppHarness(default_app, smartthings=smartthings, signer=harness_signer)
    harness.install({"sensors": SENSORS[:1], "lights": ["light-strict"]})
    smartthings.rate_limit_next(1, reset=60)
    with pytest.raises(AssertionError, match="smartthings_rate_limited"):
        harness.device_event(SENSORS[0], "open")
    with pytest.raises(AssertionError, match="unknown_schedule"):
        harness.timer("noSuchSchedule")


def test_lights_chosen_without_command_permission_are_refused_like_smartthings_would(smartthings, harness_signer):
    from smartapp import Context, Page, SmartApp

    forgetful = SmartApp("Forgot rx")

    @forgetful.page("mainPage")
    def page(ctx: Context, page: Page) -> None:
        page.section("devices").device("lights", capability="switch")  # "r" only: no command allowed

    @forgetful.execute
    def switch_on(ctx: Context, parameters: dict) -> dict:
        ctx.api.devices.send_command(ctx.config.devices("lights"), "switch", "on")
        return {}

    harness = AppHarness(forgetful, smartthings=smartthings, signer=harness_signer)
    harness.install({"lights": ["light-no-x"]})
    with pytest.raises(AssertionError, match="503"):
        harness.execute({})
    assert smartthings.commands_for("light-no-x") == []
