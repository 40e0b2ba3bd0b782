"""Machine-wide health: CPU, load, memory, swap, uptime and process count."""

from __future__ import annotations

import os
import time

import psutil


class SystemCollector:
    section = "system"

    def __init__(self) -> None:
        psutil.cpu_percent(interval=None)  # primes the counter so the next call covers one interval

    def collect(self) -> dict[str, float]:
        memory = psutil.virtual_memory()
        swap = psutil.swap_memory()
        boot_time = psutil.boot_time()
        load1, load5, load15 = os.getloadavg() if hasattr(os, "getloadavg") else psutil.getloadavg()
        return {
            "cpu_percent": psutil.cpu_percent(interval=None),
            "load1": load1,
            "load5": load5,
            "load15": load15,
            "cpu_count": float(psutil.cpu_count() or 1),
            "mem_total_bytes": float(memory.total),
            "mem_available_bytes": float(memory.available),
            "mem_used_percent": memory.percent,
            "swap_total_bytes": float(swap.total),
            "swap_used_percent": swap.percent,
            "uptime_s": max(0.0, time.time() - boot_time),
            "boot_time": boot_time,
            "process_count": float(len(psutil.pids())),
        }
