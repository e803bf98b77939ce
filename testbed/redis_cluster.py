"""A real Redis Cluster on loopback: three primaries, each with a replica, on ports below 32768 (bus = port + 10000)."""

from __future__ import annotations

import redis

from testbed.redis_server import RedisServer, low_free_port, wait_until

SLOTS = 16384


class RedisClusterNodes:
    """redis-server processes joined into one cluster; `url` names one primary, as a provider's URL would."""

    def __init__(self, primaries: int = 3, replicas_per_primary: int = 1, node_timeout_ms: int = 1000) -> None:
        self.node_timeout_ms = node_timeout_ms
        self.primaries: list[RedisServer] = []
        self.replicas: list[RedisServer] = []
        self._counts = (primaries, replicas_per_primary)

    @property
    def servers(self) -> list[RedisServer]:
        return self.primaries + self.replicas

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.primaries[0].port}"

    def _node(self) -> RedisServer:
        for _ in range(5):
            try:
                return RedisServer("--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                                   "--cluster-node-timeout", str(self.node_timeout_ms),
                                   "--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0",
                                   "--cluster-allow-replica-migration", "no",
                                   # as managed clusters run: a failed primary stops its own slots only
                                   "--cluster-require-full-coverage", "no", port=low_free_port()).start()
            except RuntimeError:  # another process took the port between the check and the start
                continue
        raise RuntimeError("could not start a cluster node")

    def start(self) -> "RedisClusterNodes":
        primaries, replicas_per_primary = self._counts
        try:
            self.primaries = [self._node() for _ in range(primaries)]
            self.replicas = [self._node() for _ in range(primaries * replicas_per_primary)]
            admins = [self.admin(server) for server in self.servers]
            try:
                self._form(admins, primaries, replicas_per_primary)
            finally:
                for admin in admins:
                    admin.close()
        except BaseException:
            self.stop()
            raise
        return self

    def _form(self, admins: list[redis.Redis], primaries: int, replicas_per_primary: int) -> None:
        for index, admin in enumerate(admins[:primaries]):
            first, last = index * SLOTS // primaries, (index + 1) * SLOTS // primaries - 1
            admin.execute_command("CLUSTER", "ADDSLOTSRANGE", first, last)
            admin.execute_command("CLUSTER", "SET-CONFIG-EPOCH", index + 1)
        for admin in admins[1:]:
            admin.execute_command("CLUSTER", "MEET", "127.0.0.1", self.primaries[0].port)
        ids = [admin.execute_command("CLUSTER", "MYID").decode() for admin in admins]
        wait_until(lambda: all(len(admin.execute_command("CLUSTER", "NODES").decode().splitlines()) == len(admins)
                          for admin in admins), "nodes to meet")
        for index, admin in enumerate(admins[primaries:]):
            admin.execute_command("CLUSTER", "REPLICATE", ids[index % primaries])
        wait_until(lambda: all(admin.execute_command("CLUSTER", "INFO").decode().find("cluster_state:ok") >= 0
                          for admin in admins), "cluster_state ok")
        self.wait_for_replicas()

    def wait_for_replicas(self, timeout: float = 20) -> None:
        """Every replica linked to its primary and caught up, as a test's starting point."""
        def linked() -> bool:
            for server in self.replicas:
                if not server.answers():
                    continue
                with self.admin(server) as admin:
                    info = admin.info("replication")
                    if info.get("role") == "slave" and info.get("master_link_status") != "up":
                        return False
            return True

        wait_until(linked, "replicas to link", timeout)

    def admin(self, server: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)

    def primary_of_slot(self, slot: int) -> RedisServer:
        """The server that owns `slot` now (after a failover too), as the live cluster reports it."""
        for server in self.servers:
            if not server.answers():
                continue
            with self.admin(server) as admin:
                for start, end, primary, *_ in admin.execute_command("CLUSTER", "SLOTS"):
                    if start <= slot <= end:
                        port = int(primary[1])
                        return next(candidate for candidate in self.servers if candidate.port == port)
        raise RuntimeError("no node answers CLUSTER SLOTS")

    def wait_for_state_ok(self, timeout: float = 20) -> None:
        def all_ok() -> bool:
            for server in self.servers:
                if server.answers():
                    with self.admin(server) as admin:
                        if b"cluster_state:ok" not in admin.execute_command("CLUSTER", "INFO"):
                            return False
            return True

        wait_until(all_ok, "cluster_state ok", timeout)

    def flush(self) -> None:
        for server in self.servers:
            with self.admin(server) as admin:
                if admin.info("replication").get("role") == "master":
                    admin.flushall()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()

