"""Map a signature keyId to the RSA public key that must verify it: the only I/O in verification."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import requests
import urllib3
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from smartapp.errors import KeyUnavailable, SignatureError
from smartapp.fetch_budget import FetchBudget
from smartapp.rejection_log import RejectionLogLimit
from smartapp.signature import MIN_KEY_BITS
from smartapp.store import KeyShare

logger = logging.getLogger(__name__)

# Legacy APP_RSA apps: keyId "/SmartThings/<OpenSSH MD5 fingerprint>" means the pasted key (PROTOCOL.md §3.8).
LEGACY_PREFIX = "/SmartThings/"
# ST_PADLOCK ids are "/pl/<region>/<certificate serial as dash-separated hex>". Anything looser lets the
# attacker-supplied keyId steer the URL: "@evil/x" becomes userinfo, ".evil/x" a different host.
_KEY_ID_RE = re.compile(r"/pl/[a-z0-9]{1,32}/[0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){0,31}")
_KEY_SERVER_RE = re.compile(r"https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?")
_PEM_RE = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)

# Past the fetch deadline a waiting caller gives up even if the fetching thread is still stuck
# (e.g. in DNS, which requests' connect timeout does not cover).
_FETCH_GRACE_SECONDS = 0.5
_READ_CHUNK = 4096
_THROTTLE_LOG_INTERVAL = 10.0
# What a fetch found, as workers share it through the store.
_SHARED_PEM = "pem:"
_SHARED_REFUSAL = "refused:"


@dataclass(frozen=True)
class _KeyMaterial:
    key: RSAPublicKey
    not_before: float | None  # certificate validity, epoch seconds; None for a bare public key
    not_after: float | None


@dataclass(frozen=True)
class _CachedKey:
    key: RSAPublicKey
    fresh_until: float  # min(fetch time + ttl, notAfter); after it a refetch is attempted
    stale_until: float  # while the key server is unreachable the key may be served until here


@dataclass(frozen=True)
class _Refusal:
    reason: str
    until: float


class _Flight:
    """One in-progress fetch that concurrent callers for the same keyId wait on instead of fetching."""

    __slots__ = ("done", "key", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.key: RSAPublicKey | None = None
        self.error: tuple[type[SignatureError] | type[KeyUnavailable], str] | None = None

    def outcome(self) -> RSAPublicKey:
        if self.key is not None:
            return self.key
        # A fresh exception per waiter: one instance raised in many threads would share a traceback.
        error_type, reason = self.error or (KeyUnavailable, "key_fetch_failed")
        raise error_type(reason)


def _shown(key_id: str) -> str:
    """A keyId as it may appear in a log line: escaped and truncated, since it is attacker text."""
    return repr(key_id[:100])


def _parse_pem(text: str | bytes) -> _KeyMaterial:
    if isinstance(text, bytes):
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise ValueError("the key text is not ASCII PEM") from None
    # Environment variables often carry a PEM with literal "\n" sequences instead of line breaks.
    text = text.replace("\\n", "\n")
    match = _PEM_RE.search(text)
    if match is None:
        raise ValueError("no PEM block found (expected -----BEGIN PUBLIC KEY----- or CERTIFICATE)")
    label = match.group(1)
    # Re-wrap at 64 characters: a PEM pasted onto one line is otherwise refused (PROTOCOL.md §3.8).
    body = "".join(match.group(2).split())
    wrapped = "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    pem = f"-----BEGIN {label}-----\n{wrapped}\n-----END {label}-----\n".encode("ascii")
    not_before = not_after = None
    try:
        if label == "CERTIFICATE":
            certificate = x509.load_pem_x509_certificate(pem)
            key = certificate.public_key()
            not_before = certificate.not_valid_before_utc.timestamp()
            not_after = certificate.not_valid_after_utc.timestamp()
        elif label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            key = serialization.load_pem_public_key(pem)
        elif "PRIVATE" in label:
            raise ValueError("this is a private key; configure the public key SmartThings showed")
        else:
            raise ValueError(f"unsupported PEM block {label!r}; expected a public key or certificate")
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise ValueError(f"the {label} PEM block could not be loaded: {type(exc).__name__}") from None
    except ValueError as exc:
        raise ValueError(f"the {label} PEM block could not be loaded: {exc}") from None
    if not isinstance(key, RSAPublicKey):
        raise ValueError(f"the key is {type(key).__name__}, but SmartThings signs with RSA")
    if key.key_size < MIN_KEY_BITS:
        raise ValueError(f"the RSA key has {key.key_size} bits; at least {MIN_KEY_BITS} are required")
    return _KeyMaterial(key=key, not_before=not_before, not_after=not_after)


def load_public_key(text: str | bytes) -> RSAPublicKey:
    """An RSA (>= 2048 bit) key from a PEM public key (SPKI or PKCS#1) or certificate; ValueError if not."""
    return _parse_pem(text).key


def openssh_md5_fingerprint(key: RSAPublicKey) -> str:
    """MD5 of the ssh-rsa wire blob as colon hex: the fingerprint in legacy `/SmartThings/…` keyIds."""
    line = key.public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH)
    digest = hashlib.md5(base64.b64decode(line.split()[1]), usedforsecurity=False).hexdigest()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


