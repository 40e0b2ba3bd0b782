"""The rows behind a commune's figures (collector/reports/evidence.py) and the figures made from
them: pure functions over hand-built slots, outages and exclusions, with hypothesis for the
arithmetic (rows sum exactly to the figure; an exclusion moves only the adjusted figure; our own
silence is no data, never the commune's downtime)."""

from __future__ import annotations

from datetime import date
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from collector.fleet import equipment as kit
from collector.fleet.equipment import SeenDevice
from collector.localtime import Window
from collector.registry.equipment import IssuedItem
from collector.registry.exclusions import Exclusion, Withdrawal
from collector.reports import evidence as ev
from collector.reports.evidence import Outage, SpeedRow
from collector.reports.figures import Place, compute
from collector.reports.gather import Fetched, Slots, devices_seen

DAY = date(2026, 11, 17)
T0 = 1_000_000
WINDOWS = [Window(date(2026, 11, 16 + d), T0 + d * 86400, T0 + d * 86400 + 4 * 3600) for d in range(4)]  # 48 slots
HERE, THERE = "02473", "02536"


def exclusion(start: float, end: float, scope: str = "line", target: str = "", made: float = 0.0,
              withdrawn: float | None = None, commune: str = HERE) -> Exclusion:  # fmt: skip
    gone = Withdrawal(9, 1, "ops", "wrong", withdrawn) if withdrawn is not None else None
    return Exclusion(1, "08", commune, scope, target, start, end, "repair", "scanner away", "Lan", made, gone)


slot_counts = st.tuples(st.integers(0, 48), st.integers(0, 48), st.integers(0, 48)).map(
    lambda t: (float(t[0]), float(min(t[1], t[0])), float(min(t[2], t[0] - min(t[1], t[0]))))
)  # n, down, unused with down + unused <= n


@given(st.lists(slot_counts, min_size=4, max_size=4), st.integers(0, 4 * 3600), st.integers(0, 4 * 3600))
def test_line_rows_sum_exactly_to_the_raw_and_adjusted_figures(
    counts: list[tuple[float, float, float]], a: int, b: int
) -> None:
    slots = [(i, n, down, unused) for i, (n, down, unused) in enumerate(counts)]
    spans = [(WINDOWS[1].start + min(a, b), WINDOWS[1].start + max(a, b))]
    rows = ev.line_rows(HERE, slots, WINDOWS, [], [], spans)
    in_use = sum(n - unused for n, _d, unused in counts)
    down = sum(d for _n, d, _u in counts)
    assert ev.line_availability(rows) == (round(100.0 * (in_use - down) / in_use, 1) if in_use else None)
    assert sum(r.counted for r in rows) == in_use and sum(r.charged for r in rows) == down
    kept = [1.0 - (r.excluded if i == 1 else 0.0) for i, r in enumerate(rows)]
    counted = sum(r.counted * k for r, k in zip(rows, kept, strict=True))
    up = sum(r.up * k for r, k in zip(rows, kept, strict=True))
    assert ev.line_availability_adjusted(rows) == (round(100.0 * up / counted, 1) if counted > 0 else None)


def test_an_exclusion_moves_the_adjusted_figure_and_not_the_raw_one() -> None:
    slots = [(0, 48.0, 0.0, 0.0), (1, 48.0, 48.0, 0.0), (2, 48.0, 0.0, 0.0), (3, 48.0, 0.0, 0.0)]
    before = ev.line_rows(HERE, slots, WINDOWS, [], [], [])
    repair = [(WINDOWS[1].start - 3600, WINDOWS[1].end + 60)]  # the whole day the line was cut
    after = ev.line_rows(HERE, slots, WINDOWS, [], [], repair)
    assert ev.line_availability(before) == ev.line_availability(after) == 75.0
    assert ev.line_availability_adjusted(before) == 75.0
    assert ev.line_availability_adjusted(after) == 100.0  # excluded time left the denominator
    assert sum(r.counted_adjusted for r in after) == 3 * 48  # not counted as "up"
    half = ev.line_rows(HERE, slots, WINDOWS, [], [], [(WINDOWS[1].start, WINDOWS[1].start + 2 * 3600)])
    assert half[1].excluded == 0.5 and ev.line_availability_adjusted(half) == round(100 * 144 / 168, 1)


