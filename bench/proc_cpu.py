"""CPU time of a process tree, read from /proc: what a server spent serving, whatever its process model."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone between the listing and the read
        return None
    return text.rpartition(")")[2].split()  # the command name may hold spaces and parentheses


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU of `root` and every live descendant (gunicorn's master and workers, Node's cluster)."""
    children: dict[str, list[str]] = {}
    times: dict[str, float] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(entry)
        if fields is None:
            continue
        # After the name: state, ppid, ... utime and stime are the 12th and 13th (stat fields 14 and 15).
        children.setdefault(fields[1], []).append(entry)
        times[entry] = (int(fields[11]) + int(fields[12])) / _TICKS_PER_SECOND
    total, pending = 0.0, [str(root)]
    while pending:
        pid = pending.pop()
        total += times.get(pid, 0.0)
        pending.extend(children.get(pid, []))
    return total
