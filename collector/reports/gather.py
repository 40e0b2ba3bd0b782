"""Fetches what a monthly report is computed from: InfluxQL over the 5-minute rollups (kept 400
days, so last month is still there when raw points have expired) and the registry.

One statement per office window, grouped by commune or PC, so InfluxDB does the summing and the
answer stays small (communes × windows rows) even for the whole nation; a past window's sums are
kept in the state file (``windows.py``), so each is asked of InfluxDB once. Only the degraded PCs'
reason codes come from raw points: text fields are not rolled up. Alerts come from their records
in the state file (fired and resolved to the second), not from the rollups.
"""

from __future__ import annotations

import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from collector.alerting.lifecycle import fired_between
from collector.fleet.equipment import SeenDevice, issued_at
from collector.fleet.outage_book import recent
from collector.ingest.checks import ON_DEMAND_TAG, ON_DEMAND_VALUE
from collector.ingest.influx import InfluxClient
from collector.ingest.setup_influx import RAW_RP, ROLLUP_RP
from collector.localtime import Window
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.exclusions import Exclusion, Exclusions
from collector.registry.registry import Registry
from collector.reports.evidence import Outage, SpeedRow
from collector.reports.windows import Sums, WindowSums, settled
from collector.store import Store

STATEMENTS_PER_REQUEST = 6
PARALLEL_REQUESTS = 3
OUTAGE_LOOKBACK_S = 30 * 86400  # an outage that began before the month counts its hours inside it
# Results of on-demand actions ("test now" from the desk) are never counted: a test made because a
# commune phoned about a slow line would pull its month down (collector/actions.py). A point without
# the tag (every scheduled one) has it empty, which this keeps.
NOT_ON_DEMAND = f"\"{ON_DEMAND_TAG}\" != '{ON_DEMAND_VALUE}'"


@dataclass(frozen=True)
class Slots:
    """5-minute slots of one commune (or PC) in one office window: how many had data, and sums."""

    window: int  # index into the report's windows
    commune: str
    host: str
    n: float
    a: float  # commune: down slots; PC: online slots
    b: float  # commune: unused slots; PC: degraded slots


@dataclass
class Fetched:
    windows: list[Window]
    month_start: int
    month_end: int  # the month's end, or now for the current month
    communes: list[Slots] = field(default_factory=list)
    hosts: list[Slots] = field(default_factory=list)
    speed_tests: dict[str, list[SpeedRow]] = field(default_factory=dict)  # commune -> the month's speed tests
    alerts: list[AlertSpell] = field(default_factory=list)  # alerts firing at some moment of the month
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # (commune, host) -> codes, comma-separated
    outages: list[Outage] = field(default_factory=list)  # decided outages that overlap the month
    # (commune, kind): issued, in use, plugged in but never opened, judged by PC/SC (0 before the collector said)
    equipment: dict[tuple[str, str], tuple[float, float, float, float]] = field(default_factory=dict)
    issued: dict[tuple[str, str], int] = field(default_factory=dict)  # (commune, kind): items issued by then
    exclusions: list[Exclusion] = field(default_factory=list)  # every exclusion recorded (applied as of as_of)
    as_of: float = 0.0  # when the report was made: the exclusions in force then are applied
    heard: dict[str, tuple[float, float]] = field(default_factory=dict)  # commune -> its PCs' first and last report
    last_heard: dict[str, float] = field(default_factory=dict)  # commune -> its PCs' last report (no-data reasons)
    versions: dict[tuple[str, str], str] = field(default_factory=dict)  # (commune, host) -> its agent's release
    items: list[IssuedItem] = field(default_factory=list)  # the registry's issued items (of ``commune`` if asked)
    seen: dict[str, list[SeenDevice]] = field(default_factory=dict)  # commune -> devices seen in the month
    days_seen: dict[tuple[str, str], tuple[date, ...]] = field(default_factory=dict)  # (commune, device) -> days
    equipment_days: int = 14  # an item is in use when seen within this many days of the month's end


