"""SmartThingsApi's namespaces against the public FakeSmartThings: devices, schedules, locations, modes, scenes."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import pytest

from smartapp.api import ApiError
from smartapp.config_values import DeviceList, DeviceRef
from smartapp.testing import Reply
from tests.conftest import API_INSTALLED_APP_ID as IAPP, API_LOCATION_ID as LOC, API_TOKEN, FIXED_NOW

ON = {"component": "main", "capability": "switch", "command": "on", "arguments": []}


def test_devices_list_follows_pages_and_filters_by_capability(fake_st, make_api):
    fake_st.page_size = 2
    for number in range(5):
        fake_st.add_device(f"light-{number}", capabilities=("switch",))
    fake_st.add_device("sensor-1", capabilities=("contactSensor",))
    api = make_api()
    assert [device["deviceId"] for device in api.devices.list("switch")] == [f"light-{n}" for n in range(5)]
    assert len(fake_st.calls_to("GET", "/devices")) == 3
    assert len(api.devices.list()) == 6
    assert [device["deviceId"] for device in api.devices.list("contactSensor")] == ["sensor-1"]


def test_device_details_and_status_at_each_level(fake_st, make_api):
    fake_st.add_device("lamp", label="Desk lamp", capabilities=("switch", "switchLevel"))
    fake_st.set_status("lamp", "switch", "switch", "on")
    fake_st.set_status("lamp", "switchLevel", "level", 40, unit="%")
    api = make_api()
    assert api.devices.get("lamp")["label"] == "Desk lamp"
    assert api.devices.get_status("lamp") == {"components": {"main": {
        "switch": {"switch": {"value": "on"}}, "switchLevel": {"level": {"value": 40, "unit": "%"}}}}}
    assert api.devices.get_component_status(DeviceRef("lamp"), "main")["switch"] == {"switch": {"value": "on"}}
    assert api.devices.get_capability_status("lamp", "main", "switchLevel") == {"level": {"value": 40, "unit": "%"}}
    with pytest.raises(ApiError) as missing:
        api.devices.get_status("nothing-here")
    assert missing.value.reason == "smartthings_not_found" and missing.value.http_status == 404


def test_send_command_posts_once_per_device_with_each_devices_component(fake_st, make_api):
    lights = DeviceList([DeviceRef("light-a"), DeviceRef("light-b", "outlet2")], setting_id="lights")
    answers = make_api().devices.send_command(lights, "switch", "on")
    assert len(answers) == 2 and answers[0]["results"][0]["status"] == "ACCEPTED"
    assert fake_st.commands_for("light-a") == [ON]
    assert fake_st.commands_for("light-b") == [{**ON, "component": "outlet2"}]
    assert len(fake_st.calls_to("POST", "/devices/")) == 2
    assert all(token == f"Bearer {API_TOKEN}" for token in fake_st.bearer_tokens())


def test_send_command_takes_one_id_a_ref_arguments_and_a_component(fake_st, make_api):
    api = make_api()
    api.devices.send_command("dimmer", "switchLevel", "setLevel", [30])
    api.devices.send_command(DeviceRef("dimmer", "main"), "switch", "off", component="light2")
    assert fake_st.commands_for("dimmer") == [
        {"component": "main", "capability": "switchLevel", "command": "setLevel", "arguments": [30]},
        {"component": "light2", "capability": "switch", "command": "off", "arguments": []}]


def test_send_commands_sends_several_in_one_request_to_the_refs_component(fake_st, make_api):
    make_api().devices.send_commands(DeviceRef("bulb", "light1"), [
        {"capability": "switch", "command": "on"},
        {"capability": "colorControl", "command": "setHue", "arguments": [50]}])
    assert fake_st.commands_for("bulb") == [
        {"component": "light1", "capability": "switch", "command": "on", "arguments": []},
        {"component": "light1", "capability": "colorControl", "command": "setHue", "arguments": [50]}]
    assert len(fake_st.calls_to("POST", "/devices/bulb/commands")) == 1


def test_a_device_that_fails_does_not_stop_the_others(fake_st, make_api):
    fake_st.route("POST", r"/devices/locked/commands", lambda call, match: Reply(403, {"error": {"code": "Forbidden"}}))
    with pytest.raises(ApiError) as failure:
        make_api().devices.send_command(["light-a", "locked", "light-c"], "switch", "on")
    assert failure.value.reason == "smartthings_forbidden"
    assert fake_st.commands_for("light-a") == [ON] and fake_st.commands_for("light-c") == [ON]


def test_a_rejected_token_stops_sending_to_the_remaining_devices(fake_st, make_api):
    fake_st.reject_token(API_TOKEN)
    with pytest.raises(ApiError) as failure:
        make_api().devices.send_command(["light-a", "light-b", "light-c"], "switch", "on")
    assert failure.value.reason == "smartthings_unauthorized"
    assert len(fake_st.calls_to("POST", "/devices/")) == 1


def test_bad_commands_are_refused_before_any_call(fake_st, make_api):
    api = make_api()
    with pytest.raises(ValueError):
        api.devices.send_commands("bulb", [{"capability": "switch"}])
    with pytest.raises(TypeError):
        api.devices.send_command([42], "switch", "on")
    assert fake_st.calls == []


def test_ids_are_quoted_into_one_path_segment(fake_st, make_api):
    api = make_api()
    api.devices.send_command("../../installedapps/x?y=1", "switch", "on")
    assert fake_st.commands_for("../../installedapps/x?y=1") == [ON]
    with pytest.raises(ValueError):
        api.devices.send_command("..", "switch", "on")
    assert len(fake_st.calls) == 1


def test_run_in_is_a_once_schedule_that_overwrites_its_namesake(fake_st, make_api):
    api = make_api()
    api.schedules.run_in("lightsOff", 300)
    api.schedules.run_in("lightsOff", 600)
    assert fake_st.schedules_of(IAPP) == [{"installedAppId": IAPP, "name": "lightsOff",
                                           "once": {"time": int((FIXED_NOW + 600) * 1000), "overwrite": True}}]
    call = fake_st.calls_to("POST", f"/installedapps/{IAPP}/schedules")[0]
    assert call.json() == {"name": "lightsOff", "once": {"time": int((FIXED_NOW + 300) * 1000), "overwrite": True}}


def test_run_once_takes_a_datetime_or_epoch_seconds(fake_st, make_api):
    api = make_api()
    api.schedules.run_once("a", datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc))
    api.schedules.run_once("b", 1_900_000_000.5)
    once = {body["name"]: body["once"]["time"] for body in fake_st.schedules_of(IAPP)}
    assert once == {"a": int(datetime(2030, 1, 2, 3, 4, 5, tzinfo=timezone.utc).timestamp() * 1000),
                    "b": 1_900_000_000_500}
    with pytest.raises(TypeError):
        api.schedules.run_once("c", "tomorrow")
    with pytest.raises(ValueError):
        api.schedules.run_in("d", -1)


def test_run_daily_is_a_cron_in_the_locations_time_zone_fetched_once(fake_st, make_api):
    api = make_api()
    api.schedules.run_daily("morning", time(7, 5))
    # A TIME setting's value: the wall-clock time the user picked, with the phone's offset; the offset is not applied.
    api.schedules.run_daily("evening", datetime(2024, 3, 1, 21, 30, tzinfo=timezone(timedelta(hours=-5))))
    crons = {body["name"]: body["cron"] for body in fake_st.schedules_of(IAPP)}
    assert crons == {"morning": {"expression": "5 7 * * ? *", "timezone": "Europe/Berlin"},
                     "evening": {"expression": "30 21 * * ? *", "timezone": "Europe/Berlin"}}
    assert len(fake_st.calls_to("GET", f"/locations/{LOC}")) == 1


def test_schedule_with_an_explicit_time_zone_does_not_ask_for_the_location(fake_st, make_api):
    make_api().schedules.schedule("weekly", "0 9 ? * MON *", timezone="America/Chicago")
    assert fake_st.schedules_of(IAPP)[0]["cron"] == {"expression": "0 9 ? * MON *", "timezone": "America/Chicago"}
    assert fake_st.calls_to("GET", "/locations") == []


def test_a_location_without_a_time_zone_schedules_in_utc_and_says_so(fake_st, make_api, smartapp_log):
    fake_st.add_location("bare", time_zone_id=None)
    make_api(location_id="bare").schedules.schedule("nightly", "0 1 * * ? *")
    assert fake_st.schedules_of(IAPP)[0]["cron"]["timezone"] == "UTC"
    assert smartapp_log.reasons() == ["location_time_zone_missing"]


def test_schedules_list_delete_and_delete_all(fake_st, make_api):
    api = make_api()
    for name in ("one", "two", "three"):
        api.schedules.run_in(name, 60)
    assert [schedule["name"] for schedule in api.schedules.list()] == ["one", "two", "three"]
    api.schedules.delete("two")
    api.schedules.delete("two")  # already gone: fine
    assert [schedule["name"] for schedule in fake_st.schedules_of(IAPP)] == ["one", "three"]
    api.schedules.delete_all()
    assert fake_st.schedules_of(IAPP) == []


def test_locations_modes_scenes_and_the_installed_app(fake_st, make_api):
    fake_st.add_location("loc-2", name="Cabin", time_zone_id="America/Denver")
    fake_st.add_scene(LOC, "scene-1", "Movie night")
    fake_st.add_scene("loc-2", "scene-2", "Elsewhere")
    api = make_api()
    assert api.locations.get()["timeZoneId"] == "Europe/Berlin"
    assert api.locations.get("loc-2")["name"] == "Cabin"
    assert {location["locationId"] for location in api.locations.list()} == {LOC, "loc-2"}
    assert [mode["label"] for mode in api.modes.list()] == ["Home", "Away", "Night"]
    assert api.modes.get_current()["label"] == "Home"
    api.modes.set_current(f"{LOC}-night")
    assert fake_st.current_mode(LOC) == f"{LOC}-night" and api.modes.get_current()["label"] == "Night"
    assert [scene["sceneId"] for scene in api.scenes.list()] == ["scene-1"]
    api.scenes.execute("scene-1")
    assert fake_st.scenes_executed == ["scene-1"]
    assert api.installed_app.get()["locationId"] == LOC


def test_a_client_without_a_location_reads_it_from_the_installed_app_once(fake_st, make_api):
    api = make_api(location_id=None)
    assert [mode["label"] for mode in api.modes.list()] == ["Home", "Away", "Night"]
    api.schedules.run_daily("daily", time(6, 0))
    assert len(fake_st.calls_to("GET", f"/installedapps/{IAPP}")) == 1


def test_request_is_a_raw_call_relative_to_the_api_url(fake_st, make_api):
    fake_st.set_status("lamp", "switch", "switch", "off")
    api = make_api(locale="de-DE")
    status = api.request("get", "/devices/lamp/status")
    assert status == {"components": {"main": {"switch": {"switch": {"value": "off"}}}}}
    api.schedules.run_in("x", 5)
    assert api.request("DELETE", f"/installedapps/{IAPP}/schedules/x") == {}
    assert api.request("POST", "/devices/lamp/commands", json={"commands": [ON]})["results"]
    assert all(call.headers["accept-language"] == "de-DE" for call in fake_st.calls)
    fake_st.route("DELETE", r"/empty", lambda call, match: Reply(204))
    assert api.request("DELETE", "/empty") is None
    with pytest.raises(ValueError):
        api.request("TRACE", "/devices")
