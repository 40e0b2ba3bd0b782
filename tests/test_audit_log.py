"""The audit log, pure: entries for what an admin changed, the hash chain, the floor, pruning;
exclusions as records (refused whole on bad input, withdrawn by a later record, queried in force)."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from collector.audit import Actor, Filter, entries, prune, record, snapshot, verify
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.exclusions import ExclusionError, Exclusions, parse_time
from collector.registry.registry import Line, Registry
from collector.store import Store

ADMIN = Actor("nguyen-van-a", "10.0.0.5")
ZONE = "Asia/Ho_Chi_Minh"


def registry_with_a_line(store: Store) -> Registry:
    registry = Registry(store, "unassigned")
    registry.upsert_lines([Line("VNPT-1", "08", "02473", "VNPT", 40.0, 10.0)])
    return registry


def test_each_changed_row_is_one_entry_with_its_values_before_and_after(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    registry = registry_with_a_line(store)
    before = snapshot(store)
    registry.upsert_lines(
        [Line("VNPT-1", "08", "02473", "VNPT", 80.0, 10.0), Line("VT-2", "08", "02536", "Viettel", 30.0, 5.0)]
    )
    assert record(store, ADMIN, "registry import lines.csv", before, 1000.0) == 2
    found = {e.object: e for e in entries(store, Filter(), None, 10)}
    changed = found["line:VNPT-1"].as_json()
    assert changed["before"]["contracted_down_mbps"] == 40.0 and changed["after"]["contracted_down_mbps"] == 80.0
    assert (changed["actor"], changed["origin"], changed["commune"]) == ("nguyen-van-a", "10.0.0.5", "02473")
    assert found["line:VT-2"].before is None
    assert [e.object for e in entries(store, Filter(frozenset({"02536"})), None, 10)] == ["line:VT-2"]
    assert [e.object for e in entries(store, Filter(object="line:VT-2"), None, 10)] == ["line:VT-2"]
    assert verify(store) == (2, None)


def test_a_call_that_changed_nothing_is_one_entry_and_the_collectors_own_writes_none(tmp_path: Path) -> None:
    store = Store(tmp_path / "state.sqlite")
    registry = registry_with_a_line(store)
    before = snapshot(store)
    from collector.registry.registry import HostKey

    registry.touch(HostKey("08", "02473", "pc-01"), time.time(), "online")  # an agent reporting, not an admin
    registry.flush()
    assert record(store, ADMIN, "POST /api/v1/hosts/08/02473/pc-01/speedtest", before, 5.0) == 1
    assert [e.object for e in entries(store, Filter(), None, 10)] == ["none"]
    before = snapshot(store)
    assert registry.forget(HostKey("08", "02473", "pc-01"))
    record(store, ADMIN, "DELETE /api/v1/hosts/08/02473/pc-01", before, 6.0)
    assert entries(store, Filter(), None, 1)[0].object == "host:08/02473/pc-01"


def chained(tmp_path: Path, count: int, ts: float | None = None) -> Store:
    store = Store(tmp_path / "state.sqlite")
    registry = registry_with_a_line(store)
    for n in range(count):
        before = snapshot(store)
        registry.upsert_lines([Line("VNPT-1", "08", "02473", "VNPT", 40.0 + n, 10.0)])
        record(store, ADMIN, "registry import", before, time.time() if ts is None else ts)
    return store


def test_the_file_refuses_to_change_or_delete_a_young_entry(tmp_path: Path) -> None:
    store = chained(tmp_path, 3)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        store.execute("UPDATE audit_log SET actor = 'someone' WHERE id = 2")
    with pytest.raises(sqlite3.IntegrityError, match="400 days"):
        store.execute("DELETE FROM audit_log WHERE id = 2")
    assert verify(store) == (3, None)


def tampered(store: Store, sql: str) -> None:
    """What someone with the file does: the guards dropped, then the edit."""
    store.execute("DROP TRIGGER audit_log_append_only")
    store.execute("DROP TRIGGER audit_log_floor")
    store.execute(sql)


@pytest.mark.parametrize(
    ("sql", "entry", "says"),
    [
        ("UPDATE audit_log SET after = replace(after, '42.0', '99.0') WHERE id = 3", 3, "changed after it was written"),
        ("DELETE FROM audit_log WHERE id = 2", 2, "missing"),
        ("DELETE FROM audit_log WHERE id = 4", 4, "missing"),
        ("DELETE FROM audit_log WHERE id >= 3", 3, "missing"),
        ("DELETE FROM audit_log WHERE id = 1", 1, "missing"),
    ],
)
def test_verify_names_the_first_broken_entry(tmp_path: Path, sql: str, entry: int, says: str) -> None:
    store = chained(tmp_path, 4)
    tampered(store, sql)
    _good, broken = verify(store)
    assert broken is not None and broken.entry == entry and says in str(broken), broken


def test_an_entry_rewritten_with_a_fresh_hash_is_found_by_the_next_link(tmp_path: Path) -> None:
    from collector.audit import entry_hash

    store = chained(tmp_path, 3)
    row = store.query(
        "SELECT id, ts, actor, origin, action, object, commune, area, before, after, prev FROM audit_log WHERE id = 2"
    )[0]
    fresh = entry_hash(row[10], row[0], row[1], "someone-else", *row[3:10])
    tampered(store, f"UPDATE audit_log SET actor = 'someone-else', hash = '{fresh}' WHERE id = 2")
    assert verify(store)[1] is not None and verify(store)[1].entry == 2  # type: ignore[union-attr]


def test_prune_keeps_the_floor_and_the_chain(tmp_path: Path) -> None:
    now = time.time()
    store = chained(tmp_path, 2, ts=now - 399 * 86400)
    assert prune(store, now, keep_days=30) == 0  # 30 is below the floor: 400 it is
    assert prune(store, now + 2 * 86400, keep_days=400) == 0  # the file itself refuses: its clock says 399 days
    store.close()
    store = chained(tmp_path / "older", 2, ts=now - 401 * 86400)
    assert prune(store, now, keep_days=400) == 2
    registry = Registry(store, "unassigned")
    before = snapshot(store)
    registry.upsert_lines([Line("VNPT-1", "08", "02473", "VNPT", 1.0, 1.0)])
    record(store, ADMIN, "registry import", before, now)
    assert verify(store) == (1, None)


def test_the_floor_setting_cannot_go_below_400_days() -> None:
    from collector.config import AuditSettings

    with pytest.raises(ValueError, match="400"):
        AuditSettings(retention_days=30)


def exclusions_of(tmp_path: Path) -> Exclusions:
    store = Store(tmp_path / "state.sqlite")
    registry = registry_with_a_line(store)
    Equipment(store).replace_communes([IssuedItem("08", "02473", "token", "ePass", "SN-1", "Chị B", "2026-01-05")])
    return Exclusions(store, registry, ZONE)


def test_an_exclusion_is_refused_whole_on_bad_input(tmp_path: Path) -> None:
    book = exclusions_of(tmp_path)
    nov = parse_time("2026-11-03", ZONE), parse_time("2026-11-05", ZONE)
    made = book.add("02473", "item", "SN-1", *nov, "repair", "gửi đi sửa", "Anh C")
    bad = [
        (("99999", "commune", "", *nov, "repair"), "not an official commune"),
        (("02536", "commune", "", *nov, "repair"), "has no PC, line"),
        (("02473", "item", "SN-9", *nov, "repair"), "no issued item with serial 'SN-9'"),
        (("02473", "host", "pc-9", *nov, "repair"), "no known PC named 'pc-9'"),
        (("02473", "commune", "", *nov, "vacation"), "reason 'vacation' is not one of"),
        (("02473", "commune", "", nov[1], nov[0], "repair"), "inverted"),
        (("02473", "item", "SN-1", nov[0] + 3600, nov[1] + 86400, "repair"), f"overlaps exclusion {made.id}"),
    ]
    for args, says in bad:
        with pytest.raises(ExclusionError, match=says):
            book.add(*args, "note", "Anh C")  # type: ignore[arg-type]
    assert [e.id for e in book.all()] == [made.id]


def test_a_withdrawn_exclusion_stays_listed_and_is_in_force_only_before_its_withdrawal(tmp_path: Path) -> None:
    book = exclusions_of(tmp_path)
    start, end = parse_time("2026-11-03T08:00", ZONE), parse_time("2026-11-03T17:00+07:00", ZONE)
    assert end - start == 9 * 3600
    made = book.add("02473", "line", "", start, end, "disaster", "lũ", "Anh C", now=100.0)
    assert [e.id for e in book.in_force("02473", parse_time("2026-11-01", ZONE), parse_time("2026-12-01", ZONE))] == [
        made.id
    ]
    assert book.in_force("02473", end, end + 86400) == []  # [start, end): the end is not covered
    book.withdraw(made.id, "nhập nhầm", "Chị D", now=200.0)
    with pytest.raises(ExclusionError, match="withdrawn already"):
        book.withdraw(made.id, "again", "Chị D")
    with pytest.raises(sqlite3.IntegrityError, match="never changed"):
        book._store.execute("UPDATE exclusions SET reason = 'other'")
    listed = book.all()[0]
    assert listed.withdrawal is not None and listed.withdrawal.by_name == "Chị D"
    assert book.in_force("02473", start, end) == []
    assert [e.id for e in book.in_force("02473", start, end, as_of=150.0)] == [made.id]  # a month frozen then
    again = book.add("02473", "line", "", start, end, "disaster", "lũ, đúng ngày", "Anh C")  # no overlap now
    assert again.id != made.id
