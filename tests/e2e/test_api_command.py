"""`smartapp api`: one proactive SmartThings call for a stored installation, run as the installed console script."""

from __future__ import annotations

import json
import subprocess
import time
import uuid

import pytest

from examples.switch_logger import app as switches_app
from smartapp.testing import AppHarness, FakeSmartThings
from tests.conftest import TEST_APP, TOKEN_KEY
from tests.support.commands import run

DEVICE = "api-lamp"


@pytest.fixture(scope="module")
def smartthings():
    """The fake SmartThings with one lamp, switched on."""
    with FakeSmartThings() as fake:
        fake.add_device(DEVICE, label="Lamp")
        fake.set_status(DEVICE, "switch", "switch", "on")
        yield fake


@pytest.fixture
def installed(smartthings, harness_signer, tmp_path):
    """A stored installation whose (valid, for now) token pair the fake's token endpoint knows."""
    harness = AppHarness(switches_app, smartthings=smartthings, signer=harness_signer, directory=tmp_path)
    harness.install({"switches": [DEVICE]})
    access_token, refresh_token = smartthings.issue_tokens()
    store(harness).update(harness.installed_app_id, {"auth_token": access_token, "refresh_token": refresh_token,
                                                     "auth_token_expires_at": time.time() + 3600})
    return harness


def store(harness: AppHarness):
    return harness.service.extensions["smartapp"].store


def secrets_of(harness: AppHarness) -> list[str]:
    record = store(harness).get(harness.installed_app_id)
    return [record.auth_token, record.refresh_token]


def smartapp_api(harness: AppHarness, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**harness.environment(), "SMARTAPP_APP": TEST_APP, **(env or {})}
    return run(["api", *args], environment, harness._directory)


def assert_one_line_and_no_secret(result: subprocess.CompletedProcess, secrets: list[str]) -> str:
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    for secret in secrets:
        assert secret not in result.stderr
    return lines[0]


@pytest.mark.slow
def test_a_get_prints_the_json_body_after_refreshing_an_expired_token(installed, smartthings):
    expired = secrets_of(installed)
    store(installed).update(installed.installed_app_id, {"auth_token_expires_at": time.time() - 60})
    refreshes = smartthings.token_refreshes

    result = smartapp_api(installed, installed.installed_app_id, "get", f"/devices/{DEVICE}/status")

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["components"]["main"]["switch"]["switch"]["value"] == "on"
    assert smartthings.token_refreshes == refreshes + 1
    renewed = secrets_of(installed)
    assert renewed[0] != expired[0] and smartthings.bearer_tokens()[-1] == f"Bearer {renewed[0]}"
    for secret in expired + renewed:
        assert secret not in result.stdout + result.stderr


@pytest.mark.slow
def test_a_post_sends_its_json_body(installed, smartthings):
    before = len(smartthings.commands_for(DEVICE))
    command = {"commands": [{"component": "main", "capability": "switch", "command": "off", "arguments": []}]}
    result = smartapp_api(installed, installed.installed_app_id, "POST", f"/devices/{DEVICE}/commands",
                          "--data", json.dumps(command))
    assert result.returncode == 0, result.stderr
    assert smartthings.commands_for(DEVICE)[before:] == command["commands"]
    assert not any(secret in result.stdout + result.stderr for secret in secrets_of(installed))


@pytest.mark.slow
def test_an_error_answer_exits_1_naming_smartthings_status(installed):
    result = smartapp_api(installed, installed.installed_app_id, "GET", "/devices/no-such-device/status")
    assert result.returncode == 1
    line = assert_one_line_and_no_secret(result, secrets_of(installed))
    assert "404" in line


@pytest.mark.slow
@pytest.mark.parametrize("path", ["https://evil.example/devices", "//evil.example/devices", "devices"])
def test_an_absolute_url_is_a_usage_error_and_nothing_is_sent(installed, smartthings, path):
    calls = len(smartthings.calls)
    result = smartapp_api(installed, installed.installed_app_id, "GET", path)
    assert result.returncode == 2
    line = assert_one_line_and_no_secret(result, secrets_of(installed))
    assert "relative to SMARTAPP_API_URL" in line and "absolute URL" in line
    assert len(smartthings.calls) == calls


@pytest.mark.slow
def test_data_that_is_not_json_is_a_usage_error(installed):
    result = smartapp_api(installed, installed.installed_app_id, "POST", "/devices", "--data", "{nope")
    assert result.returncode == 2
    assert "--data" in assert_one_line_and_no_secret(result, secrets_of(installed))


@pytest.mark.slow
def test_an_unknown_installation_exits_1_saying_so(installed, smartthings):
    unknown = str(uuid.uuid4())
    calls = len(smartthings.calls)
    result = smartapp_api(installed, unknown, "GET", "/locations")
    assert result.returncode == 1
    line = assert_one_line_and_no_secret(result, secrets_of(installed))
    assert f"no installation {unknown}" in line
    assert len(smartthings.calls) == calls


@pytest.mark.slow
@pytest.mark.parametrize("stale", ["expired", "refused"])
def test_a_reauth_required_installation_exits_1_without_sending_its_dead_refresh_token(installed, smartthings, stale):
    # The flag is set once SmartThings refused the refresh token, which happens when the access token
    # had expired or was refused: both ways, the dead refresh token is not sent again.
    access_token, _ = secrets_of(installed)
    store(installed).update(installed.installed_app_id, {"reauth_required": "smartthings_refresh_rejected"})
    if stale == "expired":
        store(installed).update(installed.installed_app_id, {"auth_token_expires_at": time.time() - 60})
    else:
        smartthings.reject_token(access_token)
    refreshes = smartthings.token_refreshes

    result = smartapp_api(installed, installed.installed_app_id, "GET", f"/devices/{DEVICE}/status")

    assert result.returncode == 1
    line = assert_one_line_and_no_secret(result, secrets_of(installed))
    assert "needs re-authorisation" in line and installed.installed_app_id in line
    assert smartthings.token_refreshes == refreshes


@pytest.mark.slow
def test_a_store_that_is_down_exits_1_saying_so(installed, smartthings):
    calls = len(smartthings.calls)
    result = smartapp_api(installed, installed.installed_app_id, "GET", "/locations",
                          env={"REDIS_URL": "redis://127.0.0.1:1/0", "SMARTAPP_TOKEN_KEYS": TOKEN_KEY})
    assert result.returncode == 1
    line = assert_one_line_and_no_secret(result, secrets_of(installed))
    assert "store is unavailable" in line
    assert len(smartthings.calls) == calls
