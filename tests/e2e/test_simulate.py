"""`smartapp simulate` as a process against the service under real gunicorn in development mode."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from smartapp.devkey import dev_key_path, load_or_create_dev_key
from testbed.redis_server import free_port
from testbed.service import Gunicorn
from tests.conftest import TEST_APP
from tests.support.commands import run

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

IAID = "7e57ab1e-0000-4000-8000-5eed5eed5eed"


def dev_environment(cloud, tmp_path) -> dict[str, str]:
    return {
        "SMARTAPP_APP": TEST_APP,
        "SMARTAPP_DEV_MODE": "1",
        "SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"),
        "SMARTAPP_KEY_SERVER": cloud.keys.url,
        "SMARTAPP_API_URL": cloud.api.url,
        "LOG_FORMAT": "json",
    }


@pytest.fixture
def dev_service(cloud, tmp_path):
    env = dev_environment(cloud, tmp_path)
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path)
    server.env = env
    yield server
    server.stop()


def simulate(service, *args: str):
    """The console script, run from the instance's directory like a developer would."""
    db_path = Path(service.env["SMARTAPP_DB_PATH"])
    env = {"SMARTAPP_DB_PATH": str(db_path), "SMARTAPP_APP": service.env["SMARTAPP_APP"]}
    return run(["simulate", "--url", service.url + "/", *args], env, db_path.parent)


def app_lines(service) -> list[dict]:
    lines = []
    for line in service.output().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def stored(service, installed_app_id: str):
    from smartapp.wiring import build_cipher
    from smartapp.settings import Settings
    from smartapp.store import open_store

    settings = Settings.from_env(service.env, dotenv=None)
    store = open_store(redis_url=None, sqlite_path=settings.db_path, cipher=build_cipher(settings))
    try:
        return store.get(installed_app_id)
    finally:
        store.close()


def test_simulate_drives_every_lifecycle_and_exits_zero(dev_service, cloud):
    result = simulate(dev_service)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("PING", "CONFIRMATION", "CONFIGURATION/INITIALIZE", "CONFIGURATION/PAGE", "INSTALL", "UPDATE",
                 "EVENT", "UNINSTALL"):
        assert any(line.startswith("ok") and f" {step} " in line for line in result.stdout.splitlines()), step
    # No provider configured: the instance's 400 is printed and counted as a skip, not a failure.
    assert "skip  OAUTH_CALLBACK            400  {\"error\": \"oauth_not_configured\"}" in result.stdout
    assert "8 ok, 1 skipped, 0 failed" in result.stdout
    requests_logged = [line for line in app_lines(dev_service) if line["message"] == "request"]
    assert [line["lifecycle"] for line in requests_logged] == [
        "PING", "CONFIRMATION", "CONFIGURATION", "CONFIGURATION", "OAUTH_CALLBACK", "INSTALL", "UPDATE", "EVENT",
        "UNINSTALL"]
    # The simulated tokens never left the machine, and the dev keyId was never sent to the key server.
    assert cloud.api.calls == [] and cloud.keys.calls == []


def test_simulate_with_a_provider_links_up_to_the_provider_refusing_the_made_up_code(cloud, tmp_path):
    from tests.support.oauth_provider import FakeAuthorizationServer

    provider = FakeAuthorizationServer().start()
    env = {**dev_environment(cloud, tmp_path), "SMARTAPP_OAUTH_PROVIDER": "generic",
           "SMARTAPP_OAUTH_CLIENT_ID": "client-1", "SMARTAPP_OAUTH_CLIENT_SECRET": "secret-1",
           "SMARTAPP_OAUTH_AUTHORIZE_URL": provider.authorize_url, "SMARTAPP_OAUTH_TOKEN_URL": provider.token_url}
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path)
    server.env = env
    try:
        result = simulate(server)
        assert result.returncode == 0, result.stdout + result.stderr
        (line,) = [line for line in result.stdout.splitlines() if " OAUTH_CALLBACK " in line]
        # The page issued a pending link, the callback consumed it, and the provider refused the code.
        assert line.startswith("skip") and "oauth_exchange_failed" in line
        assert provider.authority.token_calls == ["authorization_code"]
    finally:
        server.stop()
        provider.stop()


