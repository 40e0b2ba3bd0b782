"""A month's figures, from fetched rows and the registry: pure functions, no I/O.

Per commune: line availability (office slots not down, of those whose line was in use), down
hours, median speed test as % of contract, days unused, PCs online / total and their
availability, degraded PCs and their reasons, alerts fired and the office hours they were open,
equipment issued and in use at the month's end, the score and the rank. Then the same per area
and for everything, the lists leaders act on, and the daily count of communes whose line was down.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date

from collector.localtime import Window
from collector.reports import evidence as ev
from collector.reports.evidence import CommuneEvidence, LineRow, Outage
from collector.reports.gather import AlertSpell, Fetched, Slots
from collector.reports.score import score

DOWN_DAY_S = 3600  # a commune counts as "down that day" after one office hour without its line


@dataclass(frozen=True)
class Place:
    """A commune as the registry knows it."""

    commune: str
    name: str
    area: str
    area_name: str


@dataclass(frozen=True)
class DegradedPc:
    commune: str
    host: str
    days: int
    reasons: tuple[str, ...]


@dataclass(frozen=True)
class Kit:
    """One kind of equipment of a commune at the month's end, summed from its item rows
    (``evidence.item_counts``): items issued, and those in use (seen within ``[fleet]
    equipment_unused_after_days``, or opened where PC/SC judged); None when not known (every PC of
    the commune runs an agent too old to report peripherals, or none reported all month). Adjusted:
    the items under an exclusion in force at the month's end left out of both."""

    kind: str
    issued: int
    in_use: int | None
    plugged_idle: int = 0  # tokens plugged in but never opened (PC/SC): idle, not in use
    pcsc: int = 0  # items judged by observed use (PC/SC) rather than presence
    issued_adjusted: int | None = None  # None: as issued (no item excluded)
    in_use_adjusted: int | None = None


@dataclass
class CommuneFigures:
    """A commune's figures, each computed from its rows in ``evidence`` (``reports/evidence.py``).
    ``line_availability`` and ``pc_availability`` are raw; the ``_adjusted`` ones leave out the time
    of the exclusions in force when the report was made. ``score`` (and the rank) is of the
    adjusted figures, ``score_raw`` of the raw ones."""

    place: Place
    line_availability: float | None
    down_hours: float
    speed_percent: float | None
    unused_days: int
    office_days: int
    pcs_online: int
    pcs_total: int
    pc_availability: float | None
    degraded: list[DegradedPc]
    alerts_fired: int
    alert_hours: float
    equipment: list[Kit] = field(default_factory=list)
    equipment_change: int | None = None  # equipment in use, against last month
    score: float = 0.0
    rank: int = 0
    score_change: float | None = None
    rank_change: int | None = None
    line_availability_adjusted: float | None = None
    pc_availability_adjusted: float | None = None
    score_raw: float = 0.0
    evidence: CommuneEvidence = field(default_factory=lambda: CommuneEvidence(""))


@dataclass(frozen=True)
class NoData:
    """A commune with no reporting agent all month: listed apart, not ranked (no data is not zero).
    ``since``: the last time one of its agents was heard, None when never."""

    place: Place
    since: float | None
    figures: CommuneFigures  # what its line said (the area and total sums count it), unranked


@dataclass
class GroupFigures:
    """The summary figures of a set of communes (an area, or all of them)."""

    code: str
    name: str
    communes: int
    pcs: int
    line_availability: float | None
    pc_availability: float | None
    unused_communes: int
    degraded_pcs: int
    speed_percent: float | None
    equipment_issued: int = 0
    equipment_in_use: int | None = None
    changes: dict[str, float | None] = field(default_factory=dict)


@dataclass
class MonthFigures:
    communes: list[CommuneFigures]  # worst first
    areas: list[GroupFigures]
    total: GroupFigures
    daily_down: list[tuple[date, int]]
    down_long: list[CommuneFigures]
    unused_all_month: list[CommuneFigures]
    degraded_long: list[DegradedPc]
    outages: list[Outage] = field(default_factory=list)  # decided outages overlapping the month, by start
    no_data: list[NoData] = field(default_factory=list)  # communes with no reporting agent, not ranked
    silence: list[ev.Interval] = field(default_factory=list)  # nobody in the fleet heard: out of every figure


