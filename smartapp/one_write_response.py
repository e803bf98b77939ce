"""gunicorn's HTTP/1 response, sent in one write: the status line and headers go out with the first body bytes."""

from __future__ import annotations

from typing import Any

from gunicorn.http import wsgi


def send_whole(sock: Any, data: bytes) -> None:
    """All of `data`, by send() first: gevent's sendall() asks the kernel for the buffer size on every call,
    and a response usually fits the buffer whole."""
    sent = sock.send(data)
    if sent < len(data):
        sock.sendall(memoryview(data)[sent:])


class _HeldFirstWrite:
    """The client socket, holding back its first sendall (gunicorn's status line and headers) to join the next."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._held: bytes | None = None
        self._first = True

    def sendall(self, data: bytes) -> None:
        if self._first:
            self._first = False
            self._held = bytes(data)
            return
        self.release(data)

    def release(self, data: bytes = b"") -> None:
        """Send what is held, with `data` after it, in one write."""
        held, self._held = self._held, None
        if held is not None:
            data = held + data
        if data:
            send_whole(self._sock, data)

    def sendfile(self, *args: Any, **kwargs: Any) -> Any:
        self.release()
        return self._sock.sendfile(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class OneWriteResponse(wsgi.Response):
    """A response of headers plus one body is one send() and one TCP segment instead of two.

    gunicorn writes the headers and then each body item separately; every write on a TCP socket is a system
    call and, with TCP_NODELAY or on loopback, a packet of its own, which the peer wakes up for.
    """

    def __init__(self, req: Any, sock: Any, cfg: Any) -> None:
        super().__init__(req, _HeldFirstWrite(sock), cfg)

    def close(self) -> None:
        super().close()
        self.sock.release()  # a response without body bytes (HEAD, 204, an empty body): its headers alone


def install() -> None:
    """Make gunicorn's HTTP/1 workers answer with OneWriteResponse (called in each worker, from the config)."""
    if wsgi.Response is not OneWriteResponse:
        wsgi.Response = OneWriteResponse  # type: ignore[misc]
