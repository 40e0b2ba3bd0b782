"""A report's month and its office hours: which stretches of time count.

Leaders are judged on the hours their offices are open, so every figure is computed over office
windows only (``[report] office_hours`` on ``workdays``, minus ``holidays``, in the configured time
zone); a PC switched off at night is not "down". Windows are returned as UTC epoch seconds so
InfluxQL can select them directly.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

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
        return cls(moment.year, moment.month)


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
        return self._epoch(month.first_day(), 0), self._epoch(month.next().first_day(), 0)

    def contains(self, ts: float) -> bool:
        """Whether an instant falls in office hours (for checks outside InfluxQL)."""
        local = datetime.fromtimestamp(ts, self.zone)
        minute = local.hour * 60 + local.minute
        return self.is_office_day(local.date()) and any(a <= minute < b for a, b in self.windows)

    def _epoch(self, day: date, minute: int) -> int:
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone) + timedelta(minutes=minute)
        return int(local.timestamp())


def parse_window(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)", text.strip())
    if match is None:
        raise PeriodError(f"office hours {text[:20]!r} are not HH:MM-HH:MM, e.g. 07:30-11:30")
    a, b = int(match.group(1)) * 60 + int(match.group(2)), int(match.group(3)) * 60 + int(match.group(4))
    if not a < b <= 24 * 60:
        raise PeriodError(f"office hours {text!r} must end after they start, on the same day")
    return a, b


def office_hours(timezone: str, windows: list[str], workdays: list[int], holidays: list[date]) -> OfficeHours:
    try:
        zone = ZoneInfo(timezone)
    except (KeyError, ValueError):
        raise PeriodError(f"time zone {timezone!r} is unknown; use a name such as Asia/Ho_Chi_Minh") from None
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
