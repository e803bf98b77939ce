"""The deploy kit read as the platforms read it: gunicorn's settings for an environment, the Dockerfile's steps."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def gunicorn_config(tmp_path, env: dict[str, str]) -> dict[str, str]:
    """gunicorn's own view of config/gunicorn.conf.py (`--print-config`), run in `tmp_path` with `env`."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SMARTAPP_", "GUNICORN_")) and k not in ("PORT", "WEB_CONCURRENCY", "DYNO",
                                                                            "FORWARDED_ALLOW_IPS", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-m", "gunicorn", "--print-config", "-c", str(ROOT / "config" / "gunicorn.conf.py"),
         "smartapp:create_app()"],
        cwd=tmp_path, env={**clean, "SMARTAPP_DB_PATH": str(tmp_path / "x.db"), **env},
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    values = {}
    for line in result.stdout.splitlines():
        name, sep, value = line.partition(" = ")
        if sep:
            values[name.strip()] = value.strip()
    return values


def dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    instructions, pending = [], ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        pending += line.rstrip("\\").strip() + " "
        if not line.endswith("\\"):
            keyword, _, rest = pending.strip().partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
            pending = ""
    return instructions
