"""The save of every PC's facts into the state file at a nation's size (issue 32): wall and CPU time
of ``FleetState.save`` over N PCs (the fleet of ``bench.evaluate_tick``, frozen out of the garbage
collector's scans as ``collector/gckeeper.py`` leaves it), median of several saves,
on a state file on disk, and the longest the fleet lock was held at a time meanwhile (what the MQTT
thread can wait for one report).

``python -m bench.fleet_save [N] [SAVES]`` (default 100000 5). No broker, InfluxDB nor collector
process; ``bench.nation_scale`` measures the save inside the running collector (``save``).
"""

from __future__ import annotations

import gc
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.evaluate_tick import nation
from collector.store import Store


class TimedLock:
    """The fleet lock, timing each hold (the saving thread's only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.longest = 0.0
        self._since = 0.0

    def __enter__(self) -> None:
        self._lock.acquire()
        self._since = time.perf_counter()

    def __exit__(self, *_exc: object) -> None:
        self.longest = max(self.longest, time.perf_counter() - self._since)
        self._lock.release()


def main(n: int = 100_000, saves: int = 5) -> dict[str, Any]:
    now = time.time()
    state = nation(n, now)
    gc.collect()
    gc.freeze()  # as the collector's GC keeper leaves a fleet that has stopped growing
    with tempfile.TemporaryDirectory() as folder:
        state._store = Store(Path(folder) / "state.sqlite")
        timed = TimedLock()
        state.lock = timed  # type: ignore[assignment]
        walls, cpus = [], []
        for _ in range(saves):
            wall, cpu = time.perf_counter(), time.process_time()
            state.save()
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
        size = (Path(folder) / "state.sqlite").stat().st_size
    return {
        "pcs": n,
        "saves": saves,
        "wall_s_median": round(statistics.median(walls), 3),
        "cpu_s_median": round(statistics.median(cpus), 3),
        "lock_longest_ms": round(timed.longest * 1000, 1),
        "state_file_mb": round(size / 1e6, 1),
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    print(json.dumps(main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 5)))