def test_simulate_install_then_event_then_uninstall(dev_service):
    install = simulate(dev_service, "--only", "INSTALL", "--installed-app-id", IAID)
    assert install.returncode == 0, install.stdout + install.stderr
    record = stored(dev_service, IAID)
    assert record.auth_token.startswith("simulated-auth-") and record.config["switches"]
    subscribed = [line for line in app_lines(dev_service) if line["message"] == "simulated_api_call"]
    assert subscribed[-1]["path"] == f"/installedapps/{IAID}/subscriptions"

    event = simulate(dev_service, "--only", "EVENT", "--installed-app-id", IAID)
    assert event.returncode == 0, event.stdout
    (changed,) = [line for line in app_lines(dev_service) if line["message"] == "request" and "value" in line]
    assert changed["installedAppId"] == IAID and changed["lifecycle"] == "EVENT" and changed["value"] == "on"

    uninstall = simulate(dev_service, "--only", "uninstall", "--installed-app-id", IAID)
    assert uninstall.returncode == 0, uninstall.stdout
    assert stored(dev_service, IAID) is None


def test_an_instance_outside_development_mode_refuses_the_development_key(cloud, tmp_path):
    env = dev_environment(cloud, tmp_path)
    del env["SMARTAPP_DEV_MODE"]
    load_or_create_dev_key(dev_key_path(env["SMARTAPP_DB_PATH"]))  # the key exists; the instance must not care
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path)
    try:
        result = run(["simulate", "--url", server.url + "/", "--only", "PING,INSTALL"],
                     {"SMARTAPP_DB_PATH": env["SMARTAPP_DB_PATH"]}, tmp_path)
        assert result.returncode == 1
        assert "ok    PING" in result.stdout and "FAIL  INSTALL                   401" in result.stdout
        assert "SMARTAPP_DEV_MODE=1" in result.stdout
        assert "1 ok, 0 skipped, 1 failed" in result.stdout
    finally:
        server.stop()
    assert cloud.keys.calls == []  # refused on the keyId's shape, without asking the key server


def test_simulate_explains_a_missing_key_an_absent_instance_and_a_bad_step(tmp_path):
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db")}
    no_key = run(["simulate"], env, tmp_path)
    assert no_key.returncode == 1 and "SMARTAPP_DEV_MODE=1" in no_key.stderr
    load_or_create_dev_key(dev_key_path(env["SMARTAPP_DB_PATH"]))
    absent = run(["simulate", "--url", f"http://127.0.0.1:{free_port()}/"], env, tmp_path)
    assert absent.returncode == 1 and "is the service running?" in absent.stderr
    bad = run(["simulate", "--only", "INSTALL,REBOOT"], env, tmp_path)
    assert bad.returncode == 1 and "REBOOT" in bad.stderr


@pytest.fixture
def default_app_service(cloud, tmp_path):
    """A development instance of the bundled default app (no SMARTAPP_APP), as a developer first runs it."""
    env = {name: value for name, value in dev_environment(cloud, tmp_path).items() if name != "SMARTAPP_APP"}
    server = Gunicorn(env, tmp_path / "gunicorn.log", cwd=tmp_path)
    server.env = {**env, "SMARTAPP_APP": "smartapp.default_app:app"}
    yield server
    server.stop()


def test_simulate_sends_the_device_and_timer_events_asked_for(default_app_service):
    result = simulate(default_app_service, "--only", "INSTALL,EVENT", "--installed-app-id", IAID,
                      "--device-event", "sensors=open", "--timer", "lightsOff")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 ok, 0 skipped, 0 failed" in result.stdout
    calls = [(line["method"], line["path"]) for line in app_lines(default_app_service)
             if line["message"] == "simulated_api_call"]
    # INSTALL subscribed the made-up sensor; the EVENT's open switched the light on, the timer switched it off.
    assert calls[0] == ("POST", f"/installedapps/{IAID}/subscriptions")
    commands = [path for method, path in calls if path.endswith("/commands")]
    assert len(commands) == 2 and len(set(commands)) == 1
    record = stored(default_app_service, IAID)
    assert set(record.config) == {"sensors", "lights", "offDelayMinutes"}


@pytest.mark.parametrize("flags,problem", [
    (["--timer", "noSuchTimer"], "no @app.schedule('noSuchTimer') handler"),
    (["--device-event", "lights=on"], "subscribed to no device of setting 'lights'"),
])
def test_an_event_the_app_would_not_handle_fails_the_verdict(default_app_service, flags, problem):
    result = simulate(default_app_service, "--only", "INSTALL,EVENT", "--installed-app-id", IAID, *flags)
    assert result.returncode == 1, result.stdout
    assert problem in result.stdout and "1 ok, 0 skipped, 1 failed" in result.stdout
