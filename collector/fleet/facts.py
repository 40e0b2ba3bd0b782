"""Facts about each PC, gathered from the reports the ingest path accepted.

Each report's sections are read once, here, into typed values (``MetricsReading`` and friends);
``gather_*`` then folds a reading into the host's ``HostFacts``, which also keeps what spans
reports: since when memory or CPU has been high, reboots and report gaps of the last day, traffic
per local day, recent line samples. Pruning old entries happens here, when facts are gathered,
so the rules (``rules.py``) only read facts and never change them.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import NamedTuple

from collector.config import FleetSettings
from collector.fleet.clock import ClockState
from collector.fleet.equipment import SeenDevice
from collector.localtime import LOCAL_DAYS
from common.wire import Report

DAY_S = 86400.0
Item = dict[str, float | str]
NO_ITEM: Item = {}


@dataclass(slots=True)
class HostFacts:
    """What is known about one PC; all the rules need, and what the state file keeps. Slots, no
    ``__dict__``: a nation's 100,000 PCs are 100,000 fewer objects for the garbage collector."""

    interval_s: float = 30.0
    last_report: float = 0.0
    offline_will: bool = False
    disk_percent: float = 0.0
    mem_percent: float = 0.0
    swap_percent: float = 0.0
    cpu_percent: float = 0.0
    temp_c: float = 0.0
    temp_limit_c: float = 0.0
    spool_failed: bool = False  # the agent says its on-disk spool cannot be used (spool_ok 0)
    ram_bytes: float = 0.0
    cpu_cores: float = 0.0
    boot_time: float = 0.0
    uplink: str = ""
    mem_high_since: float = 0.0
    cpu_high_since: float = 0.0
    reboots: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    traffic_by_day: dict[str, float] = field(default_factory=dict)  # bytes on the default-route NIC
    probe_down_since: float = 0.0
    degraded_since: float = 0.0
    samples: deque[tuple[float, float, float]] = field(default_factory=deque)  # (ts, loss %, rtt ms)
    speedtest_percent: float = -1.0
    series_dropped_at: float = 0.0  # last time ingest dropped points over the host's series bound
    clock: ClockState = field(default_factory=ClockState)  # its clock offset, learned (``clock.py``)
    # disk health (``disk_health`` reports, every 6 h; an agent that sends none leaves them as they are)
    disk_verdict_failed: bool = False  # a disk's own overall S.M.A.R.T. verdict is "failed"
    disk_bad_sectors: float = 0.0  # the most reallocated + pending sectors of one disk
    disk_ioerr: dict[str, float] = field(default_factory=dict)  # each disk's kernel I/O error count last seen
    disk_ioerr_rising: bool = False  # a disk's count grew since the report before
    disk_busy_since: float = 0.0  # since when the system disk has been busy above disk_busy_percent


# ---- typed readings of one report's sections ----


class MetricsReading(NamedTuple):  # a tuple: built for every metrics report, 5x cheaper than a frozen dataclass
    interval_s: float | None  # None when the agent did not say
    cpu_percent: float
    mem_percent: float
    swap_percent: float
    boot_time: float
    disk_percent: float  # the fullest disk
    temp_c: float  # the hottest sensor
    temp_limit_c: float  # the lowest "high" limit a sensor gives, 0 when none does
    uplink: str  # the NIC holding the default route (the last one, if several), "" when none
    uplink_bytes_per_s: float  # received and sent, summed over the NICs holding a default route
    spool_failed: bool = False  # agent.spool_ok is 0: reports are held in memory, not on disk
    disk_busy_percent: float | None = None  # io.busy_percent of the system disk; None from older agents


@dataclass(frozen=True)
class ProbeResult:
    scope: str  # gateway, wan or internet
    method: str
    ok: bool | None  # None when the probe did not say
    loss_percent: float | None  # pings only
    rtt_avg_ms: float


@dataclass(frozen=True)
class SpeedtestResult:
    mode: str  # wan or internet
    ok: bool
    download_mbps: float | None


@dataclass(frozen=True)
class InventoryReading:
    ram_bytes: float
    cpu_cores: float


def number(item: Item, name: str, default: float = 0.0) -> float:
    """A number field of a validated section (the wire contract made every number a float)."""
    value = item.get(name)
    return value if isinstance(value, float) else default


def text(item: Item, name: str) -> str:
    value = item.get(name)
    return value if isinstance(value, str) else ""


