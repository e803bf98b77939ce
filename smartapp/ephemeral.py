"""Tell whether a file would live on a disk that is thrown away at the next restart or deploy."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

# Files a container runtime leaves in every container it starts (Docker, Podman/CRI-O).
CONTAINER_MARKERS = ("/.dockerenv", "/run/.containerenv")
MOUNTINFO = "/proc/self/mountinfo"
# A container's own root filesystem: a copy-on-write layer that is deleted with the container.
CONTAINER_LAYER_TYPES = frozenset({"overlay", "aufs", "fuse-overlayfs"})
MEMORY_TYPES = frozenset({"tmpfs", "ramfs"})


def ephemeral_disk_reason(path: str, environ: Mapping[str, str], *, in_container: bool | None = None,
                          mountinfo: str | None = None) -> str | None:
    """Why `path` would not survive a restart, or None when nothing says so.

    Signals, each reliable where it fires: Heroku sets DYNO (the dyno filesystem is discarded on
    every restart and deploy); Cloud Run sets K_SERVICE (in-memory filesystem); a tmpfs/ramfs mount
    is emptied at reboot; inside a container (marker file or `container` variable) a file on the
    overlay root goes with the container, so it must sit on a mounted volume instead.
    """
    if environ.get("DYNO"):
        return "DYNO is set: Heroku discards the dyno's disk on every restart and deploy"
    if environ.get("K_SERVICE"):
        return "K_SERVICE is set: Cloud Run keeps files in memory only"
    mount, fstype = mount_of(path, mountinfo)
    if fstype in MEMORY_TYPES:
        return f"{path} is on {fstype} (mounted at {mount}), which is emptied at every reboot"
    if in_container is None:
        in_container = any(os.path.exists(marker) for marker in CONTAINER_MARKERS) or "container" in environ
    if in_container and fstype in CONTAINER_LAYER_TYPES:
        return f"{path} is on the container's own {fstype} filesystem, which is deleted with the container"
    return None


def mount_of(path: str, mountinfo: str | None = None) -> tuple[str, str]:
    """(mount point, filesystem type) of the mount holding `path`, from /proc/self/mountinfo."""
    if mountinfo is None:
        try:
            mountinfo = Path(MOUNTINFO).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "/", "unknown"  # not Linux: no signal either way
    mounts: dict[str, str] = {}
    for line in mountinfo.splitlines():
        # "<id> <parent> <dev> <root> <mount point> <options> [optional...] - <fstype> <source> <options>"
        head, separator, tail = line.partition(" - ")
        fields = head.split()
        if separator and len(fields) >= 5 and tail.split():
            # Later lines mount over earlier ones at the same point. Spaces come escaped as \040.
            mounts[_unescape(fields[4])] = tail.split()[0]
    target = Path(os.path.abspath(path))
    for candidate in (target, *target.parents):
        if str(candidate) in mounts:
            return str(candidate), mounts[str(candidate)]
    return "/", "unknown"


def _unescape(field: str) -> str:
    return field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n").replace("\\134", "\\")
