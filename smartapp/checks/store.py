"""Doctor checks of the token store: writable, readable with the keys, durable, on a disk that persists."""

from __future__ import annotations

import os
import stat
from typing import Mapping

from smartapp.checks import FAIL, OK, WARN, Finding
from smartapp.ephemeral import ephemeral_disk_reason
from smartapp.errors import SmartAppError
from smartapp.settings import ConfigError, Settings
from smartapp.store import CorruptRecord, Store
from smartapp.wiring import open_existing_store

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
    except ConfigError as error:
        return found + [Finding(FAIL, "store", str(error))]
    except (SmartAppError, OSError, ValueError) as error:
        return found + [Finding(FAIL, "store", f"cannot open the store ({_reason(error)})",
                                "check REDIS_URL / SMARTAPP_DB_PATH and SMARTAPP_TOKEN_KEYS")]
    try:
        if settings.store_kind == "sqlite":
            return found + reachability(store)
        return found + redis_store_findings(store, wait_replicas=settings.redis_wait_replicas)
    finally:
        store.close()


def redis_store_findings(store: Store, *, wait_replicas: int) -> list[Finding]:
    # Imported here: redis-py takes about 0.2 s to import, and a SQLite deployment never needs it.
    from smartapp.checks.redis import deployment_findings, durability_findings, unreachable_fix

    reached = reachability(store, unreachable_fix=unreachable_fix)
    if any(finding.level == FAIL and finding.topic == "store" for finding in reached):
        try:  # a replica or a cluster that is down still says what it is
            return deployment_findings(store, wait_replicas=wait_replicas) + reached  # type: ignore[arg-type]
        except SmartAppError:
            return reached
    return deployment_findings(store, wait_replicas=wait_replicas) + reached + \
        durability_findings(store)  # type: ignore[arg-type]


def reachability(store: Store, *, unreachable_fix=None) -> list[Finding]:
    where = store.describe()  # never contains a password
    try:
        store.ping()
    except SmartAppError as error:
        fix = unreachable_fix(error.detail) if unreachable_fix else \
            "check the URL, that the server runs, the network/firewall, and TLS for rediss://"
        return [Finding(FAIL, "store", f"{where} did not take a write ({_reason(error)}): requests answer 503",
                        fix)]
    try:
        store.verify_keys()
    except CorruptRecord:
        return [Finding(FAIL, "token keys", f"the configured keys cannot decrypt what {where} holds",
                        "put the key that wrote it back into SMARTAPP_TOKEN_KEYS (after the new one)")]
    except SmartAppError as error:
        return [Finding(FAIL, "store", f"{where} failed the key check ({_reason(error)})")]
    count = sum(1 for _ in store.installed_app_ids())
    return [Finding(OK, "store", f"{where}: reachable, keys match, {count} installation(s)")]


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


def _reason(error: Exception) -> str:
    if isinstance(error, SmartAppError):
        return error.reason + (f": {error.detail}" if error.detail else "")
    return type(error).__name__
