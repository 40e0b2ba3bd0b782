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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from collector.alerting.lifecycle import fired_between
from collector.fleet.equipment import issued_at
from collector.ingest.influx import InfluxClient
from collector.ingest.setup_influx import RAW_RP, ROLLUP_RP
from collector.localtime import Window
from collector.registry.equipment import Equipment
from collector.reports.windows import Sums, WindowSums, settled
from collector.store import Store

STATEMENTS_PER_REQUEST = 6
PARALLEL_REQUESTS = 3
OUTAGE_LOOKBACK_S = 30 * 86400  # an outage that began before the month counts its hours inside it


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
    speed: dict[str, float] = field(default_factory=dict)  # commune -> median % of contract
    alerts: list[AlertSpell] = field(default_factory=list)  # alerts firing at some moment of the month
    reasons: dict[tuple[str, str], str] = field(default_factory=dict)  # (commune, host) -> codes, comma-separated
    outages: list[Outage] = field(default_factory=list)  # decided outages that overlap the month
    # (commune, kind): issued, in use, plugged in but never opened, judged by PC/SC (0 before the collector said)
    equipment: dict[tuple[str, str], tuple[float, float, float, float]] = field(default_factory=dict)
    issued: dict[tuple[str, str], int] = field(default_factory=dict)  # (commune, kind): items issued by then


@dataclass(frozen=True)
class AlertSpell:
    """An alert as its record in the state file has it: fired at ``start``, resolved at ``end``
    (0 while it is still firing)."""

    commune: str
    host: str
    rule: str
    start: float
    end: float


@dataclass(frozen=True)
class Outage:
    """A decided outage of a commune (the collector's ``outage`` point)."""

    commune: str
    cause: str  # line, power, office_closed, unknown
    start: int
    end: int


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
) -> Fetched:
    """The month's rows; ``now`` (default the clock) decides which windows have settled and are kept."""
    now = time.time() if now is None else now
    out = Fetched(windows, month_start, month_end)
    out.communes = per_window(client, store, "commune", windows, now)
    out.hosts = per_window(client, store, "agent", windows, now)
    for row in client.query_rows(
        f'SELECT median("mean_download_percent_of_contract") AS p FROM "{ROLLUP_RP}"."speedtest" '
        f'WHERE time >= {month_start}s AND time < {month_end}s GROUP BY "commune"'
    ):
        if row.get("p") is not None:
            out.speed[str(row["commune"])] = float(row["p"])
    out.alerts = alert_spells(store, month_start, month_end)
    for row in client.query_rows(
        f'SELECT last("degraded_reasons") AS r FROM "{RAW_RP}"."agent" '
        f'WHERE time >= {month_start}s AND time < {month_end}s AND "degraded" = 1 GROUP BY "commune", "host"'
    ):
        out.reasons[(str(row["commune"]), str(row["host"]))] = str(row.get("r") or "")
    for row in client.query_rows(
        f'SELECT "end" FROM "{ROLLUP_RP}"."outage" '
        f'WHERE time >= {month_start - OUTAGE_LOOKBACK_S}s AND time < {month_end}s GROUP BY "commune", "cause"'
    ):
        start, end = int(row["time"]), int(row.get("end") or 0)
        if end > month_start:
            out.outages.append(Outage(str(row["commune"]), str(row["cause"]), start, end))
    for row in client.query_rows(
        f'SELECT last("mean_issued") AS issued, last("mean_seen") AS seen FROM "{ROLLUP_RP}"."equipment" '
        f'WHERE time >= {month_start}s AND time < {month_end}s GROUP BY "commune", "kind"'
    ):
        if row.get("issued") is not None and row.get("seen") is not None:
            said = (float(row["issued"]), float(row["seen"]), 0.0, 0.0)
            out.equipment[(str(row["commune"]), str(row["kind"]))] = said
    # asked apart: a month whose points lack these fields (written before them) keeps its figures whatever
    # InfluxDB answers for a field it does not have
    for row in client.query_rows(
        f'SELECT last("mean_plugged_idle") AS plugged_idle, last("mean_judged_pcsc") AS pcsc FROM "{ROLLUP_RP}".'
        f'"equipment" WHERE time >= {month_start}s AND time < {month_end}s GROUP BY "commune", "kind"'
    ):
        key = (str(row["commune"]), str(row["kind"]))
        if key in out.equipment:
            issued, seen, _p, _j = out.equipment[key]
            out.equipment[key] = (issued, seen, float(row.get("plugged_idle") or 0.0), float(row.get("pcsc") or 0.0))
    for item in Equipment(store).items():
        if issued_at(item) < month_end:
            out.issued[(item.commune, item.kind)] = out.issued.get((item.commune, item.kind), 0) + 1
    return out


def alert_spells(store: Store, start: int, end: int) -> list[AlertSpell]:
    """The alerts firing at some moment of [start, end), from their records in the state file."""
    return [AlertSpell(a.commune, a.host, a.rule, a.fired_at, a.resolved_at) for a in fired_between(store, start, end)]


def per_window(client: InfluxClient, store: Store, kind: str, windows: list[Window], now: float) -> list[Slots]:
    """The slots of every commune (or PC) in each window: kept sums from the state file, the rest
    from InfluxDB (kept in turn once the window has settled)."""
    kept = WindowSums(store)
    found = kept.read(kind, windows)
    missing = [i for i in range(len(windows)) if i not in found]
    asked = _ask(client, [windows[i] for i in missing], WINDOW_QUERIES[kind])
    for i, sums in zip(missing, asked, strict=True):
        found[i] = [(s.commune, s.host, s.n, s.a, s.b) for s in sums]
        if settled(windows[i], now):
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
