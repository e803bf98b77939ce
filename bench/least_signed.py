"""Ceiling: the least a webhook that verifies and remembers signatures must do, as bare WSGI."""

# Per request: the Date window, the body's SHA-256 against Digest, one RSA-2048 verify with a key loaded
# at start, a plain json.loads and two Redis calls for the replay cache (`SET NX PX`, an in-progress
# lease, then `SET PX` once the work is done), through the libraries the service uses (cryptography,
# redis-py). No strict header parsing, no key lookup, no logging: the bench measures it to show how close
# to the floor a Python webhook doing these things can get.

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import re
import time
from pathlib import Path
from typing import Any, Callable, Iterable

import redis
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from smartapp.errors import SignatureError
from smartapp.signature import parse_http_date

_KEY = serialization.load_pem_public_key(Path(os.environ["BENCH_PUBLIC_KEY"]).read_bytes())
_REDIS = redis.Redis.from_url(os.environ["REDIS_URL"], socket_timeout=1)  # connects lazily, after the fork
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


def app(environ: dict, start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    signature = _verified(environ, body)
    status, answer = "401 Unauthorized", b'{"error":"unauthorized"}'
    if signature is not None:
        json.loads(body)
        marker = "replay:" + hashlib.sha256(signature).hexdigest()
        if _REDIS.set(marker, b"p", nx=True, px=_LEASE_MS):
            _REDIS.set(marker, b"d", px=_REPLAY_TTL_MS)
        status, answer = "200 OK", b"{}"
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(answer)))])
    return [answer]