def test_exclusions_apply_as_they_stood_when_the_report_was_made() -> None:
    late = exclusion(T0, T0 + 3600, made=T0 + 10 * 86400)
    withdrawn = exclusion(T0, T0 + 3600, made=T0, withdrawn=T0 + 86400)
    other = exclusion(T0, T0 + 3600, commune=THERE)
    assert ev.applied([late, withdrawn, other], HERE, T0, T0 + 30 * 86400, as_of=T0 + 3600) == [withdrawn]
    assert ev.applied([late, withdrawn, other], HERE, T0, T0 + 30 * 86400, as_of=T0 + 20 * 86400) == [late]
    pc = exclusion(T0, T0 + 3600, scope="host", target="pc-1")
    assert ev.excluded_spans([pc], ev.LINE_SCOPES) == []
    assert ev.excluded_spans([pc], ev.PC_SCOPES, "pc-2") == []
    assert ev.excluded_spans([pc], ev.PC_SCOPES, "pc-1") == [(T0, T0 + 3600)]


def test_power_cuts_are_excused_and_fleet_silence_is_no_data_in_every_figure() -> None:
    slots = [(0, 48.0, 24.0, 0.0)]
    power = Outage(HERE, "power", WINDOWS[0].start, WINDOWS[0].start + 3600)  # 12 slots
    rows = ev.line_rows(HERE, slots, WINDOWS, [power], [], [])
    assert (rows[0].excused, rows[0].charged, rows[0].counted) == (12.0, 12.0, 48.0)
    silent = [(WINDOWS[0].start + 1800, WINDOWS[0].start + 5400)]  # 12 slots, 6 of them in the power cut
    rows = ev.line_rows(HERE, slots, WINDOWS, [power], silent, [])
    assert (rows[0].no_data, rows[0].excused, rows[0].charged, rows[0].counted) == (12.0, 6.0, 6.0, 36.0)
    assert ev.line_availability(rows) == round(100 * 30 / 36, 1)


def test_silence_is_when_every_commune_heard_that_month_was_dark_at_once() -> None:
    heard = {HERE: (0.0, 9e9), THERE: (0.0, 9e9), "02545": (0.0, T0 + 100)}  # the third fell silent for good
    outages = [Outage(HERE, "unknown", T0, T0 + 3600), Outage(THERE, "line", T0 + 1800, T0 + 7200)]
    assert ev.silent_spans(outages, heard) == [(T0 + 1800, T0 + 3600)]
    assert ev.silent_spans(outages, {**heard, "02560": (0.0, 9e9)}) == []  # one commune still heard
    assert ev.silent_spans(outages[:1], {HERE: (0.0, 9e9), "02545": (0.0, T0)}) == []  # one alone: its own outage


def test_pc_rows_make_availability_and_degraded_spells_across_a_weekend() -> None:
    windows = [Window(date(2026, 11, d), T0 + d * 86400, T0 + d * 86400 + 3600) for d in (19, 20, 23, 24, 26)]
    slots = [(0, 12.0, 12.0, 0.0), (1, 12.0, 12.0, 6.0), (2, 12.0, 6.0, 12.0), (3, 12.0, 0.0, 0.0),
             (4, 12.0, 12.0, 12.0)]  # fmt: skip
    row = ev.pc_row("pc-1", slots, windows, [(windows[3].start, windows[3].end)], ("disk_slow",))
    assert ev.pc_availability([row]) == 70.0 and ev.pc_availability_adjusted([row]) == round(100 * 42 / 48, 1)
    assert row.degraded_days == 3
    assert row.spells == (ev.Spell(date(2026, 11, 20), date(2026, 11, 23), 2), ev.Spell(date(2026, 11, 26),
                          date(2026, 11, 26), 1))  # fmt: skip


@given(st.lists(st.floats(0, 400, allow_nan=False), min_size=1, max_size=30))
def test_speed_is_the_median_of_its_rows(values: list[float]) -> None:
    ordered = sorted(values)
    mid = len(ordered) // 2
    median = ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2
    assert ev.speed_percent([SpeedRow(i, v) for i, v in enumerate(values)]) == round(median, 1)


