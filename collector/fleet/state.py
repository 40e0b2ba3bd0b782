"""Fleet state: which hosts are offline or degraded, which communes' lines are down, degraded or
unused, derived continuously from every accepted report.

``FleetState`` wires the parts together under one lock: ``observe`` (an ingest observer, on the
MQTT thread) reads each report into typed values and gathers them into per-host facts
(``facts.py``); ``evaluate`` applies the pure rules (``rules.py``) to the facts and yields a
``Snapshot`` with the ``Condition``s for the alert manager; ``points`` turns a snapshot into the
``agent``, ``commune`` and ``equipment`` points (``points.py``). Peripherals reports are gathered
into the devices seen per commune, which ``evaluate`` holds against the issued equipment
(``equipment.py``). Facts that span days, and the devices seen, are saved in the state file
(``persistence.py``), and for a grace period after a restart nobody is declared offline, so
restarting the collector raises nothing.
"""

from __future__ import annotations

import threading
import time
from typing import NamedTuple

from collector.config import FleetSettings
from collector.fleet import clock, equipment, persistence, rules
from collector.fleet import facts as gather
from collector.fleet import points as fleet_points
from collector.fleet.equipment import SeenDevice
from collector.fleet.facts import HostFacts, window_days
from collector.fleet.outage_book import OutageBook, OutageRecord
from collector.fleet.outages import QuietWindows
from collector.fleet.rules import CommuneStatus, HostStatus, Member, Snapshot
from collector.ingest.checks import Accepted
from collector.ingest.lineprotocol import Point
from collector.localtime import LOCAL_DAYS
from collector.registry.equipment import Equipment
from collector.registry.registry import HostKey, HostRecord, Line, Registry
from collector.store import Store

__all__ = ["CommuneStatus", "FleetState", "HostFacts", "HostStatus", "Snapshot"]

SAVE_CHUNK = 2000  # hosts' facts encoded per hold of the lock, and written per transaction, when saving
Place = tuple[str, str]  # a commune by province and code


class HeldHost(NamedTuple):
    """A PC's last evaluation, kept while nothing it was judged from has changed."""

    record: HostRecord
    facts: HostFacts
    status: HostStatus
    member: Member
    due: float  # when its verdict may change by itself (``rules.host_due``)


class HeldCommune(NamedTuple):
    """A commune's last evaluation, kept while nothing it was judged from has changed."""

    status: CommuneStatus
    line: Line | None
    due: float  # when its verdict may change by itself (``rules.commune_due``)


