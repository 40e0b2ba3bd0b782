"""Machine-wide health: CPU, load, memory, swap, uptime and process count.

psutil and the wall clock are passed in (psutil and ``time.time`` by default), so tests pin the output.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import psutil

from agent.collectors.psutil_api import PsutilLike


class SystemCollector:
    section = "system"

    def __init__(self, ps: PsutilLike = psutil, clock: Callable[[], float] = time.time) -> None:
        self._ps = ps
        self._clock = clock
        ps.cpu_percent(interval=None)  # primes the counter so the next call covers one interval

    def collect(self) -> dict[str, float]:
        ps = self._ps
        memory = ps.virtual_memory()
        swap = ps.swap_memory()
        boot_time = ps.boot_time()
        load1, load5, load15 = ps.getloadavg()  # os.getloadavg where the OS has one
        return {
            "cpu_percent": ps.cpu_percent(interval=None),
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "cpu_count": float(ps.cpu_count() or 1),
            "mem_total_bytes": float(memory.total),
            "mem_available_bytes": float(memory.available),
            "mem_used_percent": memory.percent,
            "swap_total_bytes": float(swap.total),
            "swap_used_percent": swap.percent,
            "uptime_s": max(0.0, self._clock() - boot_time),
            "boot_time": boot_time,
            "process_count": float(len(ps.pids())),
        }
