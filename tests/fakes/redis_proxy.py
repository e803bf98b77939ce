"""A loopback TCP proxy to Redis that can hold back one command, so a test can act while it is in flight."""

from __future__ import annotations

import socket
import threading


class HoldingProxy:
    """Forwards every connection to Redis; the first request containing `hold_pattern` is never forwarded.

    `held` is set once that request has arrived: its sender is then stuck waiting for a reply.
    """

    def __init__(self, redis_port: int, hold_pattern: bytes) -> None:
        self.redis_port = redis_port
        self.hold_pattern = hold_pattern
        self.held = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.redis_port))
            with self._lock:
                self._sockets += [downstream, upstream]
            threading.Thread(target=self._requests, args=(downstream, upstream), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, downstream), daemon=True).start()

    def _requests(self, downstream: socket.socket, upstream: socket.socket) -> None:
        try:
            while data := downstream.recv(65536):
                with self._lock:
                    hold = not self.held.is_set() and self.hold_pattern in data
                    if hold:
                        self.held.set()
                if hold:
                    continue  # swallowed: Redis never sees it, the caller waits for a reply
                upstream.sendall(data)
        except OSError:
            pass
        self._close(downstream, upstream)

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        self._close(source, target)

    @staticmethod
    def _close(*sockets: socket.socket) -> None:
        for sock in sockets:
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
