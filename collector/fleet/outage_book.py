"""The outage records of communes: opened when every PC of a commune went silent, closed when one
is back, and their cause decided (``outages.decide``) once the backlog has drained.

A record gathers each PC's evidence as reports arrive: the reports measured inside the outage
(their own timestamps: spooled reports arrive late), probes among them, boot times before and
after, and how its agent went offline. The cause is decided when every PC of the record has
delivered a metrics report measured after the return (spools send oldest first, so its backlog is
in, and the report carries its boot time; an inventory or status may come first), or
``[fleet] outage_decide_max_s`` after the return, whichever comes first. Records live in the state
file's ``outages`` table, so a collector restart keeps them and decides the same way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from typing import Any

from collector.fleet import facts as gather
from collector.fleet.facts import HostFacts
from collector.fleet.outages import HostEvidence, QuietWindows, decide, evidence_rows
from collector.fleet.rules import CommuneStatus
from collector.ingest.lineprotocol import Point
from collector.registry.registry import HostKey
from collector.store import Store
from common.wire import Report

log = logging.getLogger(__name__)
# A report counts as measured during the outage only when it arrived this many of its PC's report
# intervals late: spooled. The first reports of a PC switched back on are measured inside the
# record's window too (its end is the evaluation that saw it back), but arrive within seconds.
LATE_INTERVALS = 2.0


@dataclass
class Tally:
    """One PC's evidence so far, as the state file keeps it."""

    spools: bool = True
    boot_before: float = 0.0
    boot_after: float = 0.0
    boot_after_ts: float = 0.0  # the measurement time of the report boot_after came from
    reports_during: int = 0
    gateway_ok: int = 0
    outside_failed: int = 0
    offline_reason: str = ""
    caught_up: bool = False  # it delivered a metrics report (with its boot time) measured after the return

    def evidence(self, host: str) -> HostEvidence:
        return HostEvidence(host, self.spools, self.boot_before, self.boot_after, self.reports_during,
                            self.gateway_ok, self.outside_failed, self.offline_reason)  # fmt: skip


@dataclass
class OutageRecord:
    province: str
    commune: str
    area: str
    start: float  # the last moment anything measured in the commune was heard before it went dark
    opened_at: float
    end: float = 0.0  # when a PC was back; 0 while the outage lasts
    state: str = "open"  # open, ended, decided
    cause: str = ""
    confidence: float = 0.0
    reasons: list[str] = field(default_factory=list)
    evidence: list[dict[str, object]] = field(default_factory=list)
    decided_at: float = 0.0
    hosts: dict[str, Tally] = field(default_factory=dict)
    id: int = 0

    @property
    def duration_s(self) -> float:
        return max(0.0, self.end - self.start) if self.end else 0.0

    def body(self) -> str:
        data = asdict(self)
        data.pop("id")
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_row(cls, row_id: int, body: str) -> OutageRecord:
        data: dict[str, Any] = json.loads(body)
        data["hosts"] = {host: Tally(**tally) for host, tally in data.get("hosts", {}).items()}
        return cls(id=row_id, **data)


