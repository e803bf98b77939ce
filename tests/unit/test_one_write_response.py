"""gunicorn's responses leave in one write, byte for byte what gunicorn's own Response sends."""

from __future__ import annotations

import socket

import pytest
from gunicorn.config import Config
from gunicorn.http import wsgi
from gunicorn.http.parser import RequestParser

from smartapp.one_write_response import OneWriteResponse

GUNICORN_RESPONSE = wsgi.Response


class CountingSocket:
    """One end of a real socket pair that counts the writes (send and sendall calls) made on it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.writes = 0

    def send(self, data: bytes) -> int:
        self.writes += 1
        return self.sock.send(data)

    def sendall(self, data: bytes) -> None:
        self.writes += 1
        self.sock.sendall(data)

    def __getattr__(self, name: str):
        return getattr(self.sock, name)


def respond(response_class, method: str, status: str, headers: list[tuple[str, str]], body: list[bytes],
            socket_class: type[CountingSocket] = CountingSocket):
    """What the client receives, and how many writes the server made, for one request answered by a WSGI app."""
    cfg = Config()
    request = f"{method} / HTTP/1.1\r\nHost: example\r\nContent-Length: 0\r\n\r\n".encode()
    req = next(RequestParser(cfg, iter([request]), ("127.0.0.1", 5000)))
    server, client = socket.socketpair()
    counting = socket_class(server)
    try:
        response = response_class(req, counting, cfg)
        response.start_response(status, headers)
        for item in body:
            response.write(item)
        response.close()
        server.shutdown(socket.SHUT_WR)
        received = b"".join(iter(lambda: client.recv(65536), b""))
    finally:
        server.close()
        client.close()
    # The Date header is the current second's: drop it so two runs compare.
    lines = [line for line in received.split(b"\r\n") if not line.startswith(b"Date: ")]
    return b"\r\n".join(lines), counting.writes


CASES = {
    "one body item": ("POST", "200 OK", [("Content-Type", "application/json"), ("Content-Length", "11")],
                      [b'{"ok":true}']),
    "two body items": ("POST", "200 OK", [("Content-Length", "6")], [b"abc", b"def"]),
    "empty body": ("POST", "200 OK", [("Content-Length", "0")], []),
    "HEAD": ("HEAD", "200 OK", [("Content-Length", "11")], [b'{"ok":true}']),
    "204": ("POST", "204 No Content", [], []),
    "chunked": ("POST", "200 OK", [], [b"abc", b"def"]),
}


@pytest.mark.parametrize("case", CASES)
def test_the_bytes_are_gunicorns(case):
    ours, _ = respond(OneWriteResponse, *CASES[case])
    theirs, _ = respond(GUNICORN_RESPONSE, *CASES[case])
    assert ours == theirs


def test_headers_and_a_body_leave_in_one_write():
    _, writes = respond(OneWriteResponse, *CASES["one body item"])
    _, gunicorn_writes = respond(GUNICORN_RESPONSE, *CASES["one body item"])
    assert (writes, gunicorn_writes) == (1, 2)


@pytest.mark.parametrize("case", ["empty body", "HEAD", "204"])
def test_headers_alone_still_leave(case):
    received, writes = respond(OneWriteResponse, *CASES[case])
    assert received.startswith(b"HTTP/1.1 ") and writes == 1


class ShortWritingSocket(CountingSocket):
    """A socket whose send() takes only half of what it is given, as a full kernel buffer does."""

    def send(self, data: bytes) -> int:
        self.writes += 1
        return self.sock.send(bytes(data[:max(1, len(data) // 2)]))


def test_a_short_send_is_finished_with_sendall():
    ours, writes = respond(OneWriteResponse, *CASES["one body item"], socket_class=ShortWritingSocket)
    theirs, _ = respond(GUNICORN_RESPONSE, *CASES["one body item"])
    assert ours == theirs and writes == 2
