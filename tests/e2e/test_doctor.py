"""`smartapp doctor` as a process: each finding with a fix, exit 1 on a failed check, never a secret printed."""

from __future__ import annotations

import time

import pytest
import requests

from smartapp.checks import FAIL, OK
from smartapp.checks.network import key_server
from smartapp.settings import Settings
from testbed.redis_server import RedisServer, free_port
from tests.conftest import TOKEN_KEY
from tests.support.commands import findings, populate, run


def levels(stdout: str, topic: str) -> set[str]:
    return {level for level, found_topic, _ in findings(stdout) if found_topic == topic}


def doctor(env: dict[str, str], cwd, *args: str):
    return run(["doctor", *args], env, cwd)


@pytest.mark.slow
def test_a_fresh_embedded_setup_passes_offline(tmp_path):
    result = doctor({"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db")}, tmp_path, "--offline")
    assert result.returncode == 0, result.stdout
    assert result.stdout.startswith("smartapp doctor: a webhook SmartApp (WEBHOOK_SMART_APP)")
    assert "does not exist yet" in result.stdout
    assert levels(result.stdout, "app id") == {"WARN"} and "fix: set it to the appId" in result.stdout
    assert "network checks skipped" in result.stdout
    assert not (tmp_path / "smartapp.db").exists()  # doctor only looks


@pytest.mark.slow
def test_an_existing_store_is_opened_and_counted(tmp_path):
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db")}
    populate(env)
    result = doctor(env, tmp_path, "--offline")
    assert result.returncode == 0, result.stdout
    assert "reachable, keys match, 1 installation(s)" in result.stdout
    (tmp_path / "smartapp.keys").unlink()
    lost = doctor(env, tmp_path, "--offline")
    assert lost.returncode == 1 and "token key file" in lost.stdout


@pytest.mark.slow
@pytest.mark.parametrize("env,topic,needle", [
    ({"REDIS_URL": "redis://127.0.0.1:1/0"}, "config", "SMARTAPP_TOKEN_KEYS is required"),
    ({"SMARTAPP_MAX_BODY_BYTES": "lots"}, "config", "whole number"),
    ({"SMARTAPP_PUBLIC_URL": "http://smartapp.example.com/"}, "public url", "not https"),
    ({"SMARTAPP_PUBLIC_URL": "https://198.51.100.4/"}, "public url", "TargetTimeoutError"),
    ({"SMARTAPP_PUBLIC_URL": "https://smartapp.example.com/st"}, "signed path", "answers 401"),
    ({"DYNO": "web.1"}, "disk", "Heroku discards"),
    ({"SMARTAPP_DEV_MODE": "1", "DYNO": "web.1"}, "config", "SMARTAPP_DEV_MODE=1 cannot be combined"),
    ({"SMARTAPP_OAUTH_PROVIDER": "github", "SMARTAPP_OAUTH_CLIENT_ID": "x"}, "oauth", "CLIENT_SECRET"),
    ({"SMARTAPP_OAUTH_PROVIDER": "lifx", "SMARTAPP_OAUTH_CLIENT_ID": "x", "SMARTAPP_OAUTH_CLIENT_SECRET": "y",
      "SMARTAPP_OAUTH_REDIRECT_URI": "https://c2c-eu.smartthings.com/oauth/callback"}, "oauth", "Schema (C2C)"),
])
def test_each_problem_fails_with_its_topic(tmp_path, env, topic, needle):
    result = doctor({"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"), **env}, tmp_path, "--offline")
    assert result.returncode == 1, result.stdout
    assert any(level == FAIL and found_topic == topic and needle in message
               for level, found_topic, message in findings(result.stdout)), result.stdout


@pytest.mark.slow
def test_strict_turns_warnings_into_failure(tmp_path):
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db")}
    assert doctor(env, tmp_path, "--offline").returncode == 0
    assert doctor(env, tmp_path, "--offline", "--strict").returncode == 1


@pytest.mark.slow
def test_redis_durability_settings_are_checked(tmp_path):
    server = RedisServer("--appendonly", "yes").start()
    try:
        env = {"REDIS_URL": server.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}
        good = doctor(env, tmp_path, "--offline")
        assert good.returncode == 0, good.stdout
        assert "appendonly yes, appendfsync everysec" in good.stdout and "maxmemory-policy noeviction" in good.stdout
        assert "redis redis://127.0.0.1" in good.stdout

        import redis

        client = redis.Redis.from_url(server.url)
        client.config_set("appendonly", "no")
        client.config_set("maxmemory-policy", "allkeys-lru")
        client.close()
        bad = doctor(env, tmp_path, "--offline")
        assert bad.returncode == 1
        assert levels(bad.stdout, "redis durability") == {"WARN", "FAIL"}
        assert "CONFIG SET maxmemory-policy noeviction" in bad.stdout
    finally:
        server.stop()


