"""Temperatures and battery where the platform reports them; an absent sensor is not an error.

psutil is passed in (psutil by default), so tests pin the output. Its sensor functions exist only on
some platforms, hence the ``getattr``.
"""

from __future__ import annotations

import psutil

from agent.labels import to_label

MAX_SENSORS = 64


class SensorsCollector:
    section = "sensors"

    def __init__(self, ps: object = psutil) -> None:
        self._ps = ps

    def collect(self) -> list[dict[str, float | str]]:
        out: list[dict[str, float | str]] = []
        read_temperatures = getattr(self._ps, "sensors_temperatures", None)
        temperatures = read_temperatures() if read_temperatures else {}
        for chip, readings in temperatures.items():
            for index, reading in enumerate(readings):
                item: dict[str, float | str] = {
                    "sensor": to_label(f"{chip}_{reading.label or index}"),
                    "temp_c": float(reading.current),
                }
                if reading.high:
                    item["temp_high_c"] = float(reading.high)
                if reading.critical:
                    item["temp_critical_c"] = float(reading.critical)
                out.append(item)
        read_battery = getattr(self._ps, "sensors_battery", None)
        battery = read_battery() if read_battery else None
        if battery is not None:
            out.append(
                {
                    "sensor": "battery",
                    "battery_percent": float(battery.percent),
                    "power_plugged": 1.0 if battery.power_plugged else 0.0,
                }
            )
        return out[:MAX_SENSORS]
