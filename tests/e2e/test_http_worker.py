"""The default worker's HTTP/1.1 (smartapp/serving), seen from a raw socket: gunicorn with config/gunicorn.conf.py
serving an app that echoes its WSGI environ."""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path

import pytest

from testbed.service import Gunicorn

pytestmark = pytest.mark.e2e


def echo_server(log_path: Path, *args: str, env: dict[str, str] | None = None) -> Gunicorn:
    """The echo app under config/gunicorn.conf.py, one worker."""
    return Gunicorn(env or {}, log_path, workers=1, app="tests.support.echo_wsgi:app", args=args, started_line=None)


def connect(server: Gunicorn, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=timeout)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    echo = echo_server(tmp_path_factory.mktemp("echo") / "gunicorn.log")
    yield echo
    echo.stop()
    log = echo.output()
    expected = sum(log.count(marker) for marker in _EXPECTED_ERRORS)
    assert log.count("Traceback") == expected, log[-3000:]


# The errors the tests below make the app raise, each logged with its traceback; anything else is a bug.
_EXPECTED_ERRORS = ("RuntimeError: the app failed on purpose", "ValueError: a response field with",
                    "ValueError: the application's status", "Timeout: 0.01 second")


class Reader:
    """HTTP/1.1 responses read off one socket, framed by Content-Length."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def _more(self) -> bool:
        data = self.sock.recv(65536)
        self.buffer += data
        return bool(data)

    def response(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            if not self._more():
                raise ConnectionError("closed before a response: %r" % self.buffer)
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        status = int(status_line.split()[1])
        length = int(headers.get("content-length", 0)) if status not in (100, 204, 304) else 0
        while len(self.buffer) < length:
            if not self._more():
                raise ConnectionError("closed inside a body")
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return status, headers, body

    def closed(self) -> bool:
        """True when the server closes the connection with nothing more to send."""
        try:
            return not self._more() and not self.buffer
        except ConnectionResetError:
            return True


def exchange(server: Gunicorn, payload: bytes) -> tuple[int, dict[str, str], bytes, bool]:
    """One request on a fresh connection: status, headers, body, and whether the server then closed."""
    with connect(server) as sock:
        sock.sendall(payload)
        reader = Reader(sock)
        status, headers, body = reader.response()
        sock.settimeout(1.0)
        try:
            closed = reader.closed()
        except TimeoutError:
            closed = False
        return status, headers, body, closed


def test_the_environ_is_what_pep_3333_and_gunicorn_give(server):
    status, headers, body, _ = exchange(server, (
        b"GET /a%20b/c?x=1&y=%20 HTTP/1.1\r\nHost: example.test:8443\r\nX-Twice: one\r\nx-twice: two\r\n"
        b"X_Underscore: dropped\r\nX-Forwarded-Proto: https\r\nContent-Type: text/plain\r\n\r\n"))
    assert status == 200 and headers["content-type"] == "application/json" and "date" in headers
    seen = json.loads(body)
    assert seen["REQUEST_METHOD"] == "GET"
    assert seen["PATH_INFO"] == "/a b/c"
    assert seen["QUERY_STRING"] == "x=1&y=%20"
    assert seen["RAW_URI"] == "/a%20b/c?x=1&y=%20"
    assert seen["SERVER_PROTOCOL"] == "HTTP/1.1"
    assert seen["SERVER_PORT"] == str(server.port) and seen["REMOTE_ADDR"] == "127.0.0.1"
    assert seen["SCRIPT_NAME"] == "" and seen["CONTENT_TYPE"] == "text/plain"
    assert seen["headers"]["HTTP_HOST"] == "example.test:8443"
    assert seen["headers"]["HTTP_X_TWICE"] == "one,two"
    assert "HTTP_X_UNDERSCORE" not in seen["headers"]
    # 127.0.0.1 is the config's default forwarded_allow_ips: its scheme field counts.
    assert seen["wsgi.url_scheme"] == "https"


def test_a_path_s_percent_encoding_is_decoded_as_latin_1_and_a_fragment_dropped(server):
    status, _, body, _ = exchange(server, b"GET /caf%C3%A9?q#frag HTTP/1.1\r\nHost: x\r\n\r\n")
    seen = json.loads(body)
    assert status == 200 and seen["PATH_INFO"] == "/caf\u00c3\u00a9" and seen["QUERY_STRING"] == "q"


@pytest.mark.parametrize("target, path", [(b"//admin/secret#x", "//admin/secret"),
                                          (b"//evil.example/internal?do=1#f", "//evil.example/internal")])
def test_a_path_starting_with_two_slashes_is_a_path_not_a_host(server, target, path):
    status, _, body, _ = exchange(server, b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % target)
    assert status == 200 and json.loads(body)["PATH_INFO"] == path


def test_an_absolute_form_target_gives_its_path(server):
    status, _, body, _ = exchange(server, b"GET http://example.test/p/q?r=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
    seen = json.loads(body)
    assert status == 200 and (seen["PATH_INFO"], seen["QUERY_STRING"]) == ("/p/q", "r=1")


def test_contradictory_scheme_fields_from_a_trusted_proxy_are_refused(server):
    status, _, _, closed = exchange(
        server, b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\nX-Forwarded-Ssl: off\r\n\r\n")
    assert status == 400 and closed


def test_an_untrusted_peer_cannot_claim_https(tmp_path):
    echo = echo_server(tmp_path / "g.log", env={"FORWARDED_ALLOW_IPS": "10.9.9.9"})
    try:
        _, _, body, _ = exchange(echo, b"GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-Proto: https\r\n\r\n")
        assert json.loads(body)["wsgi.url_scheme"] == "http"
    finally:
        echo.stop()


def test_requests_on_one_connection_are_answered_in_order_pipelined_or_not(server):
    with connect(server) as sock:
        reader = Reader(sock)
        sock.sendall(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n")
        assert json.loads(reader.response()[2])["PATH_INFO"] == "/first"
        body = b'{"n": 1}'
        sock.sendall(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /third HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                     b"GET /fourth HTTP/1.1\r\nHost: x\r\n\r\n" % (len(body), body))
        answers = [json.loads(reader.response()[2]) for _ in range(3)]
        assert [a["PATH_INFO"] for a in answers] == ["/second", "/third", "/fourth"]
        assert answers[1]["body_bytes"] == len(body)
        assert len({a["pid"] for a in answers}) == 1


def test_http_1_0_closes_unless_it_asks_for_keep_alive(server):
    status, headers, _, closed = exchange(server, b"GET / HTTP/1.0\r\n\r\n")
    assert status == 200 and headers.get("connection") == "close" and closed
    status, headers, _, closed = exchange(server, b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
    assert status == 200 and headers.get("connection") == "keep-alive" and not closed


def test_connection_close_from_the_client_or_the_app_closes(server):
    status, headers, _, closed = exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert status == 200 and headers["connection"] == "close" and closed
    status, headers, _, closed = exchange(server, b"GET /?do=close HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and headers["connection"] == "close" and closed


def test_a_chunked_body_is_read_whole(server):
    body = b"0123456789" * 1000
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 777]), body[i:i + 777]) for i in range(0, len(body), 777))
    status, _, answer, _ = exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    + chunked + b"0\r\n\r\n")
    seen = json.loads(answer)
    assert status == 200 and seen["body_bytes"] == len(body) and "CONTENT_LENGTH" not in seen


def test_trailer_fields_never_reach_the_environ(server):
    """A proxy checks the header section; a field sent after the body must not act as if it had been there."""
    status, _, answer, _ = exchange(server, b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                                    b"5\r\nhello\r\n0\r\nX-Forwarded-Proto: https\r\nX-Admin: 1\r\n\r\n")
    seen = json.loads(answer)
    assert status == 200 and seen["body_bytes"] == 5
    assert seen["wsgi.url_scheme"] == "http" and "HTTP_X_ADMIN" not in seen["headers"]


def test_an_endless_trailer_is_cut_off_like_an_endless_head(server):
    """llhttp holds an unfinished trailer field in memory, growing it with every receive: the bytes of a request
    that are not its body are bounded, and the application's read fails instead of the worker filling up."""
    flood_bytes = 64 * 1024 * 1024
    with connect(server, timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-T: ")
        sent = 0
        answered = threading.Event()

        def flood() -> None:
            nonlocal sent
            try:
                while sent < flood_bytes and not answered.is_set():
                    sock.sendall(b"a" * 65536)
                    sent += 65536
            except OSError:
                pass

        sender = threading.Thread(target=flood, daemon=True)
        sender.start()
        status, _, body = Reader(sock).response()
        answered.set()
        assert status == 400 and b"body failed" in body
        assert sent < flood_bytes // 4
    sender.join(5)


def test_a_request_asking_to_upgrade_is_answered_as_http_1_1_with_its_body(server):
    """curl --http2 on an http:// URL sends "Upgrade: h2c"; llhttp stops there and leaves the body to us."""
    body = b'{"event": "x"}'
    with connect(server) as sock:
        sock.sendall(b"GET /before HTTP/1.1\r\nHost: x\r\n\r\n"
                     b"POST /hook HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
                     b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body[:5]))
        reader = Reader(sock)
        status, headers, first = reader.response()
        assert status == 200 and json.loads(first)["PATH_INFO"] == "/before" and headers.get("connection") != "close"
        sock.sendall(body[5:])
        status, headers, answer = reader.response()
        seen = json.loads(answer)
        assert status == 200 and seen["PATH_INFO"] == "/hook" and seen["body_bytes"] == len(body)
        assert headers["connection"] == "close" and reader.closed()