class FleetState:
    def __init__(
        self,
        store: Store,
        registry: Registry,
        settings: FleetSettings,
        started_at: float | None = None,
        quiet: QuietWindows | None = None,
    ) -> None:
        self._store = store  # the facts that span days are saved in the state file
        self.registry = registry
        self.settings = settings
        self.started_at = time.time() if started_at is None else started_at
        self.grace_from = self.started_at  # when the current grace began (a start, or the broker lost)
        self.broker_lost = False  # no connection to the broker now: the collector sees nothing
        self.backlog_at = 0.0  # when the last backlog report (measured long before it came) arrived
        self.lock = threading.Lock()
        self.snapshot = Snapshot()
        self.facts: dict[HostKey, HostFacts] = persistence.load(store)
        self.issued = Equipment(store)
        self.seen: dict[str, dict[str, SeenDevice]] = persistence.load_seen(store)  # commune -> device -> seen
        self._seen_changed: dict[tuple[str, str], SeenDevice] = {}
        self.outages = OutageBook(store, quiet or QuietWindows(None), settings.outage_decide_max_s)
        self._dirty: set[HostKey] = set()  # PCs that reported since the last evaluation
        self._held: dict[HostKey, HeldHost] = {}
        self._held_communes: dict[Place, HeldCommune] = {}
        self._inputs: tuple[object, ...] = ()  # what every verdict reads: the grace, the local date
        self._settings: FleetSettings | None = None  # a copy of the settings the held verdicts used

    def observe(self, accepted: Accepted) -> None:
        """Gather one accepted report into its host's facts."""
        report, now, s = accepted.report, accepted.received_at, self.settings
        contracted, record = 0.0, None if accepted.live else self.registry.host(accepted.host)
        if report.kind == "speedtest":  # looked up before taking the lock: the registry has its own
            lines = self.registry.lines(accepted.host.commune)
            contracted = lines[0].contracted_down_mbps if lines else 0.0
        with self.lock:
            self._dirty.add(accepted.host)
            facts = self.facts.get(accepted.host)
            if facts is None:  # not setdefault: it would build a HostFacts (27 fields) for every report
                facts = self.facts[accepted.host] = HostFacts()
            clock.learn(facts.clock, now - accepted.ts, now, s.clock_settle_s, s.clock_jitter_s)
            if not accepted.live:
                self.backlog_at = max(self.backlog_at, now)
            self.outages.observe(accepted.host, report, now, facts.interval_s)
            if report.kind == "status":
                facts.offline_will = report.state == "offline"
                return
            if not accepted.live and not rules.backlog_counts(facts, record.last_seen if record else 0.0, s, now):
                return  # backlog of a PC offline now: stored and in the outage evidence, not its state now
            gather.gather_report(facts, now)
            if report.kind == "peripherals":
                seen = self.seen.setdefault(accepted.host.commune, {})
                readings = gather.read_peripherals(report, now)
                for device in gather.gather_peripherals(seen, readings, accepted.host.host):
                    self._seen_changed[(accepted.host.commune, device.device)] = device
            if accepted.dropped_points:  # over its series bound: a buggy or hostile agent
                facts.series_dropped_at = now
            if report.kind == "metrics":
                gather.gather_metrics(facts, gather.read_metrics(report), now, s)
            elif report.kind == "inventory":
                reading = gather.read_inventory(report)
                if reading is not None:
                    facts.ram_bytes, facts.cpu_cores = reading.ram_bytes, reading.cpu_cores
                disks = gather.read_disk_health(report)
                if disks is not None:
                    gather.gather_disk_health(facts, disks)
            elif report.kind == "probe":
                gather.gather_probes(facts, gather.read_probes(report), now, s)
            elif report.kind == "speedtest":
                gather.gather_speedtests(facts, gather.read_speedtests(report), contracted)

    def clock_offset(self, host: HostKey) -> float:
        """How far behind ``host``'s clock is, as learned so far (0 for a PC not known yet)."""
        with self.lock:
            facts = self.facts.get(host)
            return facts.clock.offset_s if facts is not None else 0.0

    def lost_broker(self, now: float) -> None:
        """The collector's MQTT connection dropped: a broker shutting down sends every PC's Last
        Will just before, and the silence that follows is the collector's, not the PCs'."""
        if not self.broker_lost:
            self.broker_lost, self.grace_from = True, now - rules.BROKER_WILLS_BEFORE_S

    def regained_broker(self, now: float) -> None:
        """Connected again: the same grace as a restart of the collector, from now."""
        if self.broker_lost:
            self.broker_lost, self.started_at = False, now

    def evaluate(self, now: float, full: bool = False) -> Snapshot:
        """Apply the rules to every known host and every commune with a host, a line or issued equipment.

        Incremental: a PC is judged again only when it reported (``observe``), its registry record
        or area changed, or its verdict may change by itself now (``rules.host_due``); a commune
        when one of its PCs was judged again, came or went, its line or area changed, or it is due
        (``rules.commune_due``). The others keep their last status. Everything is judged again
        when ``full``, on the first evaluation, and when a global input changed: the grace, the
        settings, the local date. ``tests/test_fleet_incremental_same.py`` holds it to ``full``."""
        s = self.settings
        in_grace = self.broker_lost or rules.in_restart_grace(now, self.started_at, self.backlog_at, s)
        records = self.registry.hosts()
        lines = {line.commune: line for line in reversed(self.registry.lines())}
        issued = self.issued.items()
        inputs = (in_grace, self.grace_from, LOCAL_DAYS.day(now), window_days(now, s.unused_after_days))
        with self.lock:  # the MQTT thread adds samples and traffic days to these facts
            if full or inputs != self._inputs or s != self._settings:
                self._held.clear()
                self._held_communes.clear()
                self._inputs, self._settings = inputs, s.model_copy()
            dirty, self._dirty = self._dirty, set()
            hosts, noted, members, changed, area_of = self._evaluate_hosts(records, dirty, in_grace, now)
            keys = set(members) | {(line.province, commune) for commune, line in lines.items()}
            keys |= {(item.province, item.commune) for item in issued}  # issued equipment, even with no PC or line
            communes = self._evaluate_communes(sorted(keys), members, changed, lines, area_of, now)
            if not in_grace:  # after a restart, PCs are not judged offline yet: no outage opens or ends
                self.outages.update(communes, self.facts, now)
            seen = {commune: list(devices.values()) for commune, devices in self.seen.items()}
        provinces = {commune: province for province, commune in members}
        kit = equipment.fleet_equipment(issued, seen, provinces, s.equipment_unused_after_days, now)
        areas = {c.commune: self.registry.area_of(c.commune) for c in kit}
        conditions = rules.conditions(noted, communes)  # the PCs with nothing to say make no condition
        conditions += equipment.conditions(kit, areas, s.equipment_unused_after_days)
        snapshot = Snapshot(hosts, communes, conditions, kit, now).indexed()
        self.snapshot = snapshot
        return snapshot

    def _evaluate_hosts(
        self, records: list[HostRecord], dirty: set[HostKey], in_grace: bool, now: float
    ) -> tuple[list[HostStatus], list[HostStatus], dict[Place, list[Member]], set[Place], dict[str, str]]:
        """Every PC's status, judged again or kept; those offline or degraded; each commune's
        members; the communes with a PC judged again, come or gone; each commune's area. Under the lock."""
        hosts: list[HostStatus] = []
        noted: list[HostStatus] = []
        members: dict[Place, list[Member]] = {}
        changed: set[Place] = set()
        area_of: dict[str, str] = {}  # each commune's area, asked of the registry once an evaluation
        held, held_get, facts_get = self._held, self._held.get, self.facts.get
        province, commune, area, place, found = "", "", "", ("", ""), []
        for record in records:  # sorted by province and commune: a commune's PCs come one after another
            key = record.key
            if key.commune != commune or key.province != province:
                province, commune = key.province, key.commune
                place = (province, commune)
                area = area_of.get(commune) or self.registry.area_of(commune)
                area_of[commune] = area
                found = members.setdefault(place, [])
            was = held_get(key)
            facts = facts_get(key)
            if (
                was is None
                or now >= was.due
                or key in dirty
                or was.record is not record
                or was.facts is not facts
                or was.status.area != area
            ):
                was = held[key] = self._evaluate_host(record, facts, area, in_grace, now)
                changed.add(place)
            status = was.status
            hosts.append(status)
            if status.reasons or not status.online:
                noted.append(status)
            found.append(was.member)
        if len(held) > len(records):  # PCs forgotten since the last evaluation
            present = {record.key for record in records}
            for key in [key for key in held if key not in present]:
                del held[key]
                changed.add((key.province, key.commune))
        return hosts, noted, members, changed, area_of

    def _evaluate_host(
        self, record: HostRecord, facts: HostFacts | None, area: str, in_grace: bool, now: float
    ) -> HeldHost:
        s, key = self.settings, record.key
        if facts is None:
            facts = self.facts[key] = HostFacts(last_report=record.last_seen)
        counted = rules.counted_status(record.status, record.status_since, in_grace, self.grace_from)
        offline = rules.is_offline(facts, record.last_seen, counted, in_grace, s, now)
        reasons = rules.degraded_reasons(facts, s, now)
        facts.degraded_since = (facts.degraded_since or now) if reasons else 0.0
        status = HostStatus(
            key,
            area,
            not offline,
            max(facts.last_report, record.last_seen),
            reasons,
            record.status_since if offline else 0.0,
            facts.degraded_since,
        )
        due = rules.host_due(facts, record.last_seen, s, now)
        return HeldHost(record, facts, status, Member(status.online, bool(reasons), facts), due)

    def _evaluate_communes(
        self,
        places: list[Place],
        members: dict[Place, list[Member]],
        changed: set[Place],
        lines: dict[str, Line],
        area_of: dict[str, str],
        now: float,
    ) -> list[CommuneStatus]:
        """Every commune's status in ``places``' order, judged again or kept. Under the lock."""
        s, held = self.settings, self._held_communes
        communes = []
        for place in places:
            province, commune = place
            area = area_of.get(commune) or self.registry.area_of(commune)
            line = lines.get(commune)
            was = held.get(place)
            if was is None or place in changed or now >= was.due or was.line != line or was.status.area != area:
                found = members.get(place, [])
                status = rules.commune_status(province, commune, area, found, line, s, now)
                was = held[place] = HeldCommune(status, line, rules.commune_due(found, line, s, now))
            communes.append(was.status)
        if len(held) > len(places):  # communes left with no PC, line nor equipment
            for place in set(held) - set(places):
                del held[place]
        return communes

    def points(self, snapshot: Snapshot, now: float) -> list[Point]:
        with self.lock:
            decided = self.outages.take_points()
        areas = {c.commune: self.registry.area_of(c.commune) for c in snapshot.equipment}
        return (
            fleet_points.points(snapshot, self.registry.areas(), now)
            + fleet_points.equipment_points(snapshot.equipment, areas, now)
            + decided
        )

    def take_kept(self) -> list[Point]:
        """Outage points decided since the last call, for the long retention policy."""
        with self.lock:
            out, self.outages.kept = self.outages.kept, []
        return out

    def awaiting_cause(self, province: str, commune: str) -> bool:
        """Whether the commune is back from an outage whose cause is not decided yet."""
        with self.lock:
            record = self.outages.pending.get((province, commune))
            return record is not None and record.state == "ended"

    def take_decided(self) -> list[OutageRecord]:
        """Outages decided since the last call, for the follow-up message."""
        with self.lock:
            out, self.outages.decided = self.outages.decided, []
        return out

    def save(self) -> None:
        """Every PC's facts into the state file, a chunk at a time: the MQTT thread waits for the
        fleet lock while one chunk is encoded, and the state file's other users (the registry, the
        API) wait for one chunk's transaction, not for 100,000 PCs'."""
        with self.lock:
            hosts = list(self.facts.items())
        for start in range(0, len(hosts), SAVE_CHUNK):
            with self.lock:
                rows = persistence.rows(hosts[start : start + SAVE_CHUNK])
            persistence.save(self._store, rows)
        with self.lock:
            changed = dict(self._seen_changed)
            self._seen_changed.clear()
            self.outages.save_all()
        try:
            persistence.save_seen(self._store, persistence.seen_rows([(c, d) for (c, _), d in changed.items()]))
        except BaseException:
            with self.lock:  # kept for the next save (a full disk)
                for key, device in changed.items():
                    self._seen_changed.setdefault(key, device)
            raise
