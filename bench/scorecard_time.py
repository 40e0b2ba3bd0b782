"""Benchmark: how long one commune's scorecard takes (``GET /api/v1/communes/{code}/scorecard``'s
work, ``collector.reports.make.scorecard``) with a nation's data: all 3,321 communes of the 34
provinces, a month of rollups written as ``bench/report_time.py`` writes them (its ``register`` and
``write_month``, a point every 30 minutes).

Real InfluxDB on loopback, in this process: the scorecard is computed for one commune at a time,
for communes drawn at random. ``cold``: no office window's sums kept in the state file (each window
asked of InfluxDB for that commune); ``warm``: the windows kept, as the collector's
``WindowKeeper`` keeps them an hour after each ends. Goal (issue 27): p99 under 300 ms.
Run: ``python -m bench.scorecard_time`` (``BENCH_SCORECARD_CALLS``: warm calls, default 300).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.report_time import _provinces, last_month, register, write_month
from collector.config import CollectorConfig
from collector.ingest.influx import InfluxClient
from collector.registry import units
from collector.registry.registry import Registry
from collector.reports.build import keep_windows
from collector.reports.make import scorecard
from collector.reports.windows import WindowSums
from collector.store import Store
from devtools.localstack import Influxd


def timed(config: CollectorConfig, store: Store, registry: Registry, codes: list[str], month: str) -> dict[str, float]:
    took = []
    for code in codes:
        started = time.perf_counter()
        card = scorecard(config, store, registry, code, month)
        took.append((time.perf_counter() - started) * 1000)
        assert card["commune"] == code
    took.sort()
    p99 = took[min(len(took) - 1, int(len(took) * 0.99))]
    return {"calls": len(took), "p50_ms": round(statistics.median(took), 1), "p99_ms": round(p99, 1),
            "max_ms": round(took[-1], 1)}  # fmt: skip


def main() -> dict[str, Any]:
    calls = int(os.environ.get("BENCH_SCORECARD_CALLS", "300"))
    with tempfile.TemporaryDirectory(prefix="bench-scorecard-") as tmp:
        folder = Path(tmp)
        influxd = Influxd(folder / "influxd")
        influxd.start()
        try:
            nation = [(p, c.code) for p in _provinces() for c in units.communes_of(p)]
            config = CollectorConfig(influxdb={"url": influxd.url, "database": "bench_nation"},
                                     state={"path": str(folder / "nation.sqlite")})  # fmt: skip
            register(config, nation)
            month = last_month()
            started = time.perf_counter()
            points = write_month(config, nation, month, 1800)
            figures: dict[str, Any] = {"communes": len(nation), "points": points,
                                       "write_s": round(time.perf_counter() - started, 1)}  # fmt: skip
            rng = random.Random(27)
            codes = [c for _p, c in nation]
            with Store(config.state.path) as store:
                registry = Registry(store, config.state.default_area)
                WindowSums(store).forget(0, time.time())
                figures["cold"] = timed(config, store, registry, rng.sample(codes, 30), str(month))
                print(figures, flush=True)
                client = InfluxClient(config.influxdb.model_copy(update={"timeout_s": config.report.query_timeout_s}))
                try:
                    started = time.perf_counter()
                    keep_windows(client, store, config.report, time.time())
                    figures["keep_s"] = round(time.perf_counter() - started, 1)
                finally:
                    client.close()
                figures["warm"] = timed(config, store, registry, rng.sample(codes, calls), str(month))
        finally:
            influxd.stop()
    print(figures)
    return figures


if __name__ == "__main__":
    main()
