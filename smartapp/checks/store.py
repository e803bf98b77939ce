"""Doctor checks of the token store: reachable, readable with the keys, durable, on a disk that persists."""

from __future__ import annotations

import os
import stat
import time
from typing import Mapping

from smartapp.checks import FAIL, OK, WARN, Finding
from smartapp.checks.persistence import FSYNC_COSTS, persistence_findings
from smartapp.commands.environment import CommandError, open_existing_store
from smartapp.ephemeral import ephemeral_disk_reason
from smartapp.errors import SmartAppError
from smartapp.settings import Settings
from smartapp.store import CorruptRecord, Store

# Redis' clock dates the write scripts' deadlines; a few seconds apart is worth knowing about.
REDIS_CLOCK_TOLERANCE = 5.0


def store_findings(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    found = disk_findings(settings, environ) if settings.store_kind == "sqlite" else []
    if settings.store_kind == "sqlite" and not os.path.exists(settings.db_path):
        directory = os.path.dirname(os.path.abspath(settings.db_path))
        if os.access(directory if os.path.isdir(directory) else os.path.dirname(directory), os.W_OK):
            return found + [Finding(OK, "store", f"sqlite {os.path.abspath(settings.db_path)} does not exist yet; "
                                    "the service creates it at its first start")]
        return found + [Finding(FAIL, "store", f"cannot create {os.path.abspath(settings.db_path)}: {directory} is "
                                "not writable", "set SMARTAPP_DB_PATH to a writable, persistent location")]
    try:
        store = open_existing_store(settings)
    except CommandError as error:
        return found + [Finding(FAIL, "store", str(error))]
    except (SmartAppError, OSError, ValueError) as error:
        return found + [Finding(FAIL, "store", f"cannot open the store ({_reason(error)})",
                                "check REDIS_URL / SMARTAPP_DB_PATH and SMARTAPP_TOKEN_KEYS")]
    try:
        return found + reachability(store) + (redis_findings(store) if settings.store_kind == "redis" else [])
    finally:
        store.close()


def reachability(store: Store) -> list[Finding]:
    where = store.describe()  # never contains a password
    try:
        store.ping()
    except SmartAppError as error:
        return [Finding(FAIL, "store", f"{where} did not answer ({_reason(error)}): requests answer 503",
                        "check the URL, that the server runs, the network/firewall, and TLS for rediss://")]
    try:
        store.verify_keys()
    except CorruptRecord:
        return [Finding(FAIL, "token keys", f"the configured keys cannot decrypt what {where} holds",
                        "put the key that wrote it back into SMARTAPP_TOKEN_KEYS (after the new one)")]
    except SmartAppError as error:
        return [Finding(FAIL, "store", f"{where} failed the key check ({_reason(error)})")]
    count = sum(1 for _ in store.installed_app_ids())
    return [Finding(OK, "store", f"{where}: reachable, keys match, {count} installation(s)")]


def redis_findings(store: Store) -> list[Finding]:
    import redis

    client = store.client  # type: ignore[attr-defined]
    found = []
    try:
        config = {**client.config_get("appendonly"), **client.config_get("appendfsync"),
                  **client.config_get("maxmemory-policy")}
    except redis.exceptions.ResponseError:
        config = None
    except redis.exceptions.RedisError as error:
        return [Finding(WARN, "redis durability", f"could not read the settings ({type(error).__name__})")]
    if config is None:
        found.append(Finding(WARN, "redis durability", "CONFIG is disabled (usual on managed Redis), so the "
                             "settings cannot be read", "in the provider's dashboard: persistence (AOF) on and "
                             "maxmemory-policy noeviction"))
    else:
        appendonly = _text(config.get(b"appendonly", config.get("appendonly")))
        appendfsync = _text(config.get(b"appendfsync", config.get("appendfsync")))
        policy = _text(config.get(b"maxmemory-policy", config.get("maxmemory-policy")))
        found += persistence_findings(appendonly, appendfsync)
        if policy != "noeviction":
            found.append(Finding(FAIL, "redis durability", f"maxmemory-policy is {policy!r}: under memory pressure "
                                 "Redis deletes keys, and an evicted refresh token cannot be recovered",
                                 "CONFIG SET maxmemory-policy noeviction, and the same in redis.conf"))
        if not found:
            found.append(Finding(OK, "redis durability", f"appendonly yes, appendfsync {appendfsync} "
                                 f"({FSYNC_COSTS[appendfsync]}), maxmemory-policy noeviction"))
    try:
        seconds, micros = client.time()
        skew = time.time() - (seconds + micros / 1e6)
        if abs(skew) > REDIS_CLOCK_TOLERANCE:
            found.append(Finding(WARN, "clock", f"this host's clock and Redis' differ by {skew:+.1f} s",
                                 "run NTP (chrony/systemd-timesyncd) on both hosts"))
    except redis.exceptions.RedisError:
        pass
    return found


def disk_findings(settings: Settings, environ: Mapping[str, str]) -> list[Finding]:
    found = []
    reason = ephemeral_disk_reason(settings.db_path, environ)
    if reason:
        level = FAIL if environ.get("DYNO") or environ.get("K_SERVICE") else WARN
        found.append(Finding(level, "disk", f"tokens in the embedded store would be lost: {reason}",
                             "set REDIS_URL (and SMARTAPP_TOKEN_KEYS), or put SMARTAPP_DB_PATH on a persistent volume"))
    for path in (settings.db_path, settings.key_file_path):
        try:
            mode = os.stat(path).st_mode
        except FileNotFoundError:
            continue
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            found.append(Finding(WARN, "permissions", f"{path} is readable by other users ({oct(mode & 0o777)})",
                                 f"chmod 600 {path}"))
    return found


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reason(error: Exception) -> str:
    if isinstance(error, SmartAppError):
        return error.reason + (f": {error.detail}" if error.detail else "")
    return type(error).__name__