def compute(
    fetched: Fetched, places: dict[str, Place], down_hours_over: float, degraded_days_over: int
) -> MonthFigures:
    windows = fetched.windows
    days = sorted({w.day for w in windows})
    silence = ev.silent_spans(fetched.outages, fetched.heard)
    by_commune: dict[str, list[Slots]] = defaultdict(list)
    for s in fetched.communes:
        by_commune[s.commune].append(s)
    by_host: dict[tuple[str, str], list[Slots]] = defaultdict(list)
    for s in fetched.hosts:
        by_host[(s.commune, s.host)].append(s)
    hosts_of: dict[str, list[str]] = defaultdict(list)
    for commune, host in sorted(by_host):
        hosts_of[commune].append(host)
    known = sorted(set(by_commune) | set(hosts_of))
    alerts_of: dict[str, list[AlertSpell]] = defaultdict(list)
    for spell in fetched.alerts:
        alerts_of[spell.commune].append(spell)
    communes, no_data = [], []
    for code in known:
        place = places.get(code, Place(code, code, "", ""))
        found = evidence_of(code, by_commune[code], {h: by_host[(code, h)] for h in hosts_of[code]}, fetched,
                            silence)  # fmt: skip
        figures = commune_figures(place, found, windows, days, fetched, alerts_of[code])
        if any(p.online > 0 for p in found.pcs):
            communes.append(figures)
        else:  # no agent reported all month: no data, not zero
            no_data.append(NoData(place, fetched.last_heard.get(code), figures))
    ranked = sorted(communes, key=lambda c: (-c.score, c.place.name))
    for rank, c in enumerate(ranked, 1):
        c.rank = rank
    worst_first = ranked[::-1]
    everyone = communes + [n.figures for n in no_data]
    areas: dict[str, list[CommuneFigures]] = defaultdict(list)
    for c in everyone:
        areas[c.place.area].append(c)
    area_rows = [group(code, members[0].place.area_name, members, by_host)
                 for code, members in sorted(areas.items())]  # fmt: skip
    all_degraded = [d for c in worst_first for d in c.degraded]
    return MonthFigures(
        communes=worst_first,
        areas=area_rows,
        total=group("", "", everyone, by_host),
        daily_down=daily_down({c.place.commune: c.evidence.line for c in communes}, days),
        down_long=[c for c in worst_first if c.down_hours > down_hours_over],
        unused_all_month=[
            c for c in worst_first + [n.figures for n in no_data] if c.office_days and c.unused_days >= c.office_days
        ],
        degraded_long=[d for d in all_degraded if d.days >= degraded_days_over],
        outages=sorted(fetched.outages, key=lambda o: (o.start, o.commune)),
        no_data=sorted(no_data, key=lambda n: (n.place.area_name, n.place.name)),
        silence=[s for s in silence if ev.office_seconds([s], windows) > 0],
    )


def evidence_of(
    code: str, line: list[Slots], hosts: dict[str, list[Slots]], fetched: Fetched, silence: Sequence[ev.Interval]
) -> CommuneEvidence:
    """The rows of one commune's figures, from what was fetched for the month."""
    windows = fetched.windows
    applied = ev.applied(fetched.exclusions, code, fetched.month_start, fetched.month_end, fetched.as_of)
    line_spans = ev.excluded_spans(applied, ev.LINE_SCOPES)
    found = CommuneEvidence(code)
    found.line = ev.line_rows(code, ((s.window, s.n, s.a, s.b) for s in line), windows, fetched.outages, silence,
                              line_spans)  # fmt: skip
    found.outages = ev.outage_rows(code, fetched.outages, windows)
    found.exclusions = ev.exclusion_rows(applied, windows)
    found.silence = [s for s in silence if ev.office_seconds([s], windows) > 0]
    for host, slots in sorted(hosts.items()):
        reasons = tuple(r for r in fetched.reasons.get((code, host), "").split(",") if r)
        found.pcs.append(ev.pc_row(host, ((s.window, s.n, s.a, s.b) for s in slots), windows,
                                   ev.excluded_spans(applied, ev.PC_SCOPES, host), reasons,
                                   fetched.versions.get((code, host), ""), silence))  # fmt: skip
    found.speed = fetched.speed_tests.get(code, [])
    found.items = ev.item_rows([i for i in fetched.items if i.commune == code], fetched.seen.get(code, []),
                               {device: d for (c, device), d in fetched.days_seen.items() if c == code},
                               fetched.equipment_days, fetched.month_end, applied)  # fmt: skip
    return found


