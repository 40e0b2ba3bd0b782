"""The sensors collector: temperatures and battery where psutil has them, nothing where it has none."""

from __future__ import annotations

import psutil
from psutil._ntuples import sbattery, shwtemp
from psutil_fixtures import RecordedSensors

from agent.collectors.sensors import SensorsCollector

LAPTOP = RecordedSensors(
    temperatures={
        "coretemp": [
            shwtemp("Package id 0", 52.0, 84.0, 100.0),
            shwtemp("Core 0", 49.0, 84.0, 100.0),
            shwtemp("Core 1", 50.0, 84.0, 100.0),
        ],
        "nvme": [shwtemp("Composite", 38.85, 84.85, 89.85)],
        "acpitz": [shwtemp("", 27.8, None, None)],
    },
    battery=sbattery(percent=87, secsleft=psutil.POWER_TIME_UNLIMITED, power_plugged=True),
)


def test_a_laptop_reports_each_temperature_with_its_limits_and_its_battery() -> None:
    assert SensorsCollector(LAPTOP).collect() == [
        {"sensor": "coretemp_Package_id_0", "temp_c": 52.0, "temp_high_c": 84.0, "temp_critical_c": 100.0},
        {"sensor": "coretemp_Core_0", "temp_c": 49.0, "temp_high_c": 84.0, "temp_critical_c": 100.0},
        {"sensor": "coretemp_Core_1", "temp_c": 50.0, "temp_high_c": 84.0, "temp_critical_c": 100.0},
        {"sensor": "nvme_Composite", "temp_c": 38.85, "temp_high_c": 84.85, "temp_critical_c": 89.85},
        {"sensor": "acpitz_0", "temp_c": 27.8},  # no label: its index; no limits: none sent
        {"sensor": "battery", "battery_percent": 87.0, "power_plugged": 1.0},
    ]


def test_a_desktop_without_battery_reports_temperatures_only() -> None:
    desktop = RecordedSensors(temperatures={"k10temp": [shwtemp("Tctl", 45.125, None, None)]}, battery=None)

    assert SensorsCollector(desktop).collect() == [{"sensor": "k10temp_Tctl", "temp_c": 45.125}]


def test_a_battery_on_mains_power_reports_unplugged_as_zero() -> None:
    on_battery = RecordedSensors(battery=sbattery(percent=15, secsleft=1800, power_plugged=False))

    assert SensorsCollector(on_battery).collect() == [
        {"sensor": "battery", "battery_percent": 15.0, "power_plugged": 0.0}
    ]


def test_a_platform_without_sensor_functions_reports_nothing_and_raises_nothing() -> None:
    assert SensorsCollector(object()).collect() == []


def test_a_report_holds_at_most_64_sensors() -> None:
    crowded = RecordedSensors(
        temperatures={"chip": [shwtemp(f"t{n}", 40.0 + n, None, None) for n in range(70)]},
        battery=sbattery(percent=50, secsleft=600, power_plugged=True),
    )

    report = SensorsCollector(crowded).collect()

    assert len(report) == 64
    assert report[0] == {"sensor": "chip_t0", "temp_c": 40.0}
    assert report[-1] == {"sensor": "chip_t63", "temp_c": 103.0}
