"""Whether a signature key may be fetched now: one budget for the whole deployment, kept in the store."""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from smartapp.errors import StoreUnavailable
from smartapp.store import KeyShare, SharedKey

log = logging.getLogger(__name__)

# After the store failed to answer, this worker decides on its own for a while instead of paying a
# store timeout on every unknown keyId.
STORE_RETRY_SECONDS = 5.0


class FetchBudget:
    """A token bucket over key fetches: the deployment's, through the store, or this worker's when it is down.

    Asking the store also returns what another worker already stored for the keyId (its public key or
    its refusal), so a key fetched once serves every worker and host.
    """

    def __init__(self, *, share: KeyShare | None, burst: int, refill_per_second: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._share = share
        self._burst = burst
        self._refill = float(refill_per_second)
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens = float(burst)
        self._tokens_at = clock()
        self._store_down_until = 0.0  # time.monotonic()

    def worth_asking(self) -> bool:
        """Cheap and local: False only when nothing could be fetched now (no store to ask, no local token)."""
        if self._share is not None and time.monotonic() >= self._store_down_until:
            return True
        with self._lock:
            return self._refilled_tokens() >= 1.0

    def ask(self, key_id: str) -> SharedKey:
        """What the deployment stored for `key_id`, else whether a fetch was granted (one store round trip)."""
        if self._share is not None and time.monotonic() >= self._store_down_until:
            try:
                return self._share.shared_key(key_id, burst=self._burst, refill_per_second=self._refill)
            except StoreUnavailable:
                self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS
                log.warning("key_budget_local", extra={"reason": "store_unavailable",
                                                       "retrySeconds": STORE_RETRY_SECONDS})
        return SharedKey(None, may_fetch=self._take_local_token())

    def tell(self, key_id: str, value: str, *, ttl_seconds: float) -> None:
        """Share what a fetch found; best effort (every worker can still fetch for itself)."""
        if self._share is None or ttl_seconds <= 0 or time.monotonic() < self._store_down_until:
            return
        try:
            self._share.share_key(key_id, value, ttl_seconds=ttl_seconds)
        except StoreUnavailable:
            self._store_down_until = time.monotonic() + STORE_RETRY_SECONDS

    def _take_local_token(self) -> bool:
        with self._lock:
            if self._refilled_tokens() < 1.0:
                return False
            self._tokens -= 1.0
            return True

    def _refilled_tokens(self) -> float:
        """The fetches this worker's bucket allows now (the caller holds the lock)."""
        # Read under the lock and never behind the last refill: a time read before waiting for the
        # lock would move `_tokens_at` back, and the next caller would be credited that time again.
        now = max(self._clock(), self._tokens_at)
        self._tokens = min(float(self._burst), self._tokens + (now - self._tokens_at) * self._refill)
        self._tokens_at = now
        return self._tokens
