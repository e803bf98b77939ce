"""api.subscriptions against FakeSmartThings: bodies of every kind, `<name>_<n>` names, and the 40 rule."""

from __future__ import annotations

import pytest

from smartapp.api import ApiError
from smartapp.config_values import DeviceList, DeviceRef
from tests.conftest import API_INSTALLED_APP_ID as IAPP, API_LOCATION_ID as LOC

ALL_DEVICES = ["r:devices:*", "r:locations:*"]


def sensors(count: int, setting_id: str | None = "sensors") -> DeviceList:
    return DeviceList([DeviceRef(f"sensor-{n:02d}") for n in range(count)], setting_id=setting_id)


def device_subscriptions(fake_st) -> list[dict]:
    return [body["device"] for body in fake_st.subscriptions_of(IAPP) if body["sourceType"] == "DEVICE"]


def subscription_posts(fake_st) -> int:
    return len(fake_st.calls_to("POST", f"/installedapps/{IAPP}/subscriptions"))


def test_one_device_subscription_per_device_named_with_its_number(fake_st, make_api):
    names = make_api().subscriptions.subscribe_to_devices(
        DeviceList([DeviceRef("sensor-a"), DeviceRef("sensor-b", "door2")]), "contactSensor", "contact",
        "contactHandler", modes=[f"{LOC}-home"])
    assert names == ["contactHandler_0", "contactHandler_1"]
    assert device_subscriptions(fake_st) == [
        {"deviceId": "sensor-a", "componentId": "main", "capability": "contactSensor", "attribute": "contact",
         "value": "*", "stateChangeOnly": True, "subscriptionName": "contactHandler_0", "modes": [f"{LOC}-home"]},
        {"deviceId": "sensor-b", "componentId": "door2", "capability": "contactSensor", "attribute": "contact",
         "value": "*", "stateChangeOnly": True, "subscriptionName": "contactHandler_1", "modes": [f"{LOC}-home"]}]


def test_numbers_continue_across_calls_with_one_name_and_attribute_dot_value_splits(fake_st, make_api):
    api = make_api()
    api.subscriptions.subscribe_to_devices("switch-a", "switch", "switch.on", "switchHandler", state_change_only=False)
    api.subscriptions.subscribe_to_devices(["switch-b"], "switch", "switch", "switchHandler", value="off")
    assert [(body["subscriptionName"], body["attribute"], body["value"], body["stateChangeOnly"])
            for body in device_subscriptions(fake_st)] == [("switchHandler_0", "switch", "on", False),
                                                            ("switchHandler_1", "switch", "off", True)]


def test_a_name_with_an_underscore_is_refused_before_any_call(fake_st, make_api):
    api = make_api()
    with pytest.raises(ValueError, match="_"):
        api.subscriptions.subscribe_to_devices(sensors(2), "contactSensor", "contact", "contact_handler")
    with pytest.raises(ValueError):
        api.subscriptions.subscribe_to_capability("switch", "switch", "switch_handler")
    assert fake_st.calls == []


def test_45_devices_without_all_device_access_subscribe_40_and_name_the_rest_once(fake_st, make_api, smartapp_log):
    names = make_api(permissions=["r:devices:sensor-00"]).subscriptions.subscribe_to_devices(
        sensors(45), "contactSensor", "contact", "contactHandler")
    assert names == [f"contactHandler_{n}" for n in range(40)]
    assert len(device_subscriptions(fake_st)) == 40 and subscription_posts(fake_st) == 40
    warnings = [record for record in smartapp_log.records if record.getMessage() == "subscription_limit"]
    assert len(warnings) == 1
    assert warnings[0].levelname == "WARNING" and warnings[0].reason == "subscription_limit"
    assert warnings[0].installedAppId == IAPP and warnings[0].count == 5
    assert warnings[0].deviceIds == [f"sensor-{n}" for n in range(40, 45)]


def test_45_devices_with_all_device_access_become_one_capability_subscription(fake_st, make_api, smartapp_log):
    names = make_api(permissions=ALL_DEVICES).subscriptions.subscribe_to_devices(
        sensors(45), "contactSensor", "contact", "contactHandler")
    assert names == ["contactHandler_sensors"]
    assert fake_st.subscriptions_of(IAPP) == [{
        "id": fake_st.subscriptions_of(IAPP)[0]["id"], "installedAppId": IAPP, "sourceType": "CAPABILITY",
        "capability": {"locationId": LOC, "capability": "contactSensor", "attribute": "contact", "value": "*",
                       "stateChangeOnly": True, "subscriptionName": "contactHandler_sensors"}}]
    assert smartapp_log.reasons() == []


@pytest.mark.parametrize("devices, location_id", [
    (sensors(45, setting_id=None), "loc-1"),   # not the devices of one setting: events could not be filtered
    (sensors(45), None),                       # no location known to subscribe in
])
def test_the_capability_fallback_needs_a_setting_and_a_location(fake_st, make_api, smartapp_log, devices, location_id):
    api = make_api(permissions=ALL_DEVICES, location_id=location_id)
    assert len(api.subscriptions.subscribe_to_devices(devices, "contactSensor", "contact", "contactHandler")) == 40
    assert len(device_subscriptions(fake_st)) == 40
    assert smartapp_log.reasons() == ["subscription_limit"]


def test_few_devices_with_all_device_access_still_get_device_subscriptions(fake_st, make_api):
    make_api(permissions=ALL_DEVICES).subscriptions.subscribe_to_devices(
        sensors(40), "contactSensor", "contact", "contactHandler")
    assert len(device_subscriptions(fake_st)) == 40


