"""`refresh-due`: which installations are due, several hosts at once, exit status, the subcommand hook."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path

import pytest

from smartapp import refresh_due
from smartapp.settings import ConfigError, Settings
from smartapp.store import TokenCipher, open_store
from tests.conftest import ST_CLIENT_ID, ST_CLIENT_SECRET, TOKEN_KEY
from tests.support.oauth_provider import FakeAuthorizationServer, TokenAuthority

DAY = 86400


@pytest.fixture
def provider_server():
    server = FakeAuthorizationServer(expires_in=7200).start()  # longer than --within's default hour
    yield server
    server.stop()


@pytest.fixture
def environment(store_kind, request, tmp_path, cloud, provider_server, smartthings_tokens) -> dict[str, str]:
    """The deployment's environment, as the scheduler's `smartapp refresh-due` would see it."""
    env = {
        "SMARTAPP_DB_PATH": str(tmp_path / "smartapp.db"),
        "SMARTAPP_TOKEN_KEYS": TOKEN_KEY,
        "SMARTAPP_CLIENT_ID": ST_CLIENT_ID,
        "SMARTAPP_CLIENT_SECRET": ST_CLIENT_SECRET,
        "SMARTAPP_API_URL": cloud.api.url,
        "SMARTAPP_TOKEN_URL": cloud.api.url + "/oauth/token",
        "SMARTAPP_OAUTH_PROVIDER": "generic",
        "SMARTAPP_OAUTH_CLIENT_ID": "client-1",
        "SMARTAPP_OAUTH_CLIENT_SECRET": "secret-1",
        "SMARTAPP_OAUTH_AUTHORIZE_URL": provider_server.authorize_url,
        "SMARTAPP_OAUTH_TOKEN_URL": provider_server.token_url,
    }
    if store_kind == "redis":
        env["REDIS_URL"] = request.getfixturevalue("redis_url")
    return env


@pytest.fixture
def settings(environment) -> Settings:
    return Settings.from_env(environment, dotenv=None)


@pytest.fixture
def store(settings):
    opened = open_store(redis_url=settings.redis_url, sqlite_path=settings.db_path,
                        cipher=TokenCipher.from_env_value(TOKEN_KEY))
    yield opened
    opened.close()


def install(store, authority: TokenAuthority, *, expires_in: float, age: float = DAY, **extra) -> str:
    iaid = str(uuid.uuid4())
    now = time.time()
    store.update(iaid, {"auth_token": "st-old", "refresh_token": authority.seed_refresh_token(),
                        "auth_token_expires_at": now + expires_in, "refresh_token_issued_at": now - age, **extra})
    return iaid


def link(store, iaid: str, authority: TokenAuthority, *, expires_in: float) -> None:
    store.update(iaid, {"provider": "generic", "provider_access_token": "p-old",
                        "provider_refresh_token": authority.seed_refresh_token(),
                        "provider_token_expires_at": time.time() + expires_in,
                        "provider_refresh_token_issued_at": time.time() - DAY})


def test_due_installations_are_refreshed_and_others_left_alone(settings, store, smartthings_tokens,
                                                               provider_server):
    soon = install(store, smartthings_tokens, expires_in=1800)
    ageing = install(store, smartthings_tokens, expires_in=5 * 3600, age=26 * DAY)
    fresh = install(store, smartthings_tokens, expires_in=20 * 3600, age=2 * DAY)
    link(store, fresh, provider_server.authority, expires_in=600)
    flagged = install(store, smartthings_tokens, expires_in=-60, reauth_required="smartthings_refresh_rejected")
    no_refresh = install(store, smartthings_tokens, expires_in=60)
    store.update(no_refresh, {"refresh_token": None})

    report = refresh_due.run(settings=settings)
    assert report.checked == 5 and report.refreshed == 3 and report.already_fresh == 0
    assert report.needs_reauth == (flagged,) and report.failures == () and report.exit_code == 0
    assert smartthings_tokens.refresh_calls == 2 and provider_server.authority.refresh_calls == 1
    for iaid in (soon, ageing):
        record = store.get(iaid)
        assert record.auth_token.startswith("st-at-") and record.refresh_token_issued_at > time.time() - 60
    assert store.get(fresh).auth_token == "st-old" and store.get(fresh).provider_access_token != "p-old"
    assert store.get(flagged).auth_token == "st-old"
    # Nothing is due any more.
    assert refresh_due.run(settings=settings).refreshed == 0
    assert smartthings_tokens.refresh_calls == 2


def test_within_widens_the_window(settings, store, smartthings_tokens):
    install(store, smartthings_tokens, expires_in=90 * 60)
    assert refresh_due.run(settings=settings).refreshed == 0
    assert refresh_due.run(settings=settings, within_seconds=2 * 3600).refreshed == 1


def test_failures_make_the_exit_status_non_zero_and_the_rest_still_run(settings, store, smartthings_tokens,
                                                                       smartapp_log):
    good = install(store, smartthings_tokens, expires_in=60)
    dead = install(store, smartthings_tokens, expires_in=60)
    smartthings_tokens.refresh_tokens.pop(store.get(dead).refresh_token)  # revoked at SmartThings
    report = refresh_due.run(settings=settings, concurrency=1)
    assert report.exit_code == 1 and report.refreshed == 1
    assert report.failures == (refresh_due.Failure(dead, "smartthings", "reauth_required"),)
    assert store.get(dead).reauth_required == "smartthings_refresh_rejected"
    assert store.get(good).auth_token.startswith("st-at-")
    assert "reauth_required" in smartapp_log.reasons()
    # The next daily run reports it as needing re-authorisation, without calling SmartThings again.
    calls = smartthings_tokens.refresh_calls
    again = refresh_due.run(settings=settings)
    assert again.needs_reauth == (dead,) and again.exit_code == 0 and smartthings_tokens.refresh_calls == calls


def test_a_server_error_is_a_failure_and_keeps_the_pair(settings, store, smartthings_tokens):
    iaid = install(store, smartthings_tokens, expires_in=60)
    before = store.get(iaid).refresh_token
    smartthings_tokens.fail_status = 500
    report = refresh_due.run(settings=settings)
    assert report.failures == (refresh_due.Failure(iaid, "smartthings", "smartthings_token_error"),)
    assert store.get(iaid).refresh_token == before and store.get(iaid).reauth_required is None


def test_two_hosts_at_once_refresh_each_installation_once(settings, store, smartthings_tokens):
    ids = [install(store, smartthings_tokens, expires_in=60) for _ in range(20)]
    reports = []
    barrier = threading.Barrier(2)

    def host() -> None:
        barrier.wait()
        reports.append(refresh_due.run(settings=settings, concurrency=4))

    hosts = [threading.Thread(target=host) for _ in range(2)]
    for thread in hosts:
        thread.start()
    for thread in hosts:
        thread.join()
    assert smartthings_tokens.refresh_calls == 20
    assert sum(r.refreshed for r in reports) == 20 and all(r.exit_code == 0 for r in reports)
    assert len(set(smartthings_tokens.refresh_attempts)) == 20  # no refresh token presented twice
    for iaid in ids:
        assert store.get(iaid).refresh_token in smartthings_tokens.refresh_tokens


@pytest.mark.slow
def test_several_processes_split_the_sweep_and_add_up_their_reports(settings, store, smartthings_tokens):
    due = [install(store, smartthings_tokens, expires_in=60) for _ in range(9)]
    fresh = install(store, smartthings_tokens, expires_in=20 * 3600, age=2 * DAY)
    flagged = install(store, smartthings_tokens, expires_in=-60, reauth_required="smartthings_refresh_rejected")
    dead = install(store, smartthings_tokens, expires_in=60)
    smartthings_tokens.refresh_tokens.pop(store.get(dead).refresh_token)  # revoked at SmartThings

    report = refresh_due.run(settings=settings, concurrency=4, processes=3)
    assert (report.checked, report.refreshed, report.already_fresh) == (12, 9, 0)
    assert report.needs_reauth == (flagged,)
    assert report.failures == (refresh_due.Failure(dead, "smartthings", "reauth_required"),)
    assert report.exit_code == 1
    assert len(set(smartthings_tokens.refresh_attempts)) == smartthings_tokens.refresh_calls == 10
    for iaid in due:
        assert store.get(iaid).auth_token.startswith("st-at-")
    assert store.get(fresh).auth_token == "st-old"


@pytest.mark.slow
def test_more_processes_than_installations(settings, store, smartthings_tokens):
    iaid = install(store, smartthings_tokens, expires_in=60)
    report = refresh_due.run(settings=settings, processes=4)
    assert (report.checked, report.refreshed, report.exit_code) == (1, 1, 0)
    assert store.get(iaid).auth_token.startswith("st-at-")
    assert refresh_due.run(settings=settings, processes=4).refreshed == 0


def _spawned_children() -> list[int]:
    """Processes this test process started with multiprocessing's spawn method."""
    children = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and b"spawn_main" in cmdline:
            children.append(int(entry.name))
    return children


