"""Verify SmartThings' draft-cavage HTTP signatures (rsa-sha256) without doing any I/O itself."""

from __future__ import annotations

import binascii
import calendar
import functools
import hashlib
import hmac
import re
import time
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from smartapp.errors import SignatureError

# The only algorithm SmartThings uses. Pinning it is what defeats algorithm
# confusion (an HMAC keyed with the public certificate text, node-http-signature issue #40).
ALGORITHM = "rsa-sha256"
REQUIRED_HEADERS = frozenset({"(request-target)", "digest", "date"})
MIN_KEY_BITS = 2048

# Real headers are ~500 characters; the caps keep every regex and decode below linear-time worries
# and stop a multi-kilobyte header from costing more than a cheap rejection.
_MAX_AUTHORIZATION_CHARS = 4096
_MAX_SIGNATURE_CHARS = 1024  # base64 of a 4096-bit signature is 684 characters
_MAX_SIGNED_HEADERS = 16

_SCHEME = "Signature "
_HEADER_NAME_RE = re.compile(r"\(request-target\)|[a-z0-9][a-z0-9-]*")

# RFC 1123 only, with the `UTC` zone SmartThings actually sends or the standard `GMT`.
# RFC 850, asctime, numeric offsets and two joined Date lines all fail to match.
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec"), start=1)}
_DATE_RE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r" (\d{4}) (\d{2}):(\d{2}):(\d{2}) (?:UTC|GMT)"
)

_PKCS1 = padding.PKCS1v15()
_SHA256 = hashes.SHA256()


@dataclass(frozen=True)
class SignatureParams:
    key_id: str
    signature: bytes  # decoded base64
    headers: tuple[str, ...]  # lower-cased signed header names, in order
    algorithm: str


@dataclass(frozen=True)
class VerifiedRequest:
    key_id: str
    replay_marker: str  # hex SHA-256 of the raw signature bytes, what the replay cache stores
    signed_at: float  # the Date header as epoch seconds


def parse_authorization(value: str | None) -> SignatureParams:
    """Parse `Signature keyId="…",signature="…",headers="…",algorithm="…"` strictly.

    The parameters are `name="value"` pairs joined by commas with no spaces; names are ASCII letters and
    values printable ASCII without quotes, so neither quote injection nor control characters (CR/LF/NUL)
    can reach a later step.
    """
    if not value:
        raise SignatureError("missing_authorization")
    if len(value) > _MAX_AUTHORIZATION_CHARS or not value.startswith(_SCHEME):
        raise SignatureError("malformed_authorization")
    rest = value[len(_SCHEME):]
    # isprintable() on ASCII text: 0x20-0x7e, no control characters.
    if not (rest.isascii() and rest.isprintable()):
        raise SignatureError("malformed_authorization")
    params: dict[str, str] = {}
    start, end = 0, len(rest)
    while True:
        opening = rest.find('="', start)
        closing = rest.find('"', opening + 2) if opening >= 0 else -1
        name = rest[start:opening]
        # The name's letters also keep `=` and quotes out of it; a second name is ambiguity an attacker could
        # exploit (two keyIds, two signatures).
        if closing < 0 or not name.isalpha() or name in params:
            raise SignatureError("malformed_authorization")
        params[name] = rest[opening + 2:closing]
        start = closing + 2
        if closing + 1 == end:
            break
        if rest[closing + 1] != ",":
            raise SignatureError("malformed_authorization")
    key_id = params.get("keyId")
    signature = params.get("signature")
    algorithm = params.get("algorithm")
    if not key_id or not signature or not algorithm or len(signature) > _MAX_SIGNATURE_CHARS:
        raise SignatureError("malformed_authorization")
    # draft-cavage: a missing `headers` means "date" alone, which the header-set check then refuses.
    names = _signed_header_names(params.get("headers", "date"))
    if names is None:
        raise SignatureError("malformed_authorization")
    return SignatureParams(
        key_id=key_id,
        signature=_strict_base64(signature, "malformed_authorization"),
        headers=names,
        algorithm=algorithm,
    )


@functools.lru_cache(maxsize=64)  # every request of a deployment names the same few header lists
def _signed_header_names(text: str) -> tuple[str, ...] | None:
    """The lower-cased signed header names in order, or None when the list is malformed."""
    names = text.lower().split(" ")
    if (
        len(names) > _MAX_SIGNED_HEADERS
        or len(set(names)) != len(names)
        or not all(_HEADER_NAME_RE.fullmatch(name) for name in names)
    ):
        return None
    return tuple(names)


def _strict_base64(text: str, reason: str) -> bytes:
    """Padded standard base64 only: whole 4-character groups, no other characters, `=` only as the last one or two."""
    # strict_mode alone still takes `====` after a whole group.
    if len(text) % 4 or "=" in text[:-2]:
        raise SignatureError(reason)
    try:
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):  # ValueError: text outside ASCII
        raise SignatureError(reason) from None


def parse_http_date(value: str) -> float:
    """An RFC 1123 `Date` value (UTC/GMT zone only) as epoch seconds."""
    seconds = _http_date_seconds(value)
    if seconds is None:
        raise SignatureError("malformed_date")
    return seconds


