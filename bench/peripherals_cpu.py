"""Benchmark: the CPU that listing USB peripherals adds to an agent cycle, as a ratio in the same run.

The reference is the agent's own metrics cycle (``MetricsBuilder``: system, disk, net, sensors),
measured in this process. Against it: the polls of the peripherals job that fall in one cycle
(``interval_s`` / ``poll_interval_s`` = 6 at the defaults) reading the fixture bus in
tests/data/usb_sysfs (7 USB devices, 4 reported), both steady (devices already read: one
directory listing a poll) and cold (every descriptor read again, as after a plug). Rounds
alternate the two so that machine load falls on both alike. CPU is ``time.process_time``.
Run: ``python -m bench.peripherals_cpu``.
"""

from __future__ import annotations

import os
import statistics
from pathlib import Path

from agent.config import CollectConfig, PeripheralsConfig
from agent.peripherals.classify import shipped_known_ids
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker
from agent.runner import MetricsBuilder
from bench.measure import cpu_ms

ROUNDS = int(os.environ.get("BENCH_PERIPHERALS_ROUNDS", "200"))
USB_FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"
POLLS_PER_CYCLE = round(CollectConfig().interval_s / PeripheralsConfig().poll_interval_s)


def run() -> dict[str, float]:
    known = shipped_known_ids()
    metrics = MetricsBuilder(None, CollectConfig().interval_s)
    steady = PeripheralsTracker(SysfsSource(USB_FIXTURE), known)
    metrics()
    steady()  # first poll reads the descriptors; later ones list the directory only

    def steady_polls() -> None:
        for _ in range(POLLS_PER_CYCLE):
            steady()

    def cold_polls() -> None:
        for _ in range(POLLS_PER_CYCLE):
            PeripheralsTracker(SysfsSource(USB_FIXTURE), known)()

    cycles, steadies, colds = [], [], []
    for _ in range(ROUNDS):
        cycles.append(cpu_ms(metrics))
        steadies.append(cpu_ms(steady_polls))
        colds.append(cpu_ms(cold_polls))
    cycle = statistics.fmean(cycles)
    return {
        "rounds": float(ROUNDS),
        "polls_per_cycle": float(POLLS_PER_CYCLE),
        "metrics_cycle_cpu_ms": round(cycle, 3),
        "peripherals_polls_cpu_ms_per_cycle": round(statistics.fmean(steadies), 3),
        "peripherals_cold_polls_cpu_ms_per_cycle": round(statistics.fmean(colds), 3),
        "peripherals_to_metrics_cycle_ratio": round(statistics.fmean(steadies) / cycle, 4),
        "cold_peripherals_to_metrics_cycle_ratio": round(statistics.fmean(colds) / cycle, 4),
    }


def report(result: dict[str, float]) -> None:
    print(
        f"peripherals CPU over {result['rounds']:g} rounds: a metrics cycle {result['metrics_cycle_cpu_ms']:.3f} ms;"
        f" its {result['polls_per_cycle']:g} USB polls {result['peripherals_polls_cpu_ms_per_cycle']:.3f} ms"
        f" (ratio {result['peripherals_to_metrics_cycle_ratio']:.4f}), all descriptors read again"
        f" {result['peripherals_cold_polls_cpu_ms_per_cycle']:.3f} ms"
        f" (ratio {result['cold_peripherals_to_metrics_cycle_ratio']:.4f})"
    )


def main() -> dict[str, float]:
    result = run()
    report(result)
    return result


if __name__ == "__main__":
    main()
