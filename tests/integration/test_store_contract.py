"""One contract for both stores: merge semantics, compare-and-set, links, replay, locks, secrets at rest."""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import redis
from cryptography.fernet import Fernet

from smartapp.errors import StoreUnavailable, VersionConflict
from smartapp.store import SECRET_FIELDS, Installation, LinkAttempt, ReplayState, Store, open_store
from smartapp.store.cipher import CorruptRecord, TokenCipher
from smartapp.store.redis_clients import primary_clients
from smartapp.store.redis_store import RedisStore, make_redis_client
from smartapp.store.sqlite_store import SqliteStore
from tests.support.clock import FakeClock

IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
OTHER = "0b1c2d3e-4f5a-4b6c-9d7e-8f9a0b1c2d3e"
CANARIES = {
    "auth_token": "canary-st-access-7d1f0c",
    "refresh_token": "canary-st-refresh-9e2a41",
    "provider_access_token": "canary-provider-access-33b8",
    "provider_refresh_token": "canary-provider-refresh-5c6d",
    "app_state": '{"canary": "app-state-8f4e"}',
}


@dataclass
class Backend:
    """A store plus raw access to what it keeps at rest, so tests can look behind the interface."""

    kind: str
    store: Store
    clock: FakeClock
    reopen: Callable[[TokenCipher], Store]       # another view of the same data (another worker)
    raw_secret: Callable[[str, str], str | None]
    put_raw_secret: Callable[[str, str, str], None]
    raw_bytes: Callable[[], bytes]               # everything the backend holds, as bytes
    leftovers: Callable[[str], list]             # anything still mentioning an installation id


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture
def cipher(key) -> TokenCipher:
    return TokenCipher([key])


def redis_backend(redis_url: str, data_dirs: list[str], cipher: TokenCipher, clock: FakeClock,
                  opened: list) -> Backend:
    """`data_dirs`: where the servers holding the data (the one server, each cluster primary) keep their files."""
    raw = make_redis_client(redis_url)  # one server, a cluster, or the Sentinel's master, like the store's
    opened.append(raw)
    primaries = primary_clients(raw)

    def reopen(other: TokenCipher) -> Store:
        store = RedisStore(make_redis_client(redis_url), other, clock=clock)
        opened.append(store)
        return store

    def raw_secret(iaid: str, name: str) -> str | None:
        value = raw.hget(f"smartapp:installation:{{{iaid}}}", name)
        return value.decode() if value is not None else None

    def put_raw_secret(iaid: str, name: str, token: str) -> None:
        raw.hset(f"smartapp:installation:{{{iaid}}}", name, token)

    def raw_bytes() -> bytes:
        chunks = []
        for primary in primaries:
            for key in primary.scan_iter(count=500):
                chunks.append(key)
                kind = primary.type(key)
                if kind == b"hash":
                    for name, value in primary.hgetall(key).items():
                        chunks += [name, value]
                elif kind == b"string":
                    chunks.append(primary.get(key))
            primary.save()  # the RDB files too, as an operator's backup would hold them
        chunks += [(Path(directory) / "dump.rdb").read_bytes() for directory in data_dirs]
        return b"\n".join(chunks)

    def leftovers(iaid: str) -> list:
        return [key for primary in primaries for key in primary.scan_iter(match=f"*{{{iaid}}}*", count=500)]

    return Backend("redis", reopen(cipher), clock, reopen, raw_secret, put_raw_secret, raw_bytes, leftovers)


