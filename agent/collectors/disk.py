"""Usage of each real mounted filesystem and the read/write rates of the device under it."""

from __future__ import annotations

import os

import psutil

from agent.collectors.rates import RateTracker
from agent.labels import to_label

PSEUDO_FILESYSTEMS = frozenset({"squashfs", "tmpfs", "devtmpfs", "overlay", "iso9660", "udf"})


class DiskCollector:
    section = "disk"

    def __init__(self) -> None:
        self._rates = RateTracker()

    def collect(self) -> list[dict[str, float | str]]:
        io = psutil.disk_io_counters(perdisk=True) or {}
        out: list[dict[str, float | str]] = []
        seen: set[str] = set()
        for part in psutil.disk_partitions(all=False):
            if part.fstype in PSEUDO_FILESYSTEMS or part.mountpoint in seen or "/snap/" in part.mountpoint:
                continue
            seen.add(part.mountpoint)
            try:
                usage = psutil.disk_usage(part.mountpoint)
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
