"""``commune-sim --backfill-days N``: weeks of history for the simulated province,
written straight into InfluxDB, so the dashboards and the monthly report have a month to show.

It uses the live simulator's plan and virtual PCs (same seed: the same communes and PCs get the
same faults), captures what each PC would publish (an inventory each morning, then metrics, probes
and speed tests), and sends it through the collector's own path: the wire contract's decoder, the
ingestor's points (tags from the registry, % of contract on speed tests), the line-protocol encoder
and the batch writer. The collector's own ``agent``,
``commune`` and ``alert`` points are made by the fleet's point builders, one per PC and commune
per interval, day and night. PCs are on from 07:00 to 17:30 local time on weekdays, as offices
are; each fault starts at a seeded moment spread over the range. The PC carrying a commune's
scanner and tokens reports them hourly while it is on, and every hour the collector's ``equipment``
points say, per commune and kind, what was issued and what is in use (the fleet's own matching).
Continuous queries only roll up new time, so the 5-minute rollups are computed here for the whole
backfilled range: in ranges of at most ``ROLLUP_POINTS`` points each (so a nation's history is cut
finer than a province's), through a client with a timeout of its own. While the history is written
its range is held in the state file (``WindowSums.hold``): no report keeps an office window of it
as final until the rollups are done and the hold is released.
"""

from __future__ import annotations

import logging
import random
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector import vocabulary as words
from collector.alerting.conditions import NO_HOST
from collector.alerting.lifecycle import Alert, fired_between, record
from collector.config import CollectorConfig, InfluxSettings
from collector.fleet import points as fleet_points
from collector.fleet.equipment import SeenDevice, alert_subject, fleet_equipment
from collector.fleet.facts import gather_peripherals, read_peripherals
from collector.fleet.rules import CommuneStatus, HostStatus
from collector.ingest.checks import Accepted, Ingestor
from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient
from collector.ingest.lineprotocol import Point, encode_point
from collector.ingest.setup_influx import RAW_RP, ROLLUP_MEASUREMENTS, ROLLUP_RP, setup_influx
from collector.ingest.writer import BatchWriter
from collector.localtime import LOCAL_ZONE, local_date
from collector.registry.equipment import IssuedItem
from collector.registry.registry import HostKey, Registry
from collector.reports.windows import WindowSums
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import SCHEMA_VERSION, Report, decode_report, encode
from devtools.simulate import Plan, VirtualAgent, VirtualHost
from devtools.simulate.plan import OUTAGE_FAULTS
from devtools.simulate.transport import NO_LINK

log = logging.getLogger("devtools.backfill")
DAY_S = 86400
ROLLUP_S = 300
ROLLUP_POINTS = 250_000  # points one rollup statement reads at most (a few seconds of InfluxDB on 2 cores)
ROLLUP_MAX_STEP_S = 7 * DAY_S
ROLLUP_TIMEOUT_S = 600.0  # a rollup statement's own timeout ([influxdb] timeout_s, 10 s, is for writes)
PC_ON_MINUTE, PC_OFF_MINUTE = 7 * 60, 17 * 60 + 30  # local time, Monday to Friday
HOST_DROPS = ("goes_offline", "dead_line")  # from its onset on, the PC's reports never arrive
FAULT_RULES = {  # the alert a fault raises at its onset
    "dead_line": words.LINE_DOWN,
    "lossy_line": words.LINE_DEGRADED,
    "other_uplink": words.LINE_UNUSED,
    "no_agent": words.LINE_UNUSED,
    "goes_offline": words.HOST_OFFLINE,
    "disk_filling": words.HOST_DEGRADED,
    "old_hardware": words.HOST_DEGRADED,
    "token_unused": words.EQUIPMENT_UNUSED,
    "scanner_missing": words.EQUIPMENT_UNUSED,
}
EQUIPMENT_FAULT_KIND = {"token_unused": "token", "scanner_missing": "scanner"}  # the subject of their alert