def sqlite_backend(path: Path, cipher: TokenCipher, clock: FakeClock, opened: list) -> Backend:
    def reopen(other: TokenCipher) -> Store:
        store = SqliteStore(str(path), other, clock=clock)
        opened.append(store)
        return store

    def connect() -> sqlite3.Connection:
        connection = sqlite3.connect(str(path), isolation_level=None)
        opened.append(connection)
        return connection

    def raw_secret(iaid: str, name: str) -> str | None:
        row = connect().execute("SELECT data FROM installations WHERE installed_app_id = ?", (iaid,)).fetchone()
        return json.loads(row[0]).get(name) if row else None

    def put_raw_secret(iaid: str, name: str, token: str) -> None:
        connection = connect()
        data = json.loads(connection.execute("SELECT data FROM installations WHERE installed_app_id = ?",
                                             (iaid,)).fetchone()[0])
        data[name] = token
        connection.execute("UPDATE installations SET data = ? WHERE installed_app_id = ?", (json.dumps(data), iaid))

    def raw_bytes() -> bytes:
        connection = connect()
        chunks = [repr(row).encode() for table in ("installations", "links", "replay", "locks", "meta")
                  for row in connection.execute(f"SELECT * FROM {table}")]
        for suffix in ("", "-wal"):
            file = Path(str(path) + suffix)
            if file.exists():
                chunks.append(file.read_bytes())
        return b"\n".join(chunks)

    def leftovers(iaid: str) -> list:
        connection = connect()
        return [row for table in ("installations", "links", "link_attempts", "locks")
                for row in connection.execute(f"SELECT * FROM {table} WHERE installed_app_id = ?", (iaid,))]

    return Backend("sqlite", reopen(cipher), clock, reopen, raw_secret, put_raw_secret, raw_bytes, leftovers)


@pytest.fixture(params=["redis", "sqlite", pytest.param("redis-cluster", marks=pytest.mark.slow),
                        pytest.param("redis-sentinel", marks=pytest.mark.slow)])
def backend(request, tmp_path, cipher) -> Backend:
    clock = FakeClock()
    opened: list = []
    if request.param == "redis":
        made = redis_backend(request.getfixturevalue("redis_url"), [request.getfixturevalue("redis_server").dir],
                             cipher, clock, opened)
    elif request.param == "redis-cluster":
        nodes = request.getfixturevalue("redis_cluster_nodes")
        made = redis_backend(request.getfixturevalue("redis_cluster_url"), [server.dir for server in nodes.primaries],
                             cipher, clock, opened)
    elif request.param == "redis-sentinel":
        sentinels = request.getfixturevalue("redis_sentinel_set")
        made = redis_backend(request.getfixturevalue("redis_sentinel_url"), [sentinels.master().dir],
                             cipher, clock, opened)
    else:
        made = sqlite_backend(tmp_path / "data" / "smartapp.sqlite3", cipher, clock, opened)
    yield made
    for thing in opened:
        thing.close()


@pytest.fixture
def store(backend) -> Store:
    return backend.store


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def store_log():
    """The store's own log records (attached directly: the app may turn off propagation to root)."""
    handler = Records()
    logger = logging.getLogger("smartapp.store")
    logger.addHandler(handler)
    yield handler.records
    logger.removeHandler(handler)


def install_fields(**overrides) -> dict:
    fields = {
        "location_id": "loc-1", "locale": "en", "config": {"switches": [{"valueType": "DEVICE"}]},
        "permissions": ["r:devices:*"], "auth_token": CANARIES["auth_token"],
        "refresh_token": CANARIES["refresh_token"], "auth_token_expires_at": 1_700_086_000.0,
        "refresh_token_issued_at": 1_700_000_000.0,
    }
    fields.update(overrides)
    return fields


# --- TokenStore --------------------------------------------------------------------------------


def test_get_missing_returns_none(store):
    assert store.get(IAID) is None


def test_update_creates_record(store, backend):
    assert store.update(IAID, install_fields()) == 1
    record = store.get(IAID)
    assert isinstance(record, Installation)
    assert record.installed_app_id == IAID and record.version == 1
    assert record.auth_token == CANARIES["auth_token"] and record.refresh_token == CANARIES["refresh_token"]
    assert record.config == {"switches": [{"valueType": "DEVICE"}]} and record.permissions == ["r:devices:*"]
    assert record.auth_token_expires_at == 1_700_086_000.0
    assert record.created_at == record.updated_at == backend.clock.now
    assert record.provider_access_token is None and record.reauth_required is None


