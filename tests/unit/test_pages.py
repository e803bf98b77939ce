"""The page builder: the JSON of every setting type, multi-page flows, build-time checks, scope derivation."""

from __future__ import annotations

import json

import pytest

from smartapp.pages import Page, Section, scopes_of
from tests.conftest import LOCAL_FIXTURES


def only_setting(build) -> dict:
    """The JSON of the one setting `build(section)` adds."""
    page = Page("mainPage")
    build(page.section("main"))
    return page.to_json()["sections"][0]["settings"][0]


SETTING_JSON = [
    pytest.param(
        lambda s: s.device("sensors", name="Which sensors?", description="Tap to choose", capability="contactSensor",
                           multiple=True, required=True),
        {"id": "sensors", "name": "Which sensors?", "description": "Tap to choose", "type": "DEVICE",
         "required": True, "multiple": True, "capabilities": ["contactSensor"], "permissions": ["r"]},
        id="device-defaults-to-read"),
    pytest.param(
        lambda s: s.device("lights", capabilities=["switch", "switchLevel"], exclude_capabilities=["lock"],
                           permissions="rx", preselect=True, close_on_selection=False, submit_on_change=True,
                           disabled=False, style="COMPLETE"),
        {"id": "lights", "name": "lights", "type": "DEVICE", "required": False, "multiple": False,
         "capabilities": ["switch", "switchLevel"], "excludeCapabilities": ["lock"], "permissions": ["r", "x"],
         "preselect": True, "closeOnSelection": False, "submitOnChange": True, "disabled": False,
         "style": "COMPLETE"},
        id="device-every-field"),
    pytest.param(
        lambda s: s.enum("color", options={"red": "Red", "blue": "Blue"}, default="blue", multiple=True,
                         style="DROPDOWN"),
        {"id": "color", "name": "color", "type": "ENUM", "required": False, "defaultValue": "blue",
         "multiple": True, "style": "DROPDOWN",
         "options": [{"id": "red", "name": "Red"}, {"id": "blue", "name": "Blue"}]},
        id="enum"),
    pytest.param(
        lambda s: s.enum("flavour", grouped_options={"Fruit": {"lemon": "Lemon"}, "Nuts": ["hazelnut"]}),
        {"id": "flavour", "name": "flavour", "type": "ENUM", "required": False, "multiple": False,
         "groupedOptions": [{"name": "Fruit", "options": [{"id": "lemon", "name": "Lemon"}]},
                            {"name": "Nuts", "options": [{"id": "hazelnut", "name": "hazelnut"}]}]},
        id="enum-grouped"),
    pytest.param(
        lambda s: s.boolean("notify", default=True, image="https://example.com/i.png", submit_on_change=True),
        {"id": "notify", "name": "notify", "type": "BOOLEAN", "required": False, "defaultValue": "true",
         "image": "https://example.com/i.png", "submitOnChange": True},
        id="boolean"),
    pytest.param(
        lambda s: s.boolean("notify", required=True),
        {"id": "notify", "name": "notify", "type": "BOOLEAN", "required": True, "defaultValue": "false"},
        id="boolean-required-starts-false"),
    pytest.param(
        lambda s: s.text("message", default="Door open", min_length=1, max_length=40, post_message="chars",
                         image="https://example.com/t.png"),
        {"id": "message", "name": "message", "type": "TEXT", "required": False, "defaultValue": "Door open",
         "minLength": 1, "maxLength": 40, "image": "https://example.com/t.png", "postMessage": "chars"},
        id="text"),
    pytest.param(
        lambda s: s.password("apiKey", required=True, min_length=8),
        {"id": "apiKey", "name": "apiKey", "type": "PASSWORD", "required": True, "minLength": 8},
        id="password"),
    pytest.param(
        lambda s: s.email("to", default="me@example.com"),
        {"id": "to", "name": "to", "type": "EMAIL", "required": False, "defaultValue": "me@example.com"},
        id="email"),
    pytest.param(
        lambda s: s.phone("sms", image="https://example.com/p.png"),
        {"id": "sms", "name": "sms", "type": "PHONE", "required": False, "image": "https://example.com/p.png"},
        id="phone"),
    pytest.param(
        lambda s: s.number("offDelayMinutes", default=5, min=0, max=120, step=5, post_message="min"),
        {"id": "offDelayMinutes", "name": "offDelayMinutes", "type": "NUMBER", "required": False,
         "defaultValue": "5", "min": 0, "max": 120, "step": 5, "postMessage": "min"},
        id="number"),
    pytest.param(
        lambda s: s.decimal("threshold", default=2.5, min=0, max=10.5),
        {"id": "threshold", "name": "threshold", "type": "DECIMAL", "required": False, "defaultValue": "2.5",
         "min": 0, "max": 10.5},
        id="decimal"),
    pytest.param(
        lambda s: s.time("at", required=True),
        {"id": "at", "name": "at", "type": "TIME", "required": True},
        id="time"),
    pytest.param(
        lambda s: s.mode("modes", multiple=True, close_on_selection=True),
        {"id": "modes", "name": "modes", "type": "MODE", "required": False, "multiple": True,
         "closeOnSelection": True},
        id="mode"),
    pytest.param(
        lambda s: s.scene("scene", required=True, style="ERROR"),
        {"id": "scene", "name": "scene", "type": "SCENE", "required": True, "multiple": False, "style": "ERROR"},
        id="scene"),
    pytest.param(
        lambda s: s.paragraph("intro", "Lights follow your sensors.", description="More below"),
        {"id": "intro", "name": "Lights follow your sensors.", "description": "More below", "type": "PARAGRAPH"},
        id="paragraph"),
    pytest.param(
        lambda s: s.link("help", "https://example.com/help", name="Help", style="DEFAULT"),
        {"id": "help", "name": "Help", "type": "LINK", "url": "https://example.com/help", "style": "DEFAULT"},
        id="link-has-no-required"),
    pytest.param(
        lambda s: s.page("advanced"),
        {"id": "advanced", "name": "advanced", "type": "PAGE", "page": "advanced"},
        id="page-targets-its-id"),
    pytest.param(
        lambda s: s.page("more", "advancedPage", image="https://example.com/a.png"),
        {"id": "more", "name": "more", "type": "PAGE", "page": "advancedPage", "image": "https://example.com/a.png"},
        id="page-to-another-page"),
    pytest.param(
        lambda s: s.oauth("lifxAuth", "https://cloud.lifx.com/oauth/authorize?client_id=c", name="Connect LIFX",
                          description="Tap to set", required=True),
        {"id": "lifxAuth", "name": "Connect LIFX", "description": "Tap to set", "type": "OAUTH", "required": True,
         "urlTemplate": "https://cloud.lifx.com/oauth/authorize?client_id=c"},
        id="oauth"),
    pytest.param(
        lambda s: s.image("logo", "https://example.com/logo.png"),
        {"id": "logo", "name": "logo", "type": "IMAGE", "image": "https://example.com/logo.png"},
        id="image"),
    pytest.param(
        lambda s: s.images("gallery", ["https://example.com/1.png", "https://example.com/2.png"]),
        {"id": "gallery", "name": "gallery", "type": "IMAGES",
         "images": ["https://example.com/1.png", "https://example.com/2.png"]},
        id="images"),
    pytest.param(
        lambda s: s.video("howto", "https://example.com/v.mp4", image="https://example.com/v.png"),
        {"id": "howto", "name": "howto", "type": "VIDEO", "video": "https://example.com/v.mp4",
         "image": "https://example.com/v.png"},
        id="video"),
]