def commune_figures(
    place: Place,
    found: CommuneEvidence,
    windows: list[Window],
    days: list[date],
    fetched: Fetched,
    spells: list[AlertSpell],
) -> CommuneFigures:
    """A commune's figures, each from its rows in ``found``."""
    per_day = _per_day(found.line)
    unused_days = sum(1 for d in days if per_day.get(d, (0.0, 0.0))[0] > 0
                      and per_day[d][1] >= per_day[d][0] / 2)  # fmt: skip
    office_days = sum(1 for d in days if per_day.get(d, (0.0, 0.0))[0] > 0)
    fired, hours = alerts(spells, windows, (fetched.month_start, fetched.month_end))
    figures = CommuneFigures(
        place=place,
        line_availability=ev.line_availability(found.line),
        down_hours=ev.down_hours(found.line),
        speed_percent=ev.speed_percent(found.speed),
        unused_days=unused_days,
        office_days=office_days,
        pcs_online=sum(1 for p in found.pcs if p.online > 0),
        pcs_total=len(found.pcs),
        pc_availability=ev.pc_availability(found.pcs),
        degraded=[DegradedPc(place.commune, p.host, p.degraded_days, p.reasons) for p in found.pcs if p.degraded_days],
        alerts_fired=fired,
        alert_hours=hours,
        line_availability_adjusted=ev.line_availability_adjusted(found.line),
        pc_availability_adjusted=ev.pc_availability_adjusted(found.pcs),
        evidence=found,
    )
    # in use is not known (no data, not zero): every PC too old to report peripherals, none reported,
    # or no device kept for the month (its raw points expired before ``peripheral`` was rolled up)
    # while the collector's own equipment points said some were in use
    lost = not any(r.device for r in found.items) and any(
        said[1] > 0 for (c, _kind), said in fetched.equipment.items() if c == place.commune
    )
    unknown = ev.unreported(found.pcs, "equipment") or not any(p.online > 0 for p in found.pcs) or lost
    figures.equipment = kits(found.items, unknown_use=unknown)
    figures.score_raw = score(figures.line_availability, figures.speed_percent, figures.pc_availability,
                              unused_days, office_days)  # fmt: skip
    figures.score = score(figures.line_availability_adjusted, figures.speed_percent,
                          figures.pc_availability_adjusted, unused_days, office_days)  # fmt: skip
    return figures


def excuse_outages(slots: list[Slots], outages: list[Outage], windows: list[Window]) -> list[Slots]:
    """The commune slots with the down slots of power cuts and office closings taken out (as the
    line rows count them, ``evidence.line_rows``): only ``line`` and ``unknown`` outages count
    against line availability (those slots stay in the total, as time the line was not shown to fail)."""
    out = []
    for s in slots:
        (row,) = ev.line_rows(s.commune, [(s.window, s.n, s.a, s.b)], windows, outages, [], [])
        out.append(replace(s, a=row.down - row.excused) if row.excused else s)
    return out


def alerts(mine: list[AlertSpell], windows: list[Window], month: tuple[int, int]) -> tuple[int, float]:
    """Of one commune's alerts, those that fired in ``month`` [start, end), and the office hours
    they were firing, summed over alerts (each from its firing to its resolve, or to the month's end
    while it still fires; one that fired before the month counts its hours inside it)."""
    month_start, until = month
    fired = sum(1 for s in mine if month_start <= s.start < until)
    seconds = sum(_overlap(s.start, s.end or until, w) for s in mine for w in windows)
    return fired, round(seconds / 3600, 1)


