"""Where scripts and writes go beyond one server: the Sentinel's current master, or the cluster slot's primary."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import redis
from redis.cluster import ClusterNode, RedisCluster
from redis.commands.core import Script

from smartapp.store.redis_scripts import ScriptRunner, drop_connection

log = logging.getLogger("smartapp.store")

# How often a process asks the sentinels where the master is. Connections are only re-pointed when
# they reconnect, and a demoted master goes on taking writes until Sentinel reconfigures it (seconds
# later): without the check, those writes would be acknowledged and then lost.
MASTER_CHECK_SECONDS = 1.0
# How often a process may re-read the cluster's slot map after a node stopped answering.
TOPOLOGY_REFRESH_SECONDS = 1.0
# A slot moves once per resharding step or failover; more redirects than this in one call is a loop.
MAX_REDIRECTS = 3
_CONNECTION_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)


class SentinelScriptRunner(ScriptRunner):
    """ScriptRunner whose connections follow the master the sentinels name, checked once a second."""

    def __init__(self, pool: Any, *, retries: int, wait_replicas: int = 0) -> None:
        super().__init__(pool, retries=retries, wait_replicas=wait_replicas)
        self._next_check = 0.0
        self._master: tuple[str, int] | None = None

    def _checkout(self) -> redis.connection.AbstractConnection:
        connection = super()._checkout()
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + MASTER_CHECK_SECONDS
            try:
                # Also drops the client pool's idle connections to a replaced master.
                self._master = tuple(self.pool.get_master_address())
            except _CONNECTION_ERRORS:
                pass  # sentinels unreachable says nothing about the master: keep the connections
        if connection.is_connected and self._master and (connection.host, connection.port) != self._master:
            # Reconnects to the master the sentinels name now; what was due on the old socket is gone with it.
            drop_connection(connection)
        return connection

    def _connect(self, connection: redis.connection.AbstractConnection) -> None:
        # Only connect() asks the sentinels for the master; sending would connect to the default address.
        if not connection.is_connected:
            connection.connect()


class ClusterScriptRunner:
    """Runs each call on the primary that owns its keys' slot, by redis-py's slot map.

    The call goes on that node's own connection (one round trip, WAIT on the same connection).
    MOVED updates the slot map through redis-py and tries the new owner; ASK tries the named node
    once with ASKING; a node that does not answer makes the next call re-read the slot map.
    """

    def __init__(self, cluster: RedisCluster, *, retries: int, wait_replicas: int = 0) -> None:
        self.cluster = cluster
        self._retries = retries
        self._wait = wait_replicas
        self._runners: dict[str, ScriptRunner] = {}
        self._refresh_lock = threading.Lock()
        self._failed_node: str | None = None
        self._last_refresh = 0.0

    def run(self, script: Script, keys: list[str], args: list[str]) -> Any:
        return self._routed(keys[0], lambda runner, asking: runner.run(script, keys, args, asking=asking))

    def command(self, keys: list[str], *command: Any) -> Any:
        return self._routed(keys[0], lambda runner, asking: runner.command(keys, *command, asking=asking))

    def send(self, keys: list[str], *command: Any) -> None:
        self._routed(keys[0], lambda runner, asking: runner.send(keys, *command, asking=asking))

    def runner_for(self, node: ClusterNode) -> ScriptRunner:
        pool = self.cluster.get_redis_connection(node).connection_pool
        runner = self._runners.get(node.name)
        if runner is None or runner.pool is not pool:
            if runner is not None:
                runner.close()
            runner = self._runners[node.name] = ScriptRunner(pool, retries=self._retries,
                                                              wait_replicas=self._wait)
        return runner

    def _routed(self, key: str, call: Callable[[ScriptRunner, bool], Any]) -> Any:
        if self._failed_node is not None:
            self._refresh_topology()
        nodes = self.cluster.nodes_manager
        node = nodes.get_node_from_slot(self.cluster.keyslot(key))
        asking = False
        for _ in range(MAX_REDIRECTS):
            try:
                return call(self.runner_for(node), asking)
            except redis.exceptions.MovedError as moved:
                moved.host = moved.host or node.host  # a node that does not know its address sends ':port'
                nodes.move_slot(moved)
                node, asking = nodes.get_node_from_slot(moved.slot_id), False
            except redis.exceptions.AskError as ask:
                host, port = nodes.remap_host_port(ask.host or node.host, ask.port)
                node = nodes.get_node(host, port) or ClusterNode(host, port)
                asking = True
            except (redis.exceptions.ClusterDownError, *_CONNECTION_ERRORS):
                self._failed_node = node.name  # a failover may have moved the slot: read the map again
                raise
        raise redis.exceptions.ClusterError(f"slot of a key redirected more than {MAX_REDIRECTS} times")

    def _refresh_topology(self) -> None:
        """Re-read the slot map, at most once a second and by one thread; the others go on meanwhile."""
        if time.monotonic() - self._last_refresh < TOPOLOGY_REFRESH_SECONDS:
            return
        if not self._refresh_lock.acquire(blocking=False):
            return
        try:
            failed, self._failed_node = self._failed_node, None
            self.cluster.nodes_manager.initialize(last_failed_node_name=failed)
        except (redis.exceptions.RedisError, redis.exceptions.RedisClusterException) as error:
            self._failed_node = failed
            log.warning("redis_topology_refresh_failed", extra={"reason": "cluster_unreachable",
                                                                "detail": type(error).__name__})
        finally:
            self._last_refresh = time.monotonic()
            self._refresh_lock.release()

    def close(self) -> None:
        for runner in self._runners.values():
            runner.close()