class KeyResolver:
    """keyId → key: the configured key for legacy ids, else a bounded, single-flight, cached fetch."""

    def __init__(
        self,
        *,
        key_server: str = "https://key.smartthings.com",
        configured_key: RSAPublicKey | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        ttl_seconds: float = 86400,
        negative_ttl_seconds: float = 300,
        max_entries: int = 256,
        connect_timeout: float = 1.0,
        read_timeout: float = 1.0,
        max_bytes: int = 16384,
        fetch_budget: int = 20,
        fetch_refill_per_second: float = 1.0,
        share: KeyShare | None = None,
    ) -> None:
        key_server = key_server.rstrip("/")
        if not _KEY_SERVER_RE.fullmatch(key_server):
            raise ValueError(f"key server must be an http(s) scheme and host only, got {key_server!r}")
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._key_server = key_server
        self._configured_key = configured_key
        self._configured_fingerprint = (
            openssh_md5_fingerprint(configured_key) if configured_key is not None else None
        )
        self._session = session or requests.Session()
        self._clock = clock
        self._ttl = float(ttl_seconds)
        self._negative_ttl = float(negative_ttl_seconds)
        self._max_entries = max_entries
        self._timeout = (connect_timeout, read_timeout)
        self._fetch_seconds = connect_timeout + read_timeout
        self._max_bytes = max_bytes
        # `share` (the store) makes the budget the deployment's and shares fetched keys between workers.
        self._fetches = FetchBudget(share=share, burst=fetch_budget, refill_per_second=fetch_refill_per_second,
                                    clock=clock)

        self._lock = threading.Lock()
        self._keys: OrderedDict[str, _CachedKey] = OrderedDict()
        self._refusals: OrderedDict[str, _Refusal] = OrderedDict()
        self._flights: dict[str, _Flight] = {}
        # Rejections decided without a fetch can come once per request: their lines are capped, and a
        # throttled fetch (a flood of made-up ids) is worth one line per interval at most.
        self._rejection_log = RejectionLogLimit()
        self._throttle_log = RejectionLogLimit(lines_per_reason=1, interval_seconds=_THROTTLE_LOG_INTERVAL)

    def resolve(self, key_id: str) -> RSAPublicKey:
        """The key for `key_id`; SignatureError if it is not a key SmartThings vouches for,
        KeyUnavailable if the key server cannot be asked right now."""
        if key_id.startswith(LEGACY_PREFIX):
            return self._resolve_configured(key_id)
        if not _KEY_ID_RE.fullmatch(key_id):
            self._log_rejected("invalid_key_id", key_id)
            raise SignatureError("invalid_key_id")

        now = self._clock()
        with self._lock:
            cached = self._keys.get(key_id)
            if cached is not None:
                if now < cached.fresh_until:
                    self._keys.move_to_end(key_id)
                    return cached.key
                if now >= cached.stale_until:
                    del self._keys[key_id]
                    cached = None
            refusal = self._refusals.get(key_id)
            if refusal is not None:
                if now < refusal.until:
                    raise SignatureError(refusal.reason)
                del self._refusals[key_id]
            flight = self._flights.get(key_id)
            # Nothing to serve and no fetch allowed (a flood of made-up ids): no single flight to set up.
            throttled = flight is None and cached is None and not self._fetches.worth_asking()
            leader = flight is None and not throttled
            if leader:
                flight = self._flights[key_id] = _Flight()

        if throttled:
            return self._stale_or_unavailable(key_id, None, "key_fetch_throttled")
        if not leader:
            # Single flight: 50 concurrent first requests for a new keyId cost one fetch.
            if not flight.done.wait(self._fetch_seconds + 2 * _FETCH_GRACE_SECONDS):
                raise KeyUnavailable("key_fetch_timeout")
            return flight.outcome()
        try:
            flight.key = self._refresh(key_id, cached)
            return flight.key
        except (SignatureError, KeyUnavailable) as exc:
            flight.error = (type(exc), exc.reason)
            raise
        finally:
            with self._lock:
                self._flights.pop(key_id, None)
            flight.done.set()

    def _resolve_configured(self, key_id: str) -> RSAPublicKey:
        fingerprint = key_id[len(LEGACY_PREFIX) :]
        if self._configured_key is None or fingerprint != self._configured_fingerprint:
            self._log_rejected("unknown_key", key_id)
            raise SignatureError("unknown_key")
        return self._configured_key

    def _log_rejected(self, reason: str, key_id: str) -> None:
        if self._rejection_log.admit(reason):
            logger.warning("key_rejected reason=%s key_id=%s", reason, _shown(key_id))

    def _refresh(self, key_id: str, cached: _CachedKey | None) -> RSAPublicKey:
        decision = self._fetches.ask(key_id)
        if decision.value is not None:
            return self._adopt(key_id, decision.value)
        if not decision.may_fetch:
            return self._stale_or_unavailable(key_id, cached, "key_fetch_throttled")
        try:
            status, body = self._fetch(key_id)
        except KeyUnavailable as exc:
            return self._stale_or_unavailable(key_id, cached, exc.reason)
        if status in (404, 410):
            # The key server is the authority: an id it does not know (any more) is refused.
            raise self._refuse_for_all(key_id, "unknown_key", detail=f"status {status}")
        if status != 200:
            return self._stale_or_unavailable(key_id, cached, f"key_server_status_{status}")
        try:
            material = _parse_pem(body)
        except ValueError as exc:
            raise self._refuse_for_all(key_id, "unknown_key", detail=str(exc)) from None
        key, fresh_for = self._accept(key_id, material, for_all=True)
        # ASCII: _parse_pem refused anything else.
        self._fetches.tell(key_id, _SHARED_PEM + body.decode("ascii"), ttl_seconds=fresh_for)
        logger.info("key_fetched key_id=%s", _shown(key_id))
        return key

    def _adopt(self, key_id: str, value: str) -> RSAPublicKey:
        """What another worker stored for `key_id`: its key (checked again here) or its refusal."""
        if value.startswith(_SHARED_REFUSAL):
            raise self._refuse(key_id, value[len(_SHARED_REFUSAL):][:64] or "unknown_key", detail="shared")
        if value.startswith(_SHARED_PEM):
            try:
                material = _parse_pem(value[len(_SHARED_PEM):])
            except ValueError:
                pass
            else:
                return self._accept(key_id, material, for_all=False)[0]
        # Only this service writes these entries; no fetch was granted for this request, so retry later.
        logger.warning("key_share_unreadable key_id=%s", _shown(key_id))
        raise KeyUnavailable("key_share_unreadable")

    def _accept(self, key_id: str, material: _KeyMaterial, *, for_all: bool) -> tuple[RSAPublicKey, float]:
        """Cache a key that is valid now; returns it and how long it stays fresh. Refuses one that is not."""
        refuse = self._refuse_for_all if for_all else self._refuse
        now = self._clock()
        if material.not_before is not None and now < material.not_before:
            # Not valid *yet*: retry once it becomes valid rather than after the full negative TTL.
            raise refuse(key_id, "expired_key", until=material.not_before, detail="not yet valid")
        if material.not_after is not None and now >= material.not_after:
            raise refuse(key_id, "expired_key", detail="expired")
        fresh_until = now + self._ttl
        if material.not_after is not None:
            fresh_until = min(fresh_until, material.not_after)
            stale_until = material.not_after
        else:
            # A bare public key has no notAfter; allow one extra TTL of stale service.
            stale_until = now + 2 * self._ttl
        with self._lock:
            self._keys[key_id] = _CachedKey(material.key, fresh_until, stale_until)
            self._keys.move_to_end(key_id)
            while len(self._keys) > self._max_entries:
                self._keys.popitem(last=False)
        return material.key, fresh_until - now

    def _refuse_for_all(self, key_id: str, reason: str, *, until: float | None = None,
                        detail: str = "") -> SignatureError:
        """Refuse `key_id` here and tell the other workers, so none of them fetches it again soon."""
        error = self._refuse(key_id, reason, until=until, detail=detail)
        refused_for = min(self._negative_ttl, until - self._clock()) if until is not None else self._negative_ttl
        self._fetches.tell(key_id, _SHARED_REFUSAL + reason, ttl_seconds=refused_for)
        return error

    def _refuse(
        self, key_id: str, reason: str, *, until: float | None = None, detail: str = ""
    ) -> SignatureError:
        """Negative-cache `key_id` (bounded) and return the error for the caller to raise."""
        now = self._clock()
        negative_until = now + self._negative_ttl
        if until is not None:
            negative_until = min(negative_until, until)
        with self._lock:
            self._keys.pop(key_id, None)
            self._refusals[key_id] = _Refusal(reason, negative_until)
            self._refusals.move_to_end(key_id)
            while len(self._refusals) > self._max_entries:
                self._refusals.popitem(last=False)
        logger.warning("key_rejected reason=%s key_id=%s detail=%s", reason, _shown(key_id), detail)
        return SignatureError(reason)

    def _stale_or_unavailable(self, key_id: str, cached: _CachedKey | None, reason: str) -> RSAPublicKey:
        now = self._clock()
        if cached is not None and now < cached.stale_until:
            # Serve the last good key while the key server is sick, and wait a negative TTL before
            # asking again so every request does not pay a fetch timeout.
            retry_at = min(now + self._negative_ttl, cached.stale_until)
            with self._lock:
                self._keys[key_id] = _CachedKey(cached.key, retry_at, cached.stale_until)
            logger.warning("key_served_stale reason=%s key_id=%s", reason, _shown(key_id))
            return cached.key
        if reason != "key_fetch_throttled" or self._throttle_log.admit(reason):
            logger.warning("key_unavailable reason=%s key_id=%s", reason, _shown(key_id))
        raise KeyUnavailable(reason)

    def _fetch(self, key_id: str) -> tuple[int, bytes]:
        """GET the key server in a helper thread so DNS, a stall or a drip cannot outlast the deadline."""
        url = self._key_server + key_id
        deadline = time.monotonic() + self._fetch_seconds
        result: list[tuple[int, bytes]] = []
        failure: list[KeyUnavailable] = []
        done = threading.Event()

        def run() -> None:
            try:
                result.append(self._get(url, deadline))
            except KeyUnavailable as exc:
                failure.append(exc)
            except Exception as exc:  # anything else is still "could not ask", never a 500
                failure.append(KeyUnavailable("key_fetch_failed", detail=type(exc).__name__))
            finally:
                done.set()

        threading.Thread(target=run, name="smartapp-key-fetch", daemon=True).start()
        if not done.wait(self._fetch_seconds + _FETCH_GRACE_SECONDS):
            raise KeyUnavailable("key_fetch_timeout")
        if failure:
            raise failure[0]
        return result[0]

    def _get(self, url: str, deadline: float) -> tuple[int, bytes]:
        try:
            response = self._session.get(
                url,
                timeout=self._timeout,
                allow_redirects=False,  # a redirect could point anywhere; the host is fixed
                stream=True,
                headers={"Accept": "application/x-pem-file, */*", "Accept-Encoding": "identity"},
            )
        except requests.Timeout as exc:
            raise KeyUnavailable("key_fetch_timeout", detail=type(exc).__name__) from None
        except requests.RequestException as exc:
            raise KeyUnavailable("key_server_unreachable", detail=type(exc).__name__) from None
        with response:
            if response.status_code != 200:
                return response.status_code, b""
            if response.headers.get("Content-Encoding", "identity").lower() != "identity":
                raise KeyUnavailable("key_response_encoded")
            length = response.headers.get("Content-Length", "")
            if length.isdigit() and int(length) > self._max_bytes:
                raise KeyUnavailable("key_response_too_large")
            chunks: list[bytes] = []
            total = 0
            while True:
                # read1 returns whatever one socket read gives, so a 1 byte/s drip still reaches
                # this deadline check instead of blocking inside a fixed-size read.
                if time.monotonic() > deadline:
                    raise KeyUnavailable("key_fetch_timeout")
                try:
                    chunk = response.raw.read1(_READ_CHUNK, decode_content=False)
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as exc:
                    raise KeyUnavailable("key_fetch_failed", detail=type(exc).__name__) from None
                if not chunk:
                    break
                total += len(chunk)
                if total > self._max_bytes:
                    raise KeyUnavailable("key_response_too_large")
                chunks.append(chunk)
        return 200, b"".join(chunks)
