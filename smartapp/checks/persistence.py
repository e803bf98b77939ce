"""Doctor check of Redis persistence: can a crash lose writes the service already acknowledged, and at what cost."""

from __future__ import annotations

from smartapp.checks import WARN, Finding

# What each appendfsync value costs and risks (redis.io, "Redis persistence"). A write the service
# acknowledged can hold a refresh token that was just rotated: losing it means the user links again.
FSYNC_COSTS = {
    "always": "an fsync before every write is acknowledged: nothing acknowledged is lost, every write waits for the "
              "disk (slower, especially on network disks)",
    "everysec": "an fsync once a second in the background: little throughput cost; a host crash or power loss can "
                "lose about the last second of writes, a Redis crash alone loses nothing acknowledged",
    "no": "the kernel writes the log when it likes (about every 30 s on Linux): fastest, and a host crash loses "
          "that much",
}
SNAPSHOT_COST = ("snapshots only: a crash of Redis or its host loses every write since the last snapshot "
                 "(minutes, by the default save schedule)")


def persistence_findings(appendonly: str, appendfsync: str) -> list[Finding]:
    """Warnings when a crash can lose acknowledged writes; nothing when the append-only log is fsynced."""
    fix = (f"CONFIG SET appendonly yes and CONFIG SET appendfsync everysec, and the same in redis.conf "
           f"(everysec: {FSYNC_COSTS['everysec']}; always: {FSYNC_COSTS['always']})")
    if appendonly != "yes":
        return [Finding(WARN, "redis durability", f"appendonly is {appendonly!r}, {SNAPSHOT_COST}", fix)]
    if appendfsync not in ("everysec", "always"):
        cost = FSYNC_COSTS.get(appendfsync, "an unknown setting")
        return [Finding(WARN, "redis durability", f"appendfsync is {appendfsync!r}, {cost}", fix)]
    return []
