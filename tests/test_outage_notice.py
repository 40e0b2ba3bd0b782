"""The follow-up message that states why a commune went dark, in Vietnamese and English, built
from hand-made outage records."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from collector.alerting.outage_notice import notice, text, worth_telling
from collector.fleet.outage_book import OutageRecord, Tally

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
