"""The installed `smartapp` console script, run as a process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TOKEN_KEY


def smartapp_command() -> list[str]:
    script = Path(sys.executable).with_name("smartapp")
    if script.exists():
        return [str(script)]
    found = shutil.which("smartapp")
    if not found:
        pytest.fail("the smartapp console script is not installed (pip install -e .)")
    return [found]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SMARTAPP_") and k != "REDIS_URL"}
    return subprocess.run(smartapp_command() + args, env={**clean, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=60)


def test_check_config_passes_on_the_embedded_default(tmp_path):
    result = run(["check-config"], {}, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "sqlite" in result.stdout


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


def test_check_config_reads_dotenv_and_environment_wins(tmp_path):
    (tmp_path / ".env").write_text("REDIS_URL=redis://127.0.0.1:1/0\n")
    assert run(["check-config"], {}, tmp_path).returncode == 1
    assert run(["check-config"], {"SMARTAPP_TOKEN_KEYS": TOKEN_KEY}, tmp_path).returncode == 0