@dataclass(frozen=True)
class AlertSpell:
    """An alert as its record in the state file has it: fired at ``start``, resolved at ``end``
    (0 while it is still firing)."""

    commune: str
    host: str
    rule: str
    start: float
    end: float


WINDOW_QUERIES = {  # per office window: commune slots (down, unused), PC slots (online, degraded)
    "commune": 'SELECT sum("mean_line_down") AS a, sum("mean_line_unused") AS b, count("mean_line_down") AS n '
    f'FROM "{ROLLUP_RP}"."commune" WHERE time >= {{start}}s AND time < {{end}}s GROUP BY "commune"',
    "agent": 'SELECT sum("mean_online") AS a, sum("mean_degraded") AS b, count("mean_online") AS n '
    f'FROM "{ROLLUP_RP}"."agent" WHERE time >= {{start}}s AND time < {{end}}s GROUP BY "commune", "host"',
}


def fetch(
    client: InfluxClient,
    store: Store,
    windows: list[Window],
    month_start: int,
    month_end: int,
    now: float | None = None,
    registry: Registry | None = None,
    commune: str = "",
    zone: str = "UTC",
    equipment_days: int = 14,
) -> Fetched:
    """The month's rows; ``now`` (default the clock) decides which windows have settled and are kept,
    and which exclusions are in force. ``commune``: only that commune's rows (the API's scorecard;
    the outages and the fleet's first and last reports stay whole: fleet silence needs everyone's).
    ``zone``: the local days the devices were seen on are this zone's; ``equipment_days``: the fleet's
    window for "in use" (``[fleet] equipment_unused_after_days``)."""
    now = time.time() if now is None else now
    out = Fetched(windows, month_start, month_end, as_of=now, equipment_days=equipment_days)
    out.communes = per_window(client, store, "commune", windows, now, commune)
    out.hosts = per_window(client, store, "agent", windows, now, commune)
    only = f" AND \"commune\" = '{commune}'" if commune else ""
    span = f"time >= {month_start}s AND time < {month_end}s"
    asked = _rows_of(client, {  # the month's other rows, asked of InfluxDB at once (each is a short answer)
        "speed": f'SELECT "mean_download_percent_of_contract" AS p FROM "{ROLLUP_RP}"."speedtest" '
                 f'WHERE {span}{only} AND {NOT_ON_DEMAND} GROUP BY "commune"',
        "reasons": f'SELECT last("degraded_reasons") AS r FROM "{RAW_RP}"."agent" '
                   f'WHERE {span} AND "degraded" = 1{only} GROUP BY "commune", "host"',
        "outages": f'SELECT "end" FROM "{ROLLUP_RP}"."outage" WHERE time >= {month_start - OUTAGE_LOOKBACK_S}s '
                   f'AND time < {month_end}s GROUP BY "commune", "cause"',
        "equipment": f'SELECT last("mean_issued") AS issued, last("mean_seen") AS seen FROM "{ROLLUP_RP}".'
                     f'"equipment" WHERE {span}{only} GROUP BY "commune", "kind"',
        # asked apart: a month whose points lack these fields (written before them) keeps its figures
        # whatever InfluxDB answers for a field it does not have
        "pcsc": f'SELECT last("mean_plugged_idle") AS plugged_idle, last("mean_judged_pcsc") AS pcsc FROM '
                f'"{ROLLUP_RP}"."equipment" WHERE {span}{only} GROUP BY "commune", "kind"',
        **peripheral_queries(span, only, zone),
    })  # fmt: skip
    for row in asked["speed"]:
        if row.get("p") is not None:
            out.speed_tests.setdefault(str(row["commune"]), []).append(SpeedRow(int(row["time"]), float(row["p"])))
    out.alerts = [a for a in alert_spells(store, month_start, month_end) if not commune or a.commune == commune]
    for row in asked["reasons"]:
        out.reasons[(str(row["commune"]), str(row["host"]))] = str(row.get("r") or "")
    out.outages = outages(asked["outages"], store, month_start)
    if registry is not None:
        out.heard, out.last_heard = heard(registry, month_start, month_end)
        out.versions = {(r.key.commune, r.key.host): r.agent_version for r in registry.hosts()
                        if r.agent_version and (not commune or r.key.commune == commune)}  # fmt: skip
    out.exclusions = Exclusions(store, registry, "UTC").all() if registry is not None else []
    for row in asked["equipment"]:
        if row.get("issued") is not None and row.get("seen") is not None:
            said = (float(row["issued"]), float(row["seen"]), 0.0, 0.0)
            out.equipment[(str(row["commune"]), str(row["kind"]))] = said
    for row in asked["pcsc"]:
        key = (str(row["commune"]), str(row["kind"]))
        if key in out.equipment:
            issued, seen, _p, _j = out.equipment[key]
            out.equipment[key] = (issued, seen, float(row.get("plugged_idle") or 0.0), float(row.get("pcsc") or 0.0))
    out.items = Equipment(store).items(commune or None)
    for item in out.items:
        if issued_at(item) < month_end:
            out.issued[(item.commune, item.kind)] = out.issued.get((item.commune, item.kind), 0) + 1
    out.seen, out.days_seen = devices_seen(asked, ZoneInfo(zone), month_end)
    return out