def fetched(hosts: list[Slots], exclusions: list[Exclusion]) -> Fetched:
    out = Fetched(WINDOWS, WINDOWS[0].start, WINDOWS[-1].end, as_of=WINDOWS[-1].end)
    out.communes = [Slots(i, c, "", 48, 12 if c == HERE and i == 1 else 0, 0) for c in (HERE, THERE, "02545")
                    for i in range(4)]  # fmt: skip
    out.hosts = hosts
    out.exclusions = exclusions
    out.last_heard = {"02545": float(T0 - 86400)}
    return out


def test_a_commune_without_a_reporting_agent_is_listed_apart_and_not_ranked() -> None:
    hosts = [Slots(i, c, "pc-1", 48, 48, 0) for c in (HERE, THERE) for i in range(4)]
    hosts += [Slots(i, "02545", "pc-1", 48, 0, 0) for i in range(4)]  # known, never online this month
    places = {c: Place(c, c, "a", "A") for c in (HERE, THERE, "02545", "02560")}
    month = compute(fetched(hosts, []), places, 8, 5)
    assert [c.place.commune for c in month.communes] == [HERE, THERE]
    assert [c.rank for c in month.communes] == [2, 1]
    assert [(n.place.commune, n.since) for n in month.no_data] == [("02545", float(T0 - 86400))]
    assert month.total.communes == 3  # the area's sums still count what its line said


def test_the_figures_are_made_from_the_rows_and_the_score_ranks_on_the_adjusted_ones() -> None:
    hosts = [Slots(i, c, "pc-1", 48, 48, 0) for c in (HERE, THERE) for i in range(4)]
    cut_day = exclusion(WINDOWS[1].start, WINDOWS[1].end, made=WINDOWS[0].start)
    month = compute(fetched(hosts, [cut_day]), {}, 8, 5)
    here = next(c for c in month.communes if c.place.commune == HERE)
    assert here.line_availability == ev.line_availability(here.evidence.line) == 93.8
    assert here.line_availability_adjusted == 100.0 and here.score > here.score_raw
    assert [e.id for e in here.evidence.exclusions] == [1] and here.evidence.exclusions[0].by_name == "Lan"
    assert here.down_hours == ev.down_hours(here.evidence.line) == 1.0
    assert [c.rank for c in month.communes if c.place.commune == HERE] == [1]  # ties broken by name: 02473 first


def test_an_agent_too_old_to_report_peripherals_leaves_equipment_in_use_unknown_not_zero() -> None:
    assert ev.too_old_for("0.1.0") == ("equipment",) and ev.too_old_for("0.2.0") == ()
    assert ev.too_old_for("0.2.1-rc1") == () and ev.too_old_for("") == () and ev.too_old_for("weird") == ()
    hosts = [Slots(i, c, h, 48, 48, 0) for c in (HERE, THERE) for h in ("pc-1", "pc-2") for i in range(4)]
    found = fetched(hosts, [])
    found.equipment = {(c, "scanner"): (2.0, 0.0, 0.0, 0.0) for c in (HERE, THERE)}
    found.items = [IssuedItem("08", c, "scanner", "DR-C225", "", "Lan", "1970-01-01") for c in (HERE, THERE)] * 2
    found.versions = {(HERE, "pc-1"): "0.1.0", (HERE, "pc-2"): "0.1.0", (THERE, "pc-1"): "0.1.0",
                      (THERE, "pc-2"): "0.2.0"}  # fmt: skip
    month = compute(found, {}, 8, 5)
    kit = {c.place.commune: [(k.kind, k.issued, k.in_use) for k in c.equipment] for c in month.communes}
    assert kit == {HERE: [("scanner", 2, None)], THERE: [("scanner", 2, 0)]}  # one current agent: it reports
    here = next(c for c in month.communes if c.place.commune == HERE)
    assert [(p.agent_version, p.too_old_for) for p in here.evidence.pcs] == [("0.1.0", ("equipment",))] * 2


