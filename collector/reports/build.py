"""Builds one monthly report: checks the request, fetches this month and the one before, computes,
and ranks the PCs to replace first by the replacement list's own code (``replacement.py``, as the API).

Everything a person can get wrong (a malformed month, a month in the future, a month with no
data, an unknown area) is a ``ReportError`` whose message says what and what to do; the command
line prints it on one line with exit status 2 and the API answers 400/404.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from collector.audit import Actor
from collector.config import FleetSettings, ReportSettings
from collector.ingest.influx import InfluxClient
from collector.localtime import Month, OfficeHours, PeriodError, office_hours
from collector.registry import units
from collector.registry.exclusions import Exclusions
from collector.registry.registry import Registry
from collector.reports.figures import MonthFigures, Place, compare, compute
from collector.reports.gather import WINDOW_QUERIES, Fetched, fetch, per_window
from collector.reports.replacement import AreaTop, replacement_list, top_per_area
from collector.reports.revisions import COLLECTOR, Revision, RevisionBook, figures_of, in_force, inputs_of, provisional
from collector.reports.windows import WindowSums, settled
from collector.store import Store


class ReportError(ValueError):
    """The report cannot be made as asked; ``missing`` is True when the month simply has no data."""

    def __init__(self, message: str, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


@dataclass
class MonthlyReport:
    month: Month
    area: str  # "" for every area
    area_name: str
    language: str
    hours: OfficeHours
    office_days: int
    until: int  # end of what was counted (the month's end, or now for the current month)
    generated_at: int
    figures: MonthFigures
    previous: Month
    down_hours_over: float
    degraded_days_over: int
    equipment_days: int  # an item is in use when seen within this many days ([fleet] equipment_unused_after_days)
    replacement: list[AreaTop] = field(default_factory=list)  # the PCs to replace first, per area
    replacement_top: int = 10  # [report] replacement_top
    revision: Revision | None = None  # the month's frozen revision these figures are; None while provisional
    provisional: str = ""  # why the month is not frozen yet (revisions.PROVISIONAL_*), "" once it is


def hours_of(settings: ReportSettings) -> OfficeHours:
    return office_hours(settings.timezone, settings.office_hours, settings.workdays, settings.holidays)


def asked_month(settings: ReportSettings, month_text: str, now: float) -> tuple[Month, OfficeHours]:
    """The month a report or a scorecard asks for (YYYY-MM) and the office hours it is counted in;
    ReportError for a malformed month or one still to come."""
    try:
        month = Month.parse(month_text)
    except PeriodError as exc:
        raise ReportError(str(exc)) from None
    hours = hours_of(settings)
    this_month = hours.month_of(now)
    if (month.year, month.month) > (this_month.year, this_month.month):
        raise ReportError(f"month {month} is in the future (it is {this_month} now); ask for {this_month} or earlier")
    return month, hours


def build(
    client: InfluxClient,
    store: Store,
    registry: Registry,
    settings: ReportSettings,
    month_text: str,
    area: str = "",
    now: float | None = None,
    language: str | None = None,
    equipment_days: int = 14,
    fleet: FleetSettings | None = None,
    actor: Actor = COLLECTOR,
) -> MonthlyReport:
    """The report of ``month_text``; a month that is over is frozen as a revision made by ``actor``
    (``revisions.py``)."""
    now = time.time() if now is None else now
    month, hours = asked_month(settings, month_text, now)
    areas = registry.areas()
    by_area = registry.communes_by_area()
    if area and area not in areas and area not in by_area:
        known = ", ".join(sorted(set(areas) | set(by_area))) or "none registered"
        raise ReportError(f"area {area[:40]!r} is unknown; known areas: {known}")
    places = _places(registry, areas, by_area, area)
    fetched, figures = _month(client, store, registry, hours, month, now, places, settings, equipment_days)
    if not figures.communes and not figures.no_data:
        where = f" in area {area}" if area else ""
        raise ReportError(f"no data for {month}{where}: InfluxDB has no commune status in its office hours",
                          missing=True)  # fmt: skip
    _before, previous = _month(client, store, registry, hours, month.previous(), now, places, settings, equipment_days)
    start, end = hours.month_bounds(month)
    waiting = provisional(store, start, end, now)
    revision = None if waiting else _freeze(store, registry, settings, str(month), area, fetched, places, figures,
                                            actor, now)  # fmt: skip
    compare(figures, previous if previous.communes else None)
    until = int(min(end, now))
    ranked = replacement_list(client, registry, fleet or FleetSettings(), hours.windows_of(month, until=now),
                              (start, until), now=now)  # fmt: skip
    area_of = {code: place.area_name for code, place in places.items()}
    tops = top_per_area([r for r in ranked if r["commune"] in places], area_of, settings.replacement_top)
    return MonthlyReport(month, area, areas.get(area, area), language or settings.language, hours,
                         len(hours.office_days(month, now)), until, int(now), figures,
                         month.previous(), settings.down_hours_over, settings.degraded_days_over,
                         equipment_days, tops, settings.replacement_top, revision, waiting)  # fmt: skip


def _freeze(store: Store, registry: Registry, settings: ReportSettings, month: str, area: str, fetched: Fetched,
            places: dict[str, Place], figures: MonthFigures, actor: Actor, now: float) -> Revision:  # fmt: skip
    """The month's revision for these figures: the newest when its inputs and figures are the same, else a new one."""
    every = Exclusions(store, registry, settings.timezone).all()
    forced = in_force(every, places, fetched.month_start, fetched.month_end, now)
    withdrawn = {e.id: {"by": e.withdrawal.by_name, "note": e.withdrawal.note, "at": e.withdrawal.created_at}
                 for e in every if e.withdrawal is not None}  # fmt: skip
    book = RevisionBook(store)
    return book.freeze(month, area, inputs_of(fetched, places, forced), figures_of(figures), actor, now, withdrawn)


