"""The SQLite store across processes: no lost compare-and-set, acknowledged writes survive kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from smartapp.errors import StoreUnavailable
from smartapp.store import ReplayState
from smartapp.store.cipher import TokenCipher
from smartapp.store.sqlite_store import SqliteStore

IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
REPO = Path(__file__).resolve().parents[2]

CHILD_PRELUDE = """
import os, sys, time
from smartapp.errors import VersionConflict
from smartapp.store.cipher import TokenCipher
from smartapp.store.sqlite_store import SqliteStore
IAID = "5f0a7b3c-1d2e-4f60-8a9b-0c1d2e3f4a5b"
store = SqliteStore(sys.argv[1], TokenCipher([os.environ["TEST_STORE_KEY"]]))
"""

CAS_CHILD = CHILD_PRELUDE + """
import random
tag, wanted = sys.argv[2], int(sys.argv[3])
print("ready", flush=True)
sys.stdin.readline()
done = conflicts = 0
while done < wanted:
    record = store.get(IAID)
    count = record.config.get("count", 0)
    time.sleep(random.random() * 0.001)  # widen the read-to-write window so the two really collide
    try:
        store.update(IAID, {"config": {"count": count + 1}, "refresh_token": f"rt-{tag}-{done}"},
                     expected_version=record.version)
    except VersionConflict:
        conflicts += 1
        continue
    done += 1
print(done, conflicts, flush=True)
"""

KILLED_CHILD = CHILD_PRELUDE + """
store.update(IAID, {"auth_token": "acked-access", "refresh_token": "acked-refresh", "locale": "en"})
store.issue(IAID, {"verifier": "v"}, ttl_seconds=600)
store.claim("ab" * 32, owner="killed", lease_seconds=600)
store.complete("ab" * 32, ttl_seconds=600)
print("ok", flush=True)
time.sleep(60)
"""


@pytest.fixture
def key() -> str:
    return Fernet.generate_key().decode()


def spawn(script: str, *args: str, key: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TEST_STORE_KEY": key}
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(script), *args], cwd=str(REPO), env=env,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_two_processes_lose_no_compare_and_set(tmp_path, key):
    path = str(tmp_path / "shared.sqlite3")
    store = SqliteStore(path, TokenCipher([key]))
    store.update(IAID, {"config": {"count": 0}})
    children = [spawn(CAS_CHILD, path, tag, "200", key=key) for tag in ("a", "b")]
    try:
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # release both at once so they really contend
            child.stdin.write("go\n")
            child.stdin.flush()
        results = [child.communicate(timeout=60)[0].split() for child in children]
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()
    assert [child.returncode for child in children] == [0, 0]
    assert [int(done) for done, _ in results] == [200, 200]
    record = store.get(IAID)
    assert record.version == 1 + 400
    assert record.config == {"count": 400}  # every increment read the value the previous one wrote
    assert record.refresh_token in {"rt-a-199", "rt-b-199"}


@pytest.mark.slow
def test_acknowledged_write_survives_kill_9(tmp_path, key):
    path = tmp_path / "kill.sqlite3"
    child = spawn(KILLED_CHILD, str(path), key=key)
    try:
        assert child.stdout.readline().strip() == "ok"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert Path(str(path) + "-wal").stat().st_size > 0  # the write lives in the WAL, never checkpointed
    store = SqliteStore(str(path), TokenCipher([key]))
    record = store.get(IAID)
    assert (record.auth_token, record.refresh_token, record.locale, record.version) == \
        ("acked-access", "acked-refresh", "en", 1)
    assert store.consume(IAID) == {"verifier": "v"}
    assert store.claim("ab" * 32, owner="later", lease_seconds=600) is ReplayState.DONE
    connection = sqlite3.connect(str(path))
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    connection.close()
    store.close()


def test_database_file_is_private(tmp_path, key):
    path = tmp_path / "new" / "private.sqlite3"
    store = SqliteStore(str(path), TokenCipher([key]))
    store.update(IAID, {"auth_token": "t"})
    assert path.stat().st_mode & 0o077 == 0
    assert Path(str(path) + "-wal").stat().st_mode & 0o077 == 0
    store.close()


@pytest.mark.slow
def test_write_lock_held_too_long_is_unavailable(tmp_path, key):
    path = str(tmp_path / "busy.sqlite3")
    store = SqliteStore(path, TokenCipher([key]), busy_timeout_ms=200)
    store.update(IAID, {"locale": "en"})
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            store.update(IAID, {"locale": "fr"})
        assert time.monotonic() - started < 1.0
        with pytest.raises(StoreUnavailable):
            store.claim("cd" * 32, owner="o", lease_seconds=60)
        assert store.get(IAID).locale == "en"  # WAL readers are not blocked by the writer
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert store.update(IAID, {"locale": "fr"}) == 2
    store.close()


def test_store_keeps_working_in_a_forked_child(tmp_path, key):
    path = str(tmp_path / "fork.sqlite3")
    store = SqliteStore(path, TokenCipher([key]))
    store.update(IAID, {"locale": "en"})
    pid = os.fork()
    if pid == 0:  # child: must open its own connection, never reuse the parent's
        code = 1
        try:
            code = 0 if store.update(IAID, {"locale": "fr"}, expected_version=1) == 2 else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    record = store.get(IAID)
    assert (record.version, record.locale) == (2, "fr")
    store.close()


OPEN_CHILD = """
import os, sys
from smartapp.store.cipher import TokenCipher
from smartapp.store.sqlite_store import SqliteStore
print("ready", flush=True)
sys.stdin.readline()
SqliteStore(sys.argv[1], TokenCipher([os.environ["TEST_STORE_KEY"]])).ping()
print("opened", flush=True)
"""


@pytest.mark.slow
def test_workers_opening_a_fresh_database_together_all_start(tmp_path, key):
    """gunicorn boots every worker at once on a new deployment; switching to WAL must not fail any of them."""
    for attempt in range(3):
        path = str(tmp_path / f"fresh-{attempt}" / "smartapp.db")
        children = [spawn(OPEN_CHILD, path, key=key) for _ in range(8)]
        for child in children:
            assert child.stdout.readline().strip() == "ready"
        for child in children:  # release them together
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = [child.communicate(timeout=30) for child in children]
        assert [child.returncode for child in children] == [0] * 8, [err[-500:] for _, err in outputs]
        assert all("opened" in out for out, _ in outputs)


def test_a_file_from_before_two_phase_markers_keeps_its_markers_as_done(tmp_path, key):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(str(path), isolation_level=None)
    old.execute("CREATE TABLE replay (marker TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
    old.execute("INSERT INTO replay VALUES (?, ?)", ("ab" * 32, time.time() + 600))
    old.close()
    store = SqliteStore(str(path), TokenCipher([key]))
    assert store.claim("ab" * 32, owner="replay", lease_seconds=10) is ReplayState.DONE
    assert store.claim("cd" * 32, owner="new", lease_seconds=10) is ReplayState.CLAIMED
    store.close()


def test_short_lived_threads_reuse_connections_instead_of_opening_one_each(tmp_path, key):
    """Under gevent every client connection is a greenlet of its own: the store must not open one per greenlet."""
    import threading

    store = SqliteStore(str(tmp_path / "pool.sqlite3"), TokenCipher([key]))
    store.update(IAID, {"locale": "en"})
    for _ in range(30):
        thread = threading.Thread(target=store.get, args=(IAID,))
        thread.start()
        thread.join(10)
    assert len(store._connections) == 1
    store.close()