class CapturingAgent(VirtualAgent):
    """A virtual PC of the live simulator whose reports are captured with a chosen timestamp."""

    def __init__(self, host: VirtualHost, rng: random.Random) -> None:  # no broker connection
        self.host, self.rng = host, rng
        self.cpu = rng.uniform(5, 30)
        self.dropped = self.dark = False
        self.link = NO_LINK  # the backfill captures, it does not publish
        self.stream, self.seq, self.acks, self.ack_topic = "", 0, 0, ""  # no acks to wait for
        self.now = 0
        self.inventory_day = -1
        self.bad_sectors = 0  # as VirtualAgent: its disk_failing fault grows them
        self.captured: list[tuple[str, dict[str, Any]]] = []

    def switched_on(self, day: int) -> None:
        """The PC's first report of the day: it connects, so it sends its inventory, as an agent does."""
        if day != self.inventory_day:
            self.inventory_day = day
            self.connected()

    def publish(self, kind: str, body: dict[str, Any], retain: bool = False) -> None:
        if kind == "status":
            return
        self.captured.append((kind, {"v": SCHEMA_VERSION, "ts": self.now, **body}))

    def drop(self) -> None:
        self.dropped = True

    def take(self) -> list[tuple[str, dict[str, Any]]]:
        out, self.captured = self.captured, []
        for kind, payload in out:
            system = payload.get("system")
            if kind == "metrics" and isinstance(system, dict):
                system["uptime_s"] = max(0.0, self.now - self.host.boot_time)
        return out


class EquipmentBook:
    """The devices each commune's PCs were seen with, folded as the collector folds them, and the
    ``equipment`` points it writes from them."""

    def __init__(self, items: list[IssuedItem], province: str, window_days: int) -> None:
        self.items, self.province, self.window_days = items, province, window_days
        self.seen: dict[str, dict[str, SeenDevice]] = {}

    def observe(self, key: HostKey, report: Report, ts: int) -> None:
        if report.kind == "peripherals":
            gather_peripherals(self.seen.setdefault(key.commune, {}), read_peripherals(report, ts), key.host)

    def points(self, area_of: dict[str, str], ts: int) -> list[Point]:
        seen = {commune: list(devices.values()) for commune, devices in self.seen.items()}
        provinces = dict.fromkeys(area_of, self.province)
        found = fleet_equipment(self.items, seen, provinces, self.window_days, ts)
        return fleet_points.equipment_points(found, area_of, ts)


@dataclass(frozen=True)
class Timeline:
    start: int
    end: int
    interval_s: int
    zone: ZoneInfo

    def is_on(self, ts: int) -> bool:
        """A PC is switched on: a weekday between 07:00 and 17:30 local time."""
        local = datetime.fromtimestamp(ts, self.zone)
        minute = local.hour * 60 + local.minute
        return local.weekday() < 5 and PC_ON_MINUTE <= minute < PC_OFF_MINUTE


def onsets(plan: Plan, start: int, end: int, seed: int) -> dict[str, float]:
    """When each fault starts (by commune code, or ``province/commune/host``), spread over the range."""
    rng = random.Random(seed * 7919 + 14)
    span = end - start
    out: dict[str, float] = {}
    for fault, where in sorted(plan.faults.items()):
        if fault in OUTAGE_FAULTS:
            continue  # a power cut or office closing lasts minutes: the history leaves them out
        for key in where:
            out[key] = start + rng.uniform(0.05, 0.6) * span
    return out