def peripheral_queries(span: str, only: str, zone: str) -> dict[str, str]:
    """The month's devices: per commune, PC and device, each local day it was reported on (when it
    was last seen that day, whether it was plugged in, and whether PC/SC watched it), from the
    5-minute rollups (kept 400 days; written since the collector rolled ``peripheral`` up) and from
    the raw points (kept ``raw_retention``), the two merged; its serial and model from the raw
    points (text is not rolled up; gone once raw points expire, then items are matched by kind);
    when an application last had each token open (the raw ``smartcard`` points, per reader, and
    which device each reader is)."""
    by = 'GROUP BY "commune", "host", "device", "kind"'
    return {
        "peripheral": f'SELECT max("mean_last_seen_today") AS last, max("mean_present") AS present, '
                      f'max("mean_pcsc") AS pcsc FROM "{ROLLUP_RP}"."peripheral" WHERE {span}{only} '
                      f"{by}, time(1d) fill(none) tz('{zone}')",
        "peripheral_raw": f'SELECT max("last_seen_today") AS last, max("present") AS present, max("pcsc") AS pcsc '
                          f'FROM "{RAW_RP}"."peripheral" WHERE {span}{only} {by}, time(1d) fill(none) tz(\'{zone}\')',
        "serials": f'SELECT last("serial") AS serial FROM "{RAW_RP}"."peripheral" WHERE {span}{only} {by}',
        "models": f'SELECT last("model") AS model FROM "{RAW_RP}"."peripheral" WHERE {span}{only} {by}',
        "opened": f'SELECT max("last_in_use") AS opened FROM "{RAW_RP}"."smartcard" WHERE {span}{only} '
                  f'AND "in_use" = 1 GROUP BY "commune", "host", "reader"',
        "readers": f'SELECT last("device") AS device FROM "{RAW_RP}"."smartcard" WHERE {span}{only} '
                   f'GROUP BY "commune", "host", "reader"',
    }  # fmt: skip


