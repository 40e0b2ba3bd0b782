"""Tokens judged by observed use where the PC watches them through PC/SC (collector/fleet/equipment.py):
``in_use`` when an application opened them within the window, ``plugged_idle`` when they were
plugged in but never opened over a fully watched window, and presence everywhere else; each verdict
says which rule judged it. The peripherals reports (with their ``smartcard`` readers) folded into
the seen devices, the equipment points and the API's fields, as pure functions."""

from __future__ import annotations

import datetime as dt
import json

from collector.fleet.equipment import (
    DAY_S,
    IN_USE,
    PCSC,
    PLUGGED_IDLE,
    PRESENCE,
    KindCount,
    SeenDevice,
    commune_equipment,
)
from collector.fleet.facts import gather_peripherals, read_peripherals
from collector.fleet.points import equipment_points
from collector.http.fleet_routes import equipment_json
from collector.registry.equipment import IssuedItem
from common.wire import decode_report

NOW = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.UTC).timestamp()
WINDOW = 14
TOKEN = IssuedItem("08", "02473", "token", "Feitian ePass2003", "A3F1", "Chủ tịch", "2026-01-05")


def token(watched_days: float = 0.0, opened_days_ago: float = 0.0, seen_days_ago: float = 1.0) -> SeenDevice:
    """Seen ``seen_days_ago``; watched through PC/SC for ``watched_days`` up to then (0: never);
    opened ``opened_days_ago`` (0: never)."""
    last = NOW - seen_days_ago * DAY_S
    since = last - watched_days * DAY_S if watched_days else 0.0
    opened = NOW - opened_days_ago * DAY_S if opened_days_ago else 0.0
    return SeenDevice("096e-080a-A3F1", "token", "A3F1", "", "pc-01", NOW - 60 * DAY_S, last, since,
                      last if watched_days else 0.0, opened)  # fmt: skip


def judged(device: SeenDevice) -> tuple[str, str]:
    (v,) = commune_equipment("08", "02473", [TOKEN], [device], WINDOW, NOW).verdicts
    return v.state, v.rule


def test_a_token_opened_within_the_window_is_in_use_by_observed_use() -> None:
    assert judged(token(watched_days=30, opened_days_ago=3)) == (IN_USE, PCSC)
    assert judged(token(watched_days=2, opened_days_ago=1)) == (IN_USE, PCSC)  # an opening seen needs no full window


def test_a_token_plugged_in_all_month_and_never_opened_is_plugged_idle_and_idle() -> None:
    assert judged(token(watched_days=30)) == (PLUGGED_IDLE, PCSC)
    assert judged(token(watched_days=30, opened_days_ago=20)) == (PLUGGED_IDLE, PCSC)  # opened before the window
    result = commune_equipment("08", "02473", [TOKEN], [token(watched_days=30)], WINDOW, NOW)
    assert result.counts() == {"token": KindCount(issued=1, seen=0, unused=1)}


def test_without_pc_sc_or_with_a_watch_shorter_than_the_window_presence_judges() -> None:
    assert judged(token()) == (IN_USE, PRESENCE)
    assert judged(token(watched_days=5)) == (IN_USE, PRESENCE)


def test_a_pc_that_lost_pc_sc_goes_back_to_presence_after_a_day() -> None:
    lost = token(watched_days=30)
    lost = SeenDevice(**{**lost.__dict__, "watched_last": lost.last_seen - 2 * DAY_S})
    assert judged(lost) == (IN_USE, PRESENCE)


def report(items: list[dict[str, object]], readers: list[dict[str, object]]) -> bytes:
    body = {"v": 1, "ts": int(NOW), "peripherals": items}
    if readers:
        body["smartcard"] = readers
    return json.dumps(body).encode()


def peripheral(pcsc: bool) -> dict[str, object]:
    item: dict[str, object] = {"device": "096e-080a-A3F1", "kind": "token", "serial": "A3F1", "present": 1,
                               "minutes_today": 60, "first_seen_today": int(NOW) - 3600,
                               "last_seen_today": int(NOW)}  # fmt: skip
    return {**item, "pcsc": 1} if pcsc else item


def reader(in_use: int, last_in_use: float) -> dict[str, object]:
    return {"reader": "FT_ePass2003", "name": "FT ePass2003 (A3F1) 00 00", "device": "096e-080a-A3F1",
            "card_now": 1, "card_present": 1, "in_use_now": 0, "in_use": in_use, "opened": in_use,
            "last_in_use": int(last_in_use)}  # fmt: skip


def test_reports_fold_into_a_watch_that_starts_once_and_the_last_opening() -> None:
    seen: dict[str, SeenDevice] = {}
    day0 = NOW - 20 * DAY_S
    gather_peripherals(
        seen, read_peripherals(decode_report("peripherals", report([peripheral(False)], [])), day0), "pc"
    )
    assert seen["096e-080a-A3F1"].watched_since == 0.0
    for day in (1, 2):
        at = day0 + day * DAY_S
        raw = report([peripheral(True)], [reader(1 if day == 1 else 0, at - 600 if day == 1 else 0)])
        gather_peripherals(seen, read_peripherals(decode_report("peripherals", raw), at), "pc")
    # a report without the mark (an agent restarted, before its watch looked) keeps the watch
    changed = gather_peripherals(seen, read_peripherals(decode_report("peripherals", report([peripheral(False)], [])),
                                                        day0 + 3 * DAY_S), "pc")  # fmt: skip
    device = seen["096e-080a-A3F1"]
    assert changed == [device]
    assert (device.watched_since, device.watched_last, device.opened_at, device.last_seen) == (
        day0 + DAY_S, day0 + 2 * DAY_S, day0 + DAY_S - 600, day0 + 3 * DAY_S
    )  # fmt: skip


def test_an_opening_on_a_reader_of_an_unmarked_item_or_later_than_the_report_is_not_trusted() -> None:
    raw = report([peripheral(False)], [reader(1, NOW - 60)])
    assert read_peripherals(decode_report("peripherals", raw), NOW)[0].opened_at == 0.0
    raw = report([peripheral(True)], [reader(1, NOW + 3600)])
    assert read_peripherals(decode_report("peripherals", raw), NOW)[0].opened_at == NOW


def test_points_and_the_api_say_plugged_idle_and_the_rule() -> None:
    result = commune_equipment("08", "02473", [TOKEN], [token(watched_days=30)], WINDOW, NOW)
    (point,) = equipment_points([result], {"02473": "north"}, NOW)
    fields = point.fields
    assert (fields["seen"], fields["unused"], fields["plugged_idle"], fields["judged_pcsc"]) == (0.0, 1.0, 1.0, 1.0)
    assert point.fields["idle_items_vi"] == "Chủ tịch (Feitian ePass2003): Cắm nhưng không được mở, 1 ngày"
    assert point.fields["idle_items_en"] == "Chủ tịch (Feitian ePass2003): Plugged in, never opened, 1 days"
    (item,) = equipment_json(result)
    assert (item["state"], item["rule"], item["opened_at"]) == (PLUGGED_IDLE, PCSC, 0.0)
