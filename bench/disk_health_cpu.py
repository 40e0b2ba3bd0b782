"""Benchmark: what disk health and slow-I/O evidence cost the agent, as CPU and as a ratio in the same run.

- A disk-health round (``agent.diskhealth.job.DiskHealthJob``) on this machine: the agent's own
  CPU (``time.process_time``) and smartctl's (``RUSAGE_CHILDREN``), for each of its disks. This
  VM's disk is virtual, so smartctl stops at "Unable to detect device type"; the parse of a real
  output is timed apart on the largest recorded one (tests/recorded/smartctl/, 38 kB, ``-x``).
- The metrics cycle with the ``io`` collector against the same cycle without it, rounds
  alternating so that machine load falls on both alike: ``io_cycle_ratio`` is with / without.

Run: ``python -m bench.disk_health_cpu``.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
from pathlib import Path

from agent.collectors.io import IoCollector
from agent.config import CollectConfig, DiskHealthConfig
from agent.diskhealth import smart
from agent.diskhealth.job import DiskHealthJob, run_smartctl
from agent.runner import MetricsBuilder
from bench.measure import cpu_ms

ROUNDS = int(os.environ.get("BENCH_DISK_HEALTH_ROUNDS", "300"))
HEALTH_ROUNDS = int(os.environ.get("BENCH_DISK_HEALTH_SMART_ROUNDS", "20"))
LARGEST = Path(__file__).resolve().parents[1] / "tests" / "recorded" / "smartctl" / "ssd-samsung-860-evo-healthy.json"


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run() -> dict[str, float]:
    settings = DiskHealthConfig()
    job = DiskHealthJob(run_smartctl(settings.smartctl, settings.timeout_s), settings.sysfs_root)
    disks = len(job().get("disk_health", []))
    own, child = [], []
    for _ in range(HEALTH_ROUNDS):
        before = children_cpu_s()
        own.append(cpu_ms(job))
        child.append((children_cpu_s() - before) * 1000)
    text = LARGEST.read_text()
    parse = statistics.fmean(cpu_ms(lambda: smart.disk_fields(json.loads(text))) for _ in range(200))

    with_io = MetricsBuilder(None, CollectConfig().interval_s)
    without = MetricsBuilder(None, CollectConfig().interval_s)
    without._collectors = [c for c in without._collectors if not isinstance(c, IoCollector)]
    with_io(), without()
    cycles_with, cycles_without = [], []
    for _ in range(ROUNDS):
        cycles_with.append(cpu_ms(with_io))
        cycles_without.append(cpu_ms(without))
    mean_with, mean_without = statistics.fmean(cycles_with), statistics.fmean(cycles_without)
    round_ms = statistics.fmean(own) + statistics.fmean(child)
    return {
        "disks": float(disks),
        "health_rounds": float(HEALTH_ROUNDS),
        "health_round_agent_cpu_ms": round(statistics.fmean(own), 3),
        "health_round_smartctl_cpu_ms": round(statistics.fmean(child), 3),
        "health_round_cpu_ms": round(round_ms, 3),
        "parse_largest_recorded_cpu_ms": round(parse, 3),
        "health_share_of_6h": round(round_ms / (settings.interval_s * 1000), 9),
        "rounds": float(ROUNDS),
        "cycle_without_io_cpu_ms": round(mean_without, 3),
        "cycle_with_io_cpu_ms": round(mean_with, 3),
        "io_cycle_ratio": round(mean_with / mean_without, 4),
    }


def report(result: dict[str, float]) -> None:
    print(
        f"disk health: a round over {result['disks']:g} disk(s) costs {result['health_round_cpu_ms']:.2f} ms of CPU"
        f" (agent {result['health_round_agent_cpu_ms']:.2f}, smartctl {result['health_round_smartctl_cpu_ms']:.2f});"
        f" parsing the largest recorded output {result['parse_largest_recorded_cpu_ms']:.3f} ms;"
        f" metrics cycle {result['cycle_without_io_cpu_ms']:.3f} ms without io,"
        f" {result['cycle_with_io_cpu_ms']:.3f} ms with (ratio {result['io_cycle_ratio']:.4f})"
    )


def main() -> dict[str, float]:
    result = run()
    report(result)
    return result


if __name__ == "__main__":
    main()