def test_a_body_read_line_by_line(server):
    body = b"one\ntwo\nthree"
    status, _, answer, _ = exchange(server, b"POST /?do=lines HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
                                    % (len(body), body))
    assert status == 200 and json.loads(answer)["lines"] == 3


def test_expect_100_continue_is_answered_when_the_app_reads_the_body(server):
    body = b"x" * 5000
    with connect(server) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: %d\r\n\r\n" % len(body))
        reader = Reader(sock)
        status, _, _ = reader.response()
        assert status == 100
        sock.sendall(body)
        status, _, answer = reader.response()
        assert status == 200 and json.loads(answer)["body_bytes"] == len(body)


def test_a_body_the_app_did_not_read_closes_the_connection_after_the_answer(server):
    with connect(server) as sock:
        sock.sendall(b"POST /?do=skip-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + b"x" * 1000)
        reader = Reader(sock)
        status, headers, _ = reader.response()
        assert status == 200 and headers["connection"] == "close" and reader.closed()


def test_a_client_that_sends_its_whole_body_before_reading_still_gets_the_answer(server):
    """The body the app did not read is drained before the close, so the close does not reset the connection
    (which would discard the answer the client has not read yet)."""
    size = 3 * 1024 * 1024
    with connect(server, timeout=10) as sock:
        sock.sendall(b"POST /?do=skip-body HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        time.sleep(0.2)  # the answer is sent before the body arrives
        sock.sendall(b"x" * size)
        status, headers, _ = Reader(sock).response()
        assert status == 200 and headers["connection"] == "close"


def test_head_gets_the_fields_without_the_body(server):
    with connect(server) as sock:
        sock.sendall(b"HEAD / HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        head = sock.recv(65536)
        status_line, _, rest = head.partition(b"\r\n")
        assert status_line == b"HTTP/1.1 200 OK"
        fields, _, after = rest.partition(b"\r\n\r\n")
        assert b"Content-Length: " in fields and not after.startswith(b"{")
        reader.buffer = after
        assert json.loads(reader.response()[2])["PATH_INFO"] == "/after"


def test_the_write_callable_comes_before_the_returned_body(server):
    status, _, body, _ = exchange(server, b"GET /?do=write HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200 and body == b"written returned"


def test_a_refused_request_s_body_is_drained_too(server):
    """The body keeps coming after the refusal; a close without draining would answer it with a reset."""
    pieces = 48
    with connect(server, timeout=10) as sock:
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nHost: b\r\nContent-Length: %d\r\n\r\n" % (pieces * 65536))
        for _ in range(pieces):
            time.sleep(0.01)
            sock.sendall(b"x" * 65536)
        assert Reader(sock).response()[0] == 400


def test_an_error_after_write_is_a_500_without_what_was_written(server):
    status, _, body, closed = exchange(server, b"GET /?do=write-then-fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500 and b"partial" not in body and closed


def test_a_head_answer_without_a_length_gives_none(server):
    with connect(server) as sock:
        sock.sendall(b"HEAD /?do=no-length HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
        reader = Reader(sock)
        status, headers, _ = reader.response()
        assert status == 200 and "content-length" not in headers
        assert json.loads(reader.response()[2])["PATH_INFO"] == "/after"


def test_a_gevent_timeout_in_the_app_is_a_500(server):
    status, _, _, closed = exchange(server, b"GET /?do=timeout HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500 and closed


def test_an_app_error_is_a_500_and_the_worker_serves_on(server):
    status, _, body, closed = exchange(server, b"GET /?do=fail HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 500 and closed and b"the app failed" not in body
    assert exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


@pytest.mark.parametrize("answer", ["split", "split-status", "bad-name", "control-value", "informational"])
def test_a_status_or_field_that_could_write_fields_of_its_own_is_never_sent(server, answer):
    status, headers, _, closed = exchange(server, b"GET /?do=%s HTTP/1.1\r\nHost: x\r\n\r\n" % answer.encode())
    assert status == 500 and "set-cookie" not in headers and closed


@pytest.mark.parametrize("payload, expected", [
    (b"NONSENSE\r\n\r\n", 400),
    (b"GET / HTTP/1.1\nHost: x\n\n", 400),  # bare LF
    (b"GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
    (b"GET / HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: x\r\nX-Fold: a\r\n b\r\n\r\n", 400),  # obsolete line folding
    (b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n", 400),
    (b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(150)) + b"\r\n", 431),
    (b"GET / HTTP/1.1\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-F%d: %s\r\n" % (i, b"v" * 8000) for i in range(22)) + b"\r\n", 431),
    (b"POST / HTTP/1.0\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
])
def test_a_malformed_or_oversized_request_is_refused_and_the_connection_closed(server, payload, expected):
    status, _, _, closed = exchange(server, payload)
    assert (status, closed) == (expected, True)


def test_a_head_that_never_ends_is_refused_without_holding_it(server):
    with connect(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nX-Endless: ")
        status = None
        try:
            for _ in range(100):
                sock.sendall(b"v" * 16384)
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            status = Reader(sock).response()[0]
        except (ConnectionError, OSError):
            pass
        assert status in (431, None)
    assert exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_a_client_that_leaves_before_its_refusal_costs_no_error_line(server):
    """The module's teardown fails on any traceback the server logged."""
    for _ in range(5):
        with connect(server) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\nBAD REQUEST\r\n\r\n")
    time.sleep(0.5)
    assert exchange(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[0] == 200


def test_a_pipelined_request_after_a_good_one_fails_on_its_own(server):
    with connect(server) as sock:
        sock.sendall(b"GET /good HTTP/1.1\r\nHost: x\r\n\r\nNONSENSE\r\n\r\n")
        reader = Reader(sock)
        assert json.loads(reader.response()[2])["PATH_INFO"] == "/good"
        assert reader.response()[0] == 400
        assert reader.closed()


@pytest.mark.slow
def test_an_idle_or_trickling_connection_is_closed_after_keep_alive(tmp_path):
    echo = echo_server(tmp_path / "g.log", "--keep-alive", "1")
    try:
        with connect(echo) as idle, connect(echo) as trickling:
            started = time.monotonic()
            trickling.sendall(b"GET / HTTP/1.1\r\n")
            for _ in range(3):
                time.sleep(0.4)
                try:
                    trickling.sendall(b"X: y\r\n")
                except OSError:
                    break
            assert Reader(idle).closed() and Reader(trickling).closed()
            assert time.monotonic() - started < 3
    finally:
        echo.stop()


@pytest.mark.slow
def test_max_requests_restarts_the_worker_after_its_answer(tmp_path):
    """The third request of the worker, counting the start-up probe, is its last."""
    echo = echo_server(tmp_path / "g.log", "--max-requests", "3")
    try:
        with connect(echo) as sock:
            reader = Reader(sock)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            first = json.loads(reader.response()[2])["pid"]
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, _ = reader.response()
            assert status == 200 and headers["connection"] == "close" and reader.closed()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                if json.loads(exchange(echo, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")[2])["pid"] != first:
                    break
            except (ConnectionError, OSError):
                pass
            time.sleep(0.2)
        else:
            pytest.fail("the worker was not replaced")
    finally:
        echo.stop()


@pytest.mark.slow
def test_settings_it_does_not_implement_leave_connections_to_gunicorn(tmp_path):
    """An access log is gunicorn's: with one configured, gunicorn's own handling serves and writes it."""
    echo = echo_server(tmp_path / "g.log", env={"GUNICORN_ACCESS_LOG": "-"})
    try:
        status, headers, body, _ = exchange(echo, b"GET /logged?x=secret HTTP/1.1\r\nHost: x\r\n\r\n")
        assert status == 200 and json.loads(body)["PATH_INFO"] == "/logged"
        assert headers.get("server", "").startswith("gunicorn")  # only gunicorn's responses name it
        time.sleep(0.3)
        assert '"GET /logged HTTP/1.1" 200' in echo.output()
    finally:
        echo.stop()