def test_install_after_oauth_callback_keeps_provider_tokens(store, backend):
    store.update(IAID, {"provider": "github", "provider_access_token": CANARIES["provider_access_token"],
                        "provider_refresh_token": CANARIES["provider_refresh_token"], "provider_scope": "repo"})
    backend.clock.advance(5)
    assert store.update(IAID, install_fields()) == 2
    record = store.get(IAID)
    assert record.provider_access_token == CANARIES["provider_access_token"]
    assert record.provider_refresh_token == CANARIES["provider_refresh_token"]
    assert record.provider == "github" and record.provider_scope == "repo"
    assert record.auth_token == CANARIES["auth_token"]
    assert record.created_at == backend.clock.now - 5 and record.updated_at == backend.clock.now


def test_none_clears_only_that_field(store):
    store.update(IAID, install_fields(reauth_required="invalid_grant"))
    store.update(IAID, {"reauth_required": None, "auth_token": None})
    record = store.get(IAID)
    assert record.reauth_required is None and record.auth_token is None
    assert record.refresh_token == CANARIES["refresh_token"] and record.location_id == "loc-1"


def test_version_increments(store):
    versions = [store.update(IAID, {"locale": f"l{i}"}) for i in range(3)]
    assert versions == [1, 2, 3]
    assert store.get(IAID).version == 3


def test_expected_version_mismatch_writes_nothing(store):
    with pytest.raises(VersionConflict):
        store.update(IAID, install_fields(), expected_version=1)
    assert store.get(IAID) is None
    assert store.update(IAID, install_fields(), expected_version=0) == 1
    with pytest.raises(VersionConflict):
        store.update(IAID, {"auth_token": "stale-writer"}, expected_version=0)
    assert store.update(IAID, {"auth_token": "fresh"}, expected_version=1) == 2
    record = store.get(IAID)
    assert record.version == 2 and record.auth_token == "fresh"


@pytest.mark.parametrize("fields", [
    {"no_such_field": 1}, {"version": 7}, {"installed_app_id": OTHER}, {"created_at": 1.0},
    {"auth_token": 12345}, {"config": "not a map"}, {"auth_token_expires_at": "soon"},
    {"auth_token_expires_at": float("nan")}, {"permissions": "r:devices:*"},
])
def test_bad_update_rejected_and_nothing_written(store, fields):
    store.update(IAID, {"locale": "en"})
    with pytest.raises(ValueError):
        store.update(IAID, {"location_id": "changed", **fields})
    record = store.get(IAID)
    assert record.version == 1 and record.location_id is None


def test_bad_installed_app_id_rejected(store):
    for bad in ("", "a}b", "a{b", "a*", "a b", "a\nb"):
        with pytest.raises(ValueError):
            store.update(bad, {"locale": "en"})


def test_delete_removes_every_trace(store, backend):
    iaid = str(uuid.uuid4())
    store.update(iaid, install_fields())
    store.update(OTHER, install_fields())
    store.issue(iaid, {"verifier": "v"}, ttl_seconds=600)
    assert store.attempt(iaid, "d" * 64, max_attempts=5).link == {"verifier": "v"}
    assert store.acquire(iaid, ttl_seconds=30, wait_seconds=0)
    assert backend.leftovers(iaid)
    store.delete(iaid)
    assert store.get(iaid) is None
    assert backend.leftovers(iaid) == []
    assert store.consume(iaid) is None
    assert store.acquire(iaid, ttl_seconds=30, wait_seconds=0)  # no lock left behind either
    store.delete(iaid)
    store.delete(iaid)  # idempotent
    assert backend.leftovers(iaid) == []
    assert store.get(OTHER).auth_token == CANARIES["auth_token"]


def test_installed_app_ids_lists_all(store):
    ids = {str(uuid.uuid4()) for _ in range(30)}
    for iaid in ids:
        store.update(iaid, {"locale": "en"})
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=60)  # a pending link is not an installation
    assert set(store.installed_app_ids()) == ids


def test_ping_and_describe(store, backend):
    store.ping()
    assert backend.kind in store.describe() and store.name == backend.kind


# --- LinkStore ---------------------------------------------------------------------------------


def test_link_consumed_once(store, backend, cipher):
    store.issue(IAID, {"state": IAID, "verifier": "pkce-canary-verifier"}, ttl_seconds=600)
    other_worker = backend.reopen(cipher)
    assert other_worker.consume(IAID) == {"state": IAID, "verifier": "pkce-canary-verifier"}
    assert store.consume(IAID) is None
    assert store.consume(OTHER) is None


