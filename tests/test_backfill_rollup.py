"""The backfill's rollup (``devtools/backfill.py``): continuous queries roll up only new time, so the
backfill runs their ``SELECT ... INTO`` over the history it wrote. ``make demo``'s 35 days of a
province (9.5 M points) made a week per statement, which ran past the client's 10 s timeout on 2
cores, and the history never reached the report. Each statement now reads a bounded number of
points, whatever the province's (or nation's) size, and has a timeout of its own."""

from __future__ import annotations

import itertools

from collector.config import InfluxSettings
from devtools.backfill import DAY_S, ROLLUP_POINTS, ROLLUP_S, ROLLUP_TIMEOUT_S, rollup_ranges, rollup_settings

DEMO_POINTS = 9_487_561  # what make demo's 35 days of Tuyên Quang wrote (124 communes)


def test_each_rollup_statement_reads_a_bounded_share_of_a_province_or_a_nation() -> None:
    start, end = 1_790_000_100, 1_790_000_100 + 35 * DAY_S
    province = DEMO_POINTS / (end - start)
    for rate in (province, province * 3321 / 124, 0.001):  # a province, the nation, a handful of PCs
        ranges = rollup_ranges(start, end, rate)
        assert ranges[0][0] == start and ranges[-1][1] == end
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges)), "a gap or an overlap"
        assert all(lo % ROLLUP_S == 0 and lo < hi for lo, hi in ranges)  # whole 5-minute buckets
        assert all((hi - lo) * rate <= ROLLUP_POINTS or hi - lo == ROLLUP_S for lo, hi in ranges), rate
        assert all(hi - lo <= 7 * DAY_S for lo, hi in ranges)
    assert len(rollup_ranges(start, end, province)) > 5  # not the week-long statements that timed out


def test_the_rollup_has_a_timeout_of_its_own_not_the_writers() -> None:
    settings = InfluxSettings(timeout_s=10.0)
    assert rollup_settings(settings).timeout_s == ROLLUP_TIMEOUT_S > 10.0
    assert rollup_settings(InfluxSettings(timeout_s=900.0)).timeout_s == 900.0  # a longer one set by hand stays
