"""The service under a real gunicorn process, as the Procfile runs it, for end-to-end tests and benchmarks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import requests

from testbed.redis_server import free_port

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_CONFIG = ROOT / "config" / "gunicorn.conf.py"


class Gunicorn:
    """gunicorn with config/gunicorn.conf.py on a free loopback port; stdout and stderr go to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, *, cwd: Path = ROOT, workers: int = 2,
                 extra_env: dict[str, str] | None = None, app: str = "smartapp:create_app()",
                 args: tuple[str, ...] = (), started_line: str | None = "smartapp_started") -> None:
        """`app` under config/gunicorn.conf.py and `args`; ready when every worker has printed `started_line`."""
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTAPP_") and k != "REDIS_URL"}
        full_env.update(env, PORT=str(self.port), WEB_CONCURRENCY=str(workers), **(extra_env or {}))
        # Apps named by SMARTAPP_APP (examples.*) import from the checkout whatever directory the service runs in.
        full_env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), full_env.get("PYTHONPATH")]))
        self.log = open(log_path, "wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG), "--bind", f"127.0.0.1:{self.port}",
             *args, app],
            cwd=cwd, env=full_env, stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                # Every worker, not just the first: one still starting would meet what the test does next
                # (a frozen Redis, say) at its own start.
                if requests.get(self.url + "/healthz", timeout=0.5).status_code == 200 and \
                        (started_line is None or self.output().count(started_line) >= workers):
                    return
            except (requests.ConnectionError, requests.Timeout):
                pass  # not listening yet, or a worker still importing on a busy machine: ask again
            time.sleep(0.1)
            if self.process.poll() is not None:
                break
        self.stop()
        raise RuntimeError("gunicorn did not start: " + log_path.read_text()[-2000:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        self.log.close()

    def output(self) -> str:
        """Everything gunicorn and the app printed so far."""
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(encoding="utf-8", errors="replace")
