"""The production store on Redis: one hash per installation, atomic Lua merges, bounded timeouts."""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import redis
from redis.cluster import RedisCluster
from redis.crc import key_slot

from smartapp.errors import StoreUnavailable, VersionConflict
from smartapp.store.codec import (
    KEYCHECK_ID, KEYCHECK_KIND, KEYCHECK_VALUE, check_installed_app_id,
    check_marker, decode_installation, decode_link, encode_fields, encode_link, rotate_secrets,
)
from smartapp.store.cipher import TokenCipher
from smartapp.store.claims import LinkAttempt, ReplayState, SharedKey
from smartapp.store import redis_lua as lua
from smartapp.store.lease import poll_for_lock
from smartapp.store.redis_clients import (
    CONNECT_TIMEOUT, RETRIES, SOCKET_TIMEOUT, RedisClient, UndetectedRedis, deployment_kind, describe_client,
    make_redis_client, primary_clients, readiness_keys, script_runner,
)
from smartapp.store.redis_errors import unavailable_detail
from smartapp.store.slot_tags import tag_for_slot
from smartapp.store.redis_scripts import ReplicasBehind
from smartapp.store.installation import SECRET_FIELDS, Installation

__all__ = ["RedisStore", "make_redis_client"]

# The longest one call can take before the client gives up (both attempts, connect and answer,
# plus backoff), with a margin. A frozen Redis still runs the commands queued in its socket buffers
# once it resumes; every write script refuses to act later than this after the call started, so a
# request answered 503 cannot take effect afterwards (a late replay claim would swallow the
# legitimate retry).
STALE_AFTER_SECONDS = (RETRIES + 1) * (CONNECT_TIMEOUT + SOCKET_TIMEOUT) + 0.2 + 0.3

# Errors that mean "not reachable now" (503, retry later), as opposed to a bug or a corrupt key.
_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    redis.exceptions.ConnectionError,   # includes refused, auth failure, pool exhausted, LOADING
    redis.exceptions.TimeoutError,
    redis.exceptions.ReadOnlyError,     # a demoted master after failover
    redis.exceptions.OutOfMemoryError,  # maxmemory reached under noeviction
    redis.exceptions.ClusterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterError,      # e.g. a slot redirected in a loop while it migrates
    redis.exceptions.AskError,          # MOVED/ASK left over: the slot moves while the call runs
    redis.exceptions.RedisClusterException,  # no node answers, or a slot no primary serves
    ReplicasBehind,                     # SMARTAPP_REDIS_WAIT_REPLICAS not confirmed in time
    OSError,
)
_UNAVAILABLE_REPLIES = ("NOREPLICAS", "MASTERDOWN", "MISCONF", "BUSY", "LOADING", "READONLY", "OOM",
                        "CLUSTERDOWN", "TRYAGAIN", "NOAUTH", "WRONGPASS", "NOPERM",
                        "UNBLOCKED")  # a master turned replica under a blocked WAIT

# Long enough for the client's one retry (see STALE_AFTER_SECONDS), short enough to keep nothing around.
RECEIPT_TTL_SECONDS = 10

# After a failed attempt to find out what REDIS_URL is (single server or cluster), calls answer 503
# at once for this long before the next attempt, so an unreachable Redis costs no more than before.
DETECT_RETRY_SECONDS = 1.0


class _UnavailableAs503:
    """The one place that turns "Redis cannot answer now" into StoreUnavailable.

    A class rather than a generator context manager: it wraps every store call, and one shared instance
    costs no generator per use.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, traceback: Any) -> bool:
        if isinstance(error, _UNAVAILABLE_ERRORS):
            raise StoreUnavailable(detail=unavailable_detail(error)) from None
        if isinstance(error, redis.exceptions.ResponseError):
            code = str(error).split(" ", 1)[0]
            if code.upper() in _UNAVAILABLE_REPLIES:
                raise StoreUnavailable(detail=f"redis: {code}") from None
        return False  # anything else (or nothing) passes through unchanged


_unavailable_as_503 = _UnavailableAs503()


class _ServerClock:
    """Tracks Redis' clock relative to ours (every script reply carries it) to date script deadlines."""

    def __init__(self) -> None:
        self.offset_ms = 0.0  # server minus local; corrected by the first reply

    def deadline(self, started: float) -> int:
        return int(started * 1000 + self.offset_ms + STALE_AFTER_SECONDS * 1000)

    def observe(self, server_ms: int, sent: float, received: float) -> None:
        if received - sent < 0.25:  # a slow round trip says little about the offset
            self.offset_ms = server_ms - (sent + received) * 500