@pytest.mark.slow
def test_a_killed_sweep_process_fails_its_shard_and_the_others_finish(settings, store, smartthings_tokens):
    ids = [install(store, smartthings_tokens, expires_in=60) for _ in range(4)]
    # SmartThings has rotated the token before it answers: a process stopped now would lose it.
    smartthings_tokens.rotate_then_delay = 2.0

    def kill_one_process() -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (len(_spawned_children()) < 2 or smartthings_tokens.refresh_calls < 2):
            time.sleep(0.05)
        os.kill(_spawned_children()[0], signal.SIGKILL)

    killer = threading.Thread(target=kill_one_process)
    killer.start()
    report = refresh_due.run(settings=settings, concurrency=2, processes=2)
    killer.join()
    assert report.exit_code == 1 and report.checked == 4
    died = {failure.installed_app_id for failure in report.failures if failure.reason == "sweep_process_died"}
    assert len(died) == 2 and died < set(ids) and len(report.failures) == 2
    # The other process was left to finish: its installations hold live refresh tokens.
    assert report.refreshed == 2
    for iaid in set(ids) - died:
        assert store.get(iaid).refresh_token in smartthings_tokens.refresh_tokens


def test_a_sweep_process_whose_parent_is_gone_still_stores_its_refreshes(settings, store, smartthings_tokens):
    import multiprocessing

    iaid = install(store, smartthings_tokens, expires_in=60)
    receiver, sender = multiprocessing.Pipe(duplex=False)
    receiver.close()  # the parent was stopped while the process worked
    refresh_due._sweep_shard(sender, settings, [iaid], 3600, 1, None)
    assert store.get(iaid).auth_token.startswith("st-at-")


