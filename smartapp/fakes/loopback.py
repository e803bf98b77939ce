"""LoopbackServer: a threaded HTTP server on 127.0.0.1 with a route table that records every call it receives."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Call:
    """One request as it arrived: `path` keeps its query string; header names are lower-case."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def query(self) -> dict[str, list[str]]:
        """The query string's parameters, each with every value it was given."""
        return parse_qs(urlsplit(self.path).query)


@dataclass
class Reply:
    """What a route answers; a dict or list body goes out as JSON, `delay` seconds late."""

    status: int = 200
    body: bytes | str | dict | list = b""
    headers: dict[str, str] | None = None
    delay: float = 0.0


Route = Callable[[Call, re.Match], Reply]


class LoopbackServer:
    """Serve `routes` on 127.0.0.1 in a background thread; `calls` lists what arrived, in order."""

    def __init__(self) -> None:
        self.routes: list[tuple[str, re.Pattern, Route]] = []
        self.calls: list[Call] = []
        self.connections = 0
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the body waits for the client's
            # delayed ACK (~40 ms) on every keep-alive request.
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def setup(self) -> None:
                with outer._lock:
                    outer.connections += 1
                super().setup()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                call = Call(self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with outer._lock:
                    outer.calls.append(call)
                reply = outer._route(call)
                if reply.delay:
                    threading.Event().wait(reply.delay)
                payload = reply.body
                headers = dict(reply.headers or {})
                if isinstance(payload, (dict, list)):
                    payload = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                elif isinstance(payload, str):
                    payload = payload.encode()
                try:
                    self.send_response(reply.status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

        class Server(ThreadingHTTPServer):
            request_queue_size = 128  # the default backlog of 5 drops SYNs under 32 concurrent clients

        self._server = Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def route(self, method: str, pattern: str, handler: Route) -> None:
        """Add a route; later routes win, so a test can override a default."""
        self.routes.insert(0, (method.upper(), re.compile(pattern + r"\Z"), handler))

    def _route(self, call: Call) -> Reply:
        path = call.path.split("?", 1)[0]
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if method == call.method and match:
                return handler(call, match)
        return Reply(404, {"error": "not_found"})

    def calls_to(self, method: str, prefix: str = "") -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method and c.path.startswith(prefix)]

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