class RedisStore:
    """Store on Redis; every key of an installation carries its id in a hash tag (Cluster-safe)."""

    name = "redis"

    def __init__(self, client: RedisClient, cipher: TokenCipher, *, prefix: str = "smartapp",
                 clock: Callable[[], float] = time.time, wait_replicas: int = 0) -> None:
        self.cipher = cipher
        self.prefix = prefix
        self.clock = clock
        self.wait_replicas = wait_replicas
        self._server_clock = _ServerClock()
        self._use(client)
        # Not known yet whether a plain URL is one server or a cluster: settled before the next use.
        self._undetected = client if isinstance(client, UndetectedRedis) else None
        self._detect_after = time.monotonic() + DETECT_RETRY_SECONDS
        self._detect_lock = threading.Lock()
        self._update = client.register_script(lua.UPDATE)
        self._take = client.register_script(lua.TAKE)
        self._claim = client.register_script(lua.CLAIM)
        self._consume = client.register_script(lua.CONSUME)
        self._attempt = client.register_script(lua.ATTEMPT)
        self._shared_key = client.register_script(lua.SHARED_KEY)
        self._release_lock = client.register_script(lua.RELEASE_LOCK)
        self._rotate = client.register_script(lua.ROTATE)

    def _use(self, client: RedisClient) -> None:
        self._client = client
        self._cluster = isinstance(client, RedisCluster)
        self._runner = script_runner(client, wait_replicas=self.wait_replicas)

    @property
    def client(self) -> RedisClient:
        if self._undetected is not None:
            self._detect()
        return self._client

    @property
    def _scripts(self) -> Any:
        if self._undetected is not None:
            self._detect()
        return self._runner

    def _detect(self) -> None:
        """Ask again what REDIS_URL is; until that succeeds every call answers 503 with the reason."""
        with self._detect_lock:  # one thread asks; the others find the answer, or the wait, after it
            self._detect_locked()

    def _detect_locked(self) -> None:
        undetected = self._undetected
        if undetected is None:
            return
        if time.monotonic() < self._detect_after:
            raise StoreUnavailable(detail=undetected.reason)
        self._detect_after = time.monotonic() + DETECT_RETRY_SECONDS
        try:
            client = make_redis_client(undetected.url, undetected.options)
        except ValueError as error:  # e.g. a database number on a cluster: a configuration error
            raise StoreUnavailable(detail=f"redis: {error}") from None
        if isinstance(client, UndetectedRedis):
            undetected.reason = client.reason
            client.close()
            raise StoreUnavailable(detail=client.reason)
        old_runner = self._runner
        self._use(client)
        self._undetected = None
        old_runner.close()
        undetected.close()

    # --- keys ---------------------------------------------------------------------------------

    def installation_key(self, installed_app_id: str) -> str:
        return f"{self.prefix}:installation:{{{check_installed_app_id(installed_app_id)}}}"

    def link_key(self, installed_app_id: str) -> str:
        return f"{self.prefix}:link:{{{check_installed_app_id(installed_app_id)}}}"

    def link_receipt_key(self, installed_app_id: str) -> str:
        return f"{self.prefix}:link-receipt:{{{check_installed_app_id(installed_app_id)}}}"

    def link_attempts_key(self, installed_app_id: str) -> str:
        return f"{self.prefix}:link-attempts:{{{check_installed_app_id(installed_app_id)}}}"

    def lock_key(self, installed_app_id: str) -> str:
        return f"{self.prefix}:lock:{{{check_installed_app_id(installed_app_id)}}}"

    def replay_key(self, marker: str, installed_app_id: str | None = None) -> str:
        if installed_app_id is not None and self._cluster:
            # The installation's slot, under a tag that does not name it (UNINSTALL leaves no key naming it).
            slot = key_slot(check_installed_app_id(installed_app_id).encode())
            return f"{self.prefix}:replay:{{{tag_for_slot(slot)}}}:{check_marker(marker)}"
        return f"{self.prefix}:replay:{check_marker(marker)}"

    def shared_key_key(self, key_id: str) -> str:
        # One hash tag for the entries and the budget: the script touches both, in one slot on Cluster.
        return f"{self.prefix}:keys:{{fetch}}:{hashlib.sha256(key_id.encode()).hexdigest()}"

    @property
    def key_budget_key(self) -> str:
        return f"{self.prefix}:keys:{{fetch}}:budget"

    @property
    def keycheck_key(self) -> str:
        return f"{self.prefix}:keycheck:{{keycheck}}"

    @property
    def legacy_keycheck_key(self) -> str:
        """Where versions before the hash-tagged name kept the key check; moved on the first start."""
        return f"{self.prefix}:keycheck"

    # --- TokenStore ---------------------------------------------------------------------------

    def get(self, installed_app_id: str) -> Installation | None:
        key = self.installation_key(installed_app_id)
        with _unavailable_as_503:
            raw = self.client.hgetall(key)
        if not raw:
            return None
        values: dict[str, Any] = {}
        for name_bytes, value_bytes in raw.items():
            name = name_bytes.decode("utf-8", "replace")
            values[name] = value_bytes.decode("ascii", "replace") if name in SECRET_FIELDS else _json(value_bytes)
        created_at, updated_at = values.pop("created_at", None), values.pop("updated_at", None)
        return decode_installation(self.cipher, installed_app_id, values, version=int(raw.get(b"version", b"0")),
                                   created_at=created_at, updated_at=updated_at)

    def update(self, installed_app_id: str, fields: Mapping[str, Any], *,
               expected_version: int | None = None) -> int:
        key = self.installation_key(installed_app_id)
        return self._write(key, encode_fields(self.cipher, installed_app_id, fields),
                           expected_version=expected_version)

    def _write(self, key: str, stored: Mapping[str, Any], *, expected_version: int | None) -> int:
        to_set: list[str] = []
        to_delete: list[str] = []
        for name, value in stored.items():
            if value is None:
                to_delete.append(name)
            else:
                to_set += [name, value if name in SECRET_FIELDS else json.dumps(value, separators=(",", ":"),
                                                                               allow_nan=False)]
        args = ["" if expected_version is None else str(int(expected_version)), secrets.token_hex(8),
                repr(float(self.clock())), str(len(to_set) // 2), *to_set, *to_delete]
        status, _, version = self._run(self._update, [key], args)
        if status == 0:
            raise VersionConflict(detail=f"expected version {expected_version}, stored {version}")
        return int(version)

    def delete(self, installed_app_id: str) -> None:
        # All the keys share the hash tag, so this one DEL is a single-slot command on Cluster too.
        keys = [self.installation_key(installed_app_id), self.link_key(installed_app_id),
                self.link_receipt_key(installed_app_id), self.link_attempts_key(installed_app_id),
                self.lock_key(installed_app_id)]
        with _unavailable_as_503:
            self._scripts.command(keys, "DEL", *keys)

    def installed_app_ids(self) -> Iterator[str]:
        head = f"{self.prefix}:installation:"
        pattern = _glob_escape(head) + "*"
        seen: set[str] = set()  # SCAN may return a key more than once
        with _unavailable_as_503:
            primaries = primary_clients(self.client)
        for primary in primaries:  # a cluster keeps each key on one primary: every one is scanned
            cursor = 0
            while True:
                with _unavailable_as_503:
                    cursor, keys = primary.scan(cursor=cursor, match=pattern, count=500)
                for key in keys:
                    tail = key.decode("utf-8", "replace")[len(head):]
                    if tail.startswith("{") and tail.endswith("}") and tail not in seen:
                        seen.add(tail)
                        yield tail[1:-1]
                if cursor == 0:
                    break

    def ping(self) -> None:
        """Ready means writable: a short-lived write on every primary (confirmed by replicas when so set).

        A replica, a demoted master, a cluster that is down or a full Redis all refuse it.
        """
        with _unavailable_as_503:
            for key in readiness_keys(self.client, f"{self.prefix}:ready"):
                self._scripts.command([key], "SET", key, "1", "PX", 10_000)

    # --- LinkStore ----------------------------------------------------------------------------

    def issue(self, installed_app_id: str, data: Mapping[str, Any], *, ttl_seconds: float) -> None:
        token = encode_link(self.cipher, installed_app_id, data)
        key, attempts = self.link_key(installed_app_id), self.link_attempts_key(installed_app_id)
        with _unavailable_as_503:
            # A new link starts with no attempts. One key per command: while a cluster slot migrates, a
            # command on keys split between the two nodes is refused (TRYAGAIN).
            self._scripts.command([attempts], "DEL", attempts)
            self._scripts.command([key], "SET", key, token, "PX", _milliseconds(ttl_seconds))

    def consume(self, installed_app_id: str) -> dict | None:
        keys = [self.link_key(installed_app_id), self.link_receipt_key(installed_app_id),
                self.link_attempts_key(installed_app_id)]
        reply = self._run(self._consume, keys, [secrets.token_hex(8), str(_milliseconds(RECEIPT_TTL_SECONDS))])
        if reply[0] != 1:
            return None
        return decode_link(self.cipher, installed_app_id, reply[2])

    def attempt(self, installed_app_id: str, code_digest: str, *, max_attempts: int) -> LinkAttempt:
        keys = [self.link_key(installed_app_id), self.link_attempts_key(installed_app_id)]
        reply = self._run(self._attempt, keys, [check_marker(code_digest), secrets.token_hex(8), str(max_attempts)])
        if reply[0] != 1:
            return LinkAttempt(None, lua.ATTEMPT_REFUSALS[reply[0]])
        link = decode_link(self.cipher, installed_app_id, reply[2])
        return LinkAttempt(link) if link is not None else LinkAttempt(None, "oauth_link_not_pending")

    def pending(self, installed_app_id: str) -> dict | None:
        with _unavailable_as_503:
            token = self.client.get(self.link_key(installed_app_id))
        return None if token is None else decode_link(self.cipher, installed_app_id, token)

    # --- ReplayGuard --------------------------------------------------------------------------

    def claim(self, marker: str, *, owner: str, lease_seconds: float,
              installed_app_id: str | None = None) -> ReplayState:
        key, lease = self.replay_key(marker, installed_app_id), "p:" + owner
        reply = self._run(self._claim, [key], [owner, str(_milliseconds(lease_seconds))],
                          unconfirmed=lambda: self._undo_take(key, lease))
        return lua.CLAIM_STATES[reply[0]]

    def complete(self, marker: str, *, ttl_seconds: float, installed_app_id: str | None = None) -> None:
        # Sent without waiting for the reply (read with the connection's next call): the request is answered
        # 200 whatever it is, and until the write lands the lease still refuses an identical request. Done is
        # true whenever it lands, so it needs no deadline guard.
        key = self.replay_key(marker, installed_app_id)
        with _unavailable_as_503:
            self._scripts.send([key], "SET", key, "d", "PX", _milliseconds(ttl_seconds))

    def release_marker(self, marker: str, *, owner: str, installed_app_id: str | None = None) -> None:
        with _unavailable_as_503:  # compare-and-delete: a retry after a lost reply is harmless
            self._scripts.run(self._release_lock, [self.replay_key(marker, installed_app_id)], ["p:" + owner])

    # --- KeyShare -----------------------------------------------------------------------------

    def shared_key(self, key_id: str, *, burst: int, refill_per_second: float) -> SharedKey:
        reply = self._run(self._shared_key, [self.shared_key_key(key_id), self.key_budget_key],
                          [str(int(burst)), repr(float(refill_per_second) / 1000)])
        if reply[0] == 1:
            return SharedKey(reply[2].decode("utf-8", "replace"))
        return SharedKey(None, may_fetch=reply[0] == 2)

    def share_key(self, key_id: str, value: str, *, ttl_seconds: float) -> None:
        key = self.shared_key_key(key_id)
        with _unavailable_as_503:
            self._scripts.command([key], "SET", key, value, "PX", _milliseconds(ttl_seconds))

    # --- RefreshLock --------------------------------------------------------------------------

    def acquire(self, installed_app_id: str, *, ttl_seconds: float, wait_seconds: float) -> str | None:
        key = self.lock_key(installed_app_id)
        lease = str(_milliseconds(ttl_seconds))
        return poll_for_lock(lambda owner: self._run(self._take, [key], [owner, lease],
                                                     unconfirmed=lambda: self._undo_take(key, owner))[0] == 1,
                             wait_seconds=wait_seconds)

    def release_lock(self, installed_app_id: str, owner: str) -> None:
        with _unavailable_as_503:  # compare-and-delete: a retry after a lost reply is harmless
            self._scripts.run(self._release_lock, [self.lock_key(installed_app_id)], [owner])

    # --- keys and lifecycle -------------------------------------------------------------------

    def verify_keys(self) -> None:
        key = self.keycheck_key
        with _unavailable_as_503:
            token = self.client.get(key)
            if token is None:
                legacy = self.client.get(self.legacy_keycheck_key)
                if legacy is not None:
                    self.cipher.decrypt(KEYCHECK_ID, KEYCHECK_KIND, legacy)  # the keys must read it first
                    self._scripts.command([key], "SET", key, legacy, "NX")
                    self.client.delete(self.legacy_keycheck_key)
                    return
                # First start against this Redis: leave a record only these keys can read.
                self._scripts.command([key], "SET", key,
                                      self.cipher.encrypt(KEYCHECK_ID, KEYCHECK_KIND, KEYCHECK_VALUE), "NX")
                return
        self.cipher.decrypt(KEYCHECK_ID, KEYCHECK_KIND, token)

    def rotate_keys(self) -> int:
        self.verify_keys()  # keys that cannot read this store must not touch it
        changed = 0
        names = sorted(SECRET_FIELDS)
        for installed_app_id in list(self.installed_app_ids()):
            key = self.installation_key(installed_app_id)
            with _unavailable_as_503:
                tokens = self.client.hmget(key, names)
            stored = {name: token.decode("ascii", "replace") for name, token in zip(names, tokens) if token}
            rotated = rotate_secrets(self.cipher, installed_app_id, stored)
            if rotated:
                args = [part for name, new in rotated.items() for part in (name, stored[name], new)]
                # A field changed meanwhile was written under the first key anyway: nothing to redo.
                if self._run(self._rotate, [key], args)[2]:
                    changed += 1
        key = self.keycheck_key
        with _unavailable_as_503:
            token = self.client.get(key)
            if token is not None:
                self._scripts.command([key], "SET", key, self.cipher.rotate(token))
        return changed

    def describe(self) -> str:
        return describe_client(self._client)

    @property
    def deployment(self) -> str:
        """single, cluster or sentinel (single until a plain URL's server has answered)."""
        return deployment_kind(self._client)

    def close(self) -> None:
        self._runner.close()
        self._client.close()

    # --- plumbing -----------------------------------------------------------------------------

    def _run(self, script: Any, keys: list[str], args: list[str], *,
             unconfirmed: Callable[[], None] | None = None) -> list:
        """Runs a deadline-guarded script; if our idea of Redis' clock was off, learns and tries once more.

        `unconfirmed` undoes a write the primary took but the replicas did not confirm (WAIT), for a
        write that must not outlive its 503 (a replay claim would swallow the legitimate retry).
        """
        for attempt in range(2):
            started = time.time()
            with _unavailable_as_503:
                try:
                    reply = self._scripts.run(script, keys, [str(self._server_clock.deadline(started)), *args])
                except ReplicasBehind:
                    if unconfirmed is not None:
                        unconfirmed()
                    raise
            self._server_clock.observe(int(reply[1]), started, time.time())
            if reply[0] != lua.STALE:
                return reply
        raise StoreUnavailable(detail="redis: clock offset could not be settled")

    def _undo_take(self, key: str, owner: str) -> None:
        """Best effort: the primary may be gone, and then so is what it took."""
        try:
            self._release_lock(keys=[key], args=[owner], client=self.client)
        except (*_UNAVAILABLE_ERRORS, redis.exceptions.ResponseError, StoreUnavailable):
            pass


def _json(value: bytes) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return None


def _glob_escape(text: str) -> str:
    return "".join("\\" + char if char in "*?[]\\" else char for char in text)


def _milliseconds(seconds: float) -> int:
    return max(1, int(round(float(seconds) * 1000)))
