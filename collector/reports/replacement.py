"""The replacement list: every PC ranked by a score of what was measured on it over a month's
office hours, so the PCs to replace first are the ones that fail people most (``GET
/api/v1/replacement``). Each row carries its evidence and the office days it covers.

The score, 0 to 100, is the sum of these parts, each capped (``SCORE_PARTS``):

- ``disk_failing`` 40: a disk's own S.M.A.R.T. verdict failed in the month, or one disk had more
  reallocated + pending sectors than ``[fleet] disk_bad_sectors``;
- ``hang_minutes_per_day`` 25 at 60 minutes or more: office minutes a day with the system disk
  busy above ``[fleet] disk_busy_percent`` (5-minute means of the ``io`` section);
- ``memory_short`` 10 at 100 %: the share of office 5-minute slots with memory above
  ``[fleet] memory_percent``;
- ``cpu_saturated`` 10 at 100 %: the share of office slots with CPU above ``[fleet] cpu_percent``;
- ``reboots_per_day`` 5 at one a day or more: boot times seen in the raw points (30 days), per
  office day covered;
- ``age_years`` 10 at 8 years or more: years since the collector first saw the PC (the agent
  reports no BIOS date yet).

Figures come from the 5-minute rollups, one request per office window (four statements), and
the month's disk health from ``rollup_5m.disk_health``. A PC is listed when it has a point in an
office window of the month, named by its points' tags (its age from the registry, which knows it
once it has reported live); before ``setup-influx`` has made the rollups, none is.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from collector.config import FleetSettings
from collector.ingest.influx import InfluxClient, InfluxError
from collector.ingest.setup_influx import RAW_RP, ROLLUP_RP
from collector.localtime import Window
from collector.registry.registry import HostKey, Registry

YEAR_S = 365.25 * 86400
SLOT_MINUTES = 5.0
SCORE_PARTS: dict[str, tuple[float, float]] = {  # evidence -> (points at full, the figure that gives them)
    "disk_failing": (40.0, 1.0),
    "hang_minutes_per_day": (25.0, 60.0),
    "memory_short": (10.0, 1.0),
    "cpu_saturated": (10.0, 1.0),
    "reboots_per_day": (5.0, 1.0),
    "age_years": (10.0, 8.0),
}
WINDOW_QUERIES = (  # per office window, grouped by commune and host: slots with data, then slots over each mark
    f'SELECT count("mean_cpu_percent") AS n FROM "{ROLLUP_RP}"."system" WHERE time >= {{start}}s AND time < {{end}}s '
    'GROUP BY "province", "area", "commune", "host"',
    f'SELECT count("mean_cpu_percent") AS n FROM "{ROLLUP_RP}"."system" WHERE "mean_cpu_percent" > {{cpu}} '
    'AND time >= {start}s AND time < {end}s GROUP BY "province", "area", "commune", "host"',
    f'SELECT count("mean_mem_used_percent") AS n FROM "{ROLLUP_RP}"."system" WHERE "mean_mem_used_percent" > {{mem}} '
    'AND time >= {start}s AND time < {end}s GROUP BY "province", "area", "commune", "host"',
    f'SELECT count("mean_busy_percent") AS n FROM "{ROLLUP_RP}"."io" WHERE "mean_busy_percent" > {{busy}} '
    'AND time >= {start}s AND time < {end}s GROUP BY "province", "area", "commune", "host"',
)


@dataclass
class Evidence:
    """What was measured on one PC over the month's office windows."""

    province: str
    commune: str
    host: str
    area: str = ""
    days: set[str] = field(default_factory=set)  # office days with any point
    slots: float = 0.0  # office 5-minute slots with a system point
    cpu_slots: float = 0.0
    memory_slots: float = 0.0
    busy_slots: float = 0.0
    disk_failing: bool = False
    reboots: float = 0.0
    first_seen: float = 0.0


def figures(e: Evidence, now: float) -> dict[str, float]:
    """The evidence as the figures the score is made of."""
    days = len(e.days)
    return {
        "disk_failing": 1.0 if e.disk_failing else 0.0,
        "hang_minutes_per_day": round(e.busy_slots * SLOT_MINUTES / days, 1) if days else 0.0,
        "memory_short": round(e.memory_slots / e.slots, 3) if e.slots else 0.0,
        "cpu_saturated": round(e.cpu_slots / e.slots, 3) if e.slots else 0.0,
        "reboots_per_day": round(e.reboots / days, 2) if days else 0.0,
        "age_years": round(max(0.0, now - e.first_seen) / YEAR_S, 1) if e.first_seen else 0.0,
    }


def score(measured: dict[str, float]) -> float:
    """The sum of the parts, each ``points * min(1, figure / full)``: 0 to 100."""
    total = 0.0
    for name, (points, full) in SCORE_PARTS.items():
        total += points * min(1.0, max(0.0, measured.get(name, 0.0)) / full)
    return round(total, 1)