@pytest.mark.parametrize("build, expected", SETTING_JSON)
def test_setting_json_uses_smartthings_field_names(build, expected):
    assert only_setting(build) == expected


@pytest.mark.parametrize("options, expected", [
    ({"one": "One", "two": "Two"}, [("one", "One"), ("two", "Two")]),
    (["Vanilla", "Chocolate"], [("Vanilla", "Vanilla"), ("Chocolate", "Chocolate")]),
    ([("one", "One"), ["two", "Two"]], [("one", "One"), ("two", "Two")]),
    ([{"id": "one", "name": "One"}], [("one", "One")]),
])
def test_enum_options_accept_a_mapping_ids_pairs_or_objects(options, expected):
    setting = only_setting(lambda s: s.enum("pick", options=options))
    assert setting["options"] == [{"id": option_id, "name": name} for option_id, name in expected]


def test_setting_methods_return_the_section_for_chaining():
    page = Page("mainPage")
    section = page.section("devices")
    returned = section.device("sensors", capability="contactSensor").number("delay", default=1)
    assert returned is section and isinstance(section, Section)
    assert [setting.id for setting in page.settings] == ["sensors", "delay"]


def test_empty_page_matches_the_published_response_fixture():
    expected = json.loads((LOCAL_FIXTURES / "responses" / "config_page_response.json").read_text())
    assert {"configurationData": {"page": Page("1", name="Configuration").to_json()}} == expected