def test_the_count_spans_calls_and_restarts_after_delete_all(fake_st, make_api, smartapp_log):
    api = make_api()
    api.subscriptions.subscribe_to_devices(sensors(30), "contactSensor", "contact", "contactHandler")
    api.subscriptions.subscribe_to_devices(sensors(15, "motion"), "motionSensor", "motion", "motionHandler")
    assert api.subscriptions.count == 40 and len(fake_st.subscriptions_of(IAPP)) == 40
    assert smartapp_log.records[-1].count == 5
    with pytest.raises(ApiError) as full:
        api.subscriptions.subscribe_to_modes("modeHandler")
    assert full.value.reason == "subscription_limit" and full.value.http_status is None
    assert subscription_posts(fake_st) == 40
    api.subscriptions.delete_all()
    assert api.subscriptions.count == 0 and fake_st.subscriptions_of(IAPP) == []
    assert api.subscriptions.subscribe_to_devices(sensors(40), "contactSensor", "contact", "contactHandler")[0] \
        == "contactHandler_0"
    assert len(fake_st.subscriptions_of(IAPP)) == 40


def test_smartthings_limit_error_is_a_subscription_limit_error(fake_st, make_api):
    make_api().subscriptions.subscribe_to_devices(sensors(38), "contactSensor", "contact", "earlier")
    with pytest.raises(ApiError) as refused:
        make_api().subscriptions.subscribe_to_devices(sensors(5, "lights"), "switch", "switch", "switchHandler")
    assert refused.value.reason == "subscription_limit"
    assert (refused.value.http_status, refused.value.code) == (422, "LimitError")
    assert len(fake_st.subscriptions_of(IAPP)) == 40


def test_a_retried_install_meets_409s_and_carries_on(fake_st, make_api):
    make_api().subscriptions.subscribe_to_devices(sensors(3), "contactSensor", "contact", "contactHandler")
    retry = make_api()
    assert retry.subscriptions.subscribe_to_devices(sensors(3), "contactSensor", "contact", "contactHandler") == [
        "contactHandler_0", "contactHandler_1", "contactHandler_2"]
    assert retry.subscriptions.count == 3 and len(fake_st.subscriptions_of(IAPP)) == 3


def test_location_wide_subscriptions_have_their_shapes(fake_st, make_api):
    subscriptions = make_api(permissions=ALL_DEVICES).subscriptions
    subscriptions.subscribe_to_capability("switch", "switch", "anySwitch", value="on", modes=["m1"])
    subscriptions.subscribe_to_modes("modeHandler")
    subscriptions.subscribe_to_device_health("healthAll")
    subscriptions.subscribe_to_device_health("healthSome", devices=[DeviceRef("d1"), "d2"])
    subscriptions.subscribe_to_device_lifecycle("lifecycleAll")
    subscriptions.subscribe_to_device_lifecycle("lifecycleSome", devices=DeviceList([DeviceRef("d3")]))
    subscriptions.subscribe_to_security_arm_state("armState")
    subscriptions.subscribe_to_hub_health("hubHealth")
    subscriptions.subscribe_to_scene_lifecycle("sceneHandler")
    bodies = {body["sourceType"] + ":" + body[key]["subscriptionName"]: body[key]
              for body in fake_st.subscriptions_of(IAPP)
              for key in body if key not in ("id", "installedAppId", "sourceType")}
    assert bodies == {
        "CAPABILITY:anySwitch": {"locationId": LOC, "capability": "switch", "attribute": "switch", "value": "on",
                                 "stateChangeOnly": True, "subscriptionName": "anySwitch", "modes": ["m1"]},
        "MODE:modeHandler": {"locationId": LOC, "subscriptionName": "modeHandler"},
        "DEVICE_HEALTH:healthAll": {"locationId": LOC, "subscriptionName": "healthAll"},
        "DEVICE_HEALTH:healthSome": {"deviceIds": ["d1", "d2"], "subscriptionName": "healthSome"},
        "DEVICE_LIFECYCLE:lifecycleAll": {"locationId": LOC, "subscriptionName": "lifecycleAll"},
        "DEVICE_LIFECYCLE:lifecycleSome": {"deviceIds": ["d3"], "subscriptionName": "lifecycleSome"},
        "SECURITY_ARM_STATE:armState": {"locationId": LOC, "subscriptionName": "armState"},
        "HUB_HEALTH:hubHealth": {"locationId": LOC, "subscriptionName": "hubHealth"},
        "SCENE_LIFECYCLE:sceneHandler": {"locationId": LOC, "subscriptionName": "sceneHandler"},
    }


def test_list_and_delete_by_name_or_id(fake_st, make_api):
    api = make_api()
    api.subscriptions.subscribe_to_devices(sensors(3), "contactSensor", "contact", "contactHandler")
    fake_st.page_size = 2
    listed = api.subscriptions.list()
    assert [body["device"]["subscriptionName"] for body in listed] == [f"contactHandler_{n}" for n in range(3)]
    api.subscriptions.delete("contactHandler_0")
    api.subscriptions.delete(listed[1]["id"])
    api.subscriptions.delete("contactHandler_0")  # already gone: fine
    assert [body["device"]["subscriptionName"] for body in fake_st.subscriptions_of(IAPP)] == ["contactHandler_2"]
    assert api.subscriptions.count == 1
