"""One HTTP/1.1 response as bytes: status line, the application's fields, framing, and the body, for one send."""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any

from smartapp.gunicorn_date import http_date

# Fields that describe this connection, not the response: the server sets them (PEP 3333 forbids applications to).
_HOP_BY_HOP = frozenset(("connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
                         "transfer-encoding", "upgrade"))
_NO_BODY = frozenset((204, 304))
# A WSGI application answers with a final status (a 1xx is the server's to send); no part of the head may hold
# a line break or another control character, or the application's text could write fields of its own.
_STATUS = re.compile(r"[2-5][0-9][0-9](?: [^\x00-\x08\x0a-\x1f\x7f]*)?\Z")
_FIELD_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")


class StartResponse:
    """The application's start_response: keeps the status and fields until the body is known."""

    __slots__ = ("status", "headers", "written")

    def __init__(self) -> None:
        self.status = ""
        self.headers: list[tuple[str, str]] = []
        self.written: list[bytes] = []  # what the application passed to write(), sent before its returned body

    def __call__(self, status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        if exc_info is not None:
            if self.written:  # body bytes went out (PEP 3333): an error page cannot take the response's place
                raise exc_info[1].with_traceback(exc_info[2])
        elif self.status:
            raise AssertionError("start_response called twice without exc_info")
        self.status = status
        self.headers = headers
        return self.written.append

    def encode(self, body: bytes, *, keep_alive: bool, send_body: bool, http10: bool) -> tuple[bytes, bool]:
        """The whole response, and whether the connection stays open (the application may ask it to close).

        Content-Length is always the body's own: every body here is complete before it is sent.
        """
        status = self.status
        if not _STATUS.match(status):
            raise ValueError("the application's status is not a final status line")
        code = int(status[:3])
        lines = ["HTTP/1.1 ", status if len(status) > 3 else status + " ", "\r\n"]
        declared = None
        for name, value in self.headers:
            if not _FIELD_NAME.match(name) or _CONTROL.search(value):
                raise ValueError("a response field with a control character or a bad name")
            lowered = name.lower()
            if lowered in _HOP_BY_HOP:
                if lowered == "connection" and "close" in value.lower():
                    keep_alive = False
                continue
            if lowered == "content-length":
                declared = value
                continue
            lines += (name, ": ", value, "\r\n")
        if code not in _NO_BODY:
            if send_body:
                lines += ("Content-Length: ", str(len(body)), "\r\n")
            elif declared is not None:  # a HEAD answer carries the length its GET would have, when the app says it
                lines += ("Content-Length: ", declared, "\r\n")
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
