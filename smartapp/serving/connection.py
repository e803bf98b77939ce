"""One client connection: HTTP/1.1 requests parsed by llhttp (httptools), answered in order, each in one send."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import httptools

from smartapp.serving.environ import request_environ
from smartapp.serving.request_head import Refused, RequestHead
from smartapp.serving.response import StartResponse, refusal
from smartapp.serving.rules import ServingRules

RECEIVE_BYTES = 65536
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"


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
        self._upgraded = False  # what follows an Upgrade request is not HTTP/1 and is never read
        self._head_bytes = 0  # bytes received while the newest head was unfinished

    def serve(self) -> None:
        try:
            while True:
                head = self._next_head()
                if head is None or not self._answer(head):
                    return
                self._heads.popleft()
        except Refused as refused:
            self._worker.log.debug("Refused a request: %s", refused.reason)
            self._send(refusal(refused.status, refused.reason))
        except OSError:
            return  # the client left, or let a deadline pass: nobody to answer

    # --- llhttp's callbacks, called from feed_data -------------------------------------------------

    def on_message_begin(self) -> None:
        self._parsing = RequestHead()
        self._heads.append(self._parsing)

    def on_url(self, part: bytes) -> None:
        head = self._parsing
        head.target += part
        if len(head.target) > self._rules.limit_request_line:
            raise Refused(414, "request target too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        head = self._parsing
        if len(head.fields) >= self._rules.limit_request_fields:
            raise Refused(431, "too many header fields")
        if len(name) + len(value) + 2 > self._rules.limit_request_field_size:
            raise Refused(431, "header field too large")
        if len(name) == 6 and name.lower() == b"expect" and value.lower() == b"100-continue":
            head.expects_continue = True
        head.fields.append((name, value))

    def on_headers_complete(self) -> None:
        head = self._parsing
        parser = self._parser
        head.version = parser.get_http_version()
        if head.version not in ("1.1", "1.0"):
            raise Refused(505, "HTTP version not supported")
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
        if self._failure is not None or self._upgraded:
            raise ConnectionError("the request body cannot be read further")
        if head.expects_continue:
            head.expects_continue = False
            self._send(_CONTINUE)
        if not self._receive(self._rules.body_stall_seconds):
            raise ConnectionError("the client closed before its body ended")

    def _receive(self, timeout: float) -> bool:
        """Receive once and parse what came; False when the client has closed."""
        sock = self._sock
        sock.settimeout(timeout)
        data = sock.recv(RECEIVE_BYTES)
        if not data:
            return False
        if self._failure is not None or self._upgraded:
            return True  # nothing after a parse failure or an upgrade is read as a request
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._upgraded = True
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            self._failure = cause if isinstance(cause, Refused) else Refused(400, "malformed request")
        except httptools.HttpParserError as error:
            self._failure = Refused(400, str(error) or "malformed request")
        parsing = self._parsing
        if parsing is not None and not parsing.headers_done and self._failure is None:
            self._head_bytes += len(data)
            if self._head_bytes > self._rules.max_head_bytes:
                self._failure = Refused(431, "request head too large")
        else:
            self._head_bytes = 0
        return True

    # --- answering -------------------------------------------------------------------------------------

    def _answer(self, head: RequestHead) -> bool:
        """Run the application for `head` and send its response; whether the connection stays open."""
        try:
            environ = request_environ(head, self._shared_environ, self._secure_scheme)
        except Refused as refused:
            self._send(refusal(refused.status, refused.reason))
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
            keep_alive = (worker_stays and head.keep_alive and head.complete and not self._upgraded
                          and self._rules.keepalive > 0)
            data, keep_alive = response.encode(body, keep_alive=keep_alive, send_body=head.method != "HEAD",
                                               http10=head.version == "1.0")
        except Exception:
            self._worker.log.exception("Error handling a request")
            data, keep_alive = refusal(500, "internal server error"), False
        self._send(data)
        return keep_alive

    def _send(self, data: bytes) -> None:
        # A client that stops reading its answers is dropped like one that stops sending its body.
        self._sock.settimeout(self._rules.body_stall_seconds)
        # send() first: gevent's sendall() asks the kernel for the buffer size on every call, and a response
        # usually fits the buffer whole.
        sent = self._sock.send(data)
        if sent < len(data):
            self._sock.sendall(memoryview(data)[sent:])


class BodyStream:
    """wsgi.input: the request body, received from the connection as the application reads it."""

    def __init__(self, connection: Connection, head: RequestHead) -> None:
        self._connection = connection
        self._head = head
        self._position = 0

    def read(self, size: int | None = -1) -> bytes:
        head = self._head
        body = head.body
        if size is None or size < 0:
            while not head.complete:
                self._connection.receive_body(head)
            end = len(body)
        else:
            while not head.complete and len(body) - self._position < size:
                self._connection.receive_body(head)
            end = min(len(body), self._position + size)
        data = bytes(body[self._position:end])
        self._position = end
        return data

    def readline(self, size: int | None = -1) -> bytes:
        head = self._head
        body = head.body
        limit = -1 if size is None else size
        while True:
            newline = body.find(b"\n", self._position)
            if newline >= 0 or head.complete or 0 <= limit <= len(body) - self._position:
                break
            self._connection.receive_body(head)
        end = newline + 1 if newline >= 0 else len(body)
        if limit >= 0:
            end = min(end, self._position + limit)
        data = bytes(body[self._position:end])
        self._position = end
        return data

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
