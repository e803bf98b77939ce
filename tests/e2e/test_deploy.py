"""The deploy kit: gunicorn config, Dockerfile, .dockerignore, Procfile, example env, startup banner, README top."""

from __future__ import annotations

import fnmatch
import json
import shlex
from dataclasses import fields
from pathlib import Path

import pytest

from smartapp.banner import startup_warnings
from smartapp.ephemeral import ephemeral_disk_reason, mount_of
from smartapp.settings import Settings
from tests.support.deploy_kit import dockerfile, gunicorn_config

ROOT = Path(__file__).resolve().parents[2]


# --- gunicorn ---------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_gunicorn_honours_port_workers_and_the_heroku_router(tmp_path):
    heroku = gunicorn_config(tmp_path, {"PORT": "5123", "WEB_CONCURRENCY": "3", "DYNO": "web.1"})
    assert heroku["bind"] == "['0.0.0.0:5123']"
    assert heroku["workers"] == "3"
    assert heroku["forwarded_allow_ips"] == "['*']"  # every request comes through Heroku's router
    assert int(heroku["timeout"]) < 30 and int(heroku["graceful_timeout"]) < 30
    assert heroku["preload_app"] == "False"
    assert "%(r)s" not in heroku["access_log_format"] and "%(U)s" in heroku["access_log_format"]
    assert heroku["control_socket_disable"] == "True"

    (tmp_path / ".env").write_text("PORT=6001\nWEB_CONCURRENCY=5\n")
    local = gunicorn_config(tmp_path, {"WEB_CONCURRENCY": "2"})
    assert local["bind"] == "['0.0.0.0:6001']"  # from .env
    assert local["workers"] == "2"  # the real environment wins over .env
    assert local["forwarded_allow_ips"] == "['127.0.0.1']"


