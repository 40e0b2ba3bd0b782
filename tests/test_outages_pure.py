"""An outage's cause as pure functions over hand-built evidence: no broker, no SQLite, no clock.

Each test builds the evidence the PCs of a commune would leave once back (spooled reports, boot
times, probes, how their agent went offline) and checks the verdict and why, including where the
rules must refuse to guess.
"""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from collector import vocabulary as words
from collector.fleet.outages import (
    CAUSES,
    HostEvidence,
    QuietWindows,
    decide,
    evidence_rows,
    finding,
    lies_in_quiet_time,
)
from collector.localtime import office_hours

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
OFFICE = office_hours("Asia/Ho_Chi_Minh", ["07:30-11:30", "13:30-17:00"], [1, 2, 3, 4, 5], [date(2026, 11, 20)])
QUIET = QuietWindows(OFFICE)


def at(day: int, hour: int, minute: int = 0) -> float:
    """Local time in the office's zone, November 2026 (the 16th is a Monday; the 20th a holiday)."""
    return datetime(2026, 11, day, hour, minute, tzinfo=ZONE).timestamp()


START, END = at(17, 9), at(17, 11, 14)  # a Tuesday morning, in office hours
BOOT = at(17, 7, 25)


def running(host: str, probes: bool = True) -> HostEvidence:
    """A PC that ran through the outage: its spool delivered what it measured meanwhile."""
    return HostEvidence(host, True, BOOT, BOOT + 2, 260, 130 if probes else 0, 130 if probes else 0, "will")


def rebooted(host: str, boot_after: float = START + 600) -> HostEvidence:
    return HostEvidence(host, True, BOOT, boot_after, 0, 0, 0, "will")


def test_pcs_that_measured_through_the_outage_with_the_gateway_up_point_to_the_line() -> None:
    verdict = decide([running("pc1"), running("pc2")], START, END, QUIET)
    assert verdict.cause == "line"
    assert verdict.confidence == 1.0
    assert verdict.hosts[0].reasons == ("measured_during_outage", "gateway_ok_outside_failed", "uptime_continuous")


def test_a_line_verdict_without_probe_evidence_is_given_with_less_confidence() -> None:
    verdict = decide([running("pc1"), running("pc2", probes=False)], START, END, QUIET)
    assert (verdict.cause, verdict.confidence) == ("line", 0.75)
    assert not verdict.hosts[1].strong


def test_every_pc_booting_after_the_start_with_nothing_measured_is_a_power_cut() -> None:
    verdict = decide([rebooted("pc1"), rebooted("pc2", START + 700)], START, END, QUIET)
    assert (verdict.cause, verdict.confidence) == ("power", 1.0)
    assert verdict.hosts[0].reasons == ("no_report_during_outage", "booted_after_outage_start")


def test_agents_killed_and_restarted_on_running_pcs_are_unknown_not_power() -> None:
    """SIGKILL then restart: a Last Will, nothing measured, the same boot time."""
    killed = [HostEvidence(h, True, BOOT, BOOT + 1, 0, 0, 0, "will") for h in ("pc1", "pc2")]
    verdict = decide(killed, START, END, QUIET)
    assert verdict.cause == "unknown"
    assert verdict.confidence == 0.0
    assert verdict.reasons == ("agent_silent_boot_unchanged",)


def test_a_clean_stop_of_every_pc_is_an_office_closed() -> None:
    stopped = [HostEvidence(h, True, BOOT, at(18, 7, 31), 0, 0, 0, "stop") for h in ("pc1", "pc2")]
    verdict = decide(stopped, at(17, 17, 5), at(18, 7, 35), QUIET)
    assert verdict.cause == "office_closed"
    assert verdict.hosts[0].reasons == ("clean_stop", "booted_after_outage_start")


def test_pcs_switched_off_overnight_without_a_clean_stop_are_an_office_closed_not_a_power_cut() -> None:
    night = [rebooted("pc1", at(18, 7, 31)), rebooted("pc2", at(18, 7, 40))]
    verdict = decide(night, at(17, 17, 5), at(18, 7, 45), QUIET)
    assert verdict.cause == "office_closed"
    assert verdict.reasons == ("quiet_hours",)


def test_the_same_reboots_in_office_hours_stay_a_power_cut() -> None:
    verdict = decide([rebooted("pc1"), rebooted("pc2")], START, END, QUIET)
    assert verdict.cause == "power"


