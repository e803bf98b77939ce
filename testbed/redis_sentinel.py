"""A real Sentinel set on loopback: a master, one replica and three sentinels watching service `mymaster`."""

from __future__ import annotations

from pathlib import Path

import redis

from testbed.redis_server import RedisServer, low_free_port, wait_until

SERVICE = "mymaster"
DOWN_AFTER_MS = 1000
# Replicas sync without a disk snapshot and at once, so a set starts (and a demoted master rejoins) in ~1 s.
REPLICATION = ("--repl-diskless-sync", "yes", "--repl-diskless-sync-delay", "0")


class SentinelServer(RedisServer):
    """redis-server in sentinel mode, with the config file it needs (sentinels rewrite their own)."""

    def __init__(self, master_port: int) -> None:
        super().__init__(port=low_free_port())
        Path(self.dir, "sentinel.conf").write_text(
            f"port {self.port}\nbind 127.0.0.1\ndir {self.dir}\nlogfile sentinel.log\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {master_port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}\n"
            f"sentinel failover-timeout {SERVICE} 5000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n")

    def command(self) -> list[str]:
        return [self.binary, str(Path(self.dir, "sentinel.conf")), "--sentinel"]


class SentinelSet:
    """`url` is the redis+sentinel:// URL a deployment would set; `master()` is whoever is master now."""

    def __init__(self) -> None:
        self.servers: list[RedisServer] = []
        self.sentinels: list[SentinelServer] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{sentinel.port}" for sentinel in self.sentinels)
        return f"redis+sentinel://{hosts}/{SERVICE}"

    def start(self) -> "SentinelSet":
        try:
            master = RedisServer(*REPLICATION, port=low_free_port()).start()
            self.servers = [master, RedisServer(*REPLICATION, "--replicaof", "127.0.0.1", str(master.port),
                                                port=low_free_port()).start()]
            self.wait_for_replicas()
            self.sentinels = [SentinelServer(master.port).start() for _ in range(3)]
            wait_until(self._sentinels_see_the_replica, "sentinels to find the replica")
        except BaseException:
            self.stop()
            raise
        return self

    def admin(self, server: RedisServer) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=server.port, socket_timeout=2)

    def _sentinels_see_the_replica(self) -> bool:
        for sentinel in self.sentinels:
            with self.admin(sentinel) as admin:
                replicas = admin.sentinel_slaves(SERVICE)
                if not any(replica.get("master-link-status") == "ok" and not replica.get("is_disconnected")
                           for replica in replicas):
                    return False
        return True

    def master(self) -> RedisServer:
        """The server whose ROLE is master (the sentinels' view may lag it by a moment)."""
        for server in self.servers:
            with self.admin(server) as admin:
                if admin.execute_command("ROLE")[0] == b"master":
                    return server
        raise RuntimeError("no master")

    def failover(self) -> None:
        """SENTINEL FAILOVER, as an operator (or a provider's maintenance) would start it."""
        with self.admin(self.sentinels[0]) as admin:
            admin.execute_command("SENTINEL", "FAILOVER", SERVICE)

    def wait_for_replicas(self, timeout: float = 30) -> None:
        """Exactly one master, and every other server linked to it and caught up."""
        def settled() -> bool:
            roles = []
            for server in self.servers:
                with self.admin(server) as admin:
                    info = admin.info("replication")
                    roles.append(info["role"])
                    if info["role"] == "slave" and info.get("master_link_status") != "up":
                        return False
            return roles.count("master") == 1

        wait_until(settled, "one master with its replicas linked", timeout)

    def stop(self) -> None:
        for server in self.sentinels + self.servers:
            server.stop()