def test_link_issue_replaces_pending(store):
    store.issue(IAID, {"verifier": "first"}, ttl_seconds=600)
    store.issue(IAID, {"verifier": "second"}, ttl_seconds=600)
    assert store.consume(IAID) == {"verifier": "second"}
    assert store.consume(IAID) is None


def test_link_expires(store, backend):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=0.15)
    backend.clock.advance(1)   # SQLite reads the injected clock,
    time.sleep(0.25)           # Redis expires keys on its own clock
    assert store.consume(IAID) is None


def test_unreadable_link_is_absent(store, backend, store_log):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=600)
    stranger = backend.reopen(TokenCipher([Fernet.generate_key().decode()]))
    assert stranger.consume(IAID) is None
    assert [r.field for r in store_log if r.getMessage() == "corrupt_record"] == ["link"]
    assert store.consume(IAID) is None  # consumed all the same: a link is never handed out twice


def test_link_attempts_keep_the_link_and_let_each_code_through_once(store, backend, cipher):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=600)
    other_worker = backend.reopen(cipher)
    assert store.attempt(IAID, "a" * 64, max_attempts=5) == LinkAttempt({"verifier": "v"})
    assert other_worker.attempt(IAID, "a" * 64, max_attempts=5) == LinkAttempt(None, "oauth_code_reused")
    assert other_worker.attempt(IAID, "b" * 64, max_attempts=5) == LinkAttempt({"verifier": "v"})
    assert store.pending(IAID) == {"verifier": "v"}
    assert store.attempt(OTHER, "a" * 64, max_attempts=5) == LinkAttempt(None, "oauth_link_not_pending")
    assert store.consume(IAID) == {"verifier": "v"}
    assert store.attempt(IAID, "c" * 64, max_attempts=5) == LinkAttempt(None, "oauth_link_not_pending")


def test_link_attempts_past_the_limit_end_the_link(store):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=600)
    assert all(store.attempt(IAID, f"{n:064x}", max_attempts=3).link for n in range(3))
    assert store.attempt(IAID, "f" * 64, max_attempts=3) == LinkAttempt(None, "oauth_link_attempts_exhausted")
    assert store.pending(IAID) is None
    assert store.attempt(IAID, "e" * 64, max_attempts=3) == LinkAttempt(None, "oauth_link_not_pending")


def test_a_new_link_starts_without_attempts(store):
    store.issue(IAID, {"verifier": "old"}, ttl_seconds=600)
    assert store.attempt(IAID, "a" * 64, max_attempts=1).link
    store.issue(IAID, {"verifier": "new"}, ttl_seconds=600)
    assert store.attempt(IAID, "a" * 64, max_attempts=1) == LinkAttempt({"verifier": "new"})


def test_link_attempts_expire_with_the_link(store, backend):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=0.15)
    assert store.attempt(IAID, "a" * 64, max_attempts=5).link
    backend.clock.advance(1)
    time.sleep(0.25)
    assert store.attempt(IAID, "b" * 64, max_attempts=5) == LinkAttempt(None, "oauth_link_not_pending")
    if backend.kind == "redis":  # SQLite purges expired attempts at the next issue
        assert backend.leftovers(IAID) == []


def test_link_verifier_encrypted_at_rest(store, backend):
    store.issue(IAID, {"verifier": "pkce-canary-verifier"}, ttl_seconds=600)
    assert b"pkce-canary-verifier" not in backend.raw_bytes()


# --- ReplayGuard -------------------------------------------------------------------------------


def test_replay_claim_is_a_lease_then_done(store, backend, cipher):
    marker = "a" * 64
    other_worker = backend.reopen(cipher)
    assert store.claim(marker, owner="first", lease_seconds=30) is ReplayState.CLAIMED
    assert store.claim(marker, owner="first", lease_seconds=30) is ReplayState.CLAIMED  # its own retried call
    assert store.claim(marker, owner="second", lease_seconds=30) is ReplayState.IN_PROGRESS
    assert other_worker.claim(marker, owner="third", lease_seconds=30) is ReplayState.IN_PROGRESS
    store.complete(marker, ttl_seconds=300)
    assert other_worker.claim(marker, owner="third", lease_seconds=30) is ReplayState.DONE
    assert store.claim(marker, owner="first", lease_seconds=30) is ReplayState.DONE
    assert store.claim("b" * 64, owner="first", lease_seconds=30) is ReplayState.CLAIMED