def devices_seen(
    asked: dict[str, list[dict[str, Any]]], zone: ZoneInfo, month_end: int
) -> tuple[dict[str, list[SeenDevice]], dict[tuple[str, str], tuple[date, ...]]]:
    """Per commune the devices seen in the month as the fleet folds them (``SeenDevice``), and the
    local days each was seen on. A day's last sighting is its latest ``last_seen_today`` (the report's
    time while plugged in); PC/SC watched it from the first day a raw report said so to the last."""
    text: dict[tuple[str, str, str], dict[str, str]] = defaultdict(dict)
    for name in ("serials", "models"):
        for row in asked[name]:
            value = row.get(name[:-1])
            if value:
                text[(str(row["commune"]), str(row["host"]), str(row["device"]))][name[:-1]] = str(value)
    reader_of = {(str(r["commune"]), str(r["host"]), str(r["reader"])): str(r.get("device") or "")
                 for r in asked["readers"]}  # fmt: skip
    opened: dict[tuple[str, str], float] = {}
    for row in asked["opened"]:
        device = reader_of.get((str(row["commune"]), str(row["host"]), str(row["reader"])), "")
        at = min(float(row.get("opened") or 0.0), float(month_end))
        if device and at > 0:
            opened[(str(row["commune"]), device)] = max(opened.get((str(row["commune"]), device), 0.0), at)
    found: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    # a day in both: the max of each is the same; the raw rows are marked, as only they say PC/SC
    for row in [*asked["peripheral"], *({**r, "raw": True} for r in asked["peripheral_raw"])]:
        found[(str(row["commune"]), str(row["host"]), str(row["device"]), str(row["kind"]))].append(row)
    devices: dict[tuple[str, str], SeenDevice] = {}
    days: dict[tuple[str, str], set[date]] = defaultdict(set)
    for (commune, host, device, kind), rows in sorted(found.items()):
        sightings = [(int(r["time"]), min(float(r.get("last") or 0.0), float(month_end))) for r in rows]
        seen_on = [(t, last) for t, last in sightings if last > 0]
        if not device or not seen_on:
            continue
        # PC/SC's judgement needs when the token was opened, in the raw smartcard points only: where the
        # raw points have expired, the presence rule judges (never "plugged, never opened" for want of them)
        watched = [int(r["time"]) for r in rows if r.get("raw") and float(r.get("pcsc") or 0.0) > 0]
        said = text.get((commune, host, device), {})
        mine = SeenDevice(device, kind, said.get("serial", ""), said.get("model", ""), host,
                          min(last for _t, last in seen_on), max(last for _t, last in seen_on),
                          float(min(watched)) if watched else 0.0,
                          max((last for t, last in seen_on if t == max(watched)), default=0.0) if watched else 0.0,
                          opened.get((commune, device), 0.0) if watched else 0.0)  # fmt: skip
        before = devices.get((commune, device))
        if before is None or mine.last_seen > before.last_seen:  # a device moved to another PC: its latest
            devices[(commune, device)] = mine
        days[(commune, device)] |= {datetime.fromtimestamp(t, zone).date() for t, _last in seen_on}
    seen: dict[str, list[SeenDevice]] = defaultdict(list)
    for (commune, _device), d in sorted(devices.items()):
        seen[commune].append(d)
    return dict(seen), {key: tuple(sorted(v)) for key, v in days.items()}


def outages(rows: list[dict[str, Any]], store: Store, month_start: int) -> list[Outage]:
    """The decided outages overlapping the month (``rows``: the collector's ``outage`` points from
    before the month), each with the evidence its cause came from when the state file still has its record."""
    records = {(r.commune, int(r.start)): r for r in recent(store, month_start - OUTAGE_LOOKBACK_S, None, None)
               if r.state == "decided"}  # fmt: skip
    out = []
    for row in rows:
        start, end, commune = int(row["time"]), int(row.get("end") or 0), str(row["commune"])
        if end <= month_start:
            continue
        record = records.get((commune, start))
        if record is None:
            out.append(Outage(commune, str(row["cause"]), start, end))
            continue
        hosts = tuple(f"{e.get('host')}: {e.get('points_to')} ({', '.join(str(r) for r in _listed(e.get('reasons')))})"
                      for e in record.evidence)  # fmt: skip
        out.append(Outage(commune, str(row["cause"]), start, end, record.confidence, tuple(record.reasons), hosts))
    return out