def kits(rows: Sequence[ev.ItemRow], unknown_use: bool = False) -> list[Kit]:
    """The commune's equipment per kind, summed from its item rows (``evidence.item_counts``), so
    the rows add up to it exactly. ``unknown_use``: what is in use is not known (every PC of the
    commune runs an agent too old to report peripherals, or none reported): None, not zero."""
    return [Kit(c.kind, c.issued, None if unknown_use else c.in_use, c.plugged_idle, c.pcsc, c.issued_adjusted,
                None if unknown_use else c.in_use_adjusted) for c in ev.item_counts(rows)]  # fmt: skip


def group(
    code: str,
    name: str,
    members: list[CommuneFigures],
    by_host: dict[tuple[str, str], list[Slots]],
) -> GroupFigures:
    """A set of communes' figures, from their rows (raw figures: what the communes' lines and PCs did)."""
    codes = {c.place.commune for c in members}
    line: list[LineRow] = [r for c in members for r in c.evidence.line]
    hosts = [s for key, slots in by_host.items() if key[0] in codes for s in slots]
    speeds = [c.speed_percent for c in members if c.speed_percent is not None]
    return GroupFigures(
        code=code,
        name=name,
        communes=len(members),
        pcs=sum(c.pcs_total for c in members),
        line_availability=ev.line_availability(line),
        pc_availability=ev.percent(sum(s.a for s in hosts), sum(s.n for s in hosts)),
        unused_communes=sum(1 for c in members if c.unused_days > 0),
        degraded_pcs=sum(len(c.degraded) for c in members),
        speed_percent=round(statistics.median(speeds), 1) if speeds else None,
        equipment_issued=sum(k.issued for c in members for k in c.equipment),
        equipment_in_use=_in_use([k for c in members for k in c.equipment]),
    )


def _in_use(found: list[Kit]) -> int | None:
    """Items in use of those kinds the collector said something of; None when it said nothing."""
    counts = [k.in_use for k in found if k.in_use is not None]
    return sum(counts) if counts else None


def daily_down(line_of: dict[str, list[LineRow]], days: list[date]) -> list[tuple[date, int]]:
    """For each office day, how many communes had their line down (charged to it) for an office hour or more."""
    down: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for commune, rows in line_of.items():
        for r in rows:
            if r.slots > 0:
                down[r.day][commune] += r.charged / r.slots * r.seconds
    return [(d, sum(1 for v in down[d].values() if v >= DOWN_DAY_S)) for d in days]


def compare(current: MonthFigures, previous: MonthFigures | None) -> None:
    """Fills each figure's change from the previous month (None where last month had no figure)."""
    if previous is None:
        return
    before = {c.place.commune: c for c in previous.communes}
    for c in current.communes:
        old = before.get(c.place.commune)
        if old is not None:
            c.score_change = round(c.score - old.score, 1)
            c.rank_change = old.rank - c.rank  # positive: moved up
            used, used_before = _in_use(c.equipment), _in_use(old.equipment)
            if used is not None and used_before is not None:
                c.equipment_change = used - used_before
    old_areas = {a.code: a for a in previous.areas}
    for area in current.areas:
        area.changes = changes(area, old_areas.get(area.code))
    current.total.changes = changes(current.total, previous.total)


CHANGED = ("communes", "pcs", "line_availability", "pc_availability", "unused_communes", "degraded_pcs",
           "equipment_issued", "equipment_in_use")  # fmt: skip


def changes(now: GroupFigures, before: GroupFigures | None) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for key in CHANGED:
        a, b = getattr(now, key), getattr(before, key) if before else None
        out[key] = round(a - b, 1) if a is not None and b is not None else None
    return out


def _per_day(rows: list[LineRow]) -> dict[date, tuple[float, float]]:
    """Per office day: slots with data, slots unused."""
    acc: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for r in rows:
        acc[r.day][0] += r.slots
        acc[r.day][1] += r.unused
    return {d: (v[0], v[1]) for d, v in acc.items()}


def _overlap(start: float, end: float, window: Window) -> float:
    return max(0, min(end, window.end) - max(start, window.start))