def test_a_provider_it_cannot_build_is_a_configuration_error_with_several_processes_too(environment, store,
                                                                                        smartthings_tokens):
    install(store, smartthings_tokens, expires_in=60)
    broken = Settings.from_env({**environment, "SMARTAPP_OAUTH_CLIENT_SECRET": ""}, dotenv=None)
    for processes in (1, 2):
        with pytest.raises(ConfigError):
            refresh_due.run(settings=broken, processes=processes)


@pytest.mark.slow
def test_the_threads_keep_their_connections_to_the_token_endpoint(settings, store, smartthings_tokens, cloud):
    """requests keeps 10 connections per host; a wider sweep would reconnect on most calls without a bigger pool."""
    for _ in range(64):
        install(store, smartthings_tokens, expires_in=60)
    smartthings_tokens.delay = 0.1  # keep 16 calls in flight at once
    before = cloud.api.connections
    report = refresh_due.run(settings=settings, concurrency=16)
    assert report.refreshed == 64 and report.exit_code == 0
    assert cloud.api.connections - before <= 16


def run_command(environment: dict, cwd: Path, *args: str) -> subprocess.Popen:
    """The installed console script, as a scheduler runs it."""
    from tests.support.commands import smartapp_command

    env = {**{k: v for k, v in os.environ.items() if not k.startswith("SMARTAPP_") and k != "REDIS_URL"},
           **environment, "LOG_FORMAT": "json"}
    return subprocess.Popen([*smartapp_command(), "refresh-due", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_the_subcommand_from_two_processes(environment, store, smartthings_tokens, tmp_path):
    for _ in range(6):
        install(store, smartthings_tokens, expires_in=30 * 60)
    processes = [run_command(environment, tmp_path, "--within", "1h", "--concurrency", "3") for _ in range(2)]
    outputs = [process.communicate(timeout=60) for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert smartthings_tokens.refresh_calls == 6
    summaries = [line for out, _ in outputs for line in out.splitlines() if line.startswith("refresh-due:")]
    assert len(summaries) == 2 and all("6 installations checked" in line for line in summaries)
    assert all(ST_CLIENT_SECRET not in out + err for out, err in outputs)


@pytest.mark.slow
def test_the_subcommand_over_two_processes(environment, store, smartthings_tokens, tmp_path):
    for _ in range(5):
        install(store, smartthings_tokens, expires_in=60)
    out, err = (process := run_command(environment, tmp_path, "--processes", "2")).communicate(timeout=60)
    assert process.returncode == 0, err
    assert "5 installations checked, 5 refreshed" in out and smartthings_tokens.refresh_calls == 5
    # Each sweep process logs like the command does: one JSON line per refresh.
    assert sum('"message": "token_refreshed"' in line for line in out.splitlines()) == 5
    assert ST_CLIENT_SECRET not in out + err


@pytest.mark.slow
def test_the_subcommand_exits_1_on_failure_and_2_on_bad_configuration(environment, store, smartthings_tokens,
                                                                      tmp_path):
    install(store, smartthings_tokens, expires_in=60)
    smartthings_tokens.fail_status = 503
    out, err = (process := run_command(environment, tmp_path)).communicate(timeout=60)
    assert process.returncode == 1 and "1 failed" in out and "smartthings_token_error" in err
    broken = {**environment, "SMARTAPP_OAUTH_TOKEN_URL": "not a url"}
    out, err = (process := run_command(broken, tmp_path)).communicate(timeout=60)
    assert process.returncode == 2 and "SMARTAPP_OAUTH_TOKEN_URL" in err