def backfill(
    config: CollectorConfig,
    plan: Plan,
    days: float,
    interval_s: int,
    seed: int = 1,
    end: float | None = None,
    zone: str = LOCAL_ZONE,
) -> dict[str, Any]:
    """Writes ``days`` of history ending at ``end`` (default now); returns counts."""
    check(config, days, interval_s)
    stop_at = int(end if end is not None else time.time()) // ROLLUP_S * ROLLUP_S
    timeline = Timeline(stop_at - int(days * DAY_S) // ROLLUP_S * ROLLUP_S, stop_at, interval_s, ZoneInfo(zone))
    client = InfluxClient(config.influxdb)
    store = Store(config.state.path)
    started = time.monotonic()
    try:
        setup_influx(client)
        registry = Registry(store, config.state.default_area)
        windows = WindowSums(store)
        windows.hold(timeline.start, timeline.end)  # no report keeps a window of this range until it is done
        written = _write_history(config, client, store, registry, plan, timeline, seed)
        rollups = rollup(config.influxdb, timeline.start, timeline.end, written)
        log.info("backfill rolled up", extra={"statements": rollups})
        windows.release(timeline.start, timeline.end)  # a report sums these windows again, now complete
    finally:
        store.close()
        client.close()
    seconds = round(time.monotonic() - started, 1)
    return {"backfill_days": days, "interval_s": interval_s, "start": timeline.start, "end": timeline.end,
            "points": written, "rollup_statements": rollups, "seconds": seconds}  # fmt: skip


def check(config: CollectorConfig, days: float, interval_s: int) -> None:
    """ValueError, before anything is written, when ``days`` or ``interval_s`` cannot be backfilled."""
    if days <= 0 or days > 400:
        raise ValueError(f"--backfill-days must be between 0 and 400, not {days}")
    kept = retention_days(config.influxdb.raw_retention)
    if days > kept:
        raise ValueError(
            f"--backfill-days {days:g} is more than [influxdb] raw_retention {config.influxdb.raw_retention}: InfluxDB "
            "would refuse the older points; raise raw_retention (then setup-influx) or backfill fewer days"
        )
    if interval_s < 10 or (ROLLUP_S % interval_s and interval_s % ROLLUP_S):
        raise ValueError(f"backfill interval {interval_s} s must be 10 s or more and divide or be a multiple of 300")


def _write_history(
    config: CollectorConfig,
    client: InfluxClient,
    store: Store,
    registry: Registry,
    plan: Plan,
    timeline: Timeline,
    seed: int,
) -> int:
    metrics = SelfMetrics()
    ingestor = Ingestor(registry, metrics, config.ingest)
    rng = random.Random(seed)
    agents = [CapturingAgent(h, random.Random(rng.random())) for h in plan.hosts]
    for agent in agents:
        agent.host.boot_time = timeline.start - rng.uniform(3600, 30 * DAY_S)
    starts = onsets(plan, timeline.start, timeline.end, seed)
    area_names = registry.areas()
    area_of = {c: registry.area_of(c) for c in {line.commune for line in plan.lines}}
    kit = EquipmentBook(plan.equipment, plan.province, config.fleet.equipment_unused_after_days)
    with tempfile.TemporaryDirectory(prefix="backfill-") as folder:
        buffer = DiskBuffer(f"{folder}/buffer.sqlite", 256 * 2**20)
        writer = BatchWriter(client, metrics, config.influxdb.batch_size, 0.5, 200_000, buffer)
        writer.start()
        try:
            _alert_points(writer, store, plan, starts, area_of)
            for ts in range(timeline.start, timeline.end, timeline.interval_s):
                lines = _one_interval(ingestor, agents, plan, timeline, ts, starts, area_of, area_names, kit)
                writer.put(lines)
        finally:
            writer.stop(timeout_s=600)
    written = int(metrics.value("points_written_total"))
    log.info("backfill written", extra={"points": written})
    return written


def _fault_on(host: VirtualHost, starts: dict[str, float], ts: int) -> bool:
    key = host.commune if host.fault in ("dead_line", "lossy_line", "other_uplink") else _host_key(host)
    return bool(host.fault) and ts >= starts.get(key, float("inf"))


def _host_key(host: VirtualHost) -> str:
    return f"{host.province}/{host.commune}/{host.host}"


def _one_interval(
    ingestor: Ingestor,
    agents: list[CapturingAgent],
    plan: Plan,
    timeline: Timeline,
    ts: int,
    starts: dict[str, float],
    area_of: dict[str, str],
    area_names: dict[str, str],
    kit: EquipmentBook,
) -> list[str]:
    on = timeline.is_on(ts)
    today = local_date(ts, timeline.zone).toordinal()  # the PC's day is Vietnam's, not UTC's
    hourly = ts % 3600 < timeline.interval_s
    lines: list[str] = []
    statuses: list[HostStatus] = []
    for agent in agents:
        host = agent.host
        faulty = _fault_on(host, starts, ts)
        area = area_of.get(host.commune, ingestor.registry.area_of(host.commune))
        if on and not (faulty and host.fault in HOST_DROPS):
            agent.now = ts
            agent.switched_on(today)
            agent.tick(float(timeline.interval_s), faulty)
            if host.role == "line-probe" and hourly:
                agent.speedtest(faulty)
            if host.devices and hourly:
                agent.peripherals(ts, at=ts)
            for kind, payload in agent.take():
                report = decode_report(kind, encode(payload))
                accepted = Accepted(HostKey(host.province, host.commune, host.host), area, report, ts, ts)
                kit.observe(accepted.host, report, ts)
                lines.extend(encode_point(p) for p in ingestor.points(accepted))
        online = on and not (faulty and host.fault in HOST_DROPS)
        reasons = _degraded_reasons(host, faulty)
        statuses.append(HostStatus(HostKey(host.province, host.commune, host.host), area, online,
                                   ts - (0.0 if online else 60.0), reasons, ts))  # fmt: skip
    points = [fleet_points.agent_point(s, ts, ts) for s in statuses]
    points += [fleet_points.commune_point(c, area_names, ts) for c in _communes(plan, statuses, starts, ts, area_of)]
    if hourly:
        points += kit.points(area_of, ts)
    lines.extend(encode_point(p) for p in points)
    return lines


def _degraded_reasons(host: VirtualHost, faulty: bool) -> tuple[str, ...]:
    if host.fault == "old_hardware":
        return ("old_hardware",)  # its small RAM shows in the inventory from the start
    if faulty and host.fault == "disk_filling" and host.disk_used_gb >= 0.9 * host.disk_gb:
        return ("disk_full",)
    return ()


def _communes(
    plan: Plan, statuses: list[HostStatus], starts: dict[str, float], ts: int, area_of: dict[str, str]
) -> list[CommuneStatus]:
    """Each commune's line as the fleet's line-state chain would see it from these PCs."""
    by_commune: dict[str, list[HostStatus]] = {}
    for status in statuses:
        by_commune.setdefault(status.key.commune, []).append(status)
    fault_of = {c: f for f, where in plan.faults.items() for c in where if "/" not in c}
    out = []
    for line in plan.lines:
        members = by_commune.get(line.commune, [])
        online = sum(1 for m in members if m.online)
        degraded = sum(1 for m in members if m.reasons)
        fault = fault_of.get(line.commune, "")
        started = ts >= starts.get(line.commune, float("inf"))
        if not members:
            state = "unused"
        elif online == 0:
            state = "down"
        elif fault == "other_uplink" and started:
            state = "unused"
        elif fault == "lossy_line" and started:
            state = "degraded"
        else:
            state = "up"
        out.append(CommuneStatus(plan.province, area_of.get(line.commune, ""), line.commune, len(members), online,
                                 degraded, state, line.contracted_down_mbps, 0.0))  # fmt: skip
    return out


def _alert_points(
    writer: BatchWriter, store: Store, plan: Plan, starts: dict[str, float], area_of: dict[str, str]
) -> None:
    """Each fault's alert, firing from its onset: its point (the collector writes one per change)
    and its record in the state file, as the alert lifecycle keeps them."""
    lines = []
    recorded = {(a.rule, a.commune, a.host, a.fired_at) for a in fired_between(store, 0, float("inf"))}
    for fault, where in plan.faults.items():
        for key in where if fault in FAULT_RULES else ():
            province, commune, host = key.split("/") if "/" in key else (plan.province, key, NO_HOST)
            if fault in EQUIPMENT_FAULT_KIND:
                host = alert_subject(EQUIPMENT_FAULT_KIND[fault])
            rule = FAULT_RULES[fault]
            tags = {"province": province, "area": area_of.get(commune, "unassigned"), "commune": commune,
                    "host": host, "rule": rule, "severity": words.RULE_SEVERITY[rule]}  # fmt: skip
            fields: dict[str, float | str] = {"firing": 1.0, "state": "firing", "summary": fault}
            lines.append(encode_point(Point("alert", tags, fields, int(starts[key]))))
            at = int(starts[key])
            if (rule, commune, host, at) not in recorded:  # a backfill run again keeps one record
                record(store, Alert(0, rule, province, tags["area"], commune, host, tags["severity"], fault, fault,
                                    "firing", at, fired_at=at, firing_since=at))  # fmt: skip
    writer.put(lines)


def retention_days(duration: str) -> float:
    """An InfluxQL retention duration (``30d``, ``4w``, ``720h``, ``INF``) in days."""
    match = re.fullmatch(r"(\d+)([hdw])", duration.strip())
    if duration.strip().upper() in ("INF", "0S", "0"):
        return float("inf")
    if match is None:
        raise ValueError(f"raw_retention {duration!r} is not a duration such as 30d, 4w or INF")
    return int(match.group(1)) * {"h": 1 / 24, "d": 1, "w": 7}[match.group(2)]


def only(plan: Plan, communes: list[str]) -> Plan:
    """The plan cut down to some communes (codes), for a small province in tests."""
    unknown = sorted(set(communes) - {line.commune for line in plan.lines})
    if unknown:
        raise ValueError(f"commune(s) {', '.join(unknown)} are not in province {plan.province}")
    keep = set(communes)
    faults = {f: [w for w in where if w.split("/")[-2 if "/" in w else 0] in keep] for f, where in plan.faults.items()}
    return Plan(plan.province, [h for h in plan.hosts if h.commune in keep],
                {a: (n, [c for c in cs if c in keep]) for a, (n, cs) in plan.areas.items()},
                [line for line in plan.lines if line.commune in keep], faults,
                [item for item in plan.equipment if item.commune in keep])  # fmt: skip


def rollup_settings(settings: InfluxSettings) -> InfluxSettings:
    """The rollup's own client settings: its statements may take longer than a write or a live query."""
    return settings.model_copy(update={"timeout_s": max(settings.timeout_s, ROLLUP_TIMEOUT_S)})


def rollup_ranges(start: int, end: int, points_per_s: float) -> list[tuple[int, int]]:
    """[start, end) cut into ranges of whole 5-minute buckets, each holding at most ``ROLLUP_POINTS``
    points at ``points_per_s`` (the history's density over all its measurements, so each one's is
    less), and at most a week: a nation's history gets shorter ranges than a province's."""
    step = int(ROLLUP_POINTS / points_per_s) if points_per_s > 0 else ROLLUP_MAX_STEP_S
    step = max(ROLLUP_S, min(ROLLUP_MAX_STEP_S, step // ROLLUP_S * ROLLUP_S))
    return [(lo, min(end, lo + step)) for lo in range(start, end, step)]


def rollup(settings: InfluxSettings, start: int, end: int, points: int) -> int:
    """The continuous queries' SELECT ... INTO for a past range of ``points`` points, in ranges of a
    bounded size (``rollup_ranges``) through a client with the rollup's own timeout; returns
    statements run."""
    client = InfluxClient(rollup_settings(settings))
    db = client.database
    count = 0
    try:
        for measurement in ROLLUP_MEASUREMENTS:
            for lo, hi in rollup_ranges(start, end, points / max(1, end - start)):
                client.query(
                    f'SELECT mean(*) INTO "{db}"."{ROLLUP_RP}"."{measurement}" FROM "{db}"."{RAW_RP}"."{measurement}" '
                    f"WHERE time >= {lo}s AND time < {hi}s GROUP BY time(5m), *",
                    method="POST",
                )
                count += 1
    finally:
        client.close()
    return count