def keep_windows(client: InfluxClient, store: Store, settings: ReportSettings, now: float) -> int:
    """Sum the settled office windows of this month and the last that are not kept yet; returns
    how many were asked of InfluxDB (per kind)."""
    hours = hours_of(settings)
    this = hours.month_of(now)
    windows = [w for m in (this.previous(), this) for w in hours.windows_of(m, until=now) if settled(w, now)]
    kept = WindowSums(store)
    asked = 0
    for kind in WINDOW_QUERIES:
        have = kept.read(kind, windows)
        todo = [w for i, w in enumerate(windows) if i not in have]
        per_window(client, store, kind, todo, now)
        asked += len(todo)
    kept.prune(now)
    return asked


def _month(
    client: InfluxClient,
    store: Store,
    registry: Registry,
    hours: OfficeHours,
    month: Month,
    now: float,
    places: dict[str, Place],
    s: ReportSettings,
    equipment_days: int = 14,
) -> tuple[Fetched, MonthFigures]:
    windows = hours.windows_of(month, until=now)
    start, end = hours.month_bounds(month)
    fetched = fetch(
        client,
        store,
        windows,
        start,
        int(min(end, now)),
        now,
        registry,
        zone=hours.zone.key,
        equipment_days=equipment_days,
    )
    keep = set(places)
    fetched.communes = [x for x in fetched.communes if x.commune in keep]
    fetched.hosts = [x for x in fetched.hosts if x.commune in keep]
    fetched.outages = [x for x in fetched.outages if x.commune in keep]
    return fetched, compute(fetched, places, s.down_hours_over, s.degraded_days_over)


def _places(registry: Registry, areas: dict[str, str], by_area: dict[str, list[str]], only: str) -> dict[str, Place]:
    """Every commune with a registered line or area, or only those of one area."""
    codes = {line.commune for line in registry.lines()} | {c for cs in by_area.values() for c in cs}
    out = {}
    for code in sorted(codes):
        area = registry.area_of(code)
        if only and area != only:
            continue
        out[code] = Place(code, units.display_name(code), area, areas.get(area, area))
    return out
