"""redis-py clients for a REDIS_URL: one server, a Redis Cluster found from any of its nodes, or a Sentinel service."""

from __future__ import annotations

from typing import Any, Union

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.cluster import RedisCluster
from redis.connection import SSLConnection
from redis.retry import Retry
from redis.sentinel import Sentinel, SentinelConnectionPool

from smartapp.store.redis_errors import unavailable_detail
from smartapp.store.redis_routes import ClusterScriptRunner, SentinelScriptRunner
from smartapp.store.redis_scripts import ScriptRunner
from smartapp.store.slot_tags import tag_for_slot
from smartapp.store.redis_target import (
    RedisOptions, RedisTarget, SENTINEL_QUERY_OPTIONS, parse_redis_url, tls_arguments, verify_mode,
)

# Per attempt 0.5 s to connect and 0.5 s to answer, one retry after <= 0.2 s: a stopped or frozen
# Redis costs about 1.1 s per call instead of redis-py 8.1's ~55 s default (5 s timeouts, 10 retries).
SOCKET_TIMEOUT = 0.5
CONNECT_TIMEOUT = 0.5
RETRIES = 1
MAX_CONNECTIONS = 64

RedisClient = Union[redis.Redis, RedisCluster]


class UndetectedRedis(redis.Redis):
    """A plain-URL client made while its server did not answer: single server or cluster is not known yet."""

    url: str
    options: RedisOptions
    reason: str  # why detection failed, for the 503 detail


def _timeouts() -> dict[str, Any]:
    return {"socket_timeout": SOCKET_TIMEOUT, "socket_connect_timeout": CONNECT_TIMEOUT}


def _client_arguments() -> dict[str, Any]:
    """Every client's explicit settings: bounded calls, one retry, a capped pool, bytes in and out."""
    return {
        **_timeouts(),
        "retry": Retry(ExponentialBackoff(cap=0.2, base=0.05), RETRIES),
        "retry_on_error": [redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        "health_check_interval": 10,   # pings a connection idle > 10 s, so a restart is noticed early
        "max_connections": MAX_CONNECTIONS,  # over the limit fails at once (503) instead of queueing
        "decode_responses": False,
        "redis_connect_func": _handshake_without_health_check,
    }


def _handshake_without_health_check(connection: redis.connection.AbstractConnection) -> None:
    """A connection just made needs no health PING: against a frozen server it would double the wait."""
    connection.on_connect_check_health(check_health=False)


def make_redis_client(url: str, options: RedisOptions | None = None) -> RedisClient:
    """The client for REDIS_URL; every call through it fails within ~1.1 s when Redis cannot answer.

    A plain URL is asked whether it is a cluster node; when it cannot be asked, an UndetectedRedis
    comes back, and the store asks again before its next use.
    """
    options = options or RedisOptions()
    target = parse_redis_url(url)  # RedisUrlError (a ValueError) says what is wrong
    tls = tls_arguments(target, options)
    if target.sentinel:
        return _sentinel_master(target, tls)
    if target.path is not None:
        return redis.Redis.from_url(url, **_client_arguments(), **tls)
    try:
        cluster = _is_cluster_node(url, tls)
        if cluster:
            if target.db:
                raise ValueError(f"REDIS_URL names database {target.db}, but {target.where()} is a Redis Cluster "
                                 "node, which has database 0 only: drop the /N from the URL")
            arguments = _client_arguments()
            del arguments["retry_on_error"]  # the cluster client retries itself, refreshing the slot map
            del arguments["redis_connect_func"]  # the cluster client runs its own handshake
            return RedisCluster.from_url(url, **arguments, require_full_coverage=False, **tls)
    except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException, OSError) as error:
        client = UndetectedRedis.from_url(url, **_client_arguments(), **tls)
        client.url, client.options, client.reason = url, options, unavailable_detail(error)
        return client
    return redis.Redis.from_url(url, **_client_arguments(), **tls)


def _is_cluster_node(url: str, tls: dict[str, Any]) -> bool:
    probe = redis.Redis.from_url(url, **_timeouts(), retry=Retry(NoBackoff(), 0), **tls)
    try:
        return bool(probe.info("cluster").get("cluster_enabled"))
    except redis.exceptions.ResponseError:
        return False  # INFO not allowed for this user: cluster providers allow it, so a single server
    finally:
        probe.close()