def test_replay_release_lets_a_retry_through_and_only_the_holder_releases(store):
    marker = "c" * 64
    assert store.claim(marker, owner="first", lease_seconds=30) is ReplayState.CLAIMED
    store.release_marker(marker, owner="stranger")
    assert store.claim(marker, owner="retry", lease_seconds=30) is ReplayState.IN_PROGRESS
    store.release_marker(marker, owner="first")
    assert store.claim(marker, owner="retry", lease_seconds=30) is ReplayState.CLAIMED
    store.complete(marker, ttl_seconds=300)
    store.release_marker(marker, owner="retry")  # a done marker is not released
    assert store.claim(marker, owner="later", lease_seconds=30) is ReplayState.DONE
    store.release_marker("d" * 64, owner="first")  # releasing an unknown marker is harmless


def test_replay_claim_kept_with_its_installation(store, backend, cipher):
    marker = "9" * 64
    assert store.claim(marker, owner="first", lease_seconds=30, installed_app_id=IAID) is ReplayState.CLAIMED
    assert backend.reopen(cipher).claim(marker, owner="second", lease_seconds=30,
                                        installed_app_id=IAID) is ReplayState.IN_PROGRESS
    store.release_marker(marker, owner="first", installed_app_id=IAID)
    assert store.claim(marker, owner="retry", lease_seconds=30, installed_app_id=IAID) is ReplayState.CLAIMED
    store.complete(marker, ttl_seconds=300, installed_app_id=IAID)
    assert store.claim(marker, owner="replay", lease_seconds=30, installed_app_id=IAID) is ReplayState.DONE
    assert backend.leftovers(IAID) == []  # the marker does not name the installation


def test_a_lease_whose_holder_died_runs_out_and_the_retry_is_processed(store, backend):
    marker = "e" * 64
    assert store.claim(marker, owner="killed", lease_seconds=0.15) is ReplayState.CLAIMED
    backend.clock.advance(1)
    time.sleep(0.25)
    assert store.claim(marker, owner="retry", lease_seconds=30) is ReplayState.CLAIMED


@pytest.mark.slow
def test_a_done_marker_outlasts_the_lease_and_then_expires(store, backend):
    marker = "f" * 64
    assert store.claim(marker, owner="first", lease_seconds=0.15) is ReplayState.CLAIMED
    store.complete(marker, ttl_seconds=0.6)
    backend.clock.advance(0.3)
    time.sleep(0.3)
    assert store.claim(marker, owner="replay", lease_seconds=30) is ReplayState.DONE
    backend.clock.advance(1)
    time.sleep(0.4)
    assert store.claim(marker, owner="much-later", lease_seconds=30) is ReplayState.CLAIMED


def test_replay_marker_must_be_a_digest(store):
    with pytest.raises(ValueError):
        store.claim("base64+signature/with=padding", owner="o", lease_seconds=30)


# --- RefreshLock -------------------------------------------------------------------------------


def test_lock_is_exclusive_across_workers(store, backend, cipher):
    other_worker = backend.reopen(cipher)
    owner = store.acquire(IAID, ttl_seconds=30, wait_seconds=0)
    assert owner
    started = time.monotonic()
    assert other_worker.acquire(IAID, ttl_seconds=30, wait_seconds=0.2) is None
    assert 0.15 <= time.monotonic() - started < 1.0
    assert store.acquire(OTHER, ttl_seconds=30, wait_seconds=0)  # per installation
    store.release_lock(IAID, owner)
    assert other_worker.acquire(IAID, ttl_seconds=30, wait_seconds=0)


def test_lock_expires_when_holder_dies(store, backend):
    assert store.acquire(IAID, ttl_seconds=0.15, wait_seconds=0)
    backend.clock.advance(1)
    time.sleep(0.25)
    assert store.acquire(IAID, ttl_seconds=30, wait_seconds=0)