def test_two_sections_match_the_node_sdk_page_builder_shape():
    page = Page("mainPage", name="Page Builder Spec")
    page.section("door", name="When this door opens and closes").device(
        "contactSensor", capabilities=["contactSensor"], name="Select an open/close sensor", required=True)
    page.section("lights", name="Turn these lights on and off").device(
        "lights", capabilities=["switch"], name="Select lights", multiple=True, permissions="rx", required=True)
    body = page.to_json()
    assert body["pageId"] == "mainPage" and body["name"] == "Page Builder Spec" and body["complete"] is True
    first, second = body["sections"]
    assert first["name"] == "When this door opens and closes"
    assert first["settings"][0] == {"id": "contactSensor", "name": "Select an open/close sensor", "type": "DEVICE",
                                    "required": True, "multiple": False, "capabilities": ["contactSensor"],
                                    "permissions": ["r"]}
    assert second["settings"][0]["permissions"] == ["r", "x"] and second["settings"][0]["multiple"] is True
    json.dumps(body)  # the page is plain JSON, ready for the response


def test_names_fall_back_to_ids_and_an_empty_section_name_means_no_title():
    page = Page("mainPage")
    page.section("devices").time("at")
    page.section("untitled", name="", hideable=True, hidden=True, style="FOOTER").boolean("flag")
    body = page.to_json()
    assert body["name"] == "mainPage"
    assert body["sections"][0]["name"] == "devices" and body["sections"][0]["settings"][0]["name"] == "at"
    assert body["sections"][1] == {"hideable": True, "hidden": True, "style": "FOOTER",
                                   "settings": [{"id": "flag", "name": "flag", "type": "BOOLEAN", "required": False}]}


def test_multi_page_flow_completes_on_the_page_without_a_next_page():
    first = Page("devicesPage", name="Devices", next_page="timingPage", next_text="Timing")
    first.section("devices").device("sensors", capability="contactSensor")
    last = Page("timingPage", name="Timing", previous_page="devicesPage")
    last.section("timing").number("offDelayMinutes", default=5, min=0)

    first_json, last_json = first.to_json(), last.to_json()
    assert (first_json["nextPageId"], first_json["previousPageId"], first_json["complete"]) == \
        ("timingPage", None, False)
    assert first_json["nextText"] == "Timing"
    assert (last_json["nextPageId"], last_json["previousPageId"], last_json["complete"]) == \
        (None, "devicesPage", True)


def test_a_page_made_by_the_app_is_configured_through_its_attributes():
    page = Page("mainPage")  # the app makes it; the page handler fills it in
    page.name = "Lights follow sensors"
    page.next_page = "advanced"
    page.style = "SPLASH"
    assert page.to_json()["complete"] is False
    page.complete = True  # an explicit answer wins over the default
    body = page.to_json()
    assert (body["name"], body["nextPageId"], body["complete"], body["style"]) == \
        ("Lights follow sensors", "advanced", True, "SPLASH")
    with pytest.raises(ValueError, match="next_page"):
        page.next_page = "../other"


def test_translations_override_code_texts_key_by_key():
    texts = {("sensors", "name"): "Welche Sensoren?", ("mainPage", "name"): "Hauptseite",
             ("devices", "name"): "Geräte", ("color", "options", "red"): "Rot", ("flavour", "groups", "Fruit"): "Obst",
             ("message", "defaultValue"): "Tür offen", ("message", "postMessage"): "Zeichen",
             ("mainPage", "nextText"): "Weiter"}
    page = Page("mainPage", name="Main")
    section = page.section("devices", name="Devices")
    section.device("sensors", name="Which sensors?", description="Tap to choose")
    section.enum("color", options={"red": "Red", "blue": "Blue"})
    section.enum("flavour", grouped_options={"Fruit": ["lemon"]})
    section.text("message", default="Door open", post_message="chars")
    body = page.to_json(lambda key, *path: texts.get((key, *path)))
    settings = body["sections"][0]["settings"]
    assert (body["name"], body["nextText"], body["sections"][0]["name"]) == ("Hauptseite", "Weiter", "Geräte")
    assert (settings[0]["name"], settings[0]["description"]) == ("Welche Sensoren?", "Tap to choose")
    assert settings[1]["options"] == [{"id": "red", "name": "Rot"}, {"id": "blue", "name": "Blue"}]
    assert settings[2]["groupedOptions"][0]["name"] == "Obst"
    assert (settings[3]["defaultValue"], settings[3]["postMessage"]) == ("Tür offen", "Zeichen")


