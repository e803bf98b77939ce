"""The embedded store: one SQLite file in WAL mode, durable across kill -9 and safe across processes."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from smartapp.errors import StoreUnavailable, VersionConflict
from smartapp.store.codec import (
    KEYCHECK_ID, KEYCHECK_KIND, KEYCHECK_VALUE, check_installed_app_id, check_marker,
    decode_installation, decode_link, encode_fields, encode_link, rotate_secrets,
)
from smartapp.store.cipher import TokenCipher
from smartapp.store.claims import LinkAttempt, ReplayState, SharedKey
from smartapp.store.lease import poll_for_lock
from smartapp.store.installation import Installation

BUSY_TIMEOUT_MS = 2000
PURGE_EVERY_SECONDS = 60.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS installations (
    installed_app_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,               -- JSON object, secret fields hold Fernet tokens
    version INTEGER NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
    installed_app_id TEXT PRIMARY KEY,
    data TEXT NOT NULL,               -- Fernet token (holds the PKCE verifier)
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS link_attempts (
    installed_app_id TEXT NOT NULL,
    code_digest TEXT NOT NULL,        -- a digest, never the code
    PRIMARY KEY (installed_app_id, code_digest)
);
CREATE TABLE IF NOT EXISTS replay (
    marker TEXT PRIMARY KEY,
    expires_at REAL NOT NULL,
    owner TEXT                        -- holder of the in-progress lease, NULL once done
);
CREATE INDEX IF NOT EXISTS replay_expires_at ON replay (expires_at);
CREATE TABLE IF NOT EXISTS shared_keys (
    key_digest TEXT PRIMARY KEY,      -- SHA-256 of the keyId
    value TEXT NOT NULL,              -- a public key (PEM) or a refusal, as the key resolver wrote it
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS key_fetch_budget (
    name TEXT PRIMARY KEY,
    tokens REAL NOT NULL,
    at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS locks (
    installed_app_id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
"""

# Connections inherited through fork() must neither be used nor closed in the child (closing one
# could checkpoint or unlock on the parent's behalf); they are parked here for the process lifetime.
_INHERITED: list[sqlite3.Connection] = []


@contextlib.contextmanager
def _unavailable_as_503() -> Iterator[None]:
    """"database is locked" past the busy timeout, a full disk or an unreadable file: retry later."""
    try:
        yield
    except sqlite3.OperationalError as error:
        raise StoreUnavailable(detail=f"sqlite: {str(error)[:80]}") from None


