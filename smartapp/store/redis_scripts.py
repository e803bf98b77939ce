"""Runs the store's Lua scripts on one Redis connection per thread, the webhook's hottest call."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import redis
from redis.commands.core import Script

# redis-py's per-command path (pool checkout, retry wrapper, metrics hooks, argument encoding) costs
# about twice the loopback round trip it wraps; every signed request makes one such call (the
# replay claim), so scripts skip it. Same timeouts, same single retry.
RETRY_DELAY_SECONDS = 0.05
_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class ScriptRunner:
    """EVALSHA on a connection of this thread's own, loading the script when Redis lost it (restart, failover)."""

    def __init__(self, client: redis.Redis, *, retries: int) -> None:
        self._pool = client.connection_pool
        self._retries = retries
        self._local = threading.local()

    def _connection(self) -> redis.connection.AbstractConnection:
        connection, pid = getattr(self._local, "pinned", (None, 0))
        if connection is None or pid != os.getpid():
            # A connection inherited across fork belongs to the parent: leave it, open our own.
            connection = self._pool.connection_class(**self._pool.connection_kwargs)
            self._local.pinned = (connection, os.getpid())
        return connection

    def run(self, script: Script, keys: list[str], args: list[str]) -> Any:
        connection = self._connection()
        command = connection.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        for attempt in range(self._retries + 1):
            try:
                connection.send_packed_command(command, check_health=False)  # connects when needed
                return connection.read_response()
            except redis.exceptions.NoScriptError:
                return script(keys=keys, args=args)  # the client's path loads it, then runs it
            except _CONNECTION_ERRORS:
                # The reply may still be on its way: never read this socket again.
                connection.disconnect()
                if attempt == self._retries:
                    raise
                time.sleep(RETRY_DELAY_SECONDS)
        raise AssertionError("unreachable")

    def close(self) -> None:
        connection, pid = getattr(self._local, "pinned", (None, 0))
        if connection is not None and pid == os.getpid():
            connection.disconnect()
