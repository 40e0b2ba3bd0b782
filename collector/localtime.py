"""The local calendar every layer shares: the time zone, local days and months, office hours and holidays.

A leader's day and month are Vietnam's (``LOCAL_ZONE``, or ``[report] timezone``), never UTC's:
2026-12-01 00:30 in Hà Nội is 2026-11-30 17:30 UTC, and belongs to December. So every month
boundary (reports, kept report windows, the e-mail's due month, the backfill) and every office
window comes from here. Leaders are judged on the hours their offices are open, so report figures
are computed over office windows only (``[report] office_hours`` on ``workdays``, minus
``holidays``); a PC switched off at night is not "down", and the fleet calls a commune dark
outside them "office closed". Windows and bounds are UTC epoch seconds so InfluxQL can select
them directly. This module sits below the fleet and the reports and imports neither.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo

LOCAL_ZONE = "Asia/Ho_Chi_Minh"  # all of Vietnam: UTC+7, no daylight saving
MONTH_RE = re.compile(r"(\d{4})-(0[1-9]|1[0-2])")


class PeriodError(ValueError):
    """A month or office-hours setting that cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        match = MONTH_RE.fullmatch(text.strip())
        if match is None:
            raise PeriodError(f"month {text[:20]!r} is not YYYY-MM (for example 2026-11)")
        if int(match.group(1)) < 2000:
            raise PeriodError(f"month {text} is before 2000; the monitor has no data that old")
        return cls(int(match.group(1)), int(match.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    def first_day(self) -> date:
        return date(self.year, self.month, 1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def days(self) -> list[date]:
        first, after = self.first_day(), self.next().first_day()
        return [first + timedelta(days=n) for n in range((after - first).days)]

    @classmethod
    def of(cls, moment: datetime) -> Month:
        """The month of an aware local time (``datetime.fromtimestamp(ts, zone)``)."""
        return cls(moment.year, moment.month)

    @classmethod
    def containing(cls, ts: float, zone: tzinfo) -> Month:
        """The local month that the instant ``ts`` (epoch seconds) falls in."""
        return cls.of(datetime.fromtimestamp(ts, zone))

    def bounds(self, zone: tzinfo) -> tuple[int, int]:
        """The month in local time, as UTC epoch seconds [start, end)."""
        return local_midnight(self.first_day(), zone), local_midnight(self.next().first_day(), zone)


@dataclass(frozen=True)
class Window:
    """One office window of one day, [start, end) in UTC epoch seconds."""

    day: date
    start: int
    end: int

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class OfficeHours:
    zone: ZoneInfo
    windows: tuple[tuple[int, int], ...]  # minutes of the day, start < end
    workdays: frozenset[int]  # ISO weekdays, Monday = 1
    holidays: frozenset[date]

    def is_office_day(self, day: date) -> bool:
        return day.isoweekday() in self.workdays and day not in self.holidays

    def windows_of(self, month: Month, until: float | None = None) -> list[Window]:
        """Every office window of the month, cut at ``until`` (epoch seconds) when given."""
        out = []
        for day in month.days():
            if not self.is_office_day(day):
                continue
            for start_min, end_min in self.windows:
                start = self._epoch(day, start_min)
                end = self._epoch(day, end_min)
                if until is not None:
                    end = min(end, int(until))
                if end > start:
                    out.append(Window(day, start, end))
        return out

    def office_days(self, month: Month, until: float | None = None) -> list[date]:
        return sorted({w.day for w in self.windows_of(month, until)})

    def month_bounds(self, month: Month) -> tuple[int, int]:
        """The month in local time, as UTC epoch seconds [start, end)."""
        return month.bounds(self.zone)

    def month_of(self, ts: float) -> Month:
        """The local month of the instant ``ts``."""
        return Month.containing(ts, self.zone)

    def contains(self, ts: float) -> bool:
        """Whether an instant falls in office hours (for checks outside InfluxQL)."""
        local = datetime.fromtimestamp(ts, self.zone)
        minute = local.hour * 60 + local.minute
        return self.is_office_day(local.date()) and any(a <= minute < b for a, b in self.windows)

    def _epoch(self, day: date, minute: int) -> int:
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone) + timedelta(minutes=minute)  # wall clock
        return int(local.timestamp())


def local_midnight(day: date, zone: tzinfo) -> int:
    """The start of a local day, as UTC epoch seconds."""
    return int(datetime(day.year, day.month, day.day, tzinfo=zone).timestamp())


def local_date(ts: float, zone: tzinfo) -> date:
    """The local date of the instant ``ts``."""
    return datetime.fromtimestamp(ts, zone).date()


class LocalDays:
    """Local dates as ISO text (``2026-11-20``) in one zone, for the fleet's traffic per day. Nearly
    every metrics report asks for today (a zone conversion and ``strftime`` cost about 2 µs each
    time), so the latest day asked is kept with its bounds; earlier days (the unused rule's window)
    are worked out each time, never displacing it."""

    def __init__(self, zone: tzinfo) -> None:
        self.zone = zone
        self._kept: tuple[float, float, str] = (0.0, 0.0, "")

    def day(self, at: float) -> str:
        start, end, text = self._kept
        if start <= at < end:
            return text
        found = local_date(at, self.zone)
        if at >= start:  # a later day than the one kept: keep this one
            after = local_midnight(found + timedelta(days=1), self.zone)
            self._kept = (local_midnight(found, self.zone), after, found.isoformat())  # one assignment: thread-safe
        return found.isoformat()

    def midnight(self, day: str) -> float:
        """The start of the local date ``day`` (``YYYY-MM-DD``); ValueError when it is not a date."""
        return float(local_midnight(datetime.strptime(day, "%Y-%m-%d").date(), self.zone))


LOCAL_DAYS = LocalDays(ZoneInfo(LOCAL_ZONE))  # the fleet's days: Vietnam's, whatever the server's clock says


def zone_named(name: str) -> ZoneInfo:
    """A time zone by its IANA name, or a ``PeriodError`` saying what to give instead."""
    try:
        return ZoneInfo(name)
    except (KeyError, ValueError):
        raise PeriodError(f"time zone {name!r} is unknown; use a name such as {LOCAL_ZONE}") from None


def parse_window(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", text.strip())
    if match is None:
        raise PeriodError(f"office hours {text[:20]!r} are not HH:MM-HH:MM, e.g. 07:30-11:30")
    a, b = int(match.group(1)) * 60 + int(match.group(2)), int(match.group(3)) * 60 + int(match.group(4))
    if not a < b <= 24 * 60:
        raise PeriodError(f"office hours {text!r} must end after they start, on the same day")
    return a, b


def office_hours(timezone: str, windows: list[str], workdays: list[int], holidays: list[date]) -> OfficeHours:
    zone = zone_named(timezone)
    parsed = tuple(sorted(parse_window(w) for w in windows))
    for (_a, b), (c, _d) in itertools.pairwise(parsed):
        if c < b:
            raise PeriodError(f"office hours {windows} overlap")
    if not parsed:
        raise PeriodError("office_hours is empty; give at least one window such as 07:30-11:30")
    bad = [d for d in workdays if not 1 <= d <= 7]
    if bad or not workdays:
        raise PeriodError(f"workdays {workdays} must be ISO weekdays 1 (Monday) to 7 (Sunday), at least one")
    return OfficeHours(zone, parsed, frozenset(workdays), frozenset(holidays))