def test_procfile_runs_gunicorn_with_the_config_and_checks_the_release():
    lines = dict(line.split(":", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line.strip())
    assert shlex.split(lines["web"]) == ["gunicorn", "-c", "config/gunicorn.conf.py", "smartapp:create_app()"]
    assert shlex.split(lines["release"]) == ["smartapp", "check-config"]


# --- Dockerfile -------------------------------------------------------------------------------------------------

def test_dockerfile_is_slim_non_root_and_runs_the_procfile_command():
    steps = dockerfile()
    keywords = [keyword for keyword, _ in steps]
    assert steps[0] == ("FROM", "python:3.11-slim")
    assert any(keyword == "RUN" and "pip install ." in args for keyword, args in steps)
    user = [args for keyword, args in steps if keyword == "USER"]
    assert user and user[-1] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    cmd = json.loads(dict(steps)["CMD"])
    assert cmd == ["gunicorn", "-c", "config/gunicorn.conf.py", "smartapp:create_app()"]  # binds $PORT itself
    assert "--bind" not in cmd and "-b" not in cmd
    assert "EXPOSE" in keywords and "HEALTHCHECK" in keywords and "/healthz" in dict(steps)["HEALTHCHECK"]
    env = " ".join(args for keyword, args in steps if keyword == "ENV")
    assert "SMARTAPP_DB_PATH=/data/" in env and json.loads(dict(steps)["VOLUME"]) == ["/data"]


def test_dockerfile_copies_what_pip_needs_and_dockerignore_keeps_secrets_out():
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    for secret in (".env", "smartapp.db", "smartapp.keys", "smartapp-dev-signing.keys", ".git"):
        assert any(fnmatch.fnmatch(secret, pattern) for pattern in ignored), secret
    for keyword, args in dockerfile():
        if keyword == "COPY":
            *sources, _ = args.split()
            for source in sources:
                assert (ROOT / source).exists(), source
                assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source


# --- configuration files ----------------------------------------------------------------------------------------

def test_example_env_names_every_setting():
    text = (ROOT / "config" / "example.env").read_text()
    for item in fields(Settings):
        if item.name != "dyno":  # set by Heroku, not by the operator
            assert Settings.env_name(item.name) in text, item.name
    for name in ("PORT", "WEB_CONCURRENCY", "FORWARDED_ALLOW_IPS", "GUNICORN_TIMEOUT"):
        assert name in text
    # read_dotenv keeps everything after "=", so a value line must not carry a trailing comment.
    for line in text.splitlines():
        body = line.lstrip("# ").strip()
        if "=" in body and body.split("=", 1)[0].isupper():
            assert "#" not in body.split("=", 1)[1], line


def test_readme_opens_with_the_two_commands_ci_runs():
    readme = (ROOT / "README.md").read_text()
    first = readme.index("```sh")
    block = readme[first:readme.index("```", first + 5)]
    assert ('.venv/bin/pip install -q . && .venv/bin/gunicorn -c config/gunicorn.conf.py "smartapp:create_app()"'
            in block)
    test_command = "python3 -m venv .venv && .venv/bin/pip install -q -e '.[test]' && .venv/bin/python -m pytest"
    assert test_command in block
    assert test_command in (ROOT / ".ci" / "run").read_text()
    assert readme.index("```sh") < readme.index("## ")  # before any section


# --- startup banner: the embedded store on a disk that will not last -------------------------------------------

MOUNTINFO = """\
22 1 0:21 / / rw,relatime - overlay overlay rw,lowerdir=/l,upperdir=/u
30 22 254:1 /volumes/data /data rw,relatime - ext4 /dev/vdb rw
31 22 0:40 / /tmp rw - tmpfs tmpfs rw
32 22 254:1 /x /my\\040data rw - ext4 /dev/vdb rw
"""


@pytest.mark.parametrize("path,environ,in_container,expected", [
    ("/data/smartapp.db", {"DYNO": "web.1"}, False, "DYNO"),
    ("/data/smartapp.db", {"K_SERVICE": "svc"}, False, "Cloud Run"),
    ("/app/smartapp.db", {}, True, "container's own overlay"),
    ("/data/smartapp.db", {}, True, None),
    ("/my data/smartapp.db", {}, True, None),
    ("/tmp/smartapp.db", {}, False, "tmpfs"),
    ("/app/smartapp.db", {}, False, None),  # an overlay root outside a container: no signal
])
def test_ephemeral_disk_signals(path, environ, in_container, expected):
    reason = ephemeral_disk_reason(path, environ, in_container=in_container, mountinfo=MOUNTINFO)
    assert (reason is None) if expected is None else (expected in reason)


def test_mount_of_reads_this_machine():
    mount, fstype = mount_of(__file__)
    assert Path(__file__).resolve().as_posix().startswith(mount) and fstype


def test_banner_warns_about_dyno_and_development_mode(tmp_path):
    settings = Settings.from_env({"SMARTAPP_DB_PATH": str(tmp_path / "x.db"), "DYNO": "web.1"}, dotenv=None)
    (reason, message), = startup_warnings(settings, {"DYNO": "web.1"})
    assert reason == "embedded_store_on_ephemeral_disk" and "REDIS_URL" in message
    redis = Settings.from_env({"REDIS_URL": "redis://x", "SMARTAPP_TOKEN_KEYS": "k"}, dotenv=None)
    assert startup_warnings(redis, {"DYNO": "web.1"}) == []
    dev = Settings.from_env({"SMARTAPP_DB_PATH": str(tmp_path / "x.db"), "SMARTAPP_DEV_MODE": "1"}, dotenv=None)
    assert [reason for reason, _ in startup_warnings(dev, {})] == ["development_mode"]


def test_the_banner_line_says_what_runs_where(make_app, capsys):

    make_app("sqlite", DYNO="web.1")
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    (started,) = [line for line in lines if line["message"] == "smartapp_started"]
    assert started["kind"] == "webhook SmartApp (WEBHOOK_SMART_APP)" and started["store"].startswith("sqlite ")
    assert started["targetUrl"] == "https://smartapp.example.test/" and started["devMode"] is False
    assert any(line.get("reason") == "embedded_store_on_ephemeral_disk" for line in lines)
