"""``make bench``: runs every benchmark and writes the figures to bench/results.json.

Benchmarks measure; they never pass or fail. Each one also runs alone, e.g.
``python -m bench.time_to_alert``.
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import (
    agent_footprint,
    collector_throughput,
    console_page,
    disk_health_cpu,
    fleet_save,
    ingest_only,
    nation_scale,
    pcsc_cpu,
    peripherals_cpu,
    province_scale,
    publish_cost,
    recovery,
    report_time,
    scorecard_time,
    time_to_alert,
)

RESULTS = Path(__file__).with_name("results.json")


def main() -> None:
    figures = {
        "time_to_alert": time_to_alert.main(),
        "agent_footprint": agent_footprint.main(),
        "peripherals_cpu": peripherals_cpu.main(),
        "disk_health_cpu": disk_health_cpu.main(),
        "pcsc_cpu": pcsc_cpu.main(),
        "collector_throughput": collector_throughput.main(),
        "publish_cost": publish_cost.main(),
        "ingest_only": ingest_only.main(),
        "report_time": report_time.main(),
        "scorecard_time": scorecard_time.main(),
        "province_scale": province_scale.main(),
        "recovery": recovery.main(),
        "console_page": console_page.main(),
        "nation_scale": nation_scale.main(),
        "fleet_save": fleet_save.main(),
    }
    RESULTS.write_text(json.dumps(figures, indent=2) + "\n")
    print(f"figures written to {RESULTS}")


if __name__ == "__main__":
    main()