@functools.lru_cache(maxsize=64)  # concurrent requests are signed within the same few seconds
def _http_date_seconds(value: str) -> float | None:
    match = _DATE_RE.fullmatch(value)
    if match is None:
        return None
    day, month, year, hour, minute, second = match.groups()
    day_i, month_i, year_i = int(day), _MONTHS[month], int(year)
    hour_i, minute_i, second_i = int(hour), int(minute), int(second)
    # timegm would silently roll "31 Feb" or "25:00:00" over; reject them instead.
    if (
        not 1 <= day_i <= calendar.monthrange(year_i, month_i)[1]
        or hour_i > 23
        or minute_i > 59
        or second_i > 59
    ):
        return None
    return float(calendar.timegm((year_i, month_i, day_i, hour_i, minute_i, second_i)))


def check_digest(value: str, body: bytes) -> None:
    """Require exactly one SHA-256 entry in `Digest` and that it equals SHA-256 of the raw body."""
    expected: str | None = None
    for entry in value.split(","):
        algorithm, sep, encoded = entry.strip().partition("=")
        if not sep or not algorithm:
            raise SignatureError("malformed_digest")
        # SmartThings sends `SHA256=`, RFC 3230 and the legacy fixtures `SHA-256=`.
        if algorithm.upper().replace("-", "") != "SHA256":
            continue
        if expected is not None:
            # Two SHA-256 values (or two joined Digest lines) are ambiguous.
            raise SignatureError("malformed_digest")
        expected = encoded
    if expected is None:
        raise SignatureError("unsupported_digest")
    claimed = _strict_base64(expected, "malformed_digest")
    if len(claimed) != 32:
        raise SignatureError("malformed_digest")
    # None of the SmartThings SDKs do this step; without it a body can be swapped under a valid signature.
    if not hmac.compare_digest(claimed, hashlib.sha256(body).digest()):
        raise SignatureError("digest_mismatch")


def signing_string(
    *, method: str, public_path: str, headers: Mapping[str, str], signed: Sequence[str]
) -> bytes:
    """The exact bytes SmartThings signed: one `name: value` line per signed header, `\\n`-joined."""
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {public_path}")
            continue
        value = headers.get(name)
        if value is None:
            raise SignatureError("headers_incomplete")
        lines.append(f"{name}: {value}")
    try:
        # WSGI hands header values over as latin-1-decoded text; encoding back restores the wire bytes.
        return "\n".join(lines).encode("latin-1")
    except UnicodeEncodeError:
        raise SignatureError("bad_signature") from None


# Classes found to be RSA public keys: an ABC isinstance check on every request costs more than the lookup.
_RSA_KEY_CLASSES: set[type] = set()


def verify_rsa(key: RSAPublicKey, signature: bytes, message: bytes) -> None:
    """RSASSA-PKCS1-v1_5 with SHA-256 over `message`, with an RSA key of at least 2048 bits."""
    if type(key) not in _RSA_KEY_CLASSES:
        if not isinstance(key, RSAPublicKey):
            raise SignatureError("unknown_key")
        _RSA_KEY_CLASSES.add(type(key))
    if key.key_size < MIN_KEY_BITS:
        raise SignatureError("unknown_key")
    try:
        key.verify(signature, message, _PKCS1, _SHA256)
    except InvalidSignature:
        raise SignatureError("bad_signature") from None


def strip_query(path: str) -> str:
    """The request-target path SmartThings signs: the registered target path without its query."""
    return path.split("?", 1)[0].split("#", 1)[0] or "/"


class Verifier:
    """Runs the checks cheapest-first; the key is resolved only after every header-level check passed."""

    def __init__(
        self,
        *,
        resolve_key: Callable[[str], RSAPublicKey],
        public_path: str = "/",
        max_skew_seconds: int = 300,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._resolve_key = resolve_key
        # NodeSDK issue #255: SmartThings signs the target path without the query string.
        self._public_path = strip_query(public_path)
        self._max_skew = float(max_skew_seconds)
        self._clock = clock

    @property
    def public_path(self) -> str:
        return self._public_path

    def verify(self, *, method: str, headers: Mapping[str, str], body: bytes) -> VerifiedRequest:
        """Return who signed the request, or raise SignatureError (KeyUnavailable passes through)."""
        params = parse_authorization(headers.get("authorization"))
        if params.algorithm.lower() != ALGORITHM:
            raise SignatureError("unsupported_algorithm")
        if not REQUIRED_HEADERS.issubset(params.headers):
            raise SignatureError("headers_incomplete")

        date = headers.get("date")
        if not date:
            raise SignatureError("missing_date")
        signed_at = parse_http_date(date)
        # Total seconds, both directions: a timedelta's `.seconds` would let whole days through.
        if abs(self._clock() - signed_at) > self._max_skew:
            raise SignatureError("date_out_of_window")

        digest = headers.get("digest")
        if not digest:
            raise SignatureError("missing_digest")
        check_digest(digest, body)

        message = signing_string(
            method=method, public_path=self._public_path, headers=headers, signed=params.headers
        )
        # Only now may the key be looked up: forged requests must not cost a key-server fetch.
        key = self._resolve_key(params.key_id)
        verify_rsa(key, params.signature, message)
        return VerifiedRequest(
            key_id=params.key_id,
            replay_marker=hashlib.sha256(params.signature).hexdigest(),
            signed_at=signed_at,
        )