def _rows_of(client: InfluxClient, queries: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Each query's rows, the queries run side by side (``PARALLEL_REQUESTS`` at a time)."""
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        answers = {name: pool.submit(client.query_rows, text) for name, text in queries.items()}
        return {name: answer.result() for name, answer in answers.items()}


def _listed(value: object) -> list[object]:
    return list(value) if isinstance(value, list | tuple) else []


def heard(registry: Registry, month_start: int, month_end: int) -> tuple[dict[str, tuple[float, float]],
                                                                       dict[str, float]]:  # fmt: skip
    """Per commune, from the registry's PCs: the first and last report of those heard in the month,
    and the last report of every commune heard before the month's end."""
    spans: dict[str, tuple[float, float]] = {}
    last: dict[str, float] = {}
    for r in registry.hosts():
        c = r.key.commune
        if r.last_seen > 0 and r.first_seen < month_end:
            last[c] = max(last.get(c, 0.0), min(r.last_seen, float(month_end)))
        if r.first_seen < month_end and r.last_seen >= month_start:
            first, final = spans.get(c, (r.first_seen, r.last_seen))
            spans[c] = (min(first, r.first_seen), max(final, r.last_seen))
    return spans, last


def alert_spells(store: Store, start: int, end: int) -> list[AlertSpell]:
    """The alerts firing at some moment of [start, end), from their records in the state file."""
    return [AlertSpell(a.commune, a.host, a.rule, a.fired_at, a.resolved_at) for a in fired_between(store, start, end)]


def per_window(
    client: InfluxClient, store: Store, kind: str, windows: list[Window], now: float, commune: str = ""
) -> list[Slots]:
    """The slots of every commune (or PC) in each window: kept sums from the state file, the rest
    from InfluxDB (kept in turn once the window has settled). ``commune``: that commune's only (read
    from the kept sums, the rest asked of InfluxDB for it alone and not kept)."""
    kept = WindowSums(store)
    found = kept.read(kind, windows, commune)
    missing = [i for i in range(len(windows)) if i not in found]
    template = WINDOW_QUERIES[kind]
    if commune:
        template = template.replace(" GROUP BY", f" AND \"commune\" = '{commune}' GROUP BY")
    asked = _ask(client, [windows[i] for i in missing], template)
    for i, sums in zip(missing, asked, strict=True):
        found[i] = [(s.commune, s.host, s.n, s.a, s.b) for s in sums]
        if settled(windows[i], now) and not commune:
            kept.save(kind, windows[i], sums)
    return [Slots(i, *row) for i in sorted(found) for row in found[i]]


def _ask(client: InfluxClient, windows: list[Window], template: str) -> list[list[Sums]]:
    """Each window's sums from InfluxDB: requests of a few statements each, ``PARALLEL_REQUESTS`` at
    a time (InfluxDB runs them on every core)."""

    def request(first: int) -> list[list[Sums]]:
        chunk = windows[first : first + STATEMENTS_PER_REQUEST]
        text = ";".join(template.format(start=w.start, end=w.end) for w in chunk)
        out: list[list[Sums]] = [[] for _ in chunk]
        for result in client.query(text):
            index = int(result.get("statement_id", 0))
            for series in result.get("series", []):
                out[index].extend(_sums(series))
        return out

    if not windows:
        return []
    with ThreadPoolExecutor(PARALLEL_REQUESTS) as pool:
        answers = list(pool.map(request, range(0, len(windows), STATEMENTS_PER_REQUEST)))
    return [sums for answer in answers for sums in answer]


def _sums(series: dict[str, Any]) -> list[Sums]:
    tags = series.get("tags", {})
    out = []
    for values in series.get("values", []):
        row = dict(zip(series["columns"], values, strict=True))
        out.append(Sums(str(tags.get("commune", "")), str(tags.get("host", "")),
                        float(row.get("n") or 0), float(row.get("a") or 0), float(row.get("b") or 0)))  # fmt: skip
    return out