def test_a_pcs_slots_in_fleet_silence_are_no_data_not_offline() -> None:
    slots = [(0, 48.0, 24.0, 0.0), (1, 48.0, 48.0, 0.0)]
    silent = [(WINDOWS[0].start, WINDOWS[0].start + 2 * 3600)]  # 24 slots, in which it was heard by no one
    row = ev.pc_row("pc-1", slots, WINDOWS, [], (), silence=silent)
    assert (row.slots, row.online) == (72.0, 72.0) and ev.pc_availability([row]) == 100.0
    assert ev.pc_availability([ev.pc_row("pc-1", slots, WINDOWS, [], ())]) == 75.0


def item(kind: str, serial: str, commune: str = HERE, issued_on: str = "1970-01-01") -> IssuedItem:
    return IssuedItem("08", commune, kind, f"{kind} model", serial, "Lan", issued_on)


def device(name: str, kind: str, serial: str, last: float, host: str = "pc-1") -> SeenDevice:
    return SeenDevice(name, kind, serial, "", host, last - 3600, last)


END = WINDOWS[-1].end  # the test month's end


def equipment_month(exclusions: list[Exclusion]) -> Fetched:
    """HERE: three scanners (one matched by serial, one by kind, one never seen), a token last seen
    20 days before the month's end (unused, window 14 days), a printer issued after the month."""
    hosts = [Slots(i, c, "pc-1", 48, 48, 0) for c in (HERE, THERE) for i in range(4)]
    found = fetched(hosts, exclusions)
    found.items = [item("scanner", "SC-1"), item("scanner", ""), item("scanner", "SC-9"), item("token", "TK 7"),
                   item("printer", "", issued_on="1971-01-01"), item("scanner", "SC-2", THERE)]  # fmt: skip
    found.seen = {HERE: [device("04a9-1-sc-1", "scanner", "sc-1", END - 86400),
                         device("04a9-1-1-1.2", "scanner", "", END - 2 * 86400, "pc-2"),
                         device("096e-2-tk7", "token", "TK7", END - 20 * 86400)],
                  THERE: [device("04a9-1-sc-2", "scanner", "SC-2", END - 3600)]}  # fmt: skip
    found.days_seen = {(HERE, "04a9-1-sc-1"): (WINDOWS[2].day, WINDOWS[3].day), (HERE, "04a9-1-1-1.2"): (DAY,),
                       (THERE, "04a9-1-sc-2"): (WINDOWS[3].day,)}  # fmt: skip
    found.equipment_days = 14
    return found


def test_each_issued_item_is_a_row_with_its_device_days_and_the_fleets_rule_and_the_rows_make_the_figure() -> None:
    month = compute(equipment_month([]), {}, 8, 5)
    here = next(c for c in month.communes if c.place.commune == HERE)
    rows = here.evidence.items
    assert [(r.kind, r.serial, r.device, r.host, r.days, r.state, r.rule) for r in rows] == [
        ("scanner", "SC-1", "04a9-1-sc-1", "pc-1", (WINDOWS[2].day, WINDOWS[3].day), kit.IN_USE, kit.PRESENCE),
        ("scanner", "", "04a9-1-1-1.2", "pc-2", (DAY,), kit.IN_USE, kit.PRESENCE),
        ("scanner", "SC-9", "", "", (), kit.NEVER_SEEN, kit.PRESENCE),
        ("token", "TK 7", "096e-2-tk7", "pc-1", (), kit.UNUSED, kit.PRESENCE),
    ]  # the printer issued after the month is no row; the token's serial matched, spaces and case aside
    items, seen = equipment_month([]).items, equipment_month([]).seen[HERE]
    matched, _left = kit.match(items[:4], seen)
    assert [r.state for r in rows] == [
        kit.verdict(i, d, 14, END).state for i, d in zip(items[:4], matched, strict=True)
    ]
    figure = [(k.kind, k.issued, k.in_use, k.issued_adjusted, k.in_use_adjusted) for k in here.equipment]
    assert figure == [("scanner", 3, 2, 3, 2), ("token", 1, 0, 1, 0)]
    for k in here.equipment:  # the rows add up exactly to the figure
        mine = [r for r in rows if r.kind == k.kind]
        assert (k.issued, k.in_use) == (len(mine), sum(r.state == kit.IN_USE for r in mine))
    assert month.total.equipment_issued == 5 and month.total.equipment_in_use == 3


