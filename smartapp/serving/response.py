"""One HTTP/1.1 response as bytes: status line, the application's fields, framing, and the body, for one send."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from smartapp.gunicorn_date import http_date

# Fields that describe this connection, not the response: the server sets them (PEP 3333 forbids applications to).
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade"))
_NO_BODY = frozenset((204, 304))


class StartResponse:
    """The application's start_response: keeps the status and fields until the body is known."""

    __slots__ = ("status", "headers", "written")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []  # what the application passed to write(), sent before its returned body

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if self.status and exc_info is None:
            raise AssertionError("start_response called twice without exc_info")
        self.status = status
        self.headers = headers
        return self.written.append

    def encode(self, body: bytes, *, keep_alive: bool, send_body: bool, http10: bool) -> tuple[bytes, bool]:
        """The whole response, and whether the connection stays open (the application may ask it to close).

        Content-Length is always the body's own: every body here is complete before it is sent.
        """
        code = int(self.status[:3])
        lines = ["HTTP/1.1 ", self.status, "\r\n"]
        declared = None
        for name, value in self.headers:
            if "\n" in value or "\r" in value or "\n" in name or "\r" in name or ":" in name:
                raise ValueError("a response field with a line break")  # would let a value write its own fields
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                if lowered == "connection" and "close" in value.lower():
                    keep_alive = False
                continue
            if lowered == "content-length":
                declared = value
                continue
            lines += (name, ": ", value, "\r\n")
        if code >= 200 and code not in _NO_BODY:
            # A HEAD answer carries the length its GET would have; any other carries its own.
            lines += ("Content-Length: ", declared if not send_body and declared else str(len(body)), "\r\n")
        lines += ("Date: ", http_date(), "\r\n")
        if not keep_alive:
            lines.append("Connection: close\r\n")
        elif http10:
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        head = "".join(lines).encode("latin-1")
        return (head + body if send_body and code not in _NO_BODY else head), keep_alive


def refusal(status: int, reason: str) -> bytes:
    """The server's own answer to a request it will not pass on; the connection closes after it."""
    phrase = HTTPStatus(status).phrase
    body = f"{phrase}: {reason}\n".encode("latin-1", "replace")
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nDate: {http_date()}\r\nConnection: close\r\n\r\n").encode("latin-1") + body
