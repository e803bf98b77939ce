"""What a handler's Context gives it (state, typed config, api, execute answers) and what registration refuses."""

from __future__ import annotations

import json
import sqlite3
import uuid
from pathlib import Path

import pytest

from smartapp import ConfigValueError, ConfigValues, Context, Page, SmartApp
from smartapp.testing import AppHarness
from tests.conftest import load_fixture

DIARY = "diary-canary-5b1e0c"  # a state value that must never be readable in the database file


def one_text_page(app: SmartApp) -> None:
    @app.page("mainPage")
    def main_page(ctx: Context, page: Page) -> None:
        page.section("settings").number("delay")


def store_of(harness: AppHarness):
    return harness.service.extensions["smartapp"].store


# --- ctx.state ---------------------------------------------------------------------------------------------------


def counter_app() -> SmartApp:
    """Counts its timer events in ctx.state; EXECUTE reports the count."""
    app = SmartApp("Counter")
    one_text_page(app)

    @app.schedule("tick")
    def tick(ctx: Context, event: dict) -> None:
        ctx.state["ticks"] = ctx.state.get("ticks", 0) + 1
        ctx.state["diary"] = DIARY

    @app.execute
    def report(ctx: Context, parameters: dict) -> dict:
        return {"ticks": ctx.state.get("ticks", 0), "asked": parameters.get("question")}

    return app


