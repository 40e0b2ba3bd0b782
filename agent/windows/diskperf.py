"""Slow I/O on Windows: the system disk's busy share and mean I/O time from the PhysicalDisk
performance counters ``% Idle Time`` and ``Avg. Disk sec/Transfer``, read raw from WMI
(``Win32_PerfRawData_PerfDisk_PhysicalDisk``) through pywin32's COM client (no child process, no new
dependency), as the ``busy_percent`` and ``await_ms`` of the ``io`` section the Linux agent takes
from /sys/block. Pressure-stall figures exist on Linux only; Windows sends none.

Why these counters: psutil on Windows gives each disk's ``read_time`` and ``write_time`` but no
busy time, and their sum counts overlapping I/Os twice, so it is no share of wall time; the
formatted class (``Win32_PerfFormattedData_PerfDisk_PhysicalDisk``) cooks over its own interval and
gives ``AvgDisksecPerTransfer`` in whole seconds (0 on any sane disk). So the raw counters are read
once a cycle and cooked here between two cycles, as Microsoft's counter types define:

- ``% Idle Time`` (``PercentIdleTime``) is PERF_PRECISION_100NS_TIMER, CounterType 542573824:
  (N1 - N0) / (D1 - D0), N the counter and D its private timer, both in 100 ns
  (https://learn.microsoft.com/en-us/previous-versions/windows/it-pro/windows-server-2003/cc756128(v=ws.10),
  http://msdn.microsoft.com/en-us/library/ms804015.aspx). WMI gives the private timer as
  ``PercentIdleTime_Base``; where it does not move (reported 0 on some Windows versions), the
  sample's ``Timestamp_Sys100NS``, a 100 ns clock too, is the timer. Busy = 100 - 100 x idle share.
- ``Avg. Disk sec/Transfer`` (``AvgDisksecPerTransfer``) is PERF_AVERAGE_TIMER: ((N1 - N0) / F) /
  (B1 - B0), N in ticks of F = ``Frequency_PerfTime`` per second, B the transfers
  (``AvgDisksecPerTransfer_Base``) (http://msdn.microsoft.com/en-us/library/ms804010.aspx). Both are
  4-byte counters, so their differences are taken modulo 2**32.

The system disk is the PhysicalDisk instance whose name (``"0 C: D:"``: the disk number, then the
drive letters on it) holds %SystemDrive%; it is reported as ``disk<number>``, as disk health names it.

Unverified: this has not run on a Windows PC, and CI has none. The cooking and the choice of the
instance are tested on a real recording of the instance names and on values built from the formulas
above (no recorded pair of raw samples could be found; tests/recorded/windows/diskperf/SOURCES.md).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

log = logging.getLogger("commune_agent.io")

CIMV2 = "winmgmts:\\\\.\\root\\cimv2"
WMI_CLASS = "Win32_PerfRawData_PerfDisk_PhysicalDisk"
PROPERTIES = (
    "Name",
    "PercentIdleTime",
    "PercentIdleTime_Base",
    "Timestamp_Sys100NS",
    "AvgDisksecPerTransfer",
    "AvgDisksecPerTransfer_Base",
    "Frequency_PerfTime",
)
WRAP_32 = 2**32


class DiskSample(NamedTuple):
    """One reading of the raw counters of one physical disk."""

    idle_100ns: int
    idle_timer_100ns: int  # PercentIdleTime_Base, the counter's private timer (0 where Windows gives none)
    clock_100ns: int  # Timestamp_Sys100NS
    transfer_ticks: int  # AvgDisksecPerTransfer, 32 bits
    transfers: int  # AvgDisksecPerTransfer_Base, 32 bits
    ticks_per_s: int  # Frequency_PerfTime


def system_instance(rows: Iterable[Mapping[str, Any]], system_drive: str) -> tuple[str, Mapping[str, Any]] | None:
    """The ``disk<number>`` label and the row of the physical disk holding ``system_drive`` (``C:``)."""
    drive = system_drive.strip().upper()
    for row in rows:
        words = str(row.get("Name") or "").split()
        if words and words[0].isdigit() and drive in (w.upper() for w in words[1:]):
            return f"disk{words[0]}", row
    return None


def disk_sample(row: Mapping[str, Any]) -> DiskSample | None:
    """The raw counters of a row (numbers, or text: WMI gives 64-bit values as strings), None if one
    is missing; the private timer of ``% Idle Time`` alone may be missing (it then counts 0)."""
    values = [_count(row.get(name)) for name in PROPERTIES[1:]]
    if values[1] is None:
        values[1] = 0
    if any(v is None for v in values):
        return None
    idle, timer, clock, ticks, transfers, frequency = (int(v or 0) for v in values)
    return DiskSample(idle, timer, clock, ticks, transfers, frequency)


def slow_io(before: DiskSample | None, now: DiskSample) -> dict[str, float]:
    """``busy_percent`` and ``await_ms`` between two samples; nothing for the first sample, nor for
    a figure whose clock did not move or went back (the counters restarted)."""
    if before is None:
        return {}
    out: dict[str, float] = {}
    timer = now.idle_timer_100ns - before.idle_timer_100ns
    if timer <= 0:
        timer = now.clock_100ns - before.clock_100ns
    idle = now.idle_100ns - before.idle_100ns
    if timer > 0 and idle >= 0:
        out["busy_percent"] = min(100.0, max(0.0, 100.0 - 100.0 * idle / timer))
    transfers = (now.transfers - before.transfers) % WRAP_32
    ticks = (now.transfer_ticks - before.transfer_ticks) % WRAP_32
    if now.ticks_per_s > 0 and "busy_percent" in out:
        out["await_ms"] = 1000.0 * ticks / now.ticks_per_s / transfers if transfers else 0.0
    return out


def io_section(
    rows: Iterable[Mapping[str, Any]], system_drive: str, before: DiskSample | None
) -> tuple[dict[str, float | str], DiskSample | None]:
    """The ``io`` section from one query's rows and the system disk's sample to keep for the next."""
    found = system_instance(rows, system_drive)
    sample = disk_sample(found[1]) if found is not None else None
    if found is None or sample is None:
        return {}, None
    section: dict[str, float | str] = {"system_disk": found[0]}
    section.update(slow_io(before, sample))
    return section, sample


class WmiDiskPerf:
    """The Windows side of the agent's ``io`` collector: one WMI query a cycle on a connection kept
    open. A failed query leaves the section out (logged once until a query succeeds again)."""

    def __init__(self, system_drive: str | None = None) -> None:
        self._drive = system_drive or os.environ.get("SYSTEMDRIVE") or "C:"
        self._last: DiskSample | None = None
        self._service: Any = None
        self._failing = False

    def __call__(self) -> dict[str, float | str]:
        rows = self._query()
        if rows is None:
            self._last = None
            return {}
        section, self._last = io_section(rows, self._drive, self._last)
        return section

    def _query(self) -> list[dict[str, Any]] | None:
        try:
            import win32com.client  # pywin32, Windows only

            if self._service is None:
                self._service = win32com.client.GetObject(CIMV2)
            rows = self._service.ExecQuery(f"SELECT {', '.join(PROPERTIES)} FROM {WMI_CLASS}")
            found = [{name: getattr(row, name, None) for name in PROPERTIES} for row in rows]
        except Exception as exc:  # COM errors have no common base class worth naming here
            self._service = None
            if not self._failing:
                log.warning("wmi query failed", extra={"class": WMI_CLASS, "error": str(exc)[:200]})
            self._failing = True
            return None
        self._failing = False
        return found


def _count(value: Any) -> int | None:
    text = "" if value is None else str(value).strip()
    return int(text) if text.isdigit() else None
