"""A loopback stand-in for key.smartthings.com: serves PEMs by keyId, with failure modes and fetch counts."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import Counter

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from smartapp.fakes.loopback import Call, LoopbackServer, Reply

MODES = ("ok", "404", "500", "redirect", "huge", "huge_unsized", "stall", "slow", "garbage", "expired")

GARBAGE_PEM = b"-----BEGIN CERTIFICATE-----\nR0FSQkFHRS1DQU5BUlk=not-a-certificate\n-----END CERTIFICATE-----\n"


def certificate_pem(
    private_key: rsa.RSAPrivateKey,
    *,
    not_before: dt.datetime,
    not_after: dt.datetime,
    common_name: str = "key.smartthings.com",
    extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
) -> bytes:
    """A self-signed PEM certificate for `private_key` with the given validity window (and extensions, critical or not)."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(private_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


class KeyServer(LoopbackServer):
    """`publish(key_id, pem)` then point a KeyResolver at `.url`; set `.mode` to make it misbehave.

    Modes:
      ok            the published PEM for the path, else 404
      404 / 500     that status for every path
      redirect      302 to `.redirect_to` + path
      huge          a valid published PEM followed by `.huge_bytes` of padding (with Content-Length)
      huge_unsized  the same without Content-Length, so only a streaming read cap stops it
      stall         the answer only after `.stall_seconds`
      slow          headers at once, then the body one byte per `.drip_interval` seconds
      garbage       an unparsable PEM
      expired       a certificate whose validity ended in 2000
    `.latency` delays every answer; every answer closes its connection, so `connections` counts fetches.
    """

    def __init__(self) -> None:
        super().__init__()
        self.mode = "ok"
        self.latency = 0.0
        self.stall_seconds = 3.0
        self.drip_interval = 0.2
        self.huge_bytes = 1 << 20
        self.redirect_to = "http://127.0.0.1:9/"
        self._published: dict[str, bytes] = {}
        self._fetches: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._expired_pem: bytes | None = None
        self.route("GET", r"(/.*)", self._closing)
        self._install_drip_handler()
        # A short poll interval so stop() takes milliseconds, not serve_forever's default 0.5 s.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def publish(self, key_id: str, pem: bytes) -> None:
        self._published[key_id] = pem

    def unpublish(self, key_id: str) -> None:
        self._published.pop(key_id, None)

    def fetches(self, key_id: str) -> int:
        """How many GETs arrived for exactly this keyId path."""
        with self._lock:
            return self._fetches[key_id]

    @property
    def total_fetches(self) -> int:
        with self._lock:
            return sum(self._fetches.values())

    def stop(self) -> None:
        self._stopping.set()
        super().stop()

    def _count(self, path: str) -> None:
        with self._lock:
            self._fetches[path] += 1

    def _closing(self, call: Call, match: re.Match) -> Reply:
        # One connection per fetch: no keep-alive socket outlives stop(), and connections == fetches.
        reply = self._answer(call, match)
        reply.headers = {**(reply.headers or {}), "Connection": "close"}
        return reply

    def _answer(self, call: Call, match: re.Match) -> Reply:
        path = match.group(1)
        self._count(path)
        mode = self.mode
        if mode == "ok":
            pem = self._published.get(path)
            if pem is None:
                return Reply(404, b"not found", delay=self.latency)
            return Reply(200, pem, {"Content-Type": "application/x-pem-file"}, delay=self.latency)
        if mode == "404":
            return Reply(404, b"not found", delay=self.latency)
        if mode == "500":
            return Reply(500, b"internal error", delay=self.latency)
        if mode == "redirect":
            return Reply(302, b"", {"Location": self.redirect_to + path.lstrip("/")}, delay=self.latency)
        if mode == "huge":
            # A valid PEM first: if the size cap were missing, the key would load and the test would see it.
            body = self._published.get(path, b"") + b"A" * self.huge_bytes
            return Reply(200, body, delay=self.latency)
        if mode == "stall":
            return Reply(200, self._published.get(path, b""), delay=max(self.latency, self.stall_seconds))
        if mode == "garbage":
            return Reply(200, GARBAGE_PEM, delay=self.latency)
        if mode == "expired":
            return Reply(200, self._expired_certificate(), delay=self.latency)
        raise AssertionError(f"unknown KeyServer mode {mode!r}; choose from {MODES}")

    def _expired_certificate(self) -> bytes:
        if self._expired_pem is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self._expired_pem = certificate_pem(
                key,
                not_before=dt.datetime(2000, 1, 1, tzinfo=dt.timezone.utc),
                not_after=dt.datetime(2000, 1, 31, tzinfo=dt.timezone.utc),
            )
        return self._expired_pem

    def _install_drip_handler(self) -> None:
        """Wrap the LoopbackServer handler for the modes that need to control the socket writes."""
        outer = self
        base = self._server.RequestHandlerClass

        class DripHandler(base):
            def _drip(self) -> None:
                path = self.path.split("?", 1)[0]
                outer._count(path)
                body = outer._published.get(path, b"") or b"x" * 4096
                try:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.flush()
                    for index in range(len(body)):
                        if outer._stopping.wait(outer.drip_interval):
                            return
                        self.wfile.write(body[index : index + 1])
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    self.close_connection = True

            def _unsized(self) -> None:
                path = self.path.split("?", 1)[0]
                outer._count(path)
                self.close_connection = True
                try:
                    self.send_response(200)
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(outer._published.get(path, b""))
                    block = b"A" * 65536
                    for _ in range(outer.huge_bytes // len(block) + 1):
                        if outer._stopping.is_set():
                            return
                        self.wfile.write(block)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_GET(self) -> None:
                if outer.mode == "slow":
                    self._drip()
                elif outer.mode == "huge_unsized":
                    self._unsized()
                else:
                    base.do_GET(self)

        self._server.RequestHandlerClass = DripHandler

