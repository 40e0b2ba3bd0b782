"""Issued equipment against seen peripherals, as pure functions: matching by serial, then by kind and
count; the states in_use, unused, never_seen (and not_yet_seen inside the first window); devices
seen and not issued listed as unregistered; and the equipment CSV checked row by row."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from collector.fleet.equipment import (
    DAY_S,
    IN_USE,
    NEVER_SEEN,
    NOT_YET_SEEN,
    UNUSED,
    KindCount,
    SeenDevice,
    commune_equipment,
    fleet_equipment,
    issued_at,
)
from collector.registry.csv_import import RegistryImportError, parse_equipment
from collector.registry.equipment import IssuedItem

REPO = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC).timestamp()
WINDOW = 14


def item(kind: str, serial: str = "", issued_on: str = "2026-01-05", holder: str = "Chủ tịch") -> IssuedItem:
    return IssuedItem("08", "02473", kind, "Feitian ePass2003", serial, holder, issued_on)


def seen(device: str, kind: str, serial: str = "", days_ago: float = 1.0) -> SeenDevice:
    at = NOW - days_ago * DAY_S
    return SeenDevice(device, kind, serial, "", "pc-01", at - DAY_S, at)


def test_a_token_seen_yesterday_matches_its_serial_and_is_in_use() -> None:
    verdicts = commune_equipment("08", "02473", [item("token", "A3F1")], [seen("096e-0807-A3F1", "token", "a3f1")],
                                 WINDOW, NOW).verdicts  # fmt: skip
    assert [(v.state, v.device, round(v.days, 1)) for v in verdicts] == [(IN_USE, "096e-0807-A3F1", 1.0)]


def test_a_token_last_seen_twenty_days_ago_is_unused_with_its_days() -> None:
    result = commune_equipment("08", "02473", [item("token", "A3F1")], [seen("t", "token", "A3F1", days_ago=20)],
                               WINDOW, NOW)  # fmt: skip
    assert [(v.state, round(v.days)) for v in result.verdicts] == [(UNUSED, 20)]
    assert result.counts() == {"token": KindCount(issued=1, seen=0, unused=1)}


def test_a_token_never_plugged_in_is_never_seen_counted_from_its_issue_date() -> None:
    result = commune_equipment("08", "02473", [item("token", "A3F1", "2026-11-01")], [], WINDOW, NOW)
    (only,) = result.verdicts
    assert only.state == NEVER_SEEN and only.last_seen == 0.0
    assert only.days == pytest.approx((NOW - issued_at(only.item)) / DAY_S) and 19 < only.days < 20


def test_an_item_issued_within_the_window_and_not_seen_yet_is_not_yet_seen_not_idle() -> None:
    result = commune_equipment("08", "02473", [item("token", "A3F1", "2026-11-10")], [], WINDOW, NOW)
    assert [v.state for v in result.verdicts] == [NOT_YET_SEEN]
    assert result.counts() == {"token": KindCount(issued=1, seen=0, unused=0)}


def test_a_token_with_another_serial_does_not_match_and_is_unregistered() -> None:
    result = commune_equipment("08", "02473", [item("token", "A3F1")], [seen("other", "token", "FFFF")], WINDOW, NOW)
    assert [v.state for v in result.verdicts] == [NEVER_SEEN]
    assert [d.device for d in result.unregistered] == ["other"]


def test_items_without_serial_match_by_kind_and_count() -> None:
    scanners = [item("scanner", issued_on="2026-01-01"), item("scanner", issued_on="2026-02-01")]
    result = commune_equipment("08", "02473", scanners, [seen("04a9-1660-usb1", "scanner")], WINDOW, NOW)
    states = [(v.item.issued_on, v.state) for v in result.verdicts]
    assert states == [("2026-01-01", IN_USE), ("2026-02-01", NEVER_SEEN)]
    assert result.unregistered == ()
    assert result.counts() == {"scanner": KindCount(issued=2, seen=1, unused=1)}


def test_a_device_claimed_by_a_serial_is_not_taken_by_a_serialless_item_of_its_kind() -> None:
    items = [item("token"), item("token", "A3F1")]
    result = commune_equipment("08", "02473", items, [seen("t1", "token", "A3F1")], WINDOW, NOW)
    assert [(v.item.serial, v.state) for v in result.verdicts] == [("", NEVER_SEEN), ("A3F1", IN_USE)]


def test_a_kind_never_issued_is_listed_as_unregistered_and_a_commune_with_only_those_appears() -> None:
    found = fleet_equipment([item("token", "A3F1")], {"02473": [seen("t1", "token", "A3F1")],
                            "02536": [seen("p1", "printer")]}, {"02536": "08"}, WINDOW, NOW)  # fmt: skip
    assert [(c.commune, c.province) for c in found] == [("02473", "08"), ("02536", "08")]
    assert found[1].verdicts == () and [d.device for d in found[1].unregistered] == ["p1"]
    assert found[0].counts() == {"token": KindCount(issued=1, seen=1, unused=0)}
    (forgotten,) = fleet_equipment([], {"02536": [seen("p1", "printer")]}, {}, WINDOW, NOW)  # its PC was forgotten
    assert forgotten.province == "08"  # from the official list


def test_the_example_equipment_file_parses() -> None:
    items = parse_equipment(REPO / "config" / "equipment.example.csv", today=dt.date(2026, 11, 20))
    assert len(items) == 6 and {i.kind for i in items} == {"token", "scanner"}
    assert all(i.province == "08" for i in items)


def test_a_bad_equipment_file_lists_every_bad_row(tmp_path: Path) -> None:
    bad = tmp_path / "equipment.csv"
    bad.write_text(
        "commune,kind,model,serial,holder,issued_on\n"
        "02473,token,ePass2003,A1,Chủ tịch,2026-01-01\n"
        "99999,token,ePass2003,A2,Chủ tịch,2026-01-01\n"
        "02473,camera,X,,Một cửa,2026-01-01\n"
        "02473,token,ePass2003,a1,,01/01/2026\n"
        "02473,scanner,,,Một cửa,2027-01-01\n",
        encoding="utf-8",
    )
    with pytest.raises(RegistryImportError) as raised:
        parse_equipment(bad, today=dt.date(2026, 11, 20))
    assert raised.value.problems == [
        "line 3: commune '99999' is not an official commune code",
        "line 4: kind 'camera' must be one of scanner, token, printer, other",
        "line 5: token serial 'a1' already on line 2",
        "line 5: holder must be 1 to 100 characters (a person, or the desk, e.g. Một cửa)",
        "line 5: issued_on '01/01/2026' must be a date like 2025-07-01",
        "line 6: model must be 1 to 100 characters",
        "line 6: issued_on 2027-01-01 is in the future (today is 2026-11-20)",
    ]


def test_an_equipment_file_without_its_columns_names_them(tmp_path: Path) -> None:
    bad = tmp_path / "equipment.csv"
    bad.write_text("commune,kind,model\n02473,token,x\n", encoding="utf-8")
    with pytest.raises(RegistryImportError) as raised:
        parse_equipment(bad)
    assert raised.value.problems == [
        "line 1: missing column(s) serial, holder, issued_on; expected commune, kind, model, serial, holder, issued_on"
    ]