class SqliteStore:
    """Store in one SQLite file; one connection per thread and per process."""

    name = "sqlite"

    def __init__(self, path: str, cipher: TokenCipher, *, clock: Callable[[], float] = time.time,
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = os.path.abspath(path)
        self.cipher = cipher
        self.clock = clock
        self.busy_timeout_ms = busy_timeout_ms
        self._pid = os.getpid()
        self._connections: list[sqlite3.Connection] = []  # every connection this process opened
        self._idle: deque[sqlite3.Connection] = deque()   # append/pop are atomic: no lock needed
        self._connections_lock = threading.Lock()
        self._next_purge = 0.0
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        try:
            # Create the file private: it and its -wal/-shm companions (which copy its mode) hold tokens.
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        with self._transaction() as connection:
            # One statement at a time: executescript() would commit the surrounding transaction.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
            # Files made before two-phase replay markers: their rows are all done markers (owner NULL).
            if "owner" not in {row[1] for row in connection.execute("PRAGMA table_info(replay)")}:
                connection.execute("ALTER TABLE replay ADD COLUMN owner TEXT")

    # --- connections and transactions ---------------------------------------------------------

    @contextlib.contextmanager
    def _borrowed(self) -> Iterator[sqlite3.Connection]:
        """An idle connection of this process (a new one when none is idle), given back afterwards.

        A pool rather than one connection per thread: under gevent each client connection is served by
        a greenlet of its own, and "per thread" would then mean a new SQLite connection per client,
        never closed.
        """
        if os.getpid() != self._pid:
            _INHERITED.extend(self._connections)
            self._connections, self._idle, self._pid = [], deque(), os.getpid()
            self._connections_lock = threading.Lock()
        try:
            connection = self._idle.pop()
        except IndexError:
            connection = self._open()
        try:
            yield connection
        finally:
            self._idle.append(connection)

    def _open(self) -> sqlite3.Connection:
        with _unavailable_as_503():
            connection = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000,
                                         isolation_level=None, check_same_thread=False)
            connection.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            self._enable_wal(connection)
            # FULL: every commit is fsynced to the WAL, so an acknowledged token survives power loss too.
            connection.execute("PRAGMA synchronous = FULL")
        with self._connections_lock:
            self._connections.append(connection)
        return connection

    def _enable_wal(self, connection: sqlite3.Connection) -> None:
        """Switch a new file to WAL (the mode persists in the file).

        Switching needs the file to itself, and SQLite answers "database is locked" at once, without
        waiting for the busy timeout, when another process opens the new file at the same moment:
        gunicorn workers booting together on a fresh deployment. So retry until the busy timeout.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        while True:
            try:
                if connection.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() == "wal":
                    return
            except sqlite3.OperationalError:
                pass
            if time.monotonic() >= deadline:
                raise sqlite3.OperationalError("could not switch the database to WAL mode")
            time.sleep(0.02)

    @contextlib.contextmanager
    def _transaction(self, *, durable: bool = True) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE takes the write lock up front: read-check-write is atomic across processes.

        `durable=False` skips the fsync at commit, for data that may be lost to a power cut (not a crash).
        """
        with self._borrowed() as connection, _unavailable_as_503():
            if not durable:
                connection.execute("PRAGMA synchronous = NORMAL")
            try:
                connection.execute("BEGIN IMMEDIATE")
                try:
                    yield connection
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
            finally:
                if not durable:
                    connection.execute("PRAGMA synchronous = FULL")

    # --- TokenStore ---------------------------------------------------------------------------

    def get(self, installed_app_id: str) -> Installation | None:
        check_installed_app_id(installed_app_id)
        with self._borrowed() as connection, _unavailable_as_503():
            row = connection.execute(
                "SELECT data, version, created_at, updated_at FROM installations WHERE installed_app_id = ?",
                (installed_app_id,),
            ).fetchone()
        if row is None:
            return None
        return decode_installation(self.cipher, installed_app_id, json.loads(row[0]),
                                   version=row[1], created_at=row[2], updated_at=row[3])

    def update(self, installed_app_id: str, fields: Mapping[str, Any], *,
               expected_version: int | None = None) -> int:
        check_installed_app_id(installed_app_id)
        return self._write(installed_app_id, encode_fields(self.cipher, installed_app_id, fields),
                           expected_version=expected_version)

    def _write(self, installed_app_id: str, stored: Mapping[str, Any], *, expected_version: int | None) -> int:
        now = float(self.clock())
        with self._transaction() as connection:
            row = connection.execute(
                "SELECT data, version FROM installations WHERE installed_app_id = ?", (installed_app_id,),
            ).fetchone()
            current = row[1] if row else 0
            if expected_version is not None and expected_version != current:
                raise VersionConflict(detail=f"expected version {expected_version}, stored {current}")
            data = json.loads(row[0]) if row else {}
            for name, value in stored.items():
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = value
            encoded = json.dumps(data, separators=(",", ":"), allow_nan=False)
            if row:
                connection.execute(
                    "UPDATE installations SET data = ?, version = ?, updated_at = ? WHERE installed_app_id = ?",
                    (encoded, current + 1, now, installed_app_id),
                )
            else:
                connection.execute(
                    "INSERT INTO installations (installed_app_id, data, version, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?)", (installed_app_id, encoded, current + 1, now, now),
                )
        return current + 1

    def delete(self, installed_app_id: str) -> None:
        check_installed_app_id(installed_app_id)
        with self._transaction() as connection:
            for table in ("installations", "links", "link_attempts", "locks"):
                connection.execute(f"DELETE FROM {table} WHERE installed_app_id = ?", (installed_app_id,))

    def installed_app_ids(self) -> Iterator[str]:
        # Read everything first so no read transaction stays open while the caller works.
        with self._borrowed() as connection, _unavailable_as_503():
            rows = connection.execute(
                "SELECT installed_app_id FROM installations ORDER BY installed_app_id").fetchall()
        for (installed_app_id,) in rows:
            yield installed_app_id

    def ping(self) -> None:
        with self._borrowed() as connection, _unavailable_as_503():
            connection.execute("SELECT count(*) FROM meta").fetchone()

    # --- LinkStore ----------------------------------------------------------------------------

    def issue(self, installed_app_id: str, data: Mapping[str, Any], *, ttl_seconds: float) -> None:
        check_installed_app_id(installed_app_id)
        token = encode_link(self.cipher, installed_app_id, data)
        now = float(self.clock())
        with self._transaction() as connection:
            connection.execute("DELETE FROM links WHERE expires_at <= ?", (now,))
            connection.execute("DELETE FROM link_attempts WHERE installed_app_id = ? OR installed_app_id NOT IN "
                               "(SELECT installed_app_id FROM links)", (installed_app_id,))
            connection.execute("INSERT OR REPLACE INTO links (installed_app_id, data, expires_at) VALUES (?, ?, ?)",
                               (installed_app_id, token, now + float(ttl_seconds)))

    def consume(self, installed_app_id: str) -> dict | None:
        check_installed_app_id(installed_app_id)
        with self._transaction() as connection:
            row = connection.execute("SELECT data, expires_at FROM links WHERE installed_app_id = ?",
                                     (installed_app_id,)).fetchone()
            if row is not None:
                connection.execute("DELETE FROM links WHERE installed_app_id = ?", (installed_app_id,))
                connection.execute("DELETE FROM link_attempts WHERE installed_app_id = ?", (installed_app_id,))
        if row is None or row[1] <= self.clock():
            return None
        return decode_link(self.cipher, installed_app_id, row[0])

    def attempt(self, installed_app_id: str, code_digest: str, *, max_attempts: int) -> LinkAttempt:
        check_installed_app_id(installed_app_id)
        check_marker(code_digest)
        with self._transaction() as connection:
            row = connection.execute("SELECT data FROM links WHERE installed_app_id = ? AND expires_at > ?",
                                     (installed_app_id, float(self.clock()))).fetchone()
            if row is None:
                return LinkAttempt(None, "oauth_link_not_pending")
            tried = connection.execute("SELECT 1 FROM link_attempts WHERE installed_app_id = ? AND code_digest = ?",
                                       (installed_app_id, code_digest)).fetchone()
            if tried is not None:
                return LinkAttempt(None, "oauth_code_reused")
            (attempts,) = connection.execute("SELECT count(*) FROM link_attempts WHERE installed_app_id = ?",
                                             (installed_app_id,)).fetchone()
            if attempts >= max_attempts:
                connection.execute("DELETE FROM links WHERE installed_app_id = ?", (installed_app_id,))
                connection.execute("DELETE FROM link_attempts WHERE installed_app_id = ?", (installed_app_id,))
                return LinkAttempt(None, "oauth_link_attempts_exhausted")
            connection.execute("INSERT INTO link_attempts (installed_app_id, code_digest) VALUES (?, ?)",
                               (installed_app_id, code_digest))
        link = decode_link(self.cipher, installed_app_id, row[0])
        return LinkAttempt(link) if link is not None else LinkAttempt(None, "oauth_link_not_pending")

    def pending(self, installed_app_id: str) -> dict | None:
        check_installed_app_id(installed_app_id)
        with self._borrowed() as connection, _unavailable_as_503():
            row = connection.execute("SELECT data FROM links WHERE installed_app_id = ? AND expires_at > ?",
                                     (installed_app_id, float(self.clock()))).fetchone()
        return None if row is None else decode_link(self.cipher, installed_app_id, row[0])

    # --- ReplayGuard --------------------------------------------------------------------------

    def claim(self, marker: str, *, owner: str, lease_seconds: float,
              installed_app_id: str | None = None) -> ReplayState:
        check_marker(marker)
        now = float(self.clock())
        with self._transaction() as connection:
            if now >= self._next_purge:
                self._next_purge = now + PURGE_EVERY_SECONDS
                connection.execute("DELETE FROM replay WHERE expires_at <= ?", (now,))
            row = connection.execute("SELECT owner, expires_at FROM replay WHERE marker = ?", (marker,)).fetchone()
            if row is not None and row[1] > now:
                if row[0] is None:
                    return ReplayState.DONE
                return ReplayState.CLAIMED if row[0] == owner else ReplayState.IN_PROGRESS
            connection.execute("INSERT OR REPLACE INTO replay (marker, owner, expires_at) VALUES (?, ?, ?)",
                               (marker, owner, now + float(lease_seconds)))
            return ReplayState.CLAIMED

    def complete(self, marker: str, *, ttl_seconds: float, installed_app_id: str | None = None) -> None:
        check_marker(marker)
        now = float(self.clock())
        with self._transaction() as connection:
            connection.execute("INSERT OR REPLACE INTO replay (marker, owner, expires_at) VALUES (?, NULL, ?)",
                               (marker, now + float(ttl_seconds)))

    def release_marker(self, marker: str, *, owner: str, installed_app_id: str | None = None) -> None:
        check_marker(marker)
        with self._transaction() as connection:
            connection.execute("DELETE FROM replay WHERE marker = ? AND owner = ?", (marker, owner))

    # --- KeyShare -----------------------------------------------------------------------------

    def shared_key(self, key_id: str, *, burst: int, refill_per_second: float) -> SharedKey:
        digest = hashlib.sha256(key_id.encode()).hexdigest()
        now = float(self.clock())
        with self._borrowed() as connection, _unavailable_as_503():
            row = connection.execute("SELECT value FROM shared_keys WHERE key_digest = ? AND expires_at > ?",
                                     (digest, now)).fetchone()
        if row is not None:
            return SharedKey(row[0])
        # Not worth an fsync: losing the budget's state to a power cut only refills it.
        with self._transaction(durable=False) as connection:
            bucket = connection.execute("SELECT tokens, at FROM key_fetch_budget WHERE name = 'fetch'").fetchone()
            tokens, at = bucket if bucket is not None else (float(burst), now)
            if now > at:
                tokens, at = min(float(burst), tokens + (now - at) * refill_per_second), now
            may_fetch = tokens >= 1.0
            connection.execute("INSERT OR REPLACE INTO key_fetch_budget (name, tokens, at) VALUES ('fetch', ?, ?)",
                               (tokens - 1.0 if may_fetch else tokens, at))
        return SharedKey(None, may_fetch=may_fetch)

    def share_key(self, key_id: str, value: str, *, ttl_seconds: float) -> None:
        digest = hashlib.sha256(key_id.encode()).hexdigest()
        now = float(self.clock())
        with self._transaction(durable=False) as connection:
            connection.execute("DELETE FROM shared_keys WHERE expires_at <= ?", (now,))
            connection.execute("INSERT OR REPLACE INTO shared_keys (key_digest, value, expires_at) VALUES (?, ?, ?)",
                               (digest, value, now + float(ttl_seconds)))

    # --- RefreshLock --------------------------------------------------------------------------

    def acquire(self, installed_app_id: str, *, ttl_seconds: float, wait_seconds: float) -> str | None:
        check_installed_app_id(installed_app_id)

        def take(owner: str) -> bool:
            now = float(self.clock())
            with self._transaction() as connection:
                row = connection.execute("SELECT expires_at FROM locks WHERE installed_app_id = ?",
                                         (installed_app_id,)).fetchone()
                if row is not None and row[0] > now:
                    return False  # held; an expired lease belongs to a holder that died
                connection.execute(
                    "INSERT OR REPLACE INTO locks (installed_app_id, owner, expires_at) VALUES (?, ?, ?)",
                    (installed_app_id, owner, now + float(ttl_seconds)))
            return True

        return poll_for_lock(take, wait_seconds=wait_seconds)

    def release_lock(self, installed_app_id: str, owner: str) -> None:
        check_installed_app_id(installed_app_id)
        with self._transaction() as connection:
            connection.execute("DELETE FROM locks WHERE installed_app_id = ? AND owner = ?",
                               (installed_app_id, owner))

    # --- keys and lifecycle -------------------------------------------------------------------

    def verify_keys(self) -> None:
        with self._transaction() as connection:
            row = connection.execute("SELECT value FROM meta WHERE name = 'keycheck'").fetchone()
            if row is None:
                # First start on this file: leave a record only these keys can read.
                connection.execute("INSERT INTO meta (name, value) VALUES ('keycheck', ?)",
                                   (self.cipher.encrypt(KEYCHECK_ID, KEYCHECK_KIND, KEYCHECK_VALUE),))
                return
        self.cipher.decrypt(KEYCHECK_ID, KEYCHECK_KIND, row[0])

    def rotate_keys(self) -> int:
        self.verify_keys()  # keys that cannot read this store must not touch it
        changed = 0
        for installed_app_id in list(self.installed_app_ids()):
            with self._transaction() as connection:
                row = connection.execute("SELECT data FROM installations WHERE installed_app_id = ?",
                                         (installed_app_id,)).fetchone()
                if row is None:
                    continue
                data = json.loads(row[0])
                rotated = rotate_secrets(self.cipher, installed_app_id, data)
                data.update(rotated)
                if rotated:
                    # Same version: the tokens are unchanged, so a concurrent compare-and-set stays valid.
                    connection.execute("UPDATE installations SET data = ? WHERE installed_app_id = ?",
                                       (json.dumps(data, separators=(",", ":")), installed_app_id))
                    changed += 1
        with self._transaction() as connection:
            row = connection.execute("SELECT value FROM meta WHERE name = 'keycheck'").fetchone()
            if row is not None:
                connection.execute("UPDATE meta SET value = ? WHERE name = 'keycheck'", (self.cipher.rotate(row[0]),))
        return changed

    def describe(self) -> str:
        return f"sqlite {self.path} (WAL, synchronous=FULL)"

    def close(self) -> None:
        with self._connections_lock:
            connections, self._connections, self._idle = self._connections, [], deque()
        for connection in connections:
            with contextlib.suppress(sqlite3.Error):
                connection.close()