def test_an_item_excluded_over_the_months_end_leaves_the_adjusted_count_not_the_raw_one() -> None:
    before = compute(equipment_month([]), {}, 8, 5)
    over_end = exclusion(END - 86400, END + 10 * 86400, scope="item", target="sc-1", made=END - 86400)
    ended = exclusion(WINDOWS[0].start, WINDOWS[1].end, scope="item", target="SC-9", made=WINDOWS[0].start)
    after = compute(equipment_month([over_end, ended]), {}, 8, 5)
    old = next(c for c in before.communes if c.place.commune == HERE)
    new = next(c for c in after.communes if c.place.commune == HERE)
    raw = [(k.kind, k.issued, k.in_use) for k in old.equipment]
    assert [(k.kind, k.issued, k.in_use) for k in new.equipment] == raw  # the raw figure does not move
    scanner = next(k for k in new.equipment if k.kind == "scanner")
    assert (scanner.issued_adjusted, scanner.in_use_adjusted) == (2, 1)  # SC-1 (in use) left both counts
    assert [r.excluded for r in new.evidence.items] == [True, False, False, False]  # SC-9's ended before the end
    kept = [r for r in new.evidence.items if r.kind == "scanner" and not r.excluded]
    assert (scanner.issued_adjusted, scanner.in_use_adjusted) == (len(kept), sum(r.in_use for r in kept))
    there = [next(c for c in m.communes if c.place.commune == THERE).equipment for m in (before, after)]
    assert there[0] == there[1]  # another commune's figure is untouched


def test_devices_seen_merge_rollups_and_raw_and_pcsc_judges_only_with_the_raw_points() -> None:
    zone, day = ZoneInfo("Asia/Ho_Chi_Minh"), 86400
    month_start = 1_793_466_000  # 2026-11-01 00:00 in Hanoi
    end = month_start + 30 * day
    tags = {"commune": HERE, "host": "pc-1", "device": "096e-0807-TK1", "kind": "token"}
    rollup = [{**tags, "time": month_start + d * day, "last": month_start + d * day + 36000, "present": 1.0,
               "pcsc": 1.0} for d in (0, 27)]  # fmt: skip
    raw = [{**tags, "time": month_start + 27 * day, "last": month_start + 27 * day + 36500, "present": 1.0,
            "pcsc": 1.0}]  # fmt: skip
    empty: dict[str, list[dict[str, object]]] = {"serials": [], "models": [], "readers": [], "opened": []}
    seen, days = devices_seen({**empty, "peripheral": rollup, "peripheral_raw": []}, zone, end)
    (token,) = seen[HERE]
    assert token.last_seen == month_start + 27 * day + 36000 and token.watched_since == 0  # no raw: presence
    assert days[(HERE, "096e-0807-TK1")] == (date(2026, 11, 1), date(2026, 11, 28))
    judged = kit.verdict(item("token", "TK1"), token, 14, end)
    assert (judged.state, judged.rule) == (kit.IN_USE, kit.PRESENCE)
    readers = [{"commune": HERE, "host": "pc-1", "reader": "ePass", "device": "096e-0807-TK1"}]
    opened = [{"commune": HERE, "host": "pc-1", "reader": "ePass", "opened": month_start + 27 * day + 30000}]
    asked = {**empty, "peripheral": rollup, "peripheral_raw": raw, "readers": readers, "opened": opened,
             "serials": [{**tags, "serial": "TK1"}]}  # fmt: skip
    seen, _days = devices_seen(asked, zone, end)
    (token,) = seen[HERE]
    assert token.last_seen == month_start + 27 * day + 36500 and token.serial == "TK1"  # the raw max
    assert token.opened_at == month_start + 27 * day + 30000 and token.watched_since == month_start + 27 * day
    judged = kit.verdict(item("token", "TK1"), token, 14, end)
    assert (judged.state, judged.rule) == (kit.IN_USE, kit.PCSC)
    asked["opened"] = []  # watched, never opened: plugged in, idle (once watched over the whole window)
    seen, _days = devices_seen({**asked, "peripheral_raw": [{**raw[0], "time": month_start}, *raw]}, zone, end)
    judged = kit.verdict(item("token", "TK1"), seen[HERE][0], 14, end)
    assert (judged.state, judged.rule) == (kit.PLUGGED_IDLE, kit.PCSC)
