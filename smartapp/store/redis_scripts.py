"""Runs the store's Lua scripts and writes on connections of their own, skipping redis-py's per-command layers."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from typing import Any

import redis
from redis.commands.core import Script

from smartapp.after_turn import patched_by_gevent

try:  # installed with redis[hiredis]; packs a command ten times faster than redis-py's encoder
    from hiredis import pack_command as _hiredis_pack
except ImportError:  # pragma: no cover - redis-py's own packer then
    _hiredis_pack = None
try:  # what redis-py's hiredis readers answer while a reply is incomplete
    from redis._parsers.hiredis import NOT_ENOUGH_DATA as _INCOMPLETE
except ImportError:  # pragma: no cover - another redis-py layout: _exchange is skipped
    _INCOMPLETE = None

# redis-py's per-command path (pool checkout, retry wrapper, metrics hooks, argument encoding) costs
# about twice the loopback round trip it wraps; every signed request makes one such call (the
# replay claim), so scripts skip it. Same timeouts, same single retry.
RETRY_DELAY_SECONDS = 0.05
# How long a write waits for SMARTAPP_REDIS_WAIT_REPLICAS replicas before it answers 503; a request
# makes a few writes, so several such waits still fit SmartThings' 10 s.
WAIT_TIMEOUT_MS = 1000
_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
# Writes sent without waiting for their replies, at most this many on one connection before one is waited for.
MAX_UNREAD_REPLIES = 32

log = logging.getLogger("smartapp.store")

# Counts the forks this process came from: connections made before a fork belong to the parent. Asking
# os.getpid() instead would be a system call on every Redis call.
_forks = [0]
os.register_at_fork(after_in_child=lambda: _forks.__setitem__(0, _forks[0] + 1))


class ReplicasBehind(redis.exceptions.RedisError):
    """WAIT confirmed fewer replicas than configured: the write is on the primary only, not acknowledged."""

    def __init__(self, confirmed: int, wanted: int) -> None:
        super().__init__(f"WAIT confirmed {confirmed} of {wanted} replicas")


class ScriptRunner:
    """EVALSHA (or a plain write) on an idle connection of its own, one per concurrent caller.

    With `wait_replicas` each call is followed by WAIT in the same round trip, and a call is only
    returned once that many replicas have it. Scripts Redis does not know are loaded on the spot.
    """

    def __init__(self, pool: redis.ConnectionPool, *, retries: int, wait_replicas: int = 0,
                 pipelined: bool = False) -> None:
        """`pipelined`: in a gevent worker, calls share one auto-pipelined connection (redis_autopipe.py)."""
        self.pool = pool
        self._retries = retries
        self._wait = wait_replicas
        # The client's own cap, applied here too: over it a call fails at once (503) instead of queueing.
        self._max_connections = pool.max_connections
        # deque.append/pop are atomic: threads share the idle connections without a lock.
        self._idle: deque[redis.connection.AbstractConnection] = deque()
        self._opened = 0
        self._lock = threading.Lock()
        self._fork = _forks[0]
        # Without WAIT, TLS or redis-py's Python parser (the pipeline feeds hiredis itself). The pipeline is made
        # by the first call from a greenlet of a gevent worker's loop.
        self._pipelinable = (pipelined and not wait_replicas and _INCOMPLETE is not None and _hiredis_pack is not None
                             and not issubclass(pool.connection_class, redis.connection.SSLConnection))
        self._pipeline: Any = None

    def _leave_the_parents(self) -> None:
        if self._fork != _forks[0]:
            # Connections (and the pipeline, with its event loop) inherited across fork belong to the parent:
            # leave them, open our own.
            self._idle, self._opened, self._pipeline, self._fork = deque(), 0, None, _forks[0]

    def _checkout(self) -> redis.connection.AbstractConnection:
        self._leave_the_parents()
        try:
            return self._idle.pop()
        except IndexError:
            pass
        with self._lock:
            if self._opened >= self._max_connections:
                raise redis.exceptions.ConnectionError("too many script connections")
            self._opened += 1
        return self.pool.connection_class(**self.pool.connection_kwargs)

    def _connect(self, connection: redis.connection.AbstractConnection) -> None:
        """Nothing to do: sending connects a plain connection itself, trying the handshake once."""

    def run(self, script: Script, keys: list[str], args: list[str], *, asking: bool = False) -> Any:
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)
        pipeline = None if asking else self._current_pipeline()
        if pipeline is not None:
            return self._pipelined(pipeline, command, script)
        return self._call(command, keys[0], script, asking)

    def command(self, keys: list[str], *command: Any, asking: bool = False) -> Any:
        """A plain write (SET, DEL, ...) on `keys`, acknowledged like the scripts."""
        pipeline = None if asking else self._current_pipeline()
        if pipeline is not None:
            return self._pipelined(pipeline, command, None)
        return self._call(command, keys[0], None, asking)

    def send(self, keys: list[str], *command: Any, asking: bool = False) -> None:
        """A plain write whose reply is not waited for: it is read with the connection's next call.

        One send() and no wait instead of a round trip, for a write the caller would not act on the reply of
        anyway. An error reply is logged when it is read. With `wait_replicas` the write is acknowledged
        like any other (the caller asked for writes to be on replicas before going on).
        """
        if self._wait or asking:
            self._call(command, keys[0], None, asking)
            return
        pipeline = self._current_pipeline()
        if pipeline is not None:
            pipeline.send(_hiredis_pack(command))
            return
        connection = self._checkout()
        unread = getattr(connection, "_unread", 0)
        if unread >= MAX_UNREAD_REPLIES:
            self._idle.append(connection)
            self._call(command, keys[0], None, asking)  # reads the earlier replies too
            return
        try:
            self._connect(connection)
            packed = _packed(connection, command)
            if connection._sock is not None and len(packed) == 1:
                _send_whole(connection._sock, packed[0])
            else:
                connection.send_packed_command(packed, check_health=False)  # connects first
        except BaseException:
            drop_connection(connection)
            self._idle.append(connection)
            raise
        connection._unread = unread + 1  # type: ignore[attr-defined]
        self._idle.append(connection)

    def _call(self, command: tuple, key: str, script: Script | None, asking: bool) -> Any:
        connection = self._checkout()
        # Replies to earlier writes sent without waiting come first on this connection: read them before ours.
        unread = getattr(connection, "_unread", 0)
        loaded = False
        attempt = 0
        while True:
            if asking or self._wait:
                commands = [("ASKING",)] if asking else []
                if self._wait and attempt:
                    # The retried call may find its first attempt's write done and write nothing itself;
                    # WAIT counts this connection's writes only, so a harmless one makes it cover that too.
                    commands.append(("SET", _fence_key(key), "", "PX", 1))
                commands.append(command)
                if self._wait:
                    commands.append(("WAIT", self._wait, WAIT_TIMEOUT_MS))
                packed = connection.pack_commands(commands)
            else:
                commands, packed = [command], _packed(connection, command)
            try:
                self._connect(connection)
                replies = _exchange(connection, packed, unread + 1) if len(commands) == 1 and not self._wait \
                    else None
                if replies is None:
                    connection.send_packed_command(packed, check_health=False)
                    replies = _read_replies(connection, unread + len(commands), waits=bool(self._wait))
                if unread:
                    connection._unread, unread = 0, 0  # type: ignore[attr-defined]
                    replies = _log_unread_errors(replies, len(commands))
            except _CONNECTION_ERRORS:
                # The reply may still be on its way: never read this socket again.
                drop_connection(connection)
                unread = 0
                if attempt == self._retries:
                    self._idle.append(connection)  # disconnected; reconnects on next use
                    raise
                attempt += 1
                time.sleep(RETRY_DELAY_SECONDS)
                continue
            except BaseException:
                drop_connection(connection)  # e.g. interrupted mid-read: the socket's state is unknown
                self._idle.append(connection)
                raise
            reply = replies[-2] if self._wait else replies[-1]
            if isinstance(reply, redis.exceptions.NoScriptError) and script is not None and not loaded:
                loaded = True  # Redis restarted or flushed its scripts: load once, here, then run again
                try:
                    connection.send_command("SCRIPT", "LOAD", script.script, check_health=False)
                    connection.read_response()
                except BaseException:
                    connection.disconnect()
                    self._idle.append(connection)
                    raise
                continue
            self._idle.append(connection)
            for earlier in replies[:-1]:
                if isinstance(earlier, Exception):
                    raise earlier
            if isinstance(replies[-1], Exception):
                raise replies[-1]
            if self._wait and replies[-1] < self._wait:
                # The primary may have been replaced (Sentinel): a fresh connection asks again next time.
                connection.disconnect()
                raise ReplicasBehind(int(replies[-1]), self._wait)
            return reply

    def _current_pipeline(self) -> Any:
        """This process's auto-pipeline when the caller may use it (a request's greenlet in a gevent worker)."""
        self._leave_the_parents()
        pipeline = self._pipeline
        if pipeline is None:
            if not self._pipelinable or not patched_by_gevent():
                return None
            from smartapp.store.redis_autopipe import AutoPipeline, loop_hub

            hub = loop_hub()  # made by a greenlet of the loop it belongs to, never by another thread
            if hub is None:
                return None
            pipeline = self._pipeline = AutoPipeline(
                lambda: self.pool.connection_class(**self.pool.connection_kwargs), hub,
                timeout=self.pool.connection_kwargs.get("socket_timeout") or 1.0, incomplete=_INCOMPLETE)
        # A native thread takes connections of its own; the loop itself cannot wait for a reply at all.
        return pipeline if pipeline.usable_here() else None

    def _pipelined(self, pipeline: Any, command: tuple, script: Script | None) -> Any:
        """`command` on the auto-pipeline, with _call's single retry, loading a script Redis does not know."""
        attempt, loaded = 0, False
        while True:
            try:
                reply = pipeline.call(_hiredis_pack(command))
                if isinstance(reply, redis.exceptions.NoScriptError) and script is not None and not loaded:
                    loaded = True  # Redis restarted or flushed its scripts: load once, then run again
                    reply = pipeline.call(_hiredis_pack(("SCRIPT", "LOAD", script.script)))
                    if not isinstance(reply, Exception):
                        continue
            except _CONNECTION_ERRORS:
                if attempt == self._retries:
                    raise
                attempt += 1
                time.sleep(RETRY_DELAY_SECONDS)
                continue
            if isinstance(reply, Exception):
                raise reply
            return reply

    def close(self) -> None:
        """Close the idle connections (all of them, between requests)."""
        if self._fork != _forks[0]:
            return
        while self._idle:
            self._idle.pop().disconnect()
        if self._pipeline is not None:
            self._pipeline.close()


