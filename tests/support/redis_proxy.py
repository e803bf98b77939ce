"""Loopback TCP proxies to Redis that interfere with chosen commands: hold one back, or cut off its reply."""

from __future__ import annotations

import socket
import threading


class RedisProxy:
    """Forwards every connection to Redis; subclasses decide, chunk by chunk, what goes through."""

    def __init__(self, redis_port: int) -> None:
        self.redis_port = redis_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def request(self, data: bytes, connection: dict) -> bool:
        """Whether this chunk from the client goes on to Redis (`connection` is that connection's own state)."""
        return True

    def reply(self, data: bytes, connection: dict) -> bool:
        """Whether this chunk from Redis goes back to the client; False closes the connection instead."""
        return True

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.redis_port))
            with self._lock:
                self._sockets += [downstream, upstream]
            connection: dict = {}
            threading.Thread(target=self._pipe, args=(downstream, upstream, self.request, connection),
                             daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, downstream, self.reply, connection),
                             daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket, passes, connection: dict) -> None:
        try:
            while data := source.recv(65536):
                if passes(data, connection):
                    target.sendall(data)
                elif passes == self.reply:
                    break
        except OSError:
            pass
        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        self.listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            sock.close()


class HoldingProxy(RedisProxy):
    """The first request containing `hold_pattern` is never forwarded: its sender waits for a reply.

    `held` is set once that request has arrived.
    """

    def __init__(self, redis_port: int, hold_pattern: bytes) -> None:
        self.hold_pattern = hold_pattern
        self.held = threading.Event()
        super().__init__(redis_port)

    def request(self, data: bytes, connection: dict) -> bool:
        with self._lock:
            hold = not self.held.is_set() and self.hold_pattern in data
            if hold:
                self.held.set()
        return not hold


class ReplyCutter(RedisProxy):
    """Once armed, lets one EVALSHA run on Redis and then cuts the connection before its reply."""

    def __init__(self, redis_port: int) -> None:
        self.armed = threading.Event()
        self.cut = threading.Event()
        super().__init__(redis_port)

    def request(self, data: bytes, connection: dict) -> bool:
        if b"EVALSHA" in data and self.armed.is_set():
            self.armed.clear()
            connection["cut_next_reply"] = True  # before the command leaves, so its reply cannot slip through
        return True

    def reply(self, data: bytes, connection: dict) -> bool:
        if connection.get("cut_next_reply"):
            self.cut.set()
            return False
        return True
