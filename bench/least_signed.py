"""Ceiling: the least a webhook that verifies and remembers signatures must do, as bare WSGI."""

# Per request: the Date window, the body's SHA-256 against Digest, one RSA-2048 verify with a key loaded
# at start, a plain json.loads and the replay cache's two writes: `SET NX PX` (an in-progress lease) as a
# round trip, then `SET PX` once the work is done, sent without waiting for its reply (read before the
# connection's next command). Redis is spoken to over bare sockets with hand-built RESP, one round trip per
# request on a socket of its own (the service pipelines the calls of a loop turn on one socket, and can cost
# Redis less than this). No strict header parsing, no key lookup, no logging: the bench measures it to show how
# close to the floor a Python webhook doing these things can get.

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Iterable

import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from smartapp.errors import SignatureError
from smartapp.signature import parse_http_date

_KEY = serialization.load_pem_public_key(Path(os.environ["BENCH_PUBLIC_KEY"]).read_bytes())
_REDIS_URL = redis.connection.parse_url(os.environ["REDIS_URL"])
_REDIS_ADDRESS = (_REDIS_URL["host"], int(_REDIS_URL["port"]))
_IDLE: deque[list] = deque()  # [socket, replies owed]; opened after the fork, one per concurrent request
_SIGNATURE = re.compile(r'signature="([A-Za-z0-9+/=]+)"')
_PKCS1, _SHA256 = padding.PKCS1v15(), hashes.SHA256()
_REPLAY_TTL_MS = 630_000
_LEASE_MS = 10_000
_MAX_SKEW_SECONDS = 300  # without the window, a replay cache with a finite TTL stops nothing


def _verified(environ: dict, body: bytes) -> bytes | None:
    """The raw signature when Digest matches the body and the signature verifies, else None."""
    match = _SIGNATURE.search(environ.get("HTTP_AUTHORIZATION", ""))
    digest, date = environ.get("HTTP_DIGEST", ""), environ.get("HTTP_DATE", "")
    if match is None or not digest.startswith("SHA256="):
        return None
    try:
        if abs(time.time() - parse_http_date(date)) > _MAX_SKEW_SECONDS:
            return None
        claimed = base64.b64decode(digest[7:], validate=True)
        signature = base64.b64decode(match.group(1), validate=True)
    except (SignatureError, binascii.Error):
        return None
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        return None
    message = f"(request-target): post /\ndigest: {digest}\ndate: {date}".encode("latin-1")
    try:
        _KEY.verify(signature, message, _PKCS1, _SHA256)
    except InvalidSignature:
        return None
    return signature


def _command(*parts: bytes) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(part), part) for part in parts)


def _replay_claim(marker: bytes) -> None:
    """The lease as a round trip, then "done" sent without a wait (its reply read with the next claim)."""
    connection = _IDLE.pop() if _IDLE else [socket.create_connection(_REDIS_ADDRESS, timeout=1), 0]
    sock, owed = connection
    sock.sendall(_command(b"SET", marker, b"p", b"NX", b"PX", b"%d" % _LEASE_MS))
    replies, received = owed + 1, b""
    while received.count(b"\r\n") < replies:  # +OK, or $-1 when the key exists: one line each
        received += sock.recv(4096)
    if not received.endswith(b"$-1\r\n"):
        sock.sendall(_command(b"SET", marker, b"d", b"PX", b"%d" % _REPLAY_TTL_MS))
        connection[1] = 1
    else:
        connection[1] = 0
    _IDLE.append(connection)


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    signature = _verified(environ, body)
    status, answer = "401 Unauthorized", b'{"error":"unauthorized"}'
    if signature is not None:
        json.loads(body)
        _replay_claim(b"replay:" + hashlib.sha256(signature).hexdigest().encode())
        status, answer = "200 OK", b"{}"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
