"""The token store's interfaces and the factory that picks Redis or SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Protocol

from smartapp.store.cipher import CorruptRecord, TokenCipher
from smartapp.store.claims import LinkAttempt, ReplayState, SharedKey
from smartapp.store.installation import SECRET_FIELDS, Installation
from smartapp.store.redis_target import RedisOptions


class TokenStore(Protocol):
    def get(self, installed_app_id: str) -> Installation | None: ...

    def update(self, installed_app_id: str, fields: Mapping[str, Any], *,
               expected_version: int | None = None) -> int:
        """Field-level merge/upsert (None clears a field); VersionConflict if expected_version is stale."""
        ...

    def delete(self, installed_app_id: str) -> None: ...

    def installed_app_ids(self) -> Iterator[str]: ...

    def ping(self) -> None: ...


class LinkStore(Protocol):
    """One pending third-party account link per installation (OAuth state + PKCE verifier)."""

    def issue(self, installed_app_id: str, data: Mapping[str, Any], *, ttl_seconds: float) -> None: ...

    def consume(self, installed_app_id: str) -> dict | None:
        """End the pending link (after a successful exchange), returning it once."""
        ...

    def attempt(self, installed_app_id: str, code_digest: str, *, max_attempts: int) -> LinkAttempt:
        """Record an exchange of this code on the pending link, without ending it: each code is let through
        once, and at most `max_attempts` codes per link (past that the link is ended)."""
        ...

    def pending(self, installed_app_id: str) -> dict | None:
        """The unexpired pending link without consuming it (a re-rendered page reuses its verifier)."""
        ...


class ReplayGuard(Protocol):
    """Two phases, so a request is remembered as done only once its effects are stored.

    `installed_app_id`, when the request names one, keeps its marker beside that installation's keys
    (one Redis Cluster slot), so a request never depends on a node that holds nothing of its installation.
    """

    def claim(self, marker: str, *, owner: str, lease_seconds: float,
              installed_app_id: str | None = None) -> ReplayState:
        """Take the in-progress lease on `marker` for `owner` (it expires if the owner dies), or say who has it."""
        ...

    def complete(self, marker: str, *, ttl_seconds: float, installed_app_id: str | None = None) -> None:
        """The request's effects are stored: remember the marker as done for `ttl_seconds`."""
        ...

    def release_marker(self, marker: str, *, owner: str, installed_app_id: str | None = None) -> None:
        """Undo `owner`'s claim (compare-and-delete) so a legitimate retry is processed."""
        ...


class KeyShare(Protocol):
    """Signature keys fetched by one worker serve every worker and host; fetches share one budget."""

    def shared_key(self, key_id: str, *, burst: int, refill_per_second: float) -> SharedKey:
        """One round trip: the text stored for `key_id`, else a fetch taken from the deployment's token bucket."""
        ...

    def share_key(self, key_id: str, value: str, *, ttl_seconds: float) -> None:
        """Store what a fetch of `key_id` found (a public key or a refusal) for the other workers."""
        ...


class RefreshLock(Protocol):
    """Cross-process, cross-host per-installation lease that expires if its holder dies."""

    def acquire(self, installed_app_id: str, *, ttl_seconds: float, wait_seconds: float) -> str | None: ...

    def release_lock(self, installed_app_id: str, owner: str) -> None: ...  # compare-and-delete


class Store(TokenStore, LinkStore, ReplayGuard, KeyShare, RefreshLock, Protocol):
    name: str  # "redis" or "sqlite"

    def describe(self) -> str:
        """For the startup banner; never contains a password."""
        ...

    def verify_keys(self) -> None:
        """CorruptRecord if the keys cannot read what this store already holds (startup/doctor check)."""
        ...

    def rotate_keys(self) -> int:
        """Re-encrypts every stored secret under the first key; returns how many installations changed."""
        ...

    def close(self) -> None: ...


def open_store(*, redis_url: str | None, sqlite_path: str, cipher: TokenCipher,
               clock: Callable[[], float] = time.time, redis_options: RedisOptions | None = None) -> Store:
    """Redis when a URL is configured, the embedded SQLite file otherwise; never one in place of the other."""
    if redis_url is not None:
        if not redis_url.strip():
            # An empty REDIS_URL is a mistake, not a request for SQLite: say so instead of guessing.
            raise ValueError("REDIS_URL is set but empty")
        from smartapp.store.redis_store import RedisStore, make_redis_client

        options = redis_options or RedisOptions()
        return RedisStore(make_redis_client(redis_url, options), cipher, clock=clock,
                          wait_replicas=options.wait_replicas)
    from smartapp.store.sqlite_store import SqliteStore

    return SqliteStore(sqlite_path, cipher, clock=clock)


__all__ = [
    "SECRET_FIELDS", "Installation", "TokenStore", "LinkStore", "ReplayGuard", "RefreshLock", "Store",
    "open_store", "TokenCipher", "CorruptRecord", "RedisOptions", "LinkAttempt", "ReplayState", "KeyShare",
    "SharedKey",
]
