"""Doctor checks of a Redis store: the deployment found (single, cluster, Sentinel), its durability and clock."""

from __future__ import annotations

import time
from typing import Any

import redis

from smartapp.checks import FAIL, OK, WARN, Finding
from smartapp.checks.persistence import FSYNC_COSTS, persistence_findings
from smartapp.store.redis_clients import primary_clients
from smartapp.store.redis_store import RedisStore

# Redis' clock dates the write scripts' deadlines; a few seconds apart is worth knowing about.
REDIS_CLOCK_TOLERANCE = 5.0


def unreachable_fix(detail: str) -> str:
    """What to do about a Redis that did not take the readiness write, by the reason it gave."""
    if "TLS certificate" in detail:
        return ("the server's certificate does not chain to a trusted CA: set SMARTAPP_REDIS_CA_CERT to the CA "
                "(PEM text or @path), or SMARTAPP_REDIS_TLS_VERIFY=none for self-signed certificates (Heroku Redis)")
    if "TLS host name" in detail:
        return ("the certificate does not name the host in REDIS_URL: connect by the name it carries, or set "
                "SMARTAPP_REDIS_TLS_VERIFY=ca (check the chain, not the name)")
    if "TLS" in detail:
        return "check that REDIS_URL's scheme (rediss:// is TLS) matches the server's port"
    if "READONLY" in detail or "ReadOnly" in detail:
        return ("REDIS_URL points at a replica (or a demoted master): use the primary's address, or "
                "redis+sentinel:// when Sentinel manages failover")
    if "WAIT" in detail:
        return "fewer replicas confirm writes than SMARTAPP_REDIS_WAIT_REPLICAS asks for: lower it or add replicas"
    return "check the URL, that the server runs, the network/firewall, and TLS for rediss://"


def deployment_findings(store: RedisStore, *, wait_replicas: int) -> list[Finding]:
    """Names what REDIS_URL leads to; warns about a replica and about too few replicas for WAIT."""
    client = store.client
    try:
        if store.deployment == "cluster":
            return _cluster(store, client, wait_replicas)
        if store.deployment == "sentinel":
            return _sentinel(store, client, wait_replicas)
        return _single(store, client, wait_replicas)
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as error:
        return [Finding(WARN, "redis deployment", f"{store.describe()}: could not be inspected "
                        f"({type(error).__name__})")]


def _single(store: RedisStore, client: Any, wait_replicas: int) -> list[Finding]:
    replication = client.info("replication")
    if replication.get("role") != "master":
        master = f"{replication.get('master_host')}:{replication.get('master_port')}"
        return [Finding(WARN, "redis deployment", f"{store.describe()} is a replica of {master}: it takes no "
                        "writes, so every request would answer 503",
                        "point REDIS_URL at the primary, or use redis+sentinel://sentinel:26379/service_name "
                        "when Sentinel manages failover")]
    replicas = int(replication.get("connected_slaves", 0))
    return [Finding(OK, "redis deployment", f"single server: {store.describe()}, master with {replicas} "
                    "replica(s) connected")] + _wait(wait_replicas, replicas)


def _cluster(store: RedisStore, client: Any, wait_replicas: int) -> list[Finding]:
    info = client.cluster_info()
    state = _text(info.get("cluster_state", "unknown"))
    primaries, replicas = len(client.get_primaries()), len(client.get_replicas())
    found = [Finding(OK if state == "ok" else FAIL, "redis deployment",
                     f"Redis Cluster with {primaries} primaries and {replicas} replicas, cluster_state {state} "
                     f"({store.describe()})",
                     "" if state == "ok" else "a slot has no reachable primary: writes to it answer 503")]
    if wait_replicas:
        fewest = min(int(client.get_redis_connection(node).info("replication").get("connected_slaves", 0))
                     for node in client.get_primaries())
        found += _wait(wait_replicas, fewest)
    return found


def _sentinel(store: RedisStore, client: Any, wait_replicas: int) -> list[Finding]:
    pool = client.connection_pool
    try:
        host, port = pool.get_master_address()
    except redis.exceptions.ConnectionError as error:
        return [Finding(FAIL, "redis deployment", f"{store.describe()}: the sentinels name no master "
                        f"({type(error).__name__}): every request answers 503",
                        "check the service name in REDIS_URL (SENTINEL MASTERS lists them) and that a "
                        "sentinel is reachable")]
    replicas = len(pool.sentinel_manager.discover_slaves(pool.service_name))
    return [Finding(OK, "redis deployment", f"Sentinel service {pool.service_name!r}: current master "
                    f"{_text(host)}:{port}, {replicas} replica(s) ({store.describe()})")] + _wait(wait_replicas,
                                                                                                 replicas)


def _wait(wanted: int, replicas: int) -> list[Finding]:
    if wanted > replicas:
        return [Finding(FAIL, "redis replicas", f"SMARTAPP_REDIS_WAIT_REPLICAS={wanted} but only {replicas} "
                        "replica(s) are connected: every write would answer 503",
                        "lower SMARTAPP_REDIS_WAIT_REPLICAS or add replicas")]
    if wanted:
        return [Finding(OK, "redis replicas", f"a write is acknowledged once {wanted} of {replicas} replica(s) "
                        "confirm it (SMARTAPP_REDIS_WAIT_REPLICAS)")]
    return []


def durability_findings(store: RedisStore) -> list[Finding]:
    found = []
    try:
        configs = [{**primary.config_get("appendonly"), **primary.config_get("appendfsync"),
                    **primary.config_get("maxmemory-policy")} for primary in primary_clients(store.client)]
    except redis.exceptions.ResponseError:
        configs = None
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as error:
        return [Finding(WARN, "redis durability", f"could not read the settings ({type(error).__name__})")]
    if configs is None:
        found.append(Finding(WARN, "redis durability", "CONFIG is disabled (usual on managed Redis), so the "
                             "settings cannot be read", "in the provider's dashboard: persistence (AOF) on and "
                             "maxmemory-policy noeviction"))
        return found + _clock(store)
    persistence = {(_text(config.get(b"appendonly", config.get("appendonly"))),
                    _text(config.get(b"appendfsync", config.get("appendfsync")))) for config in configs}
    policy = {_text(config.get(b"maxmemory-policy", config.get("maxmemory-policy"))) for config in configs}
    for appendonly, appendfsync in sorted(persistence):  # each primary's own, once per distinct setting
        found += persistence_findings(appendonly, appendfsync)
    if policy != {"noeviction"}:
        found.append(Finding(FAIL, "redis durability", f"maxmemory-policy is {'/'.join(sorted(policy))!r}: under "
                             "memory pressure Redis deletes keys, and an evicted refresh token cannot be recovered",
                             "CONFIG SET maxmemory-policy noeviction, and the same in redis.conf"))
    if not found:
        fsyncs = "; ".join(f"appendfsync {fsync} ({FSYNC_COSTS[fsync]})" for _, fsync in sorted(persistence))
        found.append(Finding(OK, "redis durability", f"appendonly yes, {fsyncs}, maxmemory-policy noeviction"))
    return found + _clock(store)


def _clock(store: RedisStore) -> list[Finding]:
    try:
        seconds, micros = primary_clients(store.client)[0].time()
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException):
        return []
    skew = time.time() - (seconds + micros / 1e6)
    if abs(skew) > REDIS_CLOCK_TOLERANCE:
        return [Finding(WARN, "clock", f"this host's clock and Redis' differ by {skew:+.1f} s",
                        "run NTP (chrony/systemd-timesyncd) on both hosts")]
    return []


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
