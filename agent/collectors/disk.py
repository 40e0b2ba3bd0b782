"""Usage of each real mounted filesystem and the read/write rates of the device under it.

Only filesystems a person stores files on are reported. Pseudo-filesystems (proc, tmpfs, cgroup,
squashfs snaps, ...) and container mounts (overlay roots and volumes under Docker's, Podman's,
containerd's or the kubelet's folders) come and go with names that are new each time, and every
new mount name is a new series in InfluxDB, so they are left out by default (the collector also
bounds the mount names a host may use: ``[ingest] max_values_per_tag``).

The one filesystem holding the agent's own files (the spool) is always reported, whatever its
type (tmpfs, overlay): when that disk is full the agent's spool fails, and the collector should
see ``disk_full`` beside ``spool_failed``.

psutil and the monotonic clock are passed in (psutil and ``time.monotonic`` by default), so tests pin
the output and the rates.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import psutil

from agent.collectors.psutil_api import PsutilLike
from agent.collectors.rates import RateTracker
from agent.labels import to_label

PSEUDO_FILESYSTEMS = frozenset(
    {
        "autofs", "binfmt_misc", "bpf", "cgroup", "cgroup2", "configfs", "debugfs", "devpts", "devtmpfs",
        "efivarfs", "fuse.gvfsd-fuse", "fuse.lxcfs", "fuse.portal", "fuse.snapfuse", "fusectl", "hugetlbfs",
        "iso9660", "mqueue", "nsfs", "overlay", "aufs", "proc", "pstore", "ramfs", "rpc_pipefs", "securityfs",
        "selinuxfs", "squashfs", "sysfs", "tmpfs", "tracefs", "udf", "zram", "cdfs",
    }
)  # fmt: skip
# Mounts under these folders belong to containers, snaps or the system, not to a person.
SKIPPED_MOUNT_PREFIXES = (
    "/proc/", "/sys/", "/dev/", "/run/user/", "/run/docker/", "/run/containerd/", "/run/netns/", "/snap/",
    "/var/snap/", "/var/lib/docker/", "/var/lib/containers/", "/var/lib/kubelet/", "/var/lib/lxc/",
    "/var/lib/lxd/", "/var/lib/snapd/",
)  # fmt: skip


def is_reported(mountpoint: str, fstype: str) -> bool:
    """Whether a mount is a real filesystem worth a series: not a pseudo-filesystem or a container's."""
    if fstype.lower() in PSEUDO_FILESYSTEMS:
        return False
    return not (mountpoint + "/").startswith(SKIPPED_MOUNT_PREFIXES)


class DiskCollector:
    section = "disk"

    def __init__(
        self, watch_paths: tuple[str, ...] = (), ps: PsutilLike = psutil, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._ps = ps
        self._rates = RateTracker(clock)
        self._watch_paths = watch_paths
        self._watched: tuple[tuple[int, ...], list[Any]] | None = None  # (the paths' devices, their mounts)

    def collect(self) -> list[dict[str, float | str]]:
        io = self._ps.disk_io_counters(perdisk=True) or {}
        out: list[dict[str, float | str]] = []
        seen: set[str] = set()
        parts = [part for part in self._ps.disk_partitions(all=False) if is_reported(part.mountpoint, part.fstype)]
        parts += self._watched_partitions()
        for part in parts:
            if part.mountpoint in seen:
                continue
            seen.add(part.mountpoint)
            try:
                usage = self._ps.disk_usage(part.mountpoint)
            except OSError:
                continue  # a mount that vanished or is not readable is not an error of the agent
            item: dict[str, float | str] = {
                "mount": to_label(part.mountpoint.rstrip("\\") or "/"),
                "total_bytes": float(usage.total),
                "used_bytes": float(usage.used),
                "free_bytes": float(usage.free),
                "used_percent": usage.percent,
            }
            counters = io.get(os.path.basename(part.device))
            if counters is not None:
                rates = self._rates.rates(
                    part.mountpoint,
                    {
                        "read_bytes_per_s": counters.read_bytes,
                        "write_bytes_per_s": counters.write_bytes,
                        "read_ops_per_s": counters.read_count,
                        "write_ops_per_s": counters.write_count,
                    },
                )
                item.update(rates)
            out.append(item)
        return out

    def _watched_partitions(self) -> list[Any]:
        """The mounts holding the watched paths, listed again only when a path's device changes (a
        filesystem mounted over it or taken away): listing every mount each cycle was a third of this
        collector's CPU."""
        try:
            devices = tuple(os.stat(path).st_dev for path in self._watch_paths)
        except OSError:  # a path not there (yet): look it up every time
            return watched_partitions(self._watch_paths, self._ps)
        if self._watched is None or self._watched[0] != devices:
            self._watched = (devices, watched_partitions(self._watch_paths, self._ps))
        return self._watched[1]


def watched_partitions(paths: tuple[str, ...], ps: PsutilLike = psutil) -> list[Any]:
    """The mounted filesystem holding each path (the longest mount point above it)."""
    if not paths:
        return []
    mounts = ps.disk_partitions(all=True)
    found = []
    for path in paths:
        real = os.path.realpath(path)
        above = [m for m in mounts if real == m.mountpoint or real.startswith(m.mountpoint.rstrip("/") + "/")]
        if above:
            found.append(max(above, key=lambda m: len(m.mountpoint)))
    return found