def test_stale_owner_cannot_release_new_holder(store, backend):
    stale = store.acquire(IAID, ttl_seconds=0.15, wait_seconds=0)
    backend.clock.advance(1)
    time.sleep(0.25)
    current = store.acquire(IAID, ttl_seconds=30, wait_seconds=0)
    assert current and current != stale
    store.release_lock(IAID, stale)
    store.release_lock(IAID, "not-an-owner")
    assert store.acquire(IAID, ttl_seconds=30, wait_seconds=0) is None
    store.release_lock(IAID, current)
    assert store.acquire(IAID, ttl_seconds=30, wait_seconds=0)


def test_waiter_gets_lock_when_released(store):
    owner = store.acquire(IAID, ttl_seconds=30, wait_seconds=0)
    threading.Timer(0.15, store.release_lock, args=(IAID, owner)).start()
    started = time.monotonic()
    assert store.acquire(IAID, ttl_seconds=30, wait_seconds=2)
    assert time.monotonic() - started < 1.0


# --- concurrency -------------------------------------------------------------------------------


def test_concurrent_compare_and_set(store, backend, cipher):
    store.update(IAID, install_fields())
    workers = [store] + [backend.reopen(cipher) for _ in range(3)]
    barrier = threading.Barrier(16)
    wins: list[int] = []
    conflicts: list[int] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        worker = workers[index % len(workers)]
        barrier.wait()
        for attempt in range(8):
            seen = worker.get(IAID).version
            try:
                version = worker.update(IAID, {"refresh_token": f"rt-{index}-{attempt}"}, expected_version=seen)
            except VersionConflict:
                with lock:
                    conflicts.append(seen)
            else:
                assert version == seen + 1
                with lock:
                    wins.append(version)

    threads = [threading.Thread(target=run, args=(index,)) for index in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) + len(conflicts) == 16 * 8
    assert len(wins) == len(set(wins)), "two writers won the same version"
    final = store.get(IAID)
    assert final.version == 1 + len(wins)
    assert sorted(wins) == list(range(2, final.version + 1))
    assert final.refresh_token.startswith("rt-")


# --- secrets at rest ---------------------------------------------------------------------------


def test_secrets_encrypted_at_rest(store, backend):
    store.update(IAID, install_fields(provider_access_token=CANARIES["provider_access_token"],
                                      provider_refresh_token=CANARIES["provider_refresh_token"],
                                      app_state=CANARIES["app_state"]))
    for name in SECRET_FIELDS:
        assert backend.raw_secret(IAID, name).startswith("gAAAAA")
    at_rest = backend.raw_bytes()
    for canary in CANARIES.values():
        assert canary.encode() not in at_rest
        assert canary[:8].encode() not in at_rest


def test_blob_copied_to_another_installation_is_not_used(store, backend, store_log):
    store.update(IAID, install_fields())
    store.update(OTHER, install_fields(auth_token="other-access", refresh_token="other-refresh"))
    backend.put_raw_secret(OTHER, "refresh_token", backend.raw_secret(IAID, "refresh_token"))
    backend.put_raw_secret(OTHER, "auth_token", backend.raw_secret(IAID, "refresh_token"))  # wrong kind too
    record = store.get(OTHER)
    assert record.refresh_token is None and record.auth_token is None
    assert CANARIES["refresh_token"] not in repr(record)
    corrupt = [r for r in store_log if r.getMessage() == "corrupt_record"]
    assert {r.field for r in corrupt} == {"refresh_token", "auth_token"}
    assert all(r.levelno == logging.ERROR and r.installedAppId == OTHER for r in corrupt)
    assert not any(CANARIES["refresh_token"] in repr(vars(r)) for r in store_log)
    # A fresh write repairs the record; the source installation was never affected.
    store.update(OTHER, {"refresh_token": "repaired"})
    assert store.get(OTHER).refresh_token == "repaired"
    assert store.get(IAID).refresh_token == CANARIES["refresh_token"]


