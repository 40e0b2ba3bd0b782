"""The message that states why a commune went dark, in Vietnamese and English, built from
hand-made outage records: in the held ``line_down`` resolve when the cause is decided within
``cause_wait_s``, else as a follow-up; sent by a real notifier on a real state file to a local
webhook."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from realservices import WebhookReceiver, wait_until

from collector.alerting.lifecycle import Alert
from collector.alerting.notify import Notifier
from collector.alerting.outage_notice import CauseTeller, notice, text, worth_telling
from collector.config import NotifySettings
from collector.fleet.outage_book import OutageRecord, Tally
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
START = datetime(2026, 11, 17, 6, 58, tzinfo=ZONE).timestamp()
END = START + 2 * 3600 + 14 * 60


def record(cause: str, reasons: list[str], **hosts: Tally) -> OutageRecord:
    return OutageRecord("08", "02473", "A1", START, START + 200, END, "decided", cause, 1.0, reasons, hosts=hosts)


def test_a_power_cut_says_when_the_pcs_restarted() -> None:
    boot = datetime(2026, 11, 17, 9, 12, tzinfo=ZONE).timestamp()
    cut = record("power", ["every_host_agrees"], a=Tally(boot_after=boot + 50), b=Tally(boot_after=boot))
    assert text(cut, "vi", ZONE) == (
        "Xã Yên Sơn có kết nối trở lại sau 2 giờ 14 phút; nguyên nhân: mất điện (các máy khởi động lại lúc 09:12)"
    )
    assert text(cut, "en", ZONE) == "Xã Yên Sơn is back after 2 h 14 min; cause: power cut (the PCs restarted at 09:12)"


def test_a_cut_line_counts_the_reports_measured_meanwhile() -> None:
    cut = record("line", ["every_host_agrees"], a=Tally(reports_during=40), b=Tally(reports_during=38))
    assert text(cut, "vi", ZONE).endswith("nguyên nhân: đứt đường truyền (các máy vẫn chạy và đo được 78 báo cáo "
                                          "trong lúc mất kết nối)")  # fmt: skip


def test_an_unknown_cause_says_why_it_could_not_be_told() -> None:
    told = text(record("unknown", ["agent_silent_boot_unchanged"]), "vi", ZONE)
    assert told.endswith("nguyên nhân: chưa rõ (máy vẫn chạy nhưng phần mềm giám sát không đo (bị dừng?))")


def test_an_office_closed_in_quiet_hours_is_not_told_but_one_by_clean_stop_in_office_hours_is() -> None:
    assert not worth_telling(record("office_closed", ["quiet_hours"]))
    assert worth_telling(record("office_closed", ["every_host_agrees"]))
    assert worth_telling(record("power", ["every_host_agrees"]))


def test_the_notice_is_a_commune_event_in_both_languages() -> None:
    alert = notice(record("unknown", ["mixed_evidence"]), ZONE)
    assert (alert.rule, alert.commune, alert.area, alert.host) == ("line_down", "02473", "A1", "-")
    assert "các máy cho dấu hiệu khác nhau" in alert.summary_vi and "the PCs point to" in alert.summary_en


@pytest.fixture
def notifier(tmp_path: Path) -> Iterator[tuple[Callable[[], Notifier], WebhookReceiver, Store]]:
    """Real notifiers on one real state file, sending at once to a local webhook: each call makes a
    notifier (a run of the collector), started, and stopped at the end."""
    receiver, store = WebhookReceiver(), Store(tmp_path / "state.sqlite")
    settings = NotifySettings(group_wait_s=0, webhook_urls=[receiver.url])
    made: list[Notifier] = []

    def start() -> Notifier:
        made.append(Notifier(settings, store, Registry(store, "A1"), SelfMetrics()))
        made[-1].start()
        return made[-1]

    yield start, receiver, store
    for one in made:
        one.stop()
    receiver.close()
    store.close()


Notifiers = tuple[Callable[[], Notifier], WebhookReceiver, Store]


def resolve() -> Alert:
    return Alert(7, "line_down", "08", "A1", "02473", "-", "critical", "Mất kết nối: Xã Yên Sơn",
                 "Line down: Xã Yên Sơn", "resolved", START, START + 60, END)  # fmt: skip


def events_sent(receiver: WebhookReceiver, count: int) -> list[dict[str, Any]]:
    wait_until(lambda: sum(len(m["events"]) for _at, m in receiver.received) >= count, 30, f"{count} events")
    return [e for _at, m in receiver.received for e in m["events"]]


def test_a_resolve_awaiting_its_cause_states_the_cause_decided_within_the_wait(notifier: Notifiers) -> None:
    start, receiver, store = notifier
    teller = CauseTeller(start(), lambda province, commune: (province, commune) == ("08", "02473"), 120, ZONE)
    firing = replace(resolve(), id=8, commune="02536", state="firing")
    teller.submit([("resolved", resolve()), ("firing", firing)])
    assert events_sent(receiver, 1)[0]["event"] == "firing"
    assert store.query("SELECT kind FROM outbox") == [("held",)]
    power = record("power", ["every_host_agrees"], a=Tally(boot_after=START + 3600))
    teller.tell([power], END + 30)
    sent = events_sent(receiver, 2)
    assert [(e["event"], e["commune"]) for e in sent] == [("firing", "02536"), ("resolved", "02473")]
    assert sent[1]["summary_vi"] == text(power, "vi", ZONE) and "nguyên nhân: mất điện" in sent[1]["summary_vi"]
    wait_until(lambda: store.query("SELECT count(*) FROM outbox") == [(0,)], 30, "outbox emptied")
    assert len(events_sent(receiver, 2)) == 2  # no separate cause message


def test_a_cause_decided_after_the_wait_follows_the_plain_resolve(notifier: Notifiers) -> None:
    start, receiver, _store = notifier
    teller = CauseTeller(start(), lambda _p, _c: True, 120, ZONE)
    teller.submit([("resolved", resolve())])
    teller.tell([], time.time() + 121)  # waited long enough: the resolve goes as it is
    teller.tell([record("line", ["every_host_agrees"], a=Tally(reports_during=5), b=Tally(reports_during=6))], END)
    sent = events_sent(receiver, 2)
    assert [(e["event"], e["summary_vi"]) for e in sent] == [
        ("resolved", "Mất kết nối: Xã Yên Sơn"),
        ("cause", "Xã Yên Sơn có kết nối trở lại sau 2 giờ 14 phút; nguyên nhân: đứt đường truyền (các máy vẫn chạy "
                  "và đo được 11 báo cáo trong lúc mất kết nối)"),
    ]  # fmt: skip


def test_a_resolve_not_awaiting_a_cause_goes_at_once_and_one_held_at_a_stop_goes_after_the_restart(
    notifier: Notifiers,
) -> None:
    start, receiver, store = notifier
    first = start()
    CauseTeller(first, lambda _p, _c: False, 120, ZONE).submit([("resolved", replace(resolve(), commune="02536"))])
    CauseTeller(first, lambda _p, _c: True, 120, ZONE).submit([("resolved", resolve())])
    assert events_sent(receiver, 1)[0]["commune"] == "02536"
    first.stop()  # the collector stops while the resolve waits; the next run sends it as it is
    start()
    sent = events_sent(receiver, 2)
    wait_until(lambda: store.query("SELECT count(*) FROM outbox") == [(0,)], 30, "outbox emptied")
    assert [(e["event"], e["commune"]) for e in sent] == [("resolved", "02536"), ("resolved", "02473")]
