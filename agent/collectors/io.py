"""Slow I/O, the evidence of a PC that "hangs": how busy the system disk was since the last
cycle, how long one of its I/Os took, and the kernel's pressure-stall figures.

On Linux the counters come from the system disk's ``/sys/block/<disk>/stat``, the
figures psutil's ``disk_io_counters`` gives as ``busy_time``, ``read_time`` and ``write_time``,
read for that one disk (psutil reads every disk and partition: 170 µs here against 15 µs).
Pressure stall information (Linux 4.20 and newer, ``/proc/pressure/io`` and ``memory``): the
share of the last 60 s in which some task waited for I/O or memory. Where a figure cannot be
read it is left out; where none can, the section is empty and left out of the report.
On Windows the busy share and mean I/O time come from the PhysicalDisk performance counters
(agent/windows/diskperf.py, which Linux never imports); there are no pressure-stall figures there.
"""

from __future__ import annotations

import os
import sys
import time
from typing import Callable

from agent.diskhealth import sysfs

PRESSURE = "/proc/pressure"


class IoCollector:
    section = "io"

    def __init__(
        self,
        sys_block: str = sysfs.SYS_BLOCK,
        pressure: str = PRESSURE,
        clock: Callable[[], float] = time.monotonic,
        mounts: str = sysfs.MOUNTS,
    ) -> None:
        self._clock = clock
        self._windows: Callable[[], dict[str, float | str]] | None = None
        if sys.platform == "win32":
            from agent.windows.diskperf import WmiDiskPerf

            self._windows = WmiDiskPerf()
        self._disk = sysfs.system_disk(sys_block, mounts)  # found once: the system disk does not move
        self._stat = sysfs.KeptFile(os.path.join(sys_block, self._disk or "-", "stat"))
        self._pressure = {name: sysfs.KeptFile(os.path.join(pressure, name)) for name in ("io", "memory")}
        self._last: tuple[float, sysfs.DiskStat] | None = None

    def collect(self) -> dict[str, float | str]:
        if self._windows is not None:
            return self._windows()
        out: dict[str, float | str] = {}
        if self._disk is not None:
            text = self._stat.read()
            now, stat = self._clock(), sysfs.parse_stat(text) if text is not None else None
            if stat is not None:
                out["system_disk"] = self._disk
                out.update(slow_io(self._last, (now, stat)))
                self._last = (now, stat)
        for name, kept in self._pressure.items():
            some = pressure_some_avg60(kept.read())
            if some is not None:
                out[f"psi_{name}_some_avg60"] = some
        return out


def slow_io(before: tuple[float, sysfs.DiskStat] | None, now: tuple[float, sysfs.DiskStat]) -> dict[str, float | str]:
    """The share of wall time the disk was busy and the mean time of one I/O between two readings;
    nothing for the first reading, or after the counters went back (a disk reset)."""
    if before is None:
        return {}
    wall_ms = (now[0] - before[0]) * 1000.0
    ios, io_ms, busy_ms = (b - a for a, b in zip(before[1], now[1]))
    if wall_ms <= 0 or ios < 0 or io_ms < 0 or busy_ms < 0:
        return {}
    return {
        "busy_percent": min(100.0, 100.0 * busy_ms / wall_ms),
        "await_ms": io_ms / ios if ios else 0.0,
    }


def pressure_some_avg60(text: str | None) -> float | None:
    """``avg60`` of the ``some`` line of a pressure file's text, None where the kernel has none."""
    if not text or not text.startswith("some "):
        return None
    for part in text.split("\n", 1)[0].split():
        if part.startswith("avg60="):
            try:
                return float(part[6:])
            except ValueError:
                return None
    return None
