"""The installed `smartapp` console script, run as a process."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import TOKEN_KEY
from tests.support.commands import CANARIES, IAID, populate, run, smartapp_command


@pytest.mark.slow
def test_check_config_passes_on_the_embedded_default(tmp_path):
    result = run(["check-config"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sqlite" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env,needle", [
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "SMARTAPP_TOKEN_KEYS"),
    ({"REDIS_URL": "redis://127.0.0.1:1/0", "SMARTAPP_TOKEN_KEYS": "not-a-key"}, "SMARTAPP_TOKEN_KEYS"),
    ({"SMARTAPP_KEY_SERVER": "ftp://x"}, "SMARTAPP_KEY_SERVER"),
    ({"SMARTAPP_PUBLIC_KEY": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"}, "SMARTAPP_PUBLIC_KEY"),
    ({"SMARTAPP_MAX_BODY_BYTES": "lots"}, "SMARTAPP_MAX_BODY_BYTES"),
])
def test_check_config_fails_on_a_bad_configuration(tmp_path, env, needle):
    result = run(["check-config"], env, tmp_path)
    assert result.returncode == 1
    assert needle in result.stderr
    assert "not-a-key" not in result.stderr


@pytest.mark.slow
def test_check_config_reads_dotenv_and_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:1/0\n")
    assert run(["check-config"], {}, tmp_path).returncode == 1
    assert run(["check-config"], {"SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path).returncode == 0


# --- every subcommand -------------------------------------------------------------------------------------------

SUBCOMMANDS = [["check-config"], ["register"], ["simulate"], ["doctor"], ["installations"], ["installations", "list"],
               ["installations", "show"], ["installations", "purge"]]


@pytest.mark.slow
@pytest.mark.parametrize("command", SUBCOMMANDS, ids=" ".join)
def test_every_subcommand_has_help(tmp_path, command):
    result = run([*command, "--help"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: smartapp {' '.join(command)}")


@pytest.mark.slow
def test_a_missing_or_unknown_command_is_a_usage_error(tmp_path):
    assert run([], {}, tmp_path).returncode == 2
    unknown = run(["frobnicate"], {}, tmp_path)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr


@pytest.mark.slow
def test_the_same_commands_answer_under_flask(tmp_path):
    flask = [str(Path(smartapp_command()[0]).with_name("flask")), "--app", "smartapp"]
    ok = subprocess.run(flask + ["check-config"], env={**os.environ, "PATH": os.environ.get("PATH", "")},
                        cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert "configuration ok" in ok.stdout
    # A plugin command runs without loading the app, so a configuration the app refuses still gets checked.
    bad = subprocess.run(flask + ["check-config"], env={**os.environ, "SMARTAPP_KEY_SERVER": "ftp://x"},
                         cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 1 and "SMARTAPP_KEY_SERVER" in bad.stderr
    assert not (tmp_path / "smartapp.db").exists()


# --- check-config: development mode -------------------------------------------------------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("env,sign", [
    ({"REDIS_URL": "redis://127.0.0.1:1/0", "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, "REDIS_URL"),
    ({"DYNO": "web.1"}, "DYNO"),
    ({"SMARTAPP_PUBLIC_URL": "https://smartapp.example.com/"}, "SMARTAPP_PUBLIC_URL"),
])
def test_check_config_refuses_development_mode_with_production_signs(tmp_path, env, sign):
    result = run(["check-config"], {"SMARTAPP_DEV_MODE": "1", **env}, tmp_path)
    assert result.returncode == 1
    assert "SMARTAPP_DEV_MODE" in result.stderr and sign in result.stderr
    assert run(["check-config"], env, tmp_path).returncode == 0  # the same settings without dev mode are fine


@pytest.mark.slow
def test_check_config_accepts_development_mode_on_a_local_instance(tmp_path):
    result = run(["check-config"], {"SMARTAPP_DEV_MODE": "1", "SMARTAPP_PUBLIC_URL": "http://localhost:8000/"},
                 tmp_path)
    assert result.returncode == 0, result.stderr
    assert "development mode" in result.stdout
    maybe = run(["check-config"], {"SMARTAPP_DEV_MODE": "maybe"}, tmp_path)
    assert maybe.returncode == 1 and "SMARTAPP_DEV_MODE must be 1 or 0" in maybe.stderr


# --- register ---------------------------------------------------------------------------------------------------

TARGET = "https://smartapp.example.com/"


@pytest.mark.slow
@pytest.mark.parametrize("env,needle", [
    ({}, "SMARTAPP_PUBLIC_URL"),
    ({"SMARTAPP_PUBLIC_URL": "http://smartapp.example.com/"}, "https"),
    ({"SMARTAPP_PUBLIC_URL": "https://203.0.113.7/"}, "TargetTimeoutError"),
    ({"SMARTAPP_PUBLIC_URL": "https://localhost/"}, "tunnel"),
])
def test_register_refuses_a_target_smartthings_cannot_call(tmp_path, env, needle):
    result = run(["register"], env, tmp_path)
    assert result.returncode == 1
    assert needle in result.stderr


@pytest.mark.slow
def test_register_prints_the_checklist_and_writes_the_apps_create_file(tmp_path):
    result = run(["register", "--write", "app.json"], {"SMARTAPP_PUBLIC_URL": TARGET}, tmp_path)
    assert result.returncode == 0, result.stderr
    for needle in (TARGET, "WEBHOOK_SMART_APP", "r:devices:* x:devices:*", "smartthings apps:create -i app.json",
                   "SMARTAPP_CLIENT_ID", "SMARTAPP_APP_ID", "account linking: not configured"):
        assert needle in result.stdout
    written = json.loads((tmp_path / "app.json").read_text())
    assert written["appType"] == "WEBHOOK_SMART_APP"
    assert written["webhookSmartApp"]["targetUrl"] == TARGET
    assert written["classifications"] == ["AUTOMATION"]
    assert written["oauth"]["scope"] == ["r:devices:*", "x:devices:*"]
    assert written["appName"] == "smartapp-smartapp-example-com"

    again = run(["register", "--write", "app.json"], {"SMARTAPP_PUBLIC_URL": TARGET}, tmp_path)
    assert again.returncode == 1 and "--force" in again.stderr
    only_json = run(["register", "--json", "--app-name", "mine", "--target-url", "https://other.example.org/"],
                    {}, tmp_path)
    assert only_json.returncode == 0, only_json.stderr
    assert json.loads(only_json.stdout)["appName"] == "mine"


@pytest.mark.slow
def test_register_prints_the_redirect_uri_and_the_finished_url_template(tmp_path):
    env = {"SMARTAPP_PUBLIC_URL": TARGET, "SMARTAPP_OAUTH_PROVIDER": "github",
           "SMARTAPP_OAUTH_CLIENT_ID": "Iv1.clientid", "SMARTAPP_OAUTH_CLIENT_SECRET": "canary-client-secret-31415",
           "SMARTAPP_OAUTH_SCOPE": "read:user repo"}
    result = run(["register"], env, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Redirect URI to register at the provider:  https://api.smartthings.com/oauth/callback" in result.stdout
    assert "c2c-us/eu/ap.smartthings.com" in result.stdout
    assert ("https://github.com/login/oauth/authorize?client_id=Iv1.clientid&response_type=code"
            "&redirect_uri=https%3A%2F%2Fapi.smartthings.com%2Foauth%2Fcallback&state=INSTALLED_APP_ID"
            "&scope=read%3Auser%20repo" in result.stdout)
    assert "adds a PKCE S256 challenge" in result.stdout
    assert "canary-client-secret" not in result.stdout + result.stderr


@pytest.mark.slow
@pytest.mark.parametrize("env,needle", [
    ({"SMARTAPP_OAUTH_PROVIDER": "github", "SMARTAPP_OAUTH_CLIENT_ID": "x",
      "SMARTAPP_OAUTH_REDIRECT_URI": "https://c2c-us.smartthings.com/oauth/callback"}, "Schema (C2C) connector"),
    ({"SMARTAPP_OAUTH_PROVIDER": "generic", "SMARTAPP_OAUTH_CLIENT_ID": "x"}, "SMARTAPP_OAUTH_AUTHORIZE_URL"),
    ({"SMARTAPP_OAUTH_PROVIDER": "lifx"}, "SMARTAPP_OAUTH_CLIENT_ID"),
])
def test_register_fails_when_account_linking_would_not_work(tmp_path, env, needle):
    result = run(["register"], {"SMARTAPP_PUBLIC_URL": TARGET, **env}, tmp_path)
    assert result.returncode == 1
    assert needle in result.stdout


@pytest.mark.slow
def test_register_warns_when_the_signed_path_differs_from_the_configured_one(tmp_path):
    result = run(["register"], {"SMARTAPP_PUBLIC_URL": "https://smartapp.example.com/hooks/st?code=x"}, tmp_path)
    assert result.returncode == 0
    assert "SMARTAPP_PUBLIC_PATH=/hooks/st" in result.stdout


# --- installations ----------------------------------------------------------------------------------------------

def store_environment(tmp_path, store_kind, request) -> dict[str, str]:
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db")}
    if store_kind == "redis":
        env.update(REDIS_URL=request.getfixturevalue("redis_url"), SMARTAPP_TOKEN_KEYS=TOKEN_KEY)
    return env


def assert_no_secret(text: str) -> None:
    for secret in CANARIES.values():
        assert secret not in text and secret[:12] not in text


@pytest.mark.slow
def test_installations_list_show_and_purge(tmp_path, store_kind, request):
    env = store_environment(tmp_path, store_kind, request)
    populate(env)
    listed = run(["installations", "list"], env, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert IAID in listed.stdout and "access token present, expires 2033-05-18T03:33:20Z" in listed.stdout
    assert "provider github (linked)" in listed.stdout and "1 installation(s)" in listed.stdout
    as_json = json.loads(run(["installations", "list", "--json"], env, tmp_path).stdout)
    assert [row["installed_app_id"] for row in as_json["installations"]] == [IAID]

    shown = run(["installations", "show", IAID.upper()], env, tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "auth_token" in shown.stdout and "present, expires 2033-05-18T03:33:20Z" in shown.stdout
    assert '{"switches": 2}' in shown.stdout
    record = json.loads(run(["installations", "show", IAID, "--json"], env, tmp_path).stdout)
    assert record["tokens"]["refresh_token"] == {"present": True, "issued": "2001-09-09T01:46:40Z"}
    assert all(entry["present"] for entry in record["tokens"].values())
    assert_no_secret(listed.stdout + shown.stdout + json.dumps(as_json) + json.dumps(record))

    refused = run(["installations", "purge", IAID], env, tmp_path)
    assert refused.returncode == 1 and "--yes" in refused.stderr
    purged = run(["installations", "purge", IAID, "--yes"], env, tmp_path)
    assert purged.returncode == 0, purged.stderr
    assert run(["installations", "show", IAID], env, tmp_path).returncode == 1
    assert run(["installations", "purge", IAID, "--yes"], env, tmp_path).returncode == 1
    assert "0 installation(s)" in run(["installations", "list"], env, tmp_path).stdout


@pytest.mark.slow
def test_installations_explain_a_missing_store_and_bad_ids(tmp_path):
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "nowhere" / "smartapp.db")}
    missing = run(["installations", "list"], env, tmp_path)
    assert missing.returncode == 1 and "no embedded store" in missing.stderr
    assert not (tmp_path / "nowhere").exists()  # looking creates nothing
    bad = run(["installations", "show", "../etc/passwd"], env, tmp_path)
    assert bad.returncode == 1 and "not an installedAppId" in bad.stderr


@pytest.mark.slow
def test_installations_report_an_unreachable_redis_without_its_password(tmp_path):
    from testbed.redis_server import free_port

    url = f"redis://:hunter2-canary-password@127.0.0.1:{free_port()}/0"
    result = run(["installations", "list"], {"REDIS_URL": url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path)
    assert result.returncode == 1
    assert "store did not answer" in result.stderr
    assert "hunter2" not in result.stdout + result.stderr


def test_every_subcommand_is_also_a_flask_command():
    import configparser

    from smartapp.commands.cli import build_parser

    config = configparser.ConfigParser()
    config.read(Path(__file__).resolve().parents[2] / "setup.cfg")
    flask_commands = {line.split("=")[0].strip()
                      for line in config["options.entry_points"]["flask.commands"].splitlines() if line.strip()}
    (subcommands,) = [action for action in build_parser()._actions if action.dest == "command"]
    assert set(subcommands.choices) == flask_commands, "add the command to setup.cfg and smartapp/commands/flask_plugin.py"
