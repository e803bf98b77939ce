"""One Redis connection shared by a gevent worker's requests: the commands made in one loop turn leave in one write."""

from __future__ import annotations

import logging
import os
import time
import weakref
from collections import deque
from typing import Any, Callable

import redis
from gevent import getcurrent
from gevent.hub import Hub, Waiter
from gevent.lock import Semaphore

log = logging.getLogger("smartapp.store")

_RECEIVE_BYTES = 65536
_NO_CALLER = None  # the slot of a write whose reply nobody waits for
_LIVE: "weakref.WeakSet[AutoPipeline]" = weakref.WeakSet()


def loop_hub() -> Hub | None:
    """The hub whose greenlet is calling, when it may wait for that hub's loop (a request's greenlet), else None."""
    parent = getcurrent().parent
    return parent if isinstance(parent, Hub) else None


class AutoPipeline:
    """Every greenlet's calls on one connection, answered in the order they were made.

    A call queues its packed command and waits. When the event loop's turn ends, everything queued in it
    leaves in one send(); the replies are read as they arrive and wake their callers in order. Requests
    served at the same time then share one system call each way, and Redis reads their commands in one go.
    The loop itself sends, reads and wakes callers, so nothing here may wait for a socket. Any failure (an
    I/O error, no reply within `timeout`) closes the connection and fails every call still waiting: a late
    reply on it could otherwise wake the wrong caller. The next call connects again.
    """

    def __init__(self, connect: Callable[[], redis.connection.AbstractConnection], hub: Hub, *, timeout: float,
                 incomplete: Any) -> None:
        """On `hub`'s loop. `connect` makes an unconnected redis-py connection with a hiredis reader, which
        answers `incomplete` while a reply has not fully arrived."""
        self._new_connection = connect
        self._incomplete = incomplete
        self._hub = hub
        self._loop = hub.loop
        self._timeout = timeout
        self._connect_lock = Semaphore()
        self._connection: redis.connection.AbstractConnection | None = None
        self._sock: Any = None
        self._reader: Any = None
        self._readable: Any = None  # reads replies whenever they arrive
        self._writable: Any = None  # finishes a send the kernel took only part of
        self._deadlines: Any = None  # fails the calls once the oldest has waited `timeout`
        self._queued: list[bytes] = []
        self._unsent = b""
        self._flush_scheduled = False
        # One [waiter or _NO_CALLER, when it was queued] per command queued or sent, oldest first.
        self._slots: deque[list] = deque()
        _LIVE.add(self)

    def usable_here(self) -> bool:
        """Whether the caller can wait for a reply: a greenlet of this pipeline's loop, not the loop itself."""
        current = getcurrent()
        return current.parent is self._hub or current is self._hub.parent

    def call(self, packed: bytes) -> Any:
        """The reply, an error reply as its exception value; ConnectionError or TimeoutError when none came."""
        self._connect()
        waiter = Waiter(self._hub)
        self._queue(packed, [waiter, time.monotonic()])
        return waiter.get()

    def send(self, packed: bytes) -> None:
        """A write whose reply is not waited for; an error reply is logged when it arrives."""
        self._connect()
        self._queue(packed, [_NO_CALLER, time.monotonic()])

    def close(self) -> None:
        self._fail(redis.exceptions.ConnectionError("the connection was closed"))

    # -- in the caller's greenlet --------------------------------------------------------------------------------

    def _connect(self) -> None:
        if self._sock is not None:
            return
        with self._connect_lock:  # one greenlet connects; the others find its connection
            if self._sock is not None:
                return
            connection = self._new_connection()
            # The socket and the handshake (AUTH, SELECT), each bounded by its timeout, the handshake tried once.
            connection.connect_check_health(check_health=False)
            sock, reader = connection._sock, connection._parser._reader
            sock.settimeout(0.0)  # from now on the loop reads and writes it, and never waits on it
            self._connection, self._sock, self._reader = connection, sock, reader
            self._readable = self._loop.io(sock.fileno(), 1)
            self._readable.start(self._receive)
            self._writable = self._loop.io(sock.fileno(), 2)
            # A call fails between `timeout` and a fifth more after it was made.
            self._deadlines = self._loop.timer(self._timeout / 5, self._timeout / 5, ref=False)
            self._deadlines.start(self._check_deadlines)

    def _queue(self, packed: bytes, slot: list) -> None:
        self._queued.append(packed)
        self._slots.append(slot)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.run_callback(self._flush)

    # -- in the event loop -----------------------------------------------------------------------------------------

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._sock is None:
            return  # failed since: its callers were told
        data = self._unsent + b"".join(self._queued) if self._unsent else b"".join(self._queued)
        self._queued.clear()
        if not data:
            return  # an earlier flush of this turn sent it
        try:
            sent = self._sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError as error:
            self._fail(redis.exceptions.ConnectionError(f"Error while writing to socket: {error}"))
            return
        self._unsent = data[sent:]
        if self._unsent and not self._writable.active:
            self._writable.start(self._flush)
        elif not self._unsent and self._writable.active:
            self._writable.stop()

    def _receive(self) -> None:
        try:
            data = self._sock.recv(_RECEIVE_BYTES)
        except BlockingIOError:
            return
        except OSError as error:
            self._fail(redis.exceptions.ConnectionError(f"Error while reading from socket: {error}"))
            return
        if not data:
            self._fail(redis.exceptions.ConnectionError("Connection closed by server."))
            return
        self._reader.feed(data)
        answered, failure = [], None
        while True:
            try:
                reply = self._reader.gets()
            except Exception as error:  # noqa: BLE001 - a protocol error: nothing after it can be trusted
                failure = redis.exceptions.ConnectionError(f"Protocol error: {type(error).__name__}")
                break
            if reply is self._incomplete:
                break
            if not self._slots:
                failure = redis.exceptions.ConnectionError("a reply nobody asked for")
                break
            waiter = self._slots.popleft()[0]
            if waiter is not _NO_CALLER:
                answered.append((waiter, reply))
            elif isinstance(reply, Exception):
                log.warning("unacknowledged_write_failed", extra={"reason": "redis_error",
                                                                  "detail": type(reply).__name__})
        if failure is not None:
            self._fail(failure)  # the replies read before it are good: their callers still get them
        # Woken only now: a caller runs until it waits again, and may queue calls or fail the connection.
        for waiter, reply in answered:
            waiter.switch(reply)

    def _check_deadlines(self) -> None:
        if self._slots and time.monotonic() - self._slots[0][1] > self._timeout:
            self._fail(redis.exceptions.TimeoutError("Timeout reading from socket"))

    def _fail(self, error: Exception) -> None:
        slots = self._tear_down()
        in_loop = getcurrent() is self._hub
        for waiter, _ in slots:
            if waiter is _NO_CALLER:
                continue
            if in_loop:
                waiter.throw(error)
            else:
                self._loop.run_callback(waiter.throw, error)

    def _tear_down(self) -> deque[list]:
        """Stop watching, close the connection and forget what was queued; the slots of the calls it had."""
        connection, slots = self._connection, self._slots
        for watcher in (self._readable, self._writable, self._deadlines):
            if watcher is not None:
                watcher.stop()
                watcher.close()
        self._connection = self._sock = self._reader = None
        self._readable = self._writable = self._deadlines = None
        self._slots, self._queued, self._unsent = deque(), [], b""
        if connection is not None:
            connection.disconnect()  # in a forked child: closes its copy only, the parent's socket stays up
        return slots


def _forget_inherited() -> None:
    """In a forked child: the parent's pipelines, their socket and the watchers the loop kept, are not its own.
    Left running, the child would read the parent's replies and send what the parent queued a second time."""
    for pipeline in list(_LIVE):
        pipeline._tear_down()  # its callers are the parent's greenlets: nothing to wake here


os.register_at_fork(after_in_child=_forget_inherited)
