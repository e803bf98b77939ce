"""One HTTP/1 request as the parser reports it: target, header fields, and the body received so far."""

from __future__ import annotations


class RequestHead:
    """Filled by the connection's parser callbacks; the body grows as the application reads it."""

    __slots__ = ("method", "target", "fields", "size", "version", "keep_alive", "headers_done", "complete", "body",
                 "expects_continue", "content_length", "transfer_encoding", "upgrade", "raw_body_left", "framing_bytes")

    def __init__(self) -> None:
        self.method = ""
        self.target = b""
        self.fields: list[tuple[bytes, bytes]] = []
        self.size = 0  # bytes of the target and the fields
        self.version = "1.1"
        self.keep_alive = False
        self.headers_done = False  # the blank line after the fields has arrived
        self.complete = False  # the whole body has arrived
        self.body = bytearray()  # received and not yet read by the application
        self.expects_continue = False  # "Expect: 100-continue", not yet answered
        self.content_length = b""  # as sent
        self.transfer_encoding = False
        self.upgrade = False  # llhttp stopped at this request's Upgrade: the last one the connection answers
        self.raw_body_left = 0  # body bytes after an Upgrade head, which llhttp leaves to the caller
        self.framing_bytes = 0  # bytes received for it that were not body: head, chunk sizes, trailer


class Refused(Exception):
    """A request answered by the server itself, before or instead of the application, and the connection closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
