"""One fleet evaluation tick in-process at a nation's size (issue 32): CPU and wall time of
``FleetState.evaluate`` over N PCs spread over all 3,321 communes (each with a line), median of
several ticks, and the garbage collector's pauses per tick, with the collector's GC policy
(``collector/gckeeper.py``, as the service applies it after a tick) or without it.

``python -m bench.evaluate_tick [N] [TICKS] [keeper|plain|nogc]`` (default 100000 7 keeper).
No broker, InfluxDB nor collector process: only the tick, so it can be measured on a loaded machine
in a minute. ``bench.nation_scale`` measures the whole collector.
"""

from __future__ import annotations

import gc
import json
import random
import statistics
import sys
import time
from collections import deque
from typing import Any

from collector.config import FleetSettings
from collector.fleet.facts import DAY_S, HostFacts
from collector.fleet.state import FleetState
from collector.gckeeper import GcKeeper
from collector.localtime import LOCAL_DAYS
from collector.registry import units
from collector.registry.registry import HostKey, Line, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store


def nation(n: int, now: float) -> FleetState:
    """N PCs named as ``bench.nation_scale`` names them, with a day of facts: gaps, reboots, 10 line
    samples and 8 days of traffic each, figures drawn at random (seeded)."""
    rng = random.Random(32)
    store = Store(":memory:")
    registry = Registry(store, "unassigned")
    communes = units.every_commune()
    registry.upsert_lines(
        [Line(f"L-{c.code}", c.province_code, c.code, "VNPT", 100.0, 100.0, "2025-08-15") for c in communes]
    )
    state = FleetState(store, registry, FleetSettings(restart_grace_s=0), started_at=now - 10 * DAY_S)
    days = [LOCAL_DAYS.day(now - d * DAY_S) for d in range(8)]
    for i in range(n):
        c = communes[i % len(communes)]
        key = HostKey(c.province_code, c.code, f"pc-{i // len(communes) + 1:02d}")
        last = now - rng.uniform(0, 60)
        registry.touch(key, last, "online")
        facts = HostFacts(last_report=last, disk_percent=rng.uniform(10, 95), mem_percent=rng.uniform(10, 95),
                          cpu_percent=rng.uniform(0, 100), boot_time=now - 3 * DAY_S, uplink="eth0")  # fmt: skip
        facts.gaps = [now - rng.uniform(0, DAY_S) for _ in range(rng.randint(0, 2))]
        facts.reboots = [now - rng.uniform(0, DAY_S) for _ in range(rng.randint(0, 1))]
        facts.samples = deque((now - 30 * k, rng.uniform(0, 5), rng.uniform(10, 80)) for k in range(10))
        facts.traffic_by_day = {d: rng.uniform(1e6, 1e9) for d in days}
        state.facts[key] = facts
    return state


def main(n: int = 100_000, ticks: int = 7, mode: str = "keeper") -> dict[str, Any]:
    now = time.time()
    state = nation(n, now)
    pauses = [0.0, 0.0, 0.0]
    started = [0.0]

    def timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses[info["generation"]] += time.perf_counter() - started[0]

    keeper = GcKeeper(SelfMetrics().gc_pause_seconds)
    if mode == "nogc":
        gc.disable()
    state.evaluate(now)  # the first tick after the fleet is known, as in the service
    if mode == "keeper":
        keeper.start()
        keeper.after_tick(len(state.facts))
    gc.callbacks.append(timed)
    cpu, wall = [], []
    try:
        for tick in range(ticks):
            cpu_before, wall_before = time.process_time(), time.perf_counter()
            state.evaluate(now + 5 * (tick + 1))
            cpu.append(time.process_time() - cpu_before)
            wall.append(time.perf_counter() - wall_before)
    finally:
        gc.callbacks.remove(timed)
        keeper.stop()
        gc.enable()
    return {
        "pcs": n,
        "mode": mode,
        "ticks": ticks,
        "cpu_s_median": round(statistics.median(cpu), 3),
        "cpu_s_min_max": [round(min(cpu), 3), round(max(cpu), 3)],
        "wall_s_median": round(statistics.median(wall), 3),
        "gc_pause_s_per_tick_by_generation": [round(p / ticks, 3) for p in pauses],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    found = main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 7,
                 args[2] if len(args) > 2 else "keeper")  # fmt: skip
    print(json.dumps(found))