def read_metrics(report: Report) -> MetricsReading:
    """Run on every metrics report (the MQTT thread's busiest step after decoding): plain loops."""
    sections = report.sections
    system = sections["system"][0] if sections.get("system") else NO_ITEM
    agent = sections["agent"][0] if sections.get("agent") else NO_ITEM
    io = sections["io"][0] if sections.get("io") else NO_ITEM
    disks, sensors = sections.get("disk", ()), sections.get("sensors", ())
    highs = [high for sensor in sensors if (high := number(sensor, "temp_high_c"))]
    uplink, uplink_bytes_per_s = "", 0.0
    for nic in sections.get("net", ()):
        if nic.get("default_route") == 1.0:
            uplink = text(nic, "nic")
            uplink_bytes_per_s += number(nic, "rx_bytes_per_s") + number(nic, "tx_bytes_per_s")
    return MetricsReading(
        number(agent, "interval_s") if "interval_s" in agent else None,
        number(system, "cpu_percent"),
        number(system, "mem_used_percent"),
        number(system, "swap_used_percent"),
        number(system, "boot_time"),
        max([number(disk, "used_percent") for disk in disks], default=0.0),
        max([number(sensor, "temp_c") for sensor in sensors], default=0.0),
        min(highs, default=0.0),
        uplink,
        uplink_bytes_per_s,
        number(agent, "spool_ok", 1.0) == 0.0,
        number(io, "busy_percent") if "busy_percent" in io else None,
    )


def read_probes(report: Report) -> list[ProbeResult]:
    return [
        ProbeResult(
            scope=text(item, "scope"),
            method=text(item, "method"),
            ok=item["ok"] == 1.0 if "ok" in item else None,
            loss_percent=number(item, "loss_percent") if "loss_percent" in item else None,
            rtt_avg_ms=number(item, "rtt_avg_ms"),
        )
        for item in report.sections.get("probe", [])
    ]


def read_speedtests(report: Report) -> list[SpeedtestResult]:
    return [
        SpeedtestResult(
            mode=text(item, "mode"),
            ok=item.get("ok") == 1.0,
            download_mbps=number(item, "download_mbps") if isinstance(item.get("download_mbps"), float) else None,
        )
        for item in report.sections.get("speedtest", [])
    ]


def read_inventory(report: Report) -> InventoryReading | None:
    """The PC's hardware, or None for an inventory report that carries only its disks' health."""
    items = report.sections.get("inventory")
    if not items:
        return None
    return InventoryReading(ram_bytes=number(items[0], "ram_bytes"), cpu_cores=number(items[0], "cpu_cores"))


class DiskHealthReading(NamedTuple):
    """What a ``disk_health`` report says about the PC's disks, as the rules need it."""

    verdict_failed: bool  # a disk's own overall verdict is "failed" (health_passed 0)
    bad_sectors: float  # the most reallocated + pending sectors of one disk
    ioerr: dict[str, float]  # each disk's kernel I/O error count, where sysfs has one


def read_disk_health(report: Report) -> DiskHealthReading | None:
    """None when the report carries no disk health (an older agent, or the daily inventory)."""
    disks = report.sections.get("disk_health")
    if disks is None:
        return None
    return DiskHealthReading(
        any(disk.get("health_passed") == 0.0 for disk in disks),
        max([number(disk, "reallocated_sectors") + number(disk, "pending_sectors") for disk in disks], default=0.0),
        {text(disk, "disk"): number(disk, "ioerr_count") for disk in disks if "ioerr_count" in disk},
    )


@dataclass(frozen=True)
class PeripheralReading:
    device: str
    kind: str
    serial: str
    model: str
    seen_at: float  # when it was last there, 0 when the report says it was not there today
    received_at: float = 0.0  # when the report came
    pcsc: bool = False  # its use was watched through PC/SC for this report
    opened_at: float = 0.0  # the last moment PC/SC saw an application with it open, 0 when none


def read_peripherals(report: Report, received_at: float) -> list[PeripheralReading]:
    """A present device was there when the report came; one unplugged since was there at its
    ``last_seen_today`` (never later than the report). A token's reader (the ``smartcard`` item
    naming it) says when an application last had it open, never later than the report."""
    opened: dict[str, float] = {}
    for reader in report.sections.get("smartcard", []):
        device, at = text(reader, "device"), number(reader, "last_in_use")
        if device and number(reader, "in_use") == 1.0 and at > 0:
            opened[device] = max(opened.get(device, 0.0), min(at, received_at))
    out = []
    for item in report.sections.get("peripherals", []):
        present = number(item, "present") == 1.0
        seen_at = received_at if present else min(number(item, "last_seen_today"), received_at)
        device, pcsc = text(item, "device"), number(item, "pcsc") == 1.0
        out.append(PeripheralReading(device, text(item, "kind"), text(item, "serial"),
                                     text(item, "model") or text(item, "product"), max(seen_at, 0.0), received_at,
                                     pcsc, opened.get(device, 0.0) if pcsc else 0.0))  # fmt: skip
    return out


# ---- folding readings into a host's facts ----


def gather_report(facts: HostFacts, now: float) -> None:
    """Any report but a status: note a gap since the last one; the PC is there."""
    if facts.last_report and now - facts.last_report > 3 * facts.interval_s:
        facts.gaps.append(now)
    facts.gaps = [t for t in facts.gaps if t > now - DAY_S]
    facts.last_report, facts.offline_will = now, False