def _sentinel_master(target: RedisTarget, tls: dict[str, Any]) -> redis.Redis:
    url_options = {name: value for name, value in target.options.items() if name not in SENTINEL_QUERY_OPTIONS}
    tls_options = {name: value for name, value in {**tls, **url_options}.items() if name.startswith("ssl_")}
    sentinel_arguments: dict[str, Any] = {**_timeouts(), **tls_options}
    if target.tls:
        sentinel_arguments["ssl"] = True
    if "sentinel_password" in target.options:
        sentinel_arguments["password"] = target.options["sentinel_password"]
        sentinel_arguments["username"] = target.options.get("sentinel_username")
    sentinel = Sentinel(list(target.hosts), sentinel_kwargs=sentinel_arguments)
    master_arguments = {**_client_arguments(), **tls, **url_options, "db": target.db,
                        "username": target.username, "password": target.password}
    if target.tls:
        master_arguments["ssl"] = True
    return sentinel.master_for(target.service, redis_class=redis.Redis, **master_arguments)


def script_runner(client: RedisClient, *, wait_replicas: int) -> Any:
    """The runner that sends scripts and writes where this kind of deployment takes them."""
    if isinstance(client, RedisCluster):
        return ClusterScriptRunner(client, retries=RETRIES, wait_replicas=wait_replicas)
    if isinstance(client.connection_pool, SentinelConnectionPool):
        return SentinelScriptRunner(client.connection_pool, retries=RETRIES, wait_replicas=wait_replicas)
    # One server: in a gevent worker its calls share one connection, a loop turn's commands in one write.
    return ScriptRunner(client.connection_pool, retries=RETRIES, wait_replicas=wait_replicas, pipelined=True)


def deployment_kind(client: RedisClient) -> str:
    """single, cluster or sentinel."""
    if isinstance(client, RedisCluster):
        return "cluster"
    if isinstance(client.connection_pool, SentinelConnectionPool):
        return "sentinel"
    return "single"


def connection_arguments(client: RedisClient) -> dict[str, Any]:
    if isinstance(client, RedisCluster):
        return client.nodes_manager.connection_kwargs
    return client.connection_pool.connection_kwargs


def describe_client(client: RedisClient) -> str:
    """What the client talks to, with no I/O and never a password: for the banner and doctor."""
    kwargs = connection_arguments(client)
    kind = deployment_kind(client)
    if "path" in kwargs:
        return f"redis unix://{kwargs['path']} db={kwargs.get('db', 0)}"
    connection_class = kwargs.get("connection_class") if isinstance(client, RedisCluster) else \
        client.connection_pool.connection_class
    tls = _verify_of(kwargs, connection_class)
    suffix = f" (TLS verify {tls})" if tls else ""
    if isinstance(client, UndetectedRedis):
        where = parse_redis_url(client.url).where()
        return f"redis {where}{suffix}, not connected yet (single server or cluster is found at first connection)"
    scheme = "rediss" if tls else "redis"
    if kind == "cluster":
        primaries = len(client.get_primaries())
        seed = client.get_default_node()
        where = f"{scheme}://{seed.host}:{seed.port}" if seed else scheme + "://"
        return f"redis cluster via {where}, {primaries} primaries{suffix}"
    if kind == "sentinel":
        pool = client.connection_pool
        sentinels = ",".join("{host}:{port}".format_map(sentinel.connection_pool.connection_kwargs)
                             for sentinel in pool.sentinel_manager.sentinels)
        return f"redis sentinel service {pool.service_name!r} via {scheme}+sentinel://{sentinels}{suffix}"
    return f"redis {scheme}://{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}{suffix}"


def _verify_of(kwargs: dict[str, Any], connection_class: type | None) -> str | None:
    """full, ca or none for a TLS client's settings; None without TLS."""
    if connection_class is None or not issubclass(connection_class, SSLConnection):
        return None
    target = RedisTarget("rediss", options={name: kwargs[name] for name in ("ssl_cert_reqs", "ssl_check_hostname")
                                            if name in kwargs})
    return verify_mode(target, RedisOptions())


def primary_clients(client: RedisClient) -> list[redis.Redis]:
    """A client per primary: the one client, or each cluster primary's own (for SCAN and readiness)."""
    if not isinstance(client, RedisCluster):
        return [client]
    primaries = client.get_primaries()
    if not primaries:
        raise redis.exceptions.ClusterDownError("no primary known for the cluster's slots")
    return [client.get_redis_connection(node) for node in primaries]


def readiness_keys(client: RedisClient, base: str) -> list[str]:
    """One key per primary, each in a slot that primary serves, so a write to each proves all writable."""
    if not isinstance(client, RedisCluster):
        return [base]
    first_slots: dict[str, int] = {}
    for slot, nodes in sorted(client.nodes_manager.slots_cache.items()):
        if nodes:
            first_slots.setdefault(nodes[0].name, slot)
    if not first_slots:
        raise redis.exceptions.ClusterDownError("no primary known for the cluster's slots")
    return [f"{base}:{{{tag_for_slot(slot)}}}" for slot in first_slots.values()]
