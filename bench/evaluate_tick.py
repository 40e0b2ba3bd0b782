"""One fleet evaluation tick in-process at a nation's size (issue 32): CPU and wall time of
``FleetState.evaluate`` over N PCs spread over all 3,321 communes (each with a line), median of
several ticks, and the garbage collector's pauses per tick, with the collector's GC policy
(``collector/gckeeper.py``, as the service applies it after a tick) or without it.

Before each tick the PCs whose turn it is report (N * evaluate_interval_s / 30 of them: agents
report every 30 s) through the registry and ``FleetState.observe``, and the clock moves on by
``evaluate_interval_s``: the incremental evaluation is measured with the work a real tick has, not
over a fleet where nothing changed. The same run then measures as many full evaluations
(``evaluate(now, full=True)``) under the same reports, as ``full_cpu_s_median``.

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
from collector.ingest.checks import Accepted
from collector.localtime import LOCAL_DAYS
from collector.registry import units
from collector.registry.registry import HostKey, Line, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import Report, decode_report, encode


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


REPORT_EVERY_S = 30.0  # agents report every 30 s: a 5 s tick brings new facts for a sixth of the PCs


def metrics_reports(rng: random.Random, now: float) -> list[Report]:
    """A few metrics reports as agents send them (built once: the publisher is not what is measured)."""
    out = []
    for _ in range(16):
        body = {"v": 1, "ts": now,
                "system": {"cpu_percent": rng.uniform(0, 100), "mem_used_percent": rng.uniform(10, 95),
                           "swap_used_percent": rng.uniform(0, 60), "boot_time": now - 3 * DAY_S},
                "disk": [{"mount": "/", "used_percent": rng.uniform(10, 95)}],
                "net": [{"nic": "eth0", "default_route": 1.0, "rx_bytes_per_s": rng.uniform(0, 1e5),
                         "tx_bytes_per_s": rng.uniform(0, 1e4)}],
                "agent": {"interval_s": REPORT_EVERY_S, "spool_ok": 1.0}}  # fmt: skip
        out.append(decode_report("metrics", encode(body)))
    return out


def report_one_tick(state: FleetState, keys: list[HostKey], tick: int, reports: list[Report], now: float) -> int:
    """The PCs whose turn it is in this tick report, through the registry and ``FleetState.observe``
    as ingest hands them over (so they are marked changed); returns how many."""
    turns = round(REPORT_EVERY_S / state.settings.evaluate_interval_s)
    reporting = keys[tick % turns :: turns]
    for n, key in enumerate(reporting):
        state.registry.touch(key, now)
        state.observe(Accepted(key, "unassigned", reports[n % len(reports)], now, int(now)))
    return len(reporting)


def ticks_of(state: FleetState, keys: list[HostKey], reports: list[Report], now: float, first: int, ticks: int,
             full: bool, keeper: GcKeeper | None) -> tuple[list[float], list[float], int]:  # fmt: skip
    """CPU and wall time of ``ticks`` evaluations, each after a tick's reports and 5 s later than the
    one before; the GC keeper's work after each tick, as the service does it, is not counted."""
    cpu, wall, reported = [], [], 0
    for tick in range(first, first + ticks):
        at = now + state.settings.evaluate_interval_s * (tick + 1)
        reported = report_one_tick(state, keys, tick, reports, at)
        cpu_before, wall_before = time.process_time(), time.perf_counter()
        state.evaluate(at, full=full)
        cpu.append(time.process_time() - cpu_before)
        wall.append(time.perf_counter() - wall_before)
        if keeper is not None:
            keeper.after_tick(len(state.facts))
    return cpu, wall, reported


def main(n: int = 100_000, ticks: int = 7, mode: str = "keeper") -> dict[str, Any]:
    now = time.time()
    state = nation(n, now)
    keys = list(state.facts)
    reports = metrics_reports(random.Random(33), now)
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
    state.evaluate(now, full=True)  # the first tick after the fleet is known, as in the service
    if mode == "keeper":
        keeper.start()
        keeper.after_tick(len(state.facts))
    gc.callbacks.append(timed)
    try:
        kept = keeper if mode == "keeper" else None
        cpu, wall, reported = ticks_of(state, keys, reports, now, 0, ticks, False, kept)
        cpu_full, wall_full, _ = ticks_of(state, keys, reports, now, ticks, ticks, True, kept)
    finally:
        gc.callbacks.remove(timed)
        keeper.stop()
        gc.enable()
    return {
        "pcs": n,
        "mode": mode,
        "ticks": ticks,
        "pcs_reporting_per_tick": reported,
        "cpu_s_median": round(statistics.median(cpu), 3),
        "cpu_s_min_max": [round(min(cpu), 3), round(max(cpu), 3)],
        "wall_s_median": round(statistics.median(wall), 3),
        "full_cpu_s_median": round(statistics.median(cpu_full), 3),
        "full_cpu_s_min_max": [round(min(cpu_full), 3), round(max(cpu_full), 3)],
        "full_wall_s_median": round(statistics.median(wall_full), 3),
        "gc_pause_s_per_tick_by_generation": [round(p / (2 * ticks), 3) for p in pauses],
    }


if __name__ == "__main__":
    args = sys.argv[1:]
    found = main(int(args[0]) if args else 100_000, int(args[1]) if len(args) > 1 else 7,
                 args[2] if len(args) > 2 else "keeper")  # fmt: skip
    print(json.dumps(found))
