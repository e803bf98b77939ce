"""Runs the store's Lua scripts on connections of their own, skipping redis-py's per-command layers."""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from typing import Any

import redis
from redis.commands.core import Script

# redis-py's per-command path (pool checkout, retry wrapper, metrics hooks, argument encoding) costs
# about twice the loopback round trip it wraps; every signed request makes one such call (the
# replay claim), so scripts skip it. Same timeouts, same single retry.
RETRY_DELAY_SECONDS = 0.05
_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class ScriptRunner:
    """EVALSHA on an idle connection of its own (one per concurrent caller), loading scripts Redis lost."""

    def __init__(self, client: redis.Redis, *, retries: int) -> None:
        self._pool = client.connection_pool
        self._retries = retries
        # The client's own cap, applied here too: over it a call fails at once (503) instead of queueing.
        self._max_connections = self._pool.max_connections
        # deque.append/pop are atomic: threads share the idle connections without a lock.
        self._idle: deque[redis.connection.AbstractConnection] = deque()
        self._opened = 0
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _checkout(self) -> redis.connection.AbstractConnection:
        if self._pid != os.getpid():
            # Connections inherited across fork belong to the parent: leave them, open our own.
            self._idle, self._opened, self._pid = deque(), 0, os.getpid()
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._lock:
            if self._opened >= self._max_connections:
                raise redis.exceptions.ConnectionError("too many script connections")
            self._opened += 1
        return self._pool.connection_class(**self._pool.connection_kwargs)

    def run(self, script: Script, keys: list[str], args: list[str]) -> Any:
        connection = self._checkout()
        command = connection.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        for attempt in range(self._retries + 1):
            try:
                connection.send_packed_command(command, check_health=False)  # connects when needed
                reply = connection.read_response()
            except redis.exceptions.NoScriptError:
                self._idle.append(connection)
                return script(keys=keys, args=args)  # the client's path loads it, then runs it
            except _CONNECTION_ERRORS:
                # The reply may still be on its way: never read this socket again.
                connection.disconnect()
                if attempt == self._retries:
                    self._idle.append(connection)  # disconnected; reconnects on next use
                    raise
                time.sleep(RETRY_DELAY_SECONDS)
            except BaseException:
                connection.disconnect()  # e.g. interrupted mid-read: the socket's state is unknown
                self._idle.append(connection)
                raise
            else:
                self._idle.append(connection)
                return reply
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Close the idle connections (all of them, between requests)."""
        if self._pid != os.getpid():
            return
        while self._idle:
            self._idle.pop().disconnect()