class OutageBook:
    """Every outage record still being judged, and the writing of decided ones. Not thread-safe
    by itself: ``FleetState`` calls it under its lock."""

    def __init__(self, store: Store, quiet: QuietWindows, decide_max_s: float) -> None:
        self._store = store
        self.quiet = quiet
        self.decide_max_s = decide_max_s
        self.last_ts: dict[HostKey, float] = {}  # the latest measurement time heard per PC
        self.offline_reason: dict[HostKey, str] = {}  # how each PC's agent last went offline
        self.pending: dict[tuple[str, str], OutageRecord] = {}
        self.points: list[Point] = []  # outage points of decisions not yet written
        self.kept: list[Point] = []  # the same, not yet written to the long retention policy (the report's)
        self.decided: list[OutageRecord] = []  # decisions not yet told (notifications take them)
        for row_id, body in store.query("SELECT id, body FROM outages WHERE state != 'decided'"):
            try:
                record = OutageRecord.from_row(row_id, body)
            except (ValueError, TypeError) as exc:
                log.warning("outage record skipped", extra={"id": row_id, "error": str(exc)[:120]})
                continue
            self.pending[(record.province, record.commune)] = record

    def observe(self, key: HostKey, report: Report, received_at: float, interval_s: float) -> None:
        """Fold one accepted report into the evidence of its commune's record, if it has one."""
        if report.kind == "status":
            if report.state == "offline":
                self.offline_reason[key] = report.reason or ""
            record = self.pending.get((key.province, key.commune))
            if record is not None and report.state == "offline" and record.state == "open":
                record.hosts.setdefault(key.host, Tally()).offline_reason = report.reason or ""
            return
        self.last_ts[key] = max(self.last_ts.get(key, 0.0), report.ts)
        record = self.pending.get((key.province, key.commune))
        if record is None or report.ts <= record.start:
            return
        tally = record.hosts.setdefault(key.host, Tally())
        if record.end and report.ts >= record.end and report.kind == "metrics":
            tally.caught_up = True  # its backlog is in (spools send oldest first), and its boot time after
        margin = LATE_INTERVALS * interval_s  # a report measured at the very start may be one a PC had not sent
        late = received_at - report.ts >= margin and report.ts > record.start + margin
        if late and (not record.end or report.ts < record.end):
            tally.reports_during += 1
            if report.kind == "probe":
                count_probes(tally, gather.read_probes(report))
        if report.kind == "metrics" and report.ts >= tally.boot_after_ts:
            boot = gather.read_metrics(report).boot_time
            if boot:
                tally.boot_after, tally.boot_after_ts = boot, report.ts

    def update(self, communes: list[CommuneStatus], facts: dict[HostKey, HostFacts], now: float) -> None:
        """Open a record for a commune gone dark, close it when it is back, decide when due."""
        for commune in communes:
            key = (commune.province, commune.commune)
            dark = commune.line_state == "down" and "all_hosts_offline" in commune.reasons
            record = self.pending.get(key)
            if dark and (record is None or record.state != "open"):
                if record is None or record.state == "decided":
                    self._open(commune, facts, now)
            elif not dark and record is not None and record.state == "open":
                record.end, record.state = now, "ended"
                self.save(record)
        for record in list(self.pending.values()):
            if record.state == "ended" and self._due(record, now):
                self._decide(record, now)

    def _open(self, commune: CommuneStatus, facts: dict[HostKey, HostFacts], now: float) -> None:
        mine = {k: f for k, f in facts.items() if (k.province, k.commune) == (commune.province, commune.commune)}
        heard = [self.last_ts.get(k, 0.0) or f.last_report for k, f in mine.items()]
        if max(heard, default=0.0) <= 0 or not any(f.boot_time for f in mine.values()):
            return  # no PC has sent its metrics yet (it is just starting): nothing went dark
        record = OutageRecord(commune.province, commune.commune, commune.area, max(heard), now)
        for k, f in mine.items():
            record.hosts[k.host] = Tally(spools=not f.spool_failed, boot_before=f.boot_time,
                                         offline_reason=self.offline_reason.get(k, ""))  # fmt: skip
        self.pending[(commune.province, commune.commune)] = record
        self.save(record)
        log.info("outage opened", extra={"commune": commune.commune, "hosts": len(record.hosts)})

    def _due(self, record: OutageRecord, now: float) -> bool:
        drained = bool(record.hosts) and all(t.caught_up for t in record.hosts.values())
        return drained or now - record.end >= self.decide_max_s

    def _decide(self, record: OutageRecord, now: float) -> None:
        verdict = decide([t.evidence(h) for h, t in sorted(record.hosts.items())], record.start, record.end, self.quiet)
        record.cause, record.confidence, record.reasons = verdict.cause, verdict.confidence, list(verdict.reasons)
        record.evidence, record.decided_at, record.state = evidence_rows(verdict), now, "decided"
        self.save(record)
        del self.pending[(record.province, record.commune)]
        self.points.append(outage_point(record))
        self.kept.append(outage_point(record))
        self.decided.append(record)
        log.info("outage decided", extra={"commune": record.commune, "cause": record.cause,
                                          "confidence": record.confidence})  # fmt: skip

    def save(self, record: OutageRecord) -> None:
        if record.id:
            self._store.execute("UPDATE outages SET state = ?, body = ? WHERE id = ?",
                                (record.state, record.body(), record.id))  # fmt: skip
            return
        cursor = self._store.execute(
            "INSERT INTO outages (province, commune, start, state, body) VALUES (?, ?, ?, ?, ?)",
            (record.province, record.commune, record.start, record.state, record.body()),
        )
        record.id = int(cursor.lastrowid or 0)

    def save_all(self) -> None:
        """The evidence gathered since the last save (called with the fleet's periodic save)."""
        for record in self.pending.values():
            self.save(record)

    def take_points(self) -> list[Point]:
        out, self.points = self.points, []
        return out


def record_json(record: OutageRecord) -> dict[str, Any]:
    """A record as the API shows it: the verdict, and each PC's evidence beside its reading."""
    found = {str(row["host"]): row for row in record.evidence}
    hosts = [{"host": host, **asdict(tally), **{k: v for k, v in found.get(host, {}).items() if k != "host"}}
             for host, tally in sorted(record.hosts.items())]  # fmt: skip
    return {
        "id": record.id,
        "province": record.province,
        "area": record.area,
        "commune": record.commune,
        "start": record.start,
        "end": record.end or None,
        "duration_s": record.duration_s if record.end else None,
        "state": record.state,
        "cause": record.cause or None,
        "confidence": record.confidence,
        "reasons": record.reasons,
        "decided_at": record.decided_at or None,
        "hosts": hosts,
    }


def count_probes(tally: Tally, results: list[gather.ProbeResult]) -> None:
    if any(r.scope == "gateway" and r.ok is True for r in results):
        tally.gateway_ok += 1
        outside = [r for r in results if r.scope in ("wan", "internet")]
        if outside and all(r.ok is False for r in outside):
            tally.outside_failed += 1


def outage_point(record: OutageRecord) -> Point:
    tags = {"province": record.province, "area": record.area, "commune": record.commune, "cause": record.cause}
    fields: dict[str, float | str] = {
        "duration_s": float(record.duration_s),
        "confidence": float(record.confidence),
        "hosts": float(len(record.hosts)),
        "end": float(record.end),
    }
    return Point("outage", tags, fields, int(record.start))


def recent(
    store: Store, since: float = 0.0, commune: str | None = None, limit: int | None = 1000
) -> list[OutageRecord]:
    """The outage records that started at or after ``since`` (of one commune, if given), newest
    first, at most ``limit`` (None: all, for the API's pages)."""
    where = "start >= ?"
    params: list[float | str] = [since]
    if commune is not None:
        where, params = where + " AND commune = ?", [*params, commune]
    rows = store.read(f"SELECT id, body FROM outages WHERE {where} ORDER BY start DESC, id DESC LIMIT ?",
                      (*params, -1 if limit is None else limit))  # fmt: skip
    out = []
    for row_id, body in rows:
        try:
            out.append(OutageRecord.from_row(row_id, body))
        except (ValueError, TypeError):
            continue
    return out
