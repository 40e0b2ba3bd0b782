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
from dataclasses import dataclass, field, replace
from datetime import date

from collector.localtime import Window
from collector.reports.gather import AlertSpell, Fetched, Outage, Slots
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
    """One kind of equipment of a commune at the month's end: items issued, and those in use (seen
    within ``[fleet] equipment_unused_after_days``); None when the collector said nothing that month."""

    kind: str
    issued: int
    in_use: int | None
    plugged_idle: int = 0  # tokens plugged in but never opened (PC/SC): idle, not in use
    pcsc: int = 0  # items judged by observed use (PC/SC) rather than presence


@dataclass
class CommuneFigures:
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


def compute(
    fetched: Fetched, places: dict[str, Place], down_hours_over: float, degraded_days_over: int
) -> MonthFigures:
    windows = fetched.windows
    days = sorted({w.day for w in windows})
    by_commune: dict[str, list[Slots]] = defaultdict(list)
    for s in excuse_outages(fetched.communes, fetched.outages, windows):
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
    communes = []
    for code in known:
        place = places.get(code, Place(code, code, "", ""))
        degraded = [degraded_pc(code, h, by_host[(code, h)], windows, fetched.reasons) for h in hosts_of[code]]
        communes.append(commune_figures(place, by_commune[code], [by_host[(code, h)] for h in hosts_of[code]],
                                        [d for d in degraded if d.days > 0], windows, days, fetched,
                                        alerts_of[code]))  # fmt: skip
    ranked = sorted(communes, key=lambda c: (-c.score, c.place.name))
    for rank, c in enumerate(ranked, 1):
        c.rank = rank
    worst_first = ranked[::-1]
    areas: dict[str, list[CommuneFigures]] = defaultdict(list)
    for c in communes:
        areas[c.place.area].append(c)
    area_rows = [group(code, members[0].place.area_name, members, by_commune, by_host)
                 for code, members in sorted(areas.items())]  # fmt: skip
    all_degraded = [d for c in worst_first for d in c.degraded]
    return MonthFigures(
        communes=worst_first,
        areas=area_rows,
        total=group("", "", communes, by_commune, by_host),
        daily_down=daily_down(by_commune, windows, days),
        down_long=[c for c in worst_first if c.down_hours > down_hours_over],
        unused_all_month=[c for c in worst_first if c.office_days and c.unused_days >= c.office_days],
        degraded_long=[d for d in all_degraded if d.days >= degraded_days_over],
        outages=sorted(fetched.outages, key=lambda o: (o.start, o.commune)),
    )


def commune_figures(
    place: Place,
    line: list[Slots],
    hosts: list[list[Slots]],
    degraded: list[DegradedPc],
    windows: list[Window],
    days: list[date],
    fetched: Fetched,
    spells: list[AlertSpell],
) -> CommuneFigures:
    n, down, unused = (sum(s.n for s in line), sum(s.a for s in line), sum(s.b for s in line))
    in_use = n - unused
    per_day = _per_day(line, windows)
    unused_days = sum(1 for d in days if per_day.get(d, (0.0, 0.0, 0.0))[0] > 0
                      and per_day[d][2] >= per_day[d][0] / 2)  # fmt: skip
    office_days = sum(1 for d in days if per_day.get(d, (0.0, 0.0, 0.0))[0] > 0)
    host_n = sum(s.n for h in hosts for s in h)
    host_online = sum(s.a for h in hosts for s in h)
    fired, hours = alerts(spells, windows, (fetched.month_start, fetched.month_end))
    figures = CommuneFigures(
        place=place,
        line_availability=_percent(in_use - down, in_use),
        down_hours=round(down_seconds(line, windows) / 3600, 1),
        speed_percent=_rounded(fetched.speed.get(place.commune)),
        unused_days=unused_days,
        office_days=office_days,
        pcs_online=sum(1 for h in hosts if sum(s.a for s in h) > 0),
        pcs_total=len(hosts),
        pc_availability=_percent(host_online, host_n),
        degraded=degraded,
        alerts_fired=fired,
        alert_hours=hours,
    )
    figures.equipment = kits(place.commune, fetched)
    figures.score = score(figures.line_availability, figures.speed_percent, figures.pc_availability,
                          unused_days, office_days)  # fmt: skip
    return figures


NOT_THE_LINE = ("power", "office_closed")  # outages not charged to the line; line and unknown are
SLOT_S = 300  # the 5-minute rollups the commune slots count


