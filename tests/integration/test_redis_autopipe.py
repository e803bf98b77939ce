"""The store's calls in a gevent worker share one auto-pipelined connection: answers, failures, threads, fork."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Each runs in a process of its own: gevent patches the standard library before anything imports it, as in a
# worker (the scenarios module is never imported here, it would patch the test process).
SCENARIOS = ("cancelled_waiters", "concurrent_requests", "flushed_scripts", "forked_child", "frozen_server", "killed_connection",
             "large_write", "native_thread", "unacknowledged_error")


def run_scenarios(*arguments: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.support.autopipe_scenarios", *arguments],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_every_scenario_is_run():
    assert run_scenarios("--list", "-").stdout.split() == list(SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_auto_pipelined_store_calls_in_a_gevent_process(scenario, redis_url):
    done = run_scenarios(scenario, redis_url)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stdout + done.stderr
    assert "Traceback" not in done.stderr, done.stderr  # e.g. an exception in one of the loop's callbacks