def test_a_single_pc_is_never_enough_to_tell() -> None:
    verdict = decide([running("pc1")], START, END, QUIET)
    assert (verdict.cause, verdict.reasons) == ("unknown", ("too_few_hosts",))
    assert verdict.hosts[0].points_to == "line"  # its own evidence is still listed


def test_a_partial_power_cut_is_unknown_with_each_pcs_evidence() -> None:
    verdict = decide([running("pc1"), rebooted("pc2")], START, END, QUIET)
    assert (verdict.cause, verdict.reasons) == ("unknown", ("mixed_evidence",))
    assert [f.points_to for f in verdict.hosts] == ["line", "power"]


def test_a_pc_without_a_spool_and_the_same_boot_time_says_nothing() -> None:
    silent = HostEvidence("pc2", False, BOOT, BOOT, 0)
    assert finding(silent, START, END).reasons == ("no_spool",)
    assert decide([running("pc1"), silent], START, END, QUIET).cause == "unknown"


def test_a_pc_not_yet_back_with_a_boot_time_is_unknown() -> None:
    assert finding(HostEvidence("pc1", True, BOOT, 0.0, 0), START, END).reasons == ("no_boot_time",)


def test_a_reboot_long_before_the_outage_is_not_read_as_a_power_cut() -> None:
    early = HostEvidence("pc1", True, BOOT - 86400, BOOT, 0)
    assert finding(early, START, END).points_to == "unknown"


def test_an_outage_overnight_or_on_a_holiday_lies_in_quiet_time_and_one_in_office_hours_does_not() -> None:
    assert lies_in_quiet_time(at(17, 17, 5), at(18, 7, 25), QUIET)
    assert lies_in_quiet_time(at(20, 8), at(20, 16), QUIET)  # the 20th is a holiday
    assert lies_in_quiet_time(at(21, 9), at(22, 15), QUIET)  # a weekend
    assert not lies_in_quiet_time(START, END, QUIET)
    assert not lies_in_quiet_time(at(17, 17, 5), at(18, 7, 31), QUIET)  # reaches 07:30


def test_a_maintenance_window_past_midnight_makes_an_outage_quiet() -> None:
    quiet = QuietWindows(None, ((22 * 60, 5 * 60),), ZONE)
    assert lies_in_quiet_time(at(17, 23), at(18, 4, 30), quiet)
    assert not lies_in_quiet_time(at(17, 21), at(18, 4, 30), quiet)


def test_every_cause_and_reason_has_words_in_both_languages() -> None:
    assert set(words.OUTAGE_CAUSES) == set(CAUSES)
    verdicts = [
        decide([running("a"), running("b", probes=False)], START, END, QUIET),
        decide([rebooted("a"), HostEvidence("b", False, BOOT, BOOT, 0)], START, END, QUIET),
        decide([running("a")], START, END, QUIET),
        decide(
            [rebooted("a", at(18, 7)), HostEvidence("b", True, BOOT, at(18, 7), 0, 0, 0, "stop")],
            at(17, 17, 5),
            at(18, 7, 10),
            QUIET,
        ),
    ]
    codes = {r for v in verdicts for r in v.reasons} | {r for v in verdicts for f in v.hosts for r in f.reasons}
    assert codes <= set(words.OUTAGE_REASONS)
    assert all(w.vi and w.en for w in words.OUTAGE_REASONS.values())


def test_the_evidence_rows_list_every_pc_for_the_record() -> None:
    rows = evidence_rows(decide([running("pc1"), rebooted("pc2")], START, END, QUIET))
    assert [r["host"] for r in rows] == ["pc1", "pc2"]
    assert rows[1] == {"host": "pc2", "points_to": "power", "strong": True,
                       "reasons": ["no_report_during_outage", "booted_after_outage_start"]}  # fmt: skip


def test_a_short_clean_stop_at_night_without_a_reboot_lies_in_quiet_time() -> None:
    stopped = [HostEvidence(h, True, BOOT, BOOT, 0, 0, 0, "stop") for h in ("pc1", "pc2")]
    verdict = decide(stopped, at(17, 22), at(17, 22, 10), QUIET)
    assert (verdict.cause, verdict.reasons) == ("office_closed", ("quiet_hours",))