def excuse_outages(slots: list[Slots], outages: list[Outage], windows: list[Window]) -> list[Slots]:
    """The commune slots with the down slots of power cuts and office closings taken out: only
    ``line`` and ``unknown`` outages count against line availability (those slots stay in the
    total, as time the line was not shown to fail)."""
    excused: dict[tuple[str, int], float] = defaultdict(float)
    for o in outages:
        if o.cause in NOT_THE_LINE:
            for index, w in enumerate(windows):
                excused[(o.commune, index)] += _overlap(o.start, o.end, w) / SLOT_S
    return [replace(s, a=max(0.0, s.a - excused[(s.commune, s.window)])) if excused.get((s.commune, s.window)) else s
            for s in slots]  # fmt: skip


def degraded_pc(
    commune: str, host: str, slots: list[Slots], windows: list[Window], reasons: dict[tuple[str, str], str]
) -> DegradedPc:
    """Office days on which the PC was degraded for at least half the slots it reported."""
    per_day: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for s in slots:
        day = windows[s.window].day
        per_day[day][0] += s.n
        per_day[day][1] += s.b
    days = sum(1 for n, degraded in per_day.values() if n > 0 and degraded >= n / 2)
    codes = tuple(r for r in reasons.get((commune, host), "").split(",") if r)
    return DegradedPc(commune, host, days, codes)


def alerts(mine: list[AlertSpell], windows: list[Window], month: tuple[int, int]) -> tuple[int, float]:
    """Of one commune's alerts, those that fired in ``month`` [start, end), and the office hours
    they were firing, summed over alerts (each from its firing to its resolve, or to the month's end
    while it still fires; one that fired before the month counts its hours inside it)."""
    month_start, until = month
    fired = sum(1 for s in mine if month_start <= s.start < until)
    seconds = sum(_overlap(s.start, s.end or until, w) for s in mine for w in windows)
    return fired, round(seconds / 3600, 1)


def kits(commune: str, fetched: Fetched) -> list[Kit]:
    """The commune's equipment per kind: as the collector's ``equipment`` points last said in the
    month, or, for a kind it said nothing of, the registry's items issued by then (in use unknown)."""
    out = []
    kinds = {k for c, k in fetched.equipment if c == commune} | {k for c, k in fetched.issued if c == commune}
    for kind in sorted(kinds):
        said = fetched.equipment.get((commune, kind))
        if said is not None:
            out.append(Kit(kind, round(said[0]), round(said[1]), round(said[2]), round(said[3])))
        else:
            out.append(Kit(kind, fetched.issued[(commune, kind)], None))
    return [k for k in out if k.issued or k.in_use]


def group(
    code: str,
    name: str,
    members: list[CommuneFigures],
    by_commune: dict[str, list[Slots]],
    by_host: dict[tuple[str, str], list[Slots]],
) -> GroupFigures:
    codes = {c.place.commune for c in members}
    line = [s for c in codes for s in by_commune.get(c, [])]
    hosts = [s for key, slots in by_host.items() if key[0] in codes for s in slots]
    in_use = sum(s.n - s.b for s in line)
    speeds = [c.speed_percent for c in members if c.speed_percent is not None]
    return GroupFigures(
        code=code,
        name=name,
        communes=len(members),
        pcs=sum(c.pcs_total for c in members),
        line_availability=_percent(in_use - sum(s.a for s in line), in_use),
        pc_availability=_percent(sum(s.a for s in hosts), sum(s.n for s in hosts)),
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


def down_seconds(slots: list[Slots], windows: list[Window]) -> float:
    """Office time the line was down: in each window, the share of its slots down times the window's length
    (so a report interval longer than a slot, or a gap in the data, does not shorten it)."""
    return sum(s.a / s.n * windows[s.window].seconds for s in slots if s.n > 0)


def daily_down(by_commune: dict[str, list[Slots]], windows: list[Window], days: list[date]) -> list[tuple[date, int]]:
    """For each office day, how many communes had their line down for an office hour or more."""
    down: dict[date, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for commune, slots in by_commune.items():
        for s in slots:
            down[windows[s.window].day][commune] += down_seconds([s], windows)
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


def _per_day(slots: list[Slots], windows: list[Window]) -> dict[date, tuple[float, float, float]]:
    acc: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
    for s in slots:
        day = windows[s.window].day
        acc[day][0] += s.n
        acc[day][1] += s.a
        acc[day][2] += s.b
    return {d: (v[0], v[1], v[2]) for d, v in acc.items()}


def _rounded(value: float | None) -> float | None:
    return round(value, 1) if value is not None else None


def _percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def _overlap(start: float, end: float, window: Window) -> float:
    return max(0, min(end, window.end) - max(start, window.start))