@pytest.mark.parametrize("setting_id", ["", "a b", "../etc", "sensors/1", "x" * 129, 5, None, "é"])
def test_a_bad_setting_id_is_refused_at_build_time(setting_id):
    with pytest.raises(ValueError, match="setting id"):
        Page("mainPage").section("main").boolean(setting_id)


@pytest.mark.parametrize("page_id", ["", "x" * 37, "main page", "a/b"])
def test_a_bad_page_id_is_refused(page_id):
    with pytest.raises(ValueError, match="page id"):
        Page(page_id)


def test_a_setting_id_is_unique_on_its_page_across_sections():
    page = Page("mainPage")
    page.section("one").device("sensors", capability="contactSensor")
    with pytest.raises(ValueError, match="'sensors' is used twice"):
        page.section("two").number("sensors")


def test_a_section_key_is_unique_on_its_page():
    page = Page("mainPage")
    page.section("devices")
    with pytest.raises(ValueError, match="section key 'devices' is used twice"):
        page.section("devices")


def test_a_refused_setting_leaves_nothing_behind():
    page = Page("mainPage")
    section = page.section("main")
    with pytest.raises(ValueError):
        section.number("delay", default=-1, min=0)
    section.number("delay", default=1, min=0)  # the id was not taken by the refused call
    assert [setting.id for setting in page.settings] == ["delay"]


@pytest.mark.parametrize("build, message", [
    (lambda s: s.device("d", capability="switch", capabilities=["switch"]), "not both"),
    (lambda s: s.device("d", permissions="rz"), "permissions"),
    (lambda s: s.device("d", permissions=""), "permissions"),
    (lambda s: s.device("d", capabilities="switch"), "capabilities"),
    (lambda s: s.device("d", multiple="yes"), "multiple must be True or False"),
    (lambda s: s.device("d", style="BOLD"), "style must be one of"),
    (lambda s: s.enum("e"), "options"),
    (lambda s: s.enum("e", options=[]), "must not be empty"),
    (lambda s: s.enum("e", options=["a", "a"]), "unique"),
    (lambda s: s.enum("e", options={"a": "A"}, default="b"), "not one of the option ids"),
    (lambda s: s.enum("e", options={"a": "A"}, grouped_options={"G": ["b"]}), "exactly one"),
    (lambda s: s.boolean("b", default="true"), "True or False"),
    (lambda s: s.number("n", default=2.5), "whole number"),
    (lambda s: s.number("n", default=True), "whole number"),
    (lambda s: s.number("n", min=5, max=1), "above max"),
    (lambda s: s.number("n", default=11, max=10), "outside"),
    (lambda s: s.number("n", step=0), "step"),
    (lambda s: s.decimal("n", default=float("nan")), "finite"),
    (lambda s: s.text("t", post_message="much too long"), "at most 10"),
    (lambda s: s.text("t", min_length=5, max_length=2), "above max_length"),
    (lambda s: s.text("t", default=5), "default must be text"),
    (lambda s: s.text("t", name="n" * 129), "at most 128"),
    (lambda s: s.text("t", description="d" * 2049), "at most 2048"),
    (lambda s: s.time("t", default="x" * 129), "at most 128"),
    (lambda s: s.oauth("o", ""), "url_template"),
    (lambda s: s.images("i", "https://example.com/1.png"), "list of image URLs"),
    (lambda s: s.page("p", "not a page"), "page .not a page. must be 1-36"),
])
def test_a_setting_the_platform_would_refuse_fails_at_build_time(build, message):
    with pytest.raises(ValueError, match=message):
        build(Page("mainPage").section("main"))


def test_scopes_come_from_device_permissions_modes_and_scenes():
    first = Page("first")
    first.section("devices").device("sensors", capability="contactSensor").device(
        "lights", capability="switch", permissions="rx")
    second = Page("second")
    second.section("more").mode("modes").scene("scene").device("locks", permissions=["r", "w"]).text("note")
    assert scopes_of([first, second]) == ["r:devices:*", "r:locations:*", "r:scenes:*", "w:devices:*",
                                          "x:devices:*", "x:scenes:*"]
    assert scopes_of(first) == ["r:devices:*", "x:devices:*"]
    assert scopes_of([Page("empty")]) == []
