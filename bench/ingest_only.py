"""Benchmark: the collector's message handling alone (``Ingestor.handle``), in-process, on one core.

Why a bench of its own: ``collector_throughput`` measures the same figure
(``ingest_only_cpu_us_per_report``) but only after starting Mosquitto and InfluxDB, which takes
minutes; this one needs no service and runs in seconds, so a change to the handling path can be
judged at once. Same reports (``metrics``, 4 points and 41 fields, 3,100 hosts of 124 communes in
two areas) and the same state file as the throughput bench, so the two figures agree.

Three passes over the same messages, each reported: ``first`` (a fresh collector: every host and
series is new), ``again`` (the same collector, the next report of every host, as in steady state),
and ``reference``: ``json.loads`` of every payload, a fixed amount of work measured in the same
run, so ``again_over_reference`` compares runs on a loaded machine. ``BENCH_INGEST_REPORTS``
(default 60,000) sets how many reports a pass handles. Run: ``python -m bench.ingest_only``.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.collector_throughput import (
    REPORT_SPACING_S,
    Settings,
    assign_areas,
    hosts_by_publisher,
    metrics_report,
    sustained_plan,
)
from collector.config import IngestSettings
from collector.ingest.checks import Ingestor
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import encode

PASSES = ("first", "again")


def payloads(reports: int, base_ts: int) -> list[tuple[str, bytes]]:
    """``reports`` metrics messages round-robin over the hosts, as the throughput bench sends them."""
    settings = Settings(reports, 2, 25, 0, 0, 0.0)
    owned = hosts_by_publisher(settings)
    per_publisher = reports // len(owned)
    plans = [sustained_plan(hosts, per_publisher, base_ts) for hosts in owned]
    return [(topic, encode(metrics_report(ts, seq))) for items in plans for seq, (topic, ts) in enumerate(items)]


def cpu_us_per_report(ingestor: Ingestor, messages: list[tuple[str, bytes]], received_at: float) -> float:
    """CPU time of ``Ingestor.handle`` per message, over all of them; every message must give lines."""
    started = time.process_time()
    handled = [ingestor.handle(topic, payload, received_at) for topic, payload in messages]
    elapsed = time.process_time() - started
    if not all(handled):
        raise RuntimeError("a benchmark report was rejected: the figure would not be the handling of a report")
    return elapsed / len(messages) * 1e6


def reference_us_per_report(messages: list[tuple[str, bytes]]) -> float:
    started = time.process_time()
    for _topic, payload in messages:
        json.loads(payload)
    return (time.process_time() - started) / len(messages) * 1e6


def run(folder: Path, reports: int) -> dict[str, Any]:
    now = time.time()
    base_ts = int(now) - 3600
    owned = hosts_by_publisher(Settings(reports, 2, 25, 0, 0, 0.0))
    state_path = folder / "state.db"
    assign_areas(state_path, owned)
    store = Store(state_path)
    try:
        ingestor = Ingestor(Registry(store, "unassigned"), SelfMetrics(), IngestSettings())
        messages = payloads(reports, base_ts)
        figures: dict[str, Any] = {"reports": len(messages), "hosts": sum(map(len, owned))}
        for name in PASSES:
            figures[f"{name}_cpu_us_per_report"] = round(cpu_us_per_report(ingestor, messages, now), 2)
            # the next pass: every host's following reports, an agent interval later
            messages = payloads(reports, base_ts + (reports // figures["hosts"] + 1) * REPORT_SPACING_S)
        reference = reference_us_per_report(messages)
        figures["reference_json_loads_us_per_report"] = round(reference, 2)
        figures["again_over_reference"] = round(figures["again_cpu_us_per_report"] / reference, 2)
        figures["load_average_1m"] = round(os.getloadavg()[0], 2)
    finally:
        store.close()
    return figures


def main() -> dict[str, Any]:
    reports = int(os.environ.get("BENCH_INGEST_REPORTS", "60000"))
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as folder:
        figures = run(Path(folder), reports)
    print("collector message handling (Ingestor.handle), metrics reports of 4 points and 41 fields, one core:")
    for name, value in figures.items():
        print(f"  {name}: {value}")
    return figures


if __name__ == "__main__":
    main()
