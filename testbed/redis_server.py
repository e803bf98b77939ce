"""Starts a private redis-server on a free loopback port for a test run or a benchmark (never the shared 6379)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def low_free_port() -> int:
    """A free loopback port below 32768 whose port + 10000 (a cluster node's bus port) is free too."""
    for _ in range(500):
        port = random.randint(20000, 22767)
        if _bindable(port) and _bindable(port + 10000):
            return port
    raise RuntimeError("no free port pair below 32768")


class RedisServer:
    """One redis-server process with its own data directory; `url` points at it."""

    def __init__(self, *extra_args: str, port: int | None = None) -> None:
        self.binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.port = port or free_port()
        self.dir = tempfile.mkdtemp(prefix="smartapp-redis-")
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        return [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.dir,
            "--save", "", "--appendonly", "no", "--daemonize", "no", "--logfile", "redis.log",
            *self.extra_args,
        ]

    def start(self) -> "RedisServer":
        args = self.command()
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.answers():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("redis-server did not start")

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def pause(self) -> None:
        """Freeze the server: connections are accepted by the kernel but never answered."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def wait_until(condition, what: str, timeout: float = 20) -> None:
    """Poll `condition` (Redis errors count as not yet) until it holds; RuntimeError naming `what` if never."""
    import redis

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except redis.exceptions.RedisError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out waiting for {what}")