def gather_metrics(facts: HostFacts, reading: MetricsReading, now: float, settings: FleetSettings) -> None:
    s = settings
    facts.interval_s = (facts.interval_s if reading.interval_s is None else reading.interval_s) or 30.0
    facts.mem_percent = reading.mem_percent
    facts.swap_percent = reading.swap_percent
    facts.cpu_percent = reading.cpu_percent
    boot = reading.boot_time
    if facts.boot_time and boot and abs(boot - facts.boot_time) > 60:
        facts.reboots.append(now)
    facts.reboots = [t for t in facts.reboots if t > now - DAY_S]
    facts.boot_time = boot or facts.boot_time
    memory_high = facts.mem_percent > s.memory_percent and facts.swap_percent > s.swap_percent
    facts.mem_high_since = (facts.mem_high_since or now) if memory_high else 0.0
    facts.cpu_high_since = (facts.cpu_high_since or now) if facts.cpu_percent > s.cpu_percent else 0.0
    facts.disk_percent = reading.disk_percent
    busy = reading.disk_busy_percent
    facts.disk_busy_since = (facts.disk_busy_since or now) if busy is not None and busy > s.disk_busy_percent else 0.0
    facts.spool_failed = reading.spool_failed
    facts.temp_c = reading.temp_c
    facts.temp_limit_c = reading.temp_limit_c
    if reading.uplink:  # traffic is counted on the line the PC really uses
        facts.uplink = reading.uplink
        moved = reading.uplink_bytes_per_s * facts.interval_s
        day = LOCAL_DAYS.day(now)
        if day not in facts.traffic_by_day:  # a new day: forget days older than the unused window
            keep = set(unused_window(now, s.unused_after_days + 7))
            facts.traffic_by_day = {d: v for d, v in facts.traffic_by_day.items() if d in keep}
        facts.traffic_by_day[day] = facts.traffic_by_day.get(day, 0.0) + moved


def gather_disk_health(facts: HostFacts, reading: DiskHealthReading) -> None:
    """The latest disk health replaces the one before. A disk's I/O error count is rising when it
    is above the count the report before gave; a lower one is the counter starting again at a
    boot, and a disk seen for the first time has nothing to rise from."""
    facts.disk_verdict_failed = reading.verdict_failed
    facts.disk_bad_sectors = reading.bad_sectors
    before = facts.disk_ioerr
    facts.disk_ioerr_rising = any(count > before.get(disk, count) for disk, count in reading.ioerr.items())
    facts.disk_ioerr = dict(reading.ioerr)


def gather_probes(facts: HostFacts, results: list[ProbeResult], now: float, settings: FleetSettings) -> None:
    gateway_ok = any(r.scope == "gateway" and r.ok is True for r in results)
    outside = [r for r in results if r.scope in ("wan", "internet")]
    if outside and gateway_ok and all(r.ok is False for r in outside):
        facts.probe_down_since = facts.probe_down_since or now
    else:
        facts.probe_down_since = 0.0
    for r in outside:
        if r.method == "ping" and r.loss_percent is not None:
            facts.samples.append((now, r.loss_percent, r.rtt_avg_ms))
    while facts.samples and facts.samples[0][0] < now - settings.degraded_window_s:
        facts.samples.popleft()


def gather_speedtests(facts: HostFacts, results: list[SpeedtestResult], contracted_down_mbps: float) -> None:
    """The latest speed test against the contract; a ``wan`` test is preferred over ``internet``."""
    for r in results:
        if r.mode != "wan" and facts.speedtest_percent >= 0:
            continue
        if r.ok and r.download_mbps is not None and contracted_down_mbps > 0:
            facts.speedtest_percent = 100.0 * r.download_mbps / contracted_down_mbps


def unused_window(now: float, days: int) -> list[str]:
    """Local dates from yesterday back ``days`` days: the whole days the unused rule looks at."""
    return list(window_days(now, days))


@lru_cache(maxsize=16)
def window_days(now: float, days: int) -> tuple[str, ...]:
    """``unused_window`` as a tuple, kept: an evaluation asks it once per commune for the same ``now``."""
    return tuple(LOCAL_DAYS.day(now - d * DAY_S) for d in range(1, days + 1))


def gather_peripherals(seen: dict[str, SeenDevice], readings: list[PeripheralReading], host: str) -> list[SeenDevice]:
    """Fold one PC's peripherals report into its commune's seen devices (by device id); the
    devices changed. A device is never seen earlier, nor opened earlier, than it already was; a
    report watched through PC/SC extends the watch (``watched_since`` stays where it began)."""
    changed = []
    for r in readings:
        if not r.device or r.seen_at <= 0:
            continue
        before = seen.get(r.device)
        if before is None or r.seen_at > before.last_seen:
            first = before.first_seen if before is not None else r.seen_at
            base = SeenDevice(r.device, r.kind, r.serial, r.model, host, first, r.seen_at)
        else:
            base = before
        since = before.watched_since if before is not None else 0.0
        watched_last = before.watched_last if before is not None else 0.0
        if r.pcsc:
            since, watched_last = since or r.received_at, max(watched_last, r.received_at)
        opened = max(r.opened_at, before.opened_at if before is not None else 0.0)
        device = replace(base, watched_since=since, watched_last=watched_last, opened_at=opened)
        if device == before:
            continue
        seen[r.device] = device
        changed.append(device)
    return changed
