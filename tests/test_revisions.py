"""Frozen months, the pure parts: a revision per distinct inputs and figures, what changed and
why, records the state file refuses to change, and when a month is not frozen yet."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from collector.audit import Actor, verify
from collector.localtime import Month, Window, office_hours
from collector.registry.exclusions import Exclusion, Withdrawal
from collector.reports.build import MonthlyReport
from collector.reports.figures import GroupFigures, MonthFigures, Place
from collector.reports.gather import Fetched, Slots
from collector.reports.revisions import (
    PROVISIONAL_CURRENT,
    PROVISIONAL_HELD,
    PROVISIONAL_SETTLING,
    Inputs,
    Revision,
    RevisionBook,
    RevisionError,
    canonical,
    changes,
    in_force,
    inputs_of,
    provisional,
)
from collector.reports.tables import heading, revision_table
from collector.reports.windows import WindowSums
from collector.store import Store

ME = Actor("nguyen-van-a", "cli")
MONTH = "2026-11"
PLACES = {"02473": Place("02473", "Xã Yên Sơn", "KV1", "Khu vực 1"), "02536": Place("02536", "Xã Sơn Dương", "KV1", "")}


def fetched(down: float = 2.0) -> Fetched:
    window = Window(date(2026, 11, 2), 1_790_000_000, 1_790_014_400)
    out = Fetched([window], 1_789_900_000, 1_792_500_000)
    out.communes = [Slots(0, "02473", "", 48.0, down, 0.0), Slots(0, "02536", "", 48.0, 0.0, 0.0),
                    Slots(0, "09999", "", 48.0, 48.0, 0.0)]  # fmt: skip
    return out


def exclusion(id_: int, created: float, withdrawn: float | None = None) -> Exclusion:
    taken = Withdrawal(1, id_, "Lê C", "nhầm xã", withdrawn) if withdrawn is not None else None
    return Exclusion(id_, "08", "02473", "line", "", 1_790_000_000.0, 1_790_100_000.0, "repair", "cáp đứt", "Trần B",
                     created, taken)  # fmt: skip


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store(tmp_path / "state.sqlite")


def test_the_same_inputs_and_figures_give_the_same_revision_and_one_audit_entry(store: Store) -> None:
    book = RevisionBook(store)
    inputs = inputs_of(fetched(), PLACES, [])
    first = book.freeze(MONTH, "", inputs, {"02473": {"score": 80.0}}, ME, 1.0)
    again = book.freeze(MONTH, "", inputs_of(fetched(), PLACES, []), {"02473": {"score": 80.0}}, Actor("x", "y"), 2.0)
    assert (first.number, again.number, again.made_by, again.made_at) == (1, 1, "nguyen-van-a", 1.0)
    assert store.query("SELECT count(*) FROM audit_log")[0][0] == 1
    assert verify(store) == (1, None)


def test_rows_of_a_commune_outside_the_report_are_not_its_inputs() -> None:
    other = fetched()
    other.communes[2] = Slots(0, "09999", "", 48.0, 0.0, 0.0)  # another area's commune came back
    assert inputs_of(other, PLACES, []).digest == inputs_of(fetched(), PLACES, []).digest
    assert inputs_of(fetched(down=3.0), PLACES, []).digest != inputs_of(fetched(), PLACES, []).digest


def test_a_late_exclusion_makes_revision_2_naming_it_and_saying_which_figures_moved(store: Store) -> None:
    book = RevisionBook(store)
    book.freeze(MONTH, "", inputs_of(fetched(), PLACES, []), {"02473": {"score": 80.0, "rank": 2}}, ME, 1.0)
    late = exclusion(7, created=5.0)
    second = book.freeze(MONTH, "", inputs_of(fetched(), PLACES, [late]), {"02473": {"score": 84.5, "rank": 2}},
                         Actor("t", "127.0.0.1"), 6.0)  # fmt: skip
    assert second.number == 2
    assert second.changes == [{"commune": "02473", "name": "02473", "figure": "score", "old": 80.0, "new": 84.5}]
    assert [w["cause"] for w in second.why] == ["exclusion_added"] and second.why[0]["exclusion"]["by"] == "Trần B"
    assert book.revision(MONTH, 1).figures == {"02473": {"score": 80.0, "rank": 2}}  # revision 1 stays
    third = book.freeze(MONTH, "", inputs_of(fetched(), PLACES, []), {"02473": {"score": 80.0, "rank": 2}}, ME, 7.0,
                        withdrawn={7: {"by": "Lê C", "note": "nhầm xã", "at": 6.5}})  # fmt: skip
    assert third.number == 3 and third.why == [{"cause": "exclusion_withdrawn", "exclusion": second.exclusions[0],
                                               "withdrawal": {"by": "Lê C", "note": "nhầm xã", "at": 6.5}}]  # fmt: skip
    objects = [row[0] for row in store.query("SELECT object FROM audit_log ORDER BY id")]
    assert objects == [f"report_revision:{MONTH}/all/{n}" for n in (1, 2, 3)] and verify(store) == (3, None)


def test_late_data_names_the_parts_that_changed_and_other_figures_from_the_same_inputs_are_the_method(
    store: Store,
) -> None:
    book = RevisionBook(store)
    book.freeze(MONTH, "KV1", inputs_of(fetched(), PLACES, []), {"02473": {"score": 80.0}}, ME, 1.0)
    late = book.freeze(MONTH, "KV1", inputs_of(fetched(down=0.0), PLACES, []), {"02473": {"score": 81.0}}, ME, 2.0)
    assert late.why == [{"cause": "late_data", "parts": ["communes"]}]
    method = book.freeze(MONTH, "KV1", inputs_of(fetched(down=0.0), PLACES, []), {"02473": {"score": 81.2}}, ME, 3.0)
    assert method.number == 3 and method.why == [{"cause": "method"}]
    moved = {**PLACES, "02536": Place("02536", "Xã Sơn Dương", "KV2", "")}
    registry = book.freeze(MONTH, "KV1", inputs_of(fetched(down=0.0), moved, []), {"02473": {"score": 81.2}}, ME, 4.0)
    assert registry.why == [{"cause": "registry"}] and registry.changes == []
    with pytest.raises(RevisionError, match="no report of 2026-11 is frozen"):  # another area's report
        book.revisions(MONTH)
    assert [r.number for r in book.revisions(MONTH, "KV1")] == [1, 2, 3, 4]


def test_a_commune_new_to_the_month_or_gone_is_one_change() -> None:
    old = {"02473": {"name": "Xã Yên Sơn", "area": "KV1", "score": 1.0}}
    new = {"02536": {"name": "Xã Sơn Dương", "area": "KV1", "score": 2.0}}
    assert changes(old, new) == [
        {"commune": "02473", "name": "Xã Yên Sơn", "figure": "commune", "old": "listed", "new": None},
        {"commune": "02536", "name": "Xã Sơn Dương", "figure": "commune", "old": None, "new": "listed"},
    ]


def test_a_revision_is_never_changed_or_removed(store: Store) -> None:
    RevisionBook(store).freeze(MONTH, "", Inputs({}, [], "x"), {}, ME, 1.0)
    for sql in ("UPDATE report_revisions SET figures = '{}'", "DELETE FROM report_revisions"):
        with pytest.raises(sqlite3.IntegrityError, match="never changed"):
            store.execute(sql)


def test_asking_for_a_month_or_revision_not_frozen_says_what_there_is(store: Store) -> None:
    book = RevisionBook(store)
    with pytest.raises(RevisionError, match="no report of 2026-11 is frozen"):
        book.revision(MONTH, 1)
    book.freeze(MONTH, "", Inputs({}, [], "x"), {}, ME, 1.0)
    with pytest.raises(RevisionError, match=r"^2026-11 has no revision 2: its revisions are 1 to 1$"):
        book.revision(MONTH, 2)


def test_exclusions_in_force_are_those_made_and_not_withdrawn_by_the_moment() -> None:
    found = [exclusion(1, 10.0), exclusion(2, 30.0), exclusion(3, 10.0, withdrawn=15.0), exclusion(4, 10.0, 25.0)]
    assert [e.id for e in in_force(found, ["02473"], 1_790_000_000, 1_790_050_000, 20.0)] == [1, 4]
    assert in_force(found, ["02536"], 1_790_000_000, 1_790_050_000, 20.0) == []
    assert in_force(found, ["02473"], 1_790_100_000, 1_790_200_000, 20.0) == []  # after the interval


def test_a_month_is_frozen_only_once_over_settled_and_not_held(store: Store) -> None:
    start, end = 1_789_900_000, 1_792_500_000
    assert provisional(store, start, end, end - 1) == PROVISIONAL_CURRENT
    assert provisional(store, start, end, end + 60) == PROVISIONAL_SETTLING
    assert provisional(store, start, end, end + 7200) == ""
    WindowSums(store).hold(end - 86400, end)
    assert provisional(store, start, end, end + 7200) == PROVISIONAL_HELD
    WindowSums(store).release(end - 86400, end)
    assert provisional(store, start, end, end + 7200) == ""


def test_canonical_json_is_one_text_for_one_value() -> None:
    assert canonical({"b": [1.00000001, -0.0], "a": "Xã"}) == '{"a":"Xã","b":[1.0,0.0]}'


def month_report(revision: Revision | None, waiting: str, lang: str = "vi") -> MonthlyReport:
    total = GroupFigures("", "", 0, 0, None, None, 0, 0, None)
    hours = office_hours("Asia/Ho_Chi_Minh", ["07:30-11:30", "13:30-17:00"], [1, 2, 3, 4, 5], [])
    return MonthlyReport(Month(2026, 11), "", "", lang, hours, 21, 1_795_000_000, 1_795_000_000,
                         MonthFigures([], [], total, [], [], [], []), Month(2026, 10), 8.0, 5, 14,
                         revision=revision, provisional=waiting)  # fmt: skip


def test_the_report_says_its_revision_what_changed_and_why_or_that_it_is_provisional(store: Store) -> None:
    assert heading(month_report(None, PROVISIONAL_CURRENT))["revision"] == (
        "Số liệu tạm tính: tháng chưa kết thúc nên chưa chốt."
    )
    assert "still being written" in heading(month_report(None, PROVISIONAL_HELD, "en"))["revision"]
    book = RevisionBook(store)
    first = book.freeze(MONTH, "", inputs_of(fetched(), PLACES, [exclusion(7, 5.0)]),
                        {"02473": {"name": "Xã Yên Sơn", "score": 80.0}}, ME, 1_795_000_000.0)  # fmt: skip
    assert heading(month_report(first, ""))["revision"] == "Bản số 1: chốt lúc 18/11/2026 18:06, do nguyen-van-a lập."
    assert revision_table(month_report(first, "")) is None  # a first revision changed nothing
    second = book.freeze(MONTH, "", inputs_of(fetched(down=0.0), PLACES, []),
                         {"02473": {"name": "Xã Yên Sơn", "score": 84.5}}, ME, 1_795_000_100.0,
                         withdrawn={7: {"by": "Lê C", "note": "nhầm xã", "at": 6.5}})  # fmt: skip
    table = revision_table(month_report(second, ""))
    assert table is not None and table.title == "Thay đổi so với bản số 1"
    assert table.rows == [["Xã Yên Sơn", "Điểm", 80.0, 84.5]]
    assert table.note == ("Lý do: rút loại trừ số 7 (Xã Yên Sơn, do Lê C rút: nhầm xã); "
                          "dữ liệu đến muộn (trạng thái đường truyền).")  # fmt: skip
    english = revision_table(month_report(second, "", "en"))
    assert english is not None and english.note == (
        "Why: exclusion 7 withdrawn (Xã Yên Sơn, by Lê C: nhầm xã); late data (line states)."
    )
