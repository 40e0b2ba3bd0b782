"""The system collector: CPU, load, memory, swap, uptime and process count, from psutil's own tuples."""

from __future__ import annotations

from psutil_fixtures import BOOT_TIME, Clock, RecordedPsutil

from agent.collectors.system import SystemCollector


def test_an_office_pc_gives_exactly_its_cpu_memory_swap_uptime_and_process_count(office_pc: RecordedPsutil) -> None:
    collector = SystemCollector(office_pc, clock=Clock(BOOT_TIME + 3600))

    assert collector.collect() == {
        "cpu_percent": 23.4,
        "load1": 0.42,
        "load5": 0.57,
        "load15": 0.61,
        "cpu_count": 4.0,
        "mem_total_bytes": 8_254_304_256.0,
        "mem_available_bytes": 5_106_851_840.0,
        "mem_used_percent": 38.1,
        "swap_total_bytes": 2_147_483_648.0,
        "swap_used_percent": 12.5,
        "uptime_s": 3600.0,
        "boot_time": 1_764_460_800.0,
        "process_count": 187.0,
    }


def test_the_cpu_counter_is_primed_when_the_collector_is_made(office_pc: RecordedPsutil) -> None:
    SystemCollector(office_pc)

    assert office_pc.calls == ["cpu_percent"]
    assert office_pc.cpu_percents == [23.4]  # the first report covers the interval since start-up


def test_a_clock_behind_the_boot_time_gives_zero_uptime_not_a_negative_one(office_pc: RecordedPsutil) -> None:
    report = SystemCollector(office_pc, clock=Clock(BOOT_TIME - 120)).collect()

    assert report["uptime_s"] == 0.0
    assert report["boot_time"] == 1_764_460_800.0


def test_an_unknown_cpu_count_is_reported_as_one(office_pc: RecordedPsutil) -> None:
    office_pc.logical_cpus = None

    assert SystemCollector(office_pc, clock=Clock(BOOT_TIME)).collect()["cpu_count"] == 1.0
