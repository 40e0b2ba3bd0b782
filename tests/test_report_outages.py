"""The scorecard charges a line only with its own outages: power cuts and office closings are taken
out of the down time in office hours (and listed), ``line`` and ``unknown`` outages stay in. Pure
functions over hand-built slots, outages and office windows."""

from __future__ import annotations

from datetime import date

from collector.localtime import Window
from collector.reports.figures import excuse_outages
from collector.reports.gather import Outage, Slots

DAY = date(2026, 11, 17)
MORNING = Window(DAY, 1_000_000, 1_000_000 + 4 * 3600)  # 48 five-minute slots
AFTERNOON = Window(DAY, 1_000_000 + 6 * 3600, 1_000_000 + 9 * 3600 + 1800)
WINDOWS = [MORNING, AFTERNOON]


def slots(down_morning: float, down_afternoon: float) -> list[Slots]:
    return [Slots(0, "02473", "", 48, down_morning, 0), Slots(1, "02473", "", 42, down_afternoon, 0)]


def test_a_power_cut_in_office_hours_is_not_counted_as_the_line_down() -> None:
    cut = Outage("02473", "power", MORNING.start + 3600, MORNING.start + 7200)  # 12 slots of the morning
    excused = excuse_outages(slots(12, 0), [cut], WINDOWS)
    assert [s.a for s in excused] == [0, 0]
    assert [s.n for s in excused] == [48, 42]  # the time stays in the total: the line was not shown to fail


def test_line_and_unknown_outages_stay_charged_to_the_line() -> None:
    outages = [Outage("02473", "line", MORNING.start, MORNING.start + 3600),
               Outage("02473", "unknown", AFTERNOON.start, AFTERNOON.start + 1800)]  # fmt: skip
    assert excuse_outages(slots(12, 6), outages, WINDOWS) == slots(12, 6)


def test_an_office_closed_over_the_lunch_break_excuses_only_its_office_hours() -> None:
    closed = Outage("02473", "office_closed", MORNING.end - 1800, AFTERNOON.start + 900)  # 6 + 3 slots in office hours
    assert [s.a for s in excuse_outages(slots(20, 10), [closed], WINDOWS)] == [14, 7]


def test_an_outage_of_another_commune_changes_nothing_and_down_never_goes_below_zero() -> None:
    other = Outage("02536", "power", MORNING.start, AFTERNOON.end)
    assert excuse_outages(slots(5, 5), [other], WINDOWS) == slots(5, 5)
    whole = Outage("02473", "power", MORNING.start - 3600, AFTERNOON.end)
    assert [s.a for s in excuse_outages(slots(5, 5), [whole], WINDOWS)] == [0, 0]