def rows(evidence: list[Evidence], now: float) -> list[dict[str, Any]]:
    """Every PC with office data, highest score first (then by commune and host)."""
    out = []
    for e in evidence:
        if not e.days:
            continue
        measured = figures(e, now)
        out.append({"province": e.province, "area": e.area, "commune": e.commune, "host": e.host,
                    "score": score(measured), "days": len(e.days), "evidence": measured})  # fmt: skip
    return sorted(out, key=lambda r: (-r["score"], r["commune"], r["host"]))


def fetch(
    client: InfluxClient,
    registry: Registry,
    fleet: FleetSettings,
    windows: list[Window],
    month: tuple[int, int],
    province: str = "",
) -> list[Evidence]:
    """The evidence of every PC with points in ``windows`` (of ``province`` when given), named by
    the tags of its points (a backfilled history's PCs too); its age from the registry when it
    knows it. ``month`` is the month's [start, end) for disk health and reboots."""
    found: dict[tuple[str, str, str], Evidence] = {}
    marks = {"cpu": fleet.cpu_percent, "mem": fleet.memory_percent, "busy": fleet.disk_busy_percent}
    for window in windows:
        text = ";".join(q.format(start=window.start, end=window.end, **marks) for q in WINDOW_QUERIES)
        for result in client.query(text):
            index = int(result.get("statement_id", 0))
            for tags, n in _counts(result):
                if not n or (province and tags["province"] != province):
                    continue
                e = _evidence(found, tags, registry)
                if index == 0:
                    e.days.add(window.day.isoformat())
                    e.slots += n
                elif index == 1:
                    e.cpu_slots += n
                elif index == 2:
                    e.memory_slots += n
                else:
                    e.busy_slots += n
    start, end = month
    for row in client.query_rows(
        f'SELECT max("mean_reallocated_sectors") AS r, max("mean_pending_sectors") AS p, '
        f'min("mean_health_passed") AS h FROM "{ROLLUP_RP}"."disk_health" '
        f'WHERE time >= {start}s AND time < {end}s GROUP BY "province", "commune", "host", "disk"'
    ):
        failing = found.get((str(row.get("province")), str(row.get("commune")), str(row.get("host"))))
        bad = float(row.get("r") or 0) + float(row.get("p") or 0)
        if failing is not None and (row.get("h") == 0 or bad > fleet.disk_bad_sectors):
            failing.disk_failing = True
    for row in client.query_rows(
        f'SELECT count(distinct("boot_time")) AS b FROM "{RAW_RP}"."system" '
        f'WHERE time >= {start}s AND time < {end}s GROUP BY "province", "commune", "host"'
    ):
        rebooted = found.get((str(row.get("province")), str(row.get("commune")), str(row.get("host"))))
        if rebooted is not None:
            rebooted.reboots = max(0.0, float(row.get("b") or 0) - 1)
    return list(found.values())


def _evidence(found: dict[tuple[str, str, str], Evidence], tags: dict[str, str], registry: Registry) -> Evidence:
    key = (tags["province"], tags["commune"], tags["host"])
    e = found.get(key)
    if e is None:
        record = registry.host(HostKey(*key))
        first_seen = record.first_seen if record is not None else 0.0
        e = found[key] = Evidence(*key, area=tags["area"], first_seen=first_seen)
    return e


def _counts(result: dict[str, Any]) -> list[tuple[dict[str, str], float]]:
    out = []
    for series in result.get("series", []):
        tags = {name: str(series.get("tags", {}).get(name, "")) for name in ("province", "area", "commune", "host")}
        for values in series.get("values", []):
            row = dict(zip(series["columns"], values, strict=True))
            out.append((tags, float(row.get("n") or 0)))
    return out


def has_rollups(client: InfluxClient) -> bool:
    """Whether the database and its rollups exist: before ``setup-influx`` nothing is measured to
    rank, and the list is empty rather than an error."""
    try:
        policies = client.query_rows("SHOW RETENTION POLICIES")
    except InfluxError as exc:
        if "database not found" in str(exc):
            return False
        raise
    return any(row.get("name") == ROLLUP_RP for row in policies)


def replacement_list(
    client: InfluxClient,
    registry: Registry,
    fleet: FleetSettings,
    windows: list[Window],
    month: tuple[int, int],
    province: str = "",
    area: str = "",
    now: float | None = None,
) -> list[dict[str, Any]]:
    """The ranked rows of one province (or all) and one area (or all)."""
    now = time.time() if now is None else now
    if not has_rollups(client):
        return []
    evidence = fetch(client, registry, fleet, windows, month, province)
    return [r for r in rows(evidence, now) if not area or r["area"] == area]


@dataclass(frozen=True)
class AreaTop:
    """One area's part of the monthly report's replacement page: its ``top`` highest rows of the
    ``ranked`` PCs it has."""

    area: str
    ranked: int
    top: list[dict[str, Any]]


def top_per_area(ranked: list[dict[str, Any]], area_of: dict[str, str], n: int) -> list[AreaTop]:
    """The first ``n`` of ``ranked`` (``rows``' order) in each area, areas in code order; a row's
    area is ``area_of`` its commune (the registry's, as the rest of the report) or its points' tag."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in ranked:
        groups.setdefault(area_of.get(row["commune"], row["area"]), []).append(row)
    return [AreaTop(area, len(group), group[:n]) for area, group in sorted(groups.items())]