def _packed(connection: redis.connection.AbstractConnection, command: tuple) -> list[bytes]:
    if _hiredis_pack is not None:
        return [_hiredis_pack(command)]
    return connection.pack_command(*command)


def _exchange(connection: Any, packed: list[bytes], count: int) -> list | None:
    """Send one packed command and read `count` replies straight off the socket, with the connection's own
    hiredis reader: redis-py's read path (timeouts, health checks, push messages, per-reply layers) costs
    more CPU than the loopback round trip itself. Error replies come back as exception values, as in
    _read_replies. None when the connection is not connected yet (redis-py's path connects it, trying the
    handshake once) or has no hiredis reader (redis-py's Python parser): the caller takes redis-py's path.
    """
    reader = getattr(connection._parser, "_reader", None)
    sock = connection._sock
    if reader is None or sock is None or len(packed) != 1 or _INCOMPLETE is None:
        return None
    _send_whole(sock, packed[0])
    replies: list = []
    while len(replies) < count:
        reply = reader.gets()
        if reply is _INCOMPLETE:
            data = sock.recv(65536)
            if not data:
                raise redis.exceptions.ConnectionError("Connection closed by server.")
            reader.feed(data)
            continue
        replies.append(reply)
    return replies


def _send_whole(sock: Any, data: bytes) -> None:
    """send(), finished by sendall() if short: gevent's sendall() asks the kernel for the buffer size on every
    call, and a command fits the buffer whole."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


def drop_connection(connection: redis.connection.AbstractConnection) -> None:
    """Disconnect, forgetting the replies still due on the old socket (it reconnects on next use)."""
    connection.disconnect()
    connection._unread = 0  # type: ignore[attr-defined]


def _log_unread_errors(replies: list, own: int) -> list:
    """The replies of this call (the last `own`); an error among the earlier, unwaited-for writes' is logged."""
    for reply in replies[:-own]:
        if isinstance(reply, Exception):
            log.warning("unacknowledged_write_failed", extra={"reason": "redis_error", "detail": type(reply).__name__})
    return replies[-own:]


def _read_replies(connection: redis.connection.AbstractConnection, count: int, *, waits: bool) -> list:
    """Every reply of a pipelined exchange, error replies as exception values, so none is left unread."""
    replies: list = []
    for index in range(count):
        waiting = waits and index == count - 1
        try:
            if waiting:
                # WAIT answers after up to its own timeout: read it with that much more patience.
                timeout = (connection.socket_timeout or 0) + WAIT_TIMEOUT_MS / 1000
                replies.append(connection.read_response(timeout=timeout))
            else:
                replies.append(connection.read_response())
        except redis.exceptions.ResponseError as error:
            replies.append(error)
    return replies


def _fence_key(key: str) -> str:
    """A short-lived key in the same cluster slot as `key` (same hash tag, or the whole key as the tag)."""
    start = key.find("{")
    end = key.find("}", start + 1) if start >= 0 else -1
    tag = key[start + 1:end] if start >= 0 and end > start + 1 else key
    return f"{{{tag}}}:wait-fence"
