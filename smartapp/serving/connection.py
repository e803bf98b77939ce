"""One client connection: HTTP/1.1 requests parsed by llhttp (httptools), answered in order, each in one send."""

from __future__ import annotations

import socket
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import gevent
import httptools

from smartapp.one_write_response import send_whole
from smartapp.serving.environ import request_environ
from smartapp.serving.request_head import Refused, RequestHead
from smartapp.serving.response import StartResponse, refusal
from smartapp.serving.rules import ServingRules

RECEIVE_BYTES = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
# Closing a socket with unread input resets the connection, and the client may lose the answer it has not
# read yet: after answering a request whose body was not read, what still comes is read and dropped, this long.
LINGER_SECONDS = 2.0
LINGER_BYTES = 4 * 1024 * 1024


class RequestCounter(Protocol):
    """The worker, as a connection sees it."""

    log: Any

    def count_request(self) -> bool:
        """Count one request; False when the worker is stopping and this connection must close after it."""


class Connection:
    """Reads only as far as the oldest unanswered request needs: its head, then its body as the app reads it."""

    def __init__(self, sock: Any, peer: Any, app: Callable[..., Any], rules: ServingRules,
                 shared_environ: dict[str, Any], worker: RequestCounter) -> None:
        self._sock = sock
        self._app = app
        self._rules = rules
        self._shared_environ = shared_environ
        self._secure_scheme = rules.secure_scheme if rules.trusts_proxy(peer) else None
        self._worker = worker
        self._parser = httptools.HttpRequestParser(self)
        self._heads: deque[RequestHead] = deque()  # received, not yet answered, oldest first
        self._parsing: RequestHead | None = None
        self._failure: Refused | None = None  # what stopped the parser: answered when its request comes up
        self._upgraded = False  # what follows an Upgrade request is not HTTP/1 and is never parsed

    def serve(self) -> None:
        try:
            while True:
                head = self._next_head()
                if head is None or not self._answer(head):
                    return
                self._heads.popleft()
        except Refused as refused:
            self._worker.log.debug("Refused a request: %s", refused.reason)
            try:
                self._send(refusal(refused.status, refused.reason))
                self._linger()
            except OSError:
                pass  # the client did not wait for the answer
        except OSError:
            return  # the client left, or let a deadline pass: nobody to answer

    # --- llhttp's callbacks, called from feed_data -------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsing = RequestHead()
        self._heads.append(self._parsing)

    def on_url(self, part: bytes) -> None:
        head = self._parsing
        head.target += part
        head.size += len(part)
        if len(head.target) > self._rules.limit_request_line:
            raise Refused(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._parsing
        if head.headers_done:
            return  # a chunked body's trailer field: never merged into the request's fields (RFC 9110 6.5.1)
        if len(head.fields) >= self._rules.limit_request_fields:
            raise Refused(431, "too many header fields")
        size = len(name) + len(value) + 2
        if size > self._rules.limit_request_field_size:
            raise Refused(431, "header field too large")
        head.size += size + 2
        if head.size > self._rules.max_head_bytes:
            raise Refused(431, "request head too large")
        if len(name) == 6 and name.lower() == b"expect":
            head.expects_continue = value.lower() == b"100-continue"
        elif len(name) == 14 and name.lower() == b"content-length":
            head.content_length = value
        elif len(name) == 17 and name.lower() == b"transfer-encoding":
            head.transfer_encoding = True
        head.fields.append((name, value))

    def on_headers_complete(self) -> None:
        head = self._parsing
        parser = self._parser
        head.version = parser.get_http_version()
        if head.version not in ("1.1", "1.0"):
            raise Refused(505, "HTTP version not supported")
        if head.transfer_encoding and head.version == "1.0":
            raise Refused(400, "Transfer-Encoding in an HTTP/1.0 request")  # its framing is faulty (RFC 9112 6.1)
        head.method = parser.get_method().decode("ascii")
        head.keep_alive = parser.should_keep_alive()
        head.expects_continue = head.expects_continue and head.version == "1.1"
        head.headers_done = True

    def on_body(self, part: bytes) -> None:
        self._parsing.body += part

    def on_message_complete(self) -> None:
        self._parsing.complete = True

    # --- reading ---------------------------------------------------------------------------------------

    def _next_head(self) -> RequestHead | None:
        """The oldest unanswered request once its head is in; None when the client closes or lets keep-alive pass."""
        heads = self._heads
        deadline = 0.0
        while not (heads and heads[0].headers_done):
            if self._failure is not None:
                raise self._failure
            if self._upgraded:
                return None
            now = time.monotonic()
            if not deadline:
                deadline = now + (self._rules.keepalive or self._rules.body_stall_seconds)
            if now >= deadline:
                return None
            try:
                if not self._receive(deadline - now):
                    return None
            except TimeoutError:
                return None  # idle, or trickling its head: the same limit
        return heads[0]

    def receive_body(self, head: RequestHead) -> None:
        """More of `head`'s body; OSError when it stalls, breaks off or cannot be parsed."""
        if head.expects_continue:
            head.expects_continue = False
            self._send(_CONTINUE)
        if head.raw_body_left:
            self._receive_raw_body(head)
            return
        if self._failure is not None or self._upgraded:
            raise ConnectionError("the request body cannot be read further")
        if not self._receive(self._rules.body_stall_seconds):
            raise ConnectionError("the client closed before its body ended")

    def _receive_raw_body(self, head: RequestHead) -> None:
        self._sock.settimeout(self._rules.body_stall_seconds)
        data = self._sock.recv(min(RECEIVE_BYTES, head.raw_body_left))
        if not data:
            raise ConnectionError("the client closed before its body ended")
        self._take_raw_body(head, data)

    @staticmethod
    def _take_raw_body(head: RequestHead, data: bytes) -> None:
        taken = data[:head.raw_body_left]
        head.body += taken
        head.raw_body_left -= len(taken)
        head.complete = not head.raw_body_left

    def _upgrade_requested(self, data: bytes, offset: int) -> None:
        """llhttp stops at a request with Upgrade and leaves its body unread. The service speaks HTTP/1.1 only
        (an "Upgrade: h2c" from curl --http2 among others): the request is answered as one, its Content-Length
        body taken as it comes, and the connection closed after it."""
        self._upgraded = True
        head = self._parsing
        head.upgrade = True
        if head.transfer_encoding:
            head.complete = False  # a chunked body behind an Upgrade is never read: reading it fails
            return
        length = head.content_length.strip()
        head.raw_body_left = int(length) if length.isdigit() else 0
        head.complete = not head.raw_body_left
        if head.raw_body_left:
            self._take_raw_body(head, data[offset:])

    def _receive(self, timeout: float) -> bool:
        """Receive once and parse what came; False when the client has closed."""
        sock = self._sock
        sock.settimeout(timeout)
        data = sock.recv(RECEIVE_BYTES)
        if not data:
            return False
        if self._failure is not None or self._upgraded:
            return True  # nothing after a parse failure or an upgrade is read as a request
        newest = self._parsing
        body_before = len(newest.body) if newest is not None else 0
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgrade_requested(data, upgrade.args[0])
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._failure = cause if isinstance(cause, Refused) else Refused(400, "malformed request")
        except httptools.HttpParserError as error:
            self._failure = Refused(400, str(error) or "malformed request")
        if newest is not None and newest is self._parsing and not newest.complete and self._failure is None:
            # All of it went to one unfinished request. What was not body is its head, chunk framing or trailer:
            # llhttp holds an unfinished field in memory, so these bytes are bounded like the head.
            newest.framing_bytes += len(data) - (len(newest.body) - body_before)
            if newest.framing_bytes > self._rules.max_head_bytes + RECEIVE_BYTES:
                self._failure = Refused(431, "request head or framing too large")
        return True

    # --- answering -------------------------------------------------------------------------------------

    def _answer(self, head: RequestHead) -> bool:
        """Run the application for `head` and send its response; whether the connection stays open."""
        try:
            environ = request_environ(head, self._shared_environ, self._secure_scheme)
        except Refused as refused:
            self._send(refusal(refused.status, refused.reason))
            if not head.complete:
                self._linger()
            return False
        environ["wsgi.input"] = BodyStream(self, head)
        worker_stays = self._worker.count_request()
        response = StartResponse()
        try:
            result = self._app(environ, response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
            if response.written:
                body = b"".join(response.written) + body
            # A request whose body was not read to its end leaves the stream at an unknown place: close.
            keep_alive = (worker_stays and head.keep_alive and head.complete and not head.upgrade
                          and self._rules.keepalive > 0)
            data, keep_alive = response.encode(body, keep_alive=keep_alive, send_body=head.method != "HEAD",
                                               http10=head.version == "1.0")
        except (Exception, gevent.Timeout):
            self._worker.log.exception("Error handling a request")
            data, keep_alive = refusal(500, "internal server error"), False
        self._send(data)
        if not head.complete:
            self._linger()
        return keep_alive

    def _linger(self) -> None:
        """Say no more will be sent, then read and drop what the client is still sending, for a bounded while."""
        sock = self._sock
        try:
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER_SECONDS
            dropped = 0
            while dropped < LINGER_BYTES:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                sock.settimeout(remaining)
                data = sock.recv(RECEIVE_BYTES)
                if not data:
                    return
                dropped += len(data)
        except OSError:
            return

    def _send(self, data: bytes) -> None:
        # A client that stops reading its answers is dropped like one that stops sending its body.
        self._sock.settimeout(self._rules.body_stall_seconds)
        send_whole(self._sock, data)


class BodyStream:
    """wsgi.input: the request body, received from the connection as the application reads it. What has been
    read is dropped, so a body read in pieces never sits whole in memory."""

    def __init__(self, connection: Connection, head: RequestHead) -> None:
        self._connection = connection
        self._head = head

    def read(self, size: int | None = -1) -> bytes:
        head = self._head
        body = head.body
        if size is None or size < 0:
            while not head.complete:
                self._connection.receive_body(head)
            end = len(body)
        else:
            while not head.complete and len(body) < size:
                self._connection.receive_body(head)
            end = min(len(body), size)
        return _take(body, end)

    def readline(self, size: int | None = -1) -> bytes:
        head = self._head
        body = head.body
        limit = -1 if size is None else size
        searched = 0
        while True:
            newline = body.find(b"\n", searched)
            if newline >= 0 or head.complete or 0 <= limit <= len(body):
                break
            searched = len(body)
            self._connection.receive_body(head)
        end = newline + 1 if newline >= 0 else len(body)
        if limit >= 0:
            end = min(end, limit)
        return _take(body, end)

    def readlines(self, hint: int = -1) -> list[bytes]:
        lines: list[bytes] = []
        total = 0
        while line := self.readline():
            lines.append(line)
            total += len(line)
            if 0 < hint <= total:
                break
        return lines

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


def _take(buffer: bytearray, end: int) -> bytes:
    """The first `end` bytes of `buffer`, removed from it."""
    if end >= len(buffer):
        data = bytes(buffer)
        buffer.clear()
        return data
    data = bytes(buffer[:end])
    del buffer[:end]
    return data