@pytest.fixture
def counter(smartthings, harness_signer, tmp_path):
    harness = AppHarness(counter_app(), smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    harness.install({})
    return harness


def database_bytes(directory: Path) -> bytes:
    """The SQLite database as it is on disk, write-ahead log included."""
    return b"".join(path.read_bytes() for path in sorted(directory.glob("smartapp.db*")))


def stored_state_field(directory: Path, installed_app_id: str) -> str:
    with sqlite3.connect(directory / "smartapp.db") as connection:
        row = connection.execute("SELECT data FROM installations WHERE installed_app_id = ?",
                                 (installed_app_id,)).fetchone()
    return json.loads(row[0])["app_state"]


def test_state_persists_from_one_event_to_the_next(counter):
    counter.timer("tick")
    counter.timer("tick")
    assert counter.execute({"question": "how many?"}) == {"ticks": 2, "asked": "how many?"}


def test_state_is_encrypted_at_rest(counter, tmp_path):
    counter.timer("tick")
    assert json.loads(store_of(counter).get(counter.installed_app_id).app_state)["diary"] == DIARY
    assert stored_state_field(tmp_path, counter.installed_app_id).startswith("gAAAAA")  # Fernet
    assert DIARY.encode() not in database_bytes(tmp_path)


def test_uninstall_deletes_the_state(counter):
    counter.timer("tick")
    counter.uninstall()
    assert store_of(counter).get(counter.installed_app_id) is None
    counter.install({})  # installed again under the same id: it starts from nothing
    assert counter.execute({})["ticks"] == 0


def test_an_execute_handler_answer_becomes_execute_data(counter):
    status, answer = counter.post({"lifecycle": "EXECUTE", "executionId": str(uuid.uuid4()), "locale": "en",
                                   "version": "1.0.0", "settings": {}, "executeData": {
                                       "authToken": "execute-token", "installedApp": counter.installed_app(),
                                       "parameters": {"question": "status"}}})
    assert status == 200
    assert answer == {"executeData": {"ticks": 0, "asked": "status"}}


# --- a setting of the wrong type ---------------------------------------------------------------------------------

TEXT_IN_NUMBER = {"delay": [{"valueType": "STRING", "stringConfig": {"value": "soon-canary-7c1"}}]}


def delay_app(*, read_at: str) -> SmartApp:
    """Reads its NUMBER setting `delay` in the `installed` hook or in a timer event handler."""
    app = SmartApp("Delay")
    one_text_page(app)
    if read_at == "install":
        @app.installed
        def installed(ctx: Context) -> None:
            ctx.config.number("delay")
    else:
        @app.schedule("later")
        def later(ctx: Context, event: dict) -> None:
            ctx.config.number("delay")
    return app


def test_text_in_a_number_setting_is_logged_in_an_event_and_the_batch_answered(smartthings, harness_signer, tmp_path,
                                                                             smartapp_log):
    harness = AppHarness(delay_app(read_at="event"), smartthings=smartthings, signer=harness_signer, directory=tmp_path,
                         strict=False)
    harness.install({"delay": 5})
    harness.config = TEXT_IN_NUMBER
    harness.timer("later")  # raises unless the EVENT was answered 200
    (failure,) = [record for record in smartapp_log.records
                  if getattr(record, "reason", None) == "config_value_invalid"]
    assert failure.handler == "TIMER_EVENT" and "delay" in failure.detail
    assert "soon-canary-7c1" not in smartapp_log.raw()


def test_text_in_a_number_setting_fails_install_with_400(smartthings, harness_signer, tmp_path, smartapp_log):
    harness = AppHarness(delay_app(read_at="install"), smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    harness.config = TEXT_IN_NUMBER
    status, answer = harness.post({"lifecycle": "INSTALL", "executionId": str(uuid.uuid4()), "locale": "en",
                                   "version": "1.0.0", "settings": {}, "installData": {
                                       "authToken": "install-token", "refreshToken": "install-refresh",
                                       "installedApp": harness.installed_app()}})
    assert (status, answer) == (400, {"error": "config_value_invalid"})
    assert "soon-canary-7c1" not in smartapp_log.raw()


def test_the_config_error_names_the_setting_not_the_value():
    with pytest.raises(ConfigValueError) as raised:
        ConfigValues(TEXT_IN_NUMBER).number("delay")
    assert raised.value.setting_id == "delay" and "soon-canary-7c1" not in str(raised.value)


# --- ctx.api on a configuration page -----------------------------------------------------------------------------


def scene_picker_app() -> SmartApp:
    """Its page lists the location's scenes once the installation exists (the user reopening its settings)."""
    app = SmartApp("Scene picker")

    @app.page("mainPage")
    def main_page(ctx: Context, page: Page) -> None:
        section = page.section("scenes")
        if ctx.location_id is None:
            section.paragraph("installFirst", "Save once; then reopen these settings to pick a scene")
        else:
            section.enum("scene", options={scene["sceneId"]: scene["sceneName"] for scene in ctx.api.scenes.list()})

    return app


def test_a_page_of_an_existing_installation_can_call_the_api_with_the_stored_token(smartthings, harness_signer, tmp_path):
    harness = AppHarness(scene_picker_app(), smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    smartthings.add_scene(harness.location_id, f"scene-{harness.installed_app_id}", "Movie night")
    calls = len(smartthings.bearer_tokens())
    first = harness.page()  # not installed yet: nothing stored, so nothing to act with
    assert [setting["id"] for setting in first["sections"][0]["settings"]] == ["installFirst"]
    assert len(smartthings.bearer_tokens()) == calls

    harness.install({})
    stored_token = store_of(harness).get(harness.installed_app_id).auth_token
    reopened = harness.page()  # CONFIGURATION carries no token

    (scene,) = reopened["sections"][0]["settings"]
    assert scene["type"] == "ENUM"
    assert scene["options"] == [{"id": f"scene-{harness.installed_app_id}", "name": "Movie night"}]
    assert smartthings.bearer_tokens()[-1] == f"Bearer {stored_token}"


# --- registration ------------------------------------------------------------------------------------------------


def handler(*args: object) -> None:
    pass


def handler_too(*args: object) -> None:
    pass


@pytest.mark.parametrize("register", [
    lambda app, fn: app.subscription("switchChanged")(fn),
    lambda app, fn: app.schedule("switchOff")(fn),
    lambda app, fn: app.event("MODE_EVENT")(fn),
    lambda app, fn: app.page("mainPage")(fn),
    lambda app, fn: app.installed(fn),
    lambda app, fn: app.execute(fn),
], ids=["subscription", "schedule", "event", "page", "installed", "execute"])
def test_a_second_handler_for_one_name_is_refused(register):
    app = SmartApp("Twice")
    register(app, handler)
    with pytest.raises(ValueError, match="two"):
        register(app, handler_too)


def test_a_module_registering_two_handlers_for_one_subscription_fails_at_import(tmp_path, monkeypatch):
    (tmp_path / "twice_app.py").write_text(
        "from smartapp import SmartApp\n"
        "app = SmartApp('Twice')\n"
        "@app.subscription('switchChanged')\n"
        "def first(ctx, event): pass\n"
        "@app.subscription('switchChanged')\n"
        "def second(ctx, event): pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ValueError, match="two subscription handlers for 'switchChanged'"):
        __import__("twice_app")


@pytest.mark.parametrize("name", ["switch_changed", "contactHandler_0", ""])
def test_a_subscription_name_with_an_underscore_is_refused(name):
    with pytest.raises(ValueError, match="subscription name"):
        SmartApp("Underscore").subscription(name)


# --- events routed by type ---------------------------------------------------------------------------------------

TYPED_EVENTS = {
    "MODE_EVENT": ("event_mode.json", "r:locations:*"),
    "DEVICE_HEALTH_EVENT": ("event_device_health.json", "r:devices:*"),
    "DEVICE_LIFECYCLE_EVENT": ("event_device_lifecycle.json", "r:devices:*"),
    "HUB_HEALTH_EVENT": ("event_hub_health.json", "r:hubs"),
    "SECURITY_ARM_STATE_EVENT": ("event_security_arm_state.json", "r:security:locations:*:armstate"),
    "SCENE_LIFECYCLE_EVENT": ("event_scene_lifecycle.json", "r:scenes:*"),
    "DEVICE_COMMANDS_EVENT": ("event_device_commands.json", None),
}


def watcher_app(received: list[tuple[str, dict]]) -> SmartApp:
    app = SmartApp("Watcher")
    one_text_page(app)
    for event_type in TYPED_EVENTS:
        def record(ctx: Context, event: dict, event_type: str = event_type) -> None:
            received.append((event_type, event))
        app.event(event_type)(record)
    return app


def fixture_event(name: str) -> dict:
    (event,) = load_fixture(name)["eventData"]["events"]
    return event


def test_events_are_routed_to_their_handler_by_type(smartthings, harness_signer, tmp_path):
    received: list[tuple[str, dict]] = []
    harness = AppHarness(watcher_app(received), smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    events = [fixture_event(name) for name, _ in TYPED_EVENTS.values()]
    harness.events(*events)
    assert [event_type for event_type, _ in received] == list(TYPED_EVENTS)
    for (event_type, payload), event in zip(received, events):
        assert event["eventType"] == event_type and payload == next(v for k, v in event.items() if k.endswith("Event"))


def test_an_event_type_without_a_handler_is_skipped_and_the_batch_answered(smartthings, harness_signer, tmp_path,
                                                                           smartapp_log):
    app = SmartApp("Mode only")
    one_text_page(app)
    modes: list[dict] = []
    app.event("MODE_EVENT")(lambda ctx, event: modes.append(event))
    harness = AppHarness(app, smartthings=smartthings, signer=harness_signer, directory=tmp_path, strict=False)
    harness.events(fixture_event("event_hub_health.json"), fixture_event("event_mode.json"))
    assert len(modes) == 1
    assert "no_handler" in smartapp_log.reasons()


def test_the_scopes_of_event_type_handlers_are_asked_for_at_initialize(smartthings, harness_signer, tmp_path):
    harness = AppHarness(watcher_app([]), smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    status, answer = harness.post({"lifecycle": "CONFIGURATION", "executionId": str(uuid.uuid4()), "locale": "en",
                                   "version": "1.0.0", "settings": {},
                                   "configurationData": {"installedAppId": harness.installed_app_id,
                                                         "phase": "INITIALIZE", "pageId": "", "previousPageId": "",
                                                         "config": {}}})
    assert status == 200
    wanted = sorted({scope for _, scope in TYPED_EVENTS.values() if scope})
    assert answer["configurationData"]["initialize"]["permissions"] == wanted


def test_an_unknown_event_type_is_refused_at_registration():
    with pytest.raises(ValueError, match="DEVICE_EVENT"):
        SmartApp("Wrong").event("DEVICE_EVENT")


# --- ctx.annotate ------------------------------------------------------------------------------------------------


def request_records(log) -> list:
    return [record for record in log.records if record.getMessage() == "request"]


def test_an_annotation_rides_on_the_request_line(smartthings, harness_signer, tmp_path, smartapp_log):
    from examples.switch_logger import app as switches_app

    device = str(uuid.uuid4())
    harness = AppHarness(switches_app, smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    harness.install({"switches": [device]})
    harness.device_event(device, "off")
    event_line = request_records(smartapp_log)[-1]
    assert (event_line.lifecycle, event_line.switch, event_line.value) == ("EVENT", device, "off")
    assert [record.getMessage() for record in smartapp_log.records if record.levelno >= 20
            and getattr(record, "installedAppId", None) == harness.installed_app_id
            and record.getMessage() != "request"] == []  # no line of the app's own
    assert not hasattr(request_records(smartapp_log)[0], "switch")  # INSTALL's line: no annotation of its own


def annotating_app(**fields: object) -> SmartApp:
    app = SmartApp("Annotator")
    one_text_page(app)

    @app.execute
    def run(ctx: Context, parameters: dict) -> dict:
        try:
            ctx.annotate(**fields)
        except ValueError as error:
            return {"refused": str(error)}
        return {}

    return app


@pytest.mark.parametrize("fields,refused", [
    ({"status": 500}, "'status' is a name the log line uses itself"),
    ({"msg": "x"}, "'msg' is a name the log line uses itself"),
    ({f"field{n}": n for n in range(17)}, "at most 16 fields"),
])
def test_an_annotation_cannot_overwrite_the_line_or_grow_it_without_end(smartthings, harness_signer, tmp_path,
                                                                       smartapp_log, fields, refused):
    harness = AppHarness(annotating_app(**fields), smartthings=smartthings, signer=harness_signer,
                         directory=tmp_path)
    harness.install({})
    assert refused in harness.execute({})["refused"]
    assert request_records(smartapp_log)[-1].status == 200


def test_annotated_values_are_json_and_short(smartthings, harness_signer, tmp_path, smartapp_log):
    harness = AppHarness(annotating_app(count=3, ratio=0.5, flag=False, nothing=None, long="x" * 500,
                                        odd=frozenset({1})), smartthings=smartthings, signer=harness_signer,
                         directory=tmp_path)
    harness.install({})
    assert harness.execute({}) == {}
    line = request_records(smartapp_log)[-1]
    assert (line.count, line.ratio, line.flag, line.nothing, line.odd) == (3, 0.5, False, None, "frozenset({1})")
    assert line.long == "x" * 200


def test_an_annotation_outside_a_request_is_a_line_of_its_own(smartapp_log):
    from smartapp import logs

    logs.annotate({"swept": 12})
    (line,) = [record for record in smartapp_log.records if record.getMessage() == "annotation"]
    assert line.swept == 12
