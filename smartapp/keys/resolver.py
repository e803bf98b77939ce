"""keyId -> the RSA public key that must verify it: the pasted key for legacy ids, else cached fetches."""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from smartapp.errors import KeyUnavailable, SignatureError
from smartapp.keys.budget import FetchBudget
from smartapp.keys.fetch import FETCH_GRACE_SECONDS, KeyFetcher
from smartapp.keys.pem import KeyMaterial, openssh_md5_fingerprint, parse_pem
from smartapp.rejection_log import RejectionLogLimit
from smartapp.store import KeyShare

# The key subsystem's one logger name (the resolver, its fetches and its budget).
logger = logging.getLogger("smartapp.keys")

# Legacy APP_RSA apps: keyId "/SmartThings/<OpenSSH MD5 fingerprint>" means the pasted key.
LEGACY_PREFIX = "/SmartThings/"
# ST_PADLOCK ids are "/pl/<region>/<certificate serial as dash-separated hex>". Anything looser lets the
# attacker-supplied keyId steer the URL: "@evil/x" becomes userinfo, ".evil/x" a different host.
_KEY_ID_RE = re.compile(r"/pl/[a-z0-9]{1,32}/[0-9a-fA-F]{2}(?:-[0-9a-fA-F]{2}){0,31}")
_THROTTLE_LOG_INTERVAL = 10.0
# What a fetch found, as workers share it through the store.
_SHARED_PEM = "pem:"
_SHARED_REFUSAL = "refused:"


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


class KeyResolver:
    """keyId → key: the configured key for legacy ids, else a bounded, single-flight, cached fetch."""

    def __init__(
        self,
        *,
        key_server: str = "https://key.smartthings.com",
        configured_key: RSAPublicKey | None = None,
        clock: Callable[[], float] = time.time,
        share: KeyShare | None = None,
        # the caches
        ttl_seconds: float = 86400,
        negative_ttl_seconds: float = 300,
        max_entries: int = 256,
        # each fetch (KeyFetcher)
        session: requests.Session | None = None,
        connect_timeout: float = 1.0,
        read_timeout: float = 1.0,
        max_bytes: int = 16384,
        # how many fetches (FetchBudget)
        fetch_budget: int = 20,
        fetch_refill_per_second: float = 1.0,
    ) -> None:
        self._fetcher = KeyFetcher(key_server, session=session, connect_timeout=connect_timeout,
                                   read_timeout=read_timeout, max_bytes=max_bytes)
        if max_entries < 1:
            raise ValueError("max_entries must be at least 1")
        self._configured_key = configured_key
        self._configured_fingerprint = (
            openssh_md5_fingerprint(configured_key) if configured_key is not None else None
        )
        self._clock = clock
        self._ttl = float(ttl_seconds)
        self._negative_ttl = float(negative_ttl_seconds)
        self._max_entries = max_entries
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
        now = self._clock()
        # Every signed request comes here with one of a few keyIds: a fresh cached key (its id was checked
        # when it was cached) is served without the lock or the id's pattern. get() and move_to_end() are
        # each atomic; a key evicted between the two is still the right key to verify this request with.
        cached = self._keys.get(key_id)
        if cached is not None and now < cached.fresh_until:
            with contextlib.suppress(KeyError):
                self._keys.move_to_end(key_id)
            return cached.key
        if not _KEY_ID_RE.fullmatch(key_id):
            self._log_rejected("invalid_key_id", key_id)
            raise SignatureError("invalid_key_id")

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
            if not flight.done.wait(self._fetcher.seconds + 2 * FETCH_GRACE_SECONDS):
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
            status, body = self._fetcher.fetch(key_id)
        except KeyUnavailable as exc:
            return self._stale_or_unavailable(key_id, cached, exc.reason)
        if status in (404, 410):
            # The key server is the authority: an id it does not know (any more) is refused.
            raise self._refuse_for_all(key_id, "unknown_key", detail=f"status {status}")
        if status != 200:
            return self._stale_or_unavailable(key_id, cached, f"key_server_status_{status}")
        try:
            material = parse_pem(body)
        except ValueError as exc:
            raise self._refuse_for_all(key_id, "unknown_key", detail=str(exc)) from None
        key, fresh_for = self._accept(key_id, material, for_all=True)
        # ASCII: parse_pem refused anything else.
        self._fetches.tell(key_id, _SHARED_PEM + body.decode("ascii"), ttl_seconds=fresh_for)
        logger.info("key_fetched key_id=%s", _shown(key_id))
        return key

    def _adopt(self, key_id: str, value: str) -> RSAPublicKey:
        """What another worker stored for `key_id`: its key (checked again here) or its refusal."""
        if value.startswith(_SHARED_REFUSAL):
            raise self._refuse(key_id, value[len(_SHARED_REFUSAL):][:64] or "unknown_key", detail="shared")
        if value.startswith(_SHARED_PEM):
            try:
                material = parse_pem(value[len(_SHARED_PEM):])
            except ValueError:
                pass
            else:
                return self._accept(key_id, material, for_all=False)[0]
        # Only this service writes these entries; no fetch was granted for this request, so retry later.
        logger.warning("key_share_unreadable key_id=%s", _shown(key_id))
        raise KeyUnavailable("key_share_unreadable")

    def _accept(self, key_id: str, material: KeyMaterial, *, for_all: bool) -> tuple[RSAPublicKey, float]:
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