def test_key_rotation(store, backend, key):
    store.update(IAID, install_fields())
    store.verify_keys()
    old_token = backend.raw_secret(IAID, "refresh_token")
    new_key = Fernet.generate_key().decode()
    rotated_store = backend.reopen(TokenCipher([new_key, key]))
    assert rotated_store.get(IAID).refresh_token == CANARIES["refresh_token"]  # old records still read
    rotated_store.verify_keys()
    version = rotated_store.get(IAID).version
    assert rotated_store.rotate_keys() == 1
    assert backend.raw_secret(IAID, "refresh_token") != old_token
    assert rotated_store.get(IAID).version == version  # rotation is not a token change
    new_only = backend.reopen(TokenCipher([new_key]))
    new_only.verify_keys()
    record = new_only.get(IAID)
    assert record.refresh_token == CANARIES["refresh_token"] and record.auth_token == CANARIES["auth_token"]


def test_wrong_key_fails_loudly_and_wipes_nothing(store, backend, store_log):
    store.update(IAID, install_fields())
    store.verify_keys()
    stranger = backend.reopen(TokenCipher([Fernet.generate_key().decode()]))
    with pytest.raises(CorruptRecord):
        stranger.verify_keys()
    record = stranger.get(IAID)
    assert all(getattr(record, name) is None for name in SECRET_FIELDS)
    assert len([r for r in store_log if r.getMessage() == "corrupt_record"]) == 2
    with pytest.raises(CorruptRecord):
        stranger.rotate_keys()  # refuses before touching anything
    assert store.get(IAID).refresh_token == CANARIES["refresh_token"]


def test_open_store_picks_backend(tmp_path, redis_url, cipher):
    sqlite_path = tmp_path / "nested" / "dir" / "smartapp.db"
    embedded = open_store(redis_url=None, sqlite_path=str(sqlite_path), cipher=cipher)
    assert embedded.name == "sqlite" and sqlite_path.exists()
    embedded.close()
    remote = open_store(redis_url=redis_url, sqlite_path=str(tmp_path / "unused.db"), cipher=cipher)
    assert remote.name == "redis"
    remote.ping()
    remote.close()
    assert not (tmp_path / "unused.db").exists()
    with pytest.raises(ValueError):
        open_store(redis_url=" ", sqlite_path=str(tmp_path / "unused.db"), cipher=cipher)


def test_open_store_never_falls_back_when_redis_is_down(tmp_path, cipher):
    from testbed.redis_server import free_port

    store = open_store(redis_url=f"redis://127.0.0.1:{free_port()}/0", sqlite_path=str(tmp_path / "x.db"),
                       cipher=cipher)
    assert store.name == "redis"
    with pytest.raises(StoreUnavailable):
        store.update(IAID, {"locale": "en"})
    assert not (tmp_path / "x.db").exists()
    store.close()


# --- LinkStore.pending: a re-rendered configuration page reuses the pending verifier --------------


def test_pending_reads_without_consuming(store, backend, cipher):
    assert store.pending(IAID) is None
    store.issue(IAID, {"verifier": "pkce-canary-verifier"}, ttl_seconds=600)
    other_worker = backend.reopen(cipher)
    assert store.pending(IAID) == other_worker.pending(IAID) == {"verifier": "pkce-canary-verifier"}
    assert store.pending(OTHER) is None
    assert other_worker.consume(IAID) == {"verifier": "pkce-canary-verifier"}
    assert store.pending(IAID) is None


def test_pending_expires(store, backend):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=0.15)
    backend.clock.advance(1)
    time.sleep(0.25)
    assert store.pending(IAID) is None


def test_unreadable_pending_is_absent_and_left_in_place(store, backend, store_log):
    store.issue(IAID, {"verifier": "v"}, ttl_seconds=600)
    stranger = backend.reopen(TokenCipher([Fernet.generate_key().decode()]))
    assert stranger.pending(IAID) is None
    assert [r.field for r in store_log if r.getMessage() == "corrupt_record"] == ["link"]
    assert store.pending(IAID) == {"verifier": "v"}


def test_provider_region_and_account_round_trip(store):
    store.update(IAID, {"provider": "tuya", "provider_region": "eu", "provider_user_id": "ay1500000000"})
    record = store.get(IAID)
    assert (record.provider, record.provider_region, record.provider_user_id) == ("tuya", "eu", "ay1500000000")