@pytest.mark.slow
@pytest.mark.parametrize("settings,needle", [
    ({"appendonly": "no"}, "appendonly is 'no', snapshots only"),
    ({"appendfsync": "no"}, "appendfsync is 'no', the kernel writes the log when it likes"),
])
def test_persistence_that_can_lose_acknowledged_writes_is_a_warning_with_its_costs(tmp_path, settings, needle):
    server = RedisServer("--appendonly", "yes", "--appendfsync", "everysec").start()
    try:
        import redis

        client = redis.Redis.from_url(server.url)
        for name, value in settings.items():
            client.config_set(name, value)
        client.close()
        result = doctor({"REDIS_URL": server.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path, "--offline")
    finally:
        server.stop()
    assert result.returncode == 0, result.stdout  # a warning: --strict makes it fail
    assert levels(result.stdout, "redis durability") == {"WARN"}
    assert needle in result.stdout
    # The fix names both safe settings and what each costs.
    assert "appendfsync everysec" in result.stdout and "always: an fsync before every write" in result.stdout


@pytest.mark.slow
def test_appendfsync_always_is_fine_and_says_what_it_costs(tmp_path):
    server = RedisServer("--appendonly", "yes", "--appendfsync", "always").start()
    try:
        result = doctor({"REDIS_URL": server.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path, "--offline")
    finally:
        server.stop()
    assert levels(result.stdout, "redis durability") == {"ok"}
    assert "appendfsync always (an fsync before every write is acknowledged" in result.stdout


@pytest.mark.slow
def test_an_unreachable_redis_fails_without_showing_its_password(tmp_path):
    url = f"redis://:doctor-canary-pw@127.0.0.1:{free_port()}/0"
    result = doctor({"REDIS_URL": url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY,
                     "SMARTAPP_CLIENT_SECRET": "doctor-canary-secret"}, tmp_path, "--offline")
    assert result.returncode == 1
    assert levels(result.stdout, "store") == {"FAIL"} and "requests answer 503" in result.stdout
    for secret in ("doctor-canary", TOKEN_KEY[:8]):
        assert secret not in result.stdout + result.stderr


@pytest.mark.slow
def test_network_checks_reach_the_key_server_compare_clocks_and_ping_the_public_url(tmp_path, cloud):
    from testbed.service import Gunicorn

    server = Gunicorn({"SMARTAPP_DB_PATH": str(tmp_path / "service.db")}, tmp_path / "gunicorn.log", cwd=tmp_path,
                      workers=1)
    try:
        env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"), "SMARTAPP_KEY_SERVER": cloud.keys.url,
               "SMARTAPP_PUBLIC_URL": server.url + "/"}
        result = doctor(env, tmp_path)
    finally:
        server.stop()
    assert levels(result.stdout, "key server") == {OK}
    assert levels(result.stdout, "clock") == {OK}
    assert "answers PING like SmartThings expects" in result.stdout
    assert levels(result.stdout, "public url") == {FAIL}  # http: fine for this test, not for SmartThings
    assert result.returncode == 1


@pytest.mark.slow
def test_network_checks_fail_when_nothing_answers(tmp_path, cloud):
    env = {"SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"), "SMARTAPP_KEY_SERVER": f"http://127.0.0.1:{free_port()}",
           "SMARTAPP_PUBLIC_URL": cloud.api.url + "/"}  # answers, but not like this service
    result = doctor(env, tmp_path)
    assert result.returncode == 1
    assert levels(result.stdout, "key server") == {FAIL} and "key_server_unavailable" in result.stdout
    assert levels(result.stdout, "reachability") == {FAIL} and "no echo" in result.stdout


def test_a_clock_far_from_the_key_servers_fails(cloud):
    settings = Settings.from_env({"SMARTAPP_KEY_SERVER": cloud.keys.url}, dotenv=None)
    found = key_server(settings, requests.Session(), lambda: time.time() + 600)
    (clock,) = [finding for finding in found if finding.topic == "clock"]
    assert clock.level == FAIL and "date_out_of_window" in clock.message
    close = key_server(settings, requests.Session(), time.time)
    assert [finding.level for finding in close if finding.topic == "clock"] == [OK]


@pytest.mark.slow
def test_a_url_that_names_a_replica_is_called_out(tmp_path):
    primary = RedisServer().start()
    replica = RedisServer("--replicaof", "127.0.0.1", str(primary.port)).start()
    try:
        import redis

        with redis.Redis(port=primary.port) as admin:
            while admin.info("replication")["connected_slaves"] < 1:
                time.sleep(0.05)
        result = doctor({"REDIS_URL": replica.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path, "--offline")
        assert result.returncode == 1
        assert levels(result.stdout, "redis deployment") == {"WARN"}
        assert f"is a replica of 127.0.0.1:{primary.port}" in result.stdout
        assert "point REDIS_URL at the primary" in result.stdout
        assert levels(result.stdout, "store") == {FAIL} and "ReadOnlyError" in result.stdout
        named = doctor({"REDIS_URL": primary.url, "SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path, "--offline")
        assert "single server: redis redis://127.0.0.1" in named.stdout and "1 replica(s)" in named.stdout
    finally:
        replica.stop()
        primary.stop()
