"""The installed `smartapp` console script run as a process, a store for it to read, and doctor's findings."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.stores import open_store_like


def smartapp_command() -> list[str]:
    script = Path(sys.executable).with_name("smartapp")
    if script.exists():
        return [str(script)]
    found = shutil.which("smartapp")
    if not found:
        pytest.fail("the smartapp console script is not installed (pip install -e .)")
    return [found]


ROOT = Path(__file__).resolve().parents[2]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMARTAPP_") and k != "REDIS_URL"}
    # PYTHONPATH: the apps the tests name (examples.*) import from the checkout wherever the command runs.
    return subprocess.run(smartapp_command() + args, env={**clean, "PYTHONPATH": str(ROOT), **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


IAID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"
CANARIES = {"auth_token": "cli-canary-auth-7f3e9d", "refresh_token": "cli-canary-refresh-2b8c41",
            "provider_access_token": "cli-canary-provider-access-5d7a", "provider_refresh_token": "cli-canary-prr-91"}


def populate(env: dict[str, str], installed_app_id: str = IAID) -> None:
    """One linked installation, its tokens the CANARIES, in the store `env` configures."""
    store = open_store_like(env)
    try:
        store.update(installed_app_id, {"location_id": "loc-1", "config": {"switches": [{}, {}]},
                                        "auth_token_expires_at": 2_000_000_000.0, "refresh_token_issued_at": 1.0e9,
                                        "provider": "github", **CANARIES})
    finally:
        store.close()


def findings(stdout: str) -> list[tuple[str, str, str]]:
    """(level, topic, message) per finding line of `smartapp doctor`; fix lines are indented under them."""
    found = []
    for line in stdout.splitlines()[1:]:
        if line[:5].strip() in ("ok", "WARN", "FAIL"):
            found.append((line[:5].strip(), line[6:23].strip(), line[24:]))
    return found
