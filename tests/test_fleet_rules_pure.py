"""The fleet's rules as pure functions over hand-built facts: no SQLite, no threads, no broker.

Each test builds ``HostFacts`` as the gathering side would have left them and checks one step of
the line-state chain (down, degraded, unused, up) or one degraded-PC rule, including its edge.
"""

from __future__ import annotations

import copy
import json
import time
from collections import deque
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from starlette.requests import Request
from starlette.responses import Response

from agent.diskhealth import smart
from collector.config import FleetSettings
from collector.fleet import facts as gather
from collector.fleet import persistence, points, rules
from collector.fleet.facts import DAY_S, HostFacts, unused_window
from collector.fleet.rules import CommuneStatus, HostStatus, Member
from collector.http.fleet_routes import communes
from collector.http.paging import DEFAULT_LIMIT, Pager
from collector.http.scope import WHOLE
from collector.localtime import LOCAL_DAYS, LocalDays
from collector.registry.registry import HostKey, Line
from common.wire import Report, decode_report, encode

RECORDED = Path(__file__).parent / "recorded" / "smartctl"
NOW = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))  # local noon, far from midnight
S = FleetSettings()
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
LINE = Line("C-1", "08", "02473", "VNPT", 100.0, 100.0, "2025-08-01")


def pc(online: bool = True, **facts: object) -> Member:
    found = HostFacts(last_report=NOW - 10, **facts)  # type: ignore[arg-type]
    return Member(online, False, found)


def samples(loss: float, rtt: float, n: int = 3) -> deque[tuple[float, float, float]]:
    return deque((NOW - 30 * i, loss, rtt) for i in range(n))


def busy_days(mb_per_day: float, days: int = 8) -> dict[str, float]:
    return {LOCAL_DAYS.day(NOW - d * DAY_S): mb_per_day * 1e6 for d in range(0, days + 1)}


def verdict(members: list[Member], line: Line | None = LINE) -> rules.LineVerdict:
    return rules.line_verdict(members, line, S, NOW)


# ---- the line-state chain ----


def test_a_line_with_no_pc_ever_is_unused_for_the_days_since_it_was_installed() -> None:
    got = verdict([])
    assert (got.state, got.reasons) == ("unused", ("no_agent",))
    assert got.days_unused == (NOW - time.mktime(time.strptime("2025-08-01", "%Y-%m-%d"))) // DAY_S


def test_a_line_whose_pcs_are_all_offline_is_down_before_anything_else() -> None:
    got = verdict([pc(False, samples=samples(50.0, 900.0)), pc(False, uplink="wwan0")])
    assert (got.state, got.reasons, got.reasons_vi) == ("down", ("all_hosts_offline",), ())


def test_the_wan_unreachable_from_a_pc_whose_gateway_answers_is_down_only_after_line_down_probe_s() -> None:
    failing_since = NOW - S.line_down_probe_s
    assert verdict([pc(probe_down_since=failing_since), pc()]).reasons == ("wan_unreachable",)
    assert verdict([pc(probe_down_since=failing_since + 1)]).state == "up"


def test_an_offline_pc_that_last_saw_the_wan_fail_does_not_make_the_line_down() -> None:
    assert verdict([pc(False, probe_down_since=NOW - 3600), pc()]).state == "up"


def test_loss_above_the_limit_over_three_samples_degrades_the_line_with_the_measure_in_both_languages() -> None:
    got = verdict([pc(samples=samples(S.loss_percent_max + 1, 40.0))])
    assert got.state == "degraded"
    assert got.reasons == ("loss 6.0%, rtt 40 ms",) and got.reasons_vi == ("mất gói 6.0%, độ trễ 40 ms",)


def test_round_trip_time_above_the_limit_degrades_the_line_and_loss_at_the_limit_does_not() -> None:
    assert verdict([pc(samples=samples(S.loss_percent_max, S.rtt_ms_max + 1))]).state == "degraded"
    assert verdict([pc(samples=samples(S.loss_percent_max, S.rtt_ms_max))]).state == "up"


def test_fewer_than_three_samples_never_degrade_a_line() -> None:
    assert verdict([pc(samples=samples(90.0, 900.0, n=2))]).state == "up"


def test_samples_are_pooled_over_the_online_pcs_of_the_commune() -> None:
    one_each = [pc(samples=samples(18.0, 10.0, n=1)) for _ in range(3)]
    assert verdict(one_each).state == "degraded"


def test_a_speed_test_below_the_contract_share_degrades_the_line() -> None:
    got = verdict([pc(speedtest_percent=S.speedtest_min_percent - 1)])
    assert got.reasons == ("speed 49% of contract",) and got.reasons_vi == ("tốc độ 49% hợp đồng",)
    assert verdict([pc(speedtest_percent=S.speedtest_min_percent)]).state == "up"


def test_a_line_the_pcs_bypass_through_a_4g_dongle_is_unused_even_when_degraded() -> None:
    got = verdict([pc(uplink="wwan0", samples=samples(20.0, 40.0))])
    assert (got.state, got.reasons, got.days_unused) == ("unused", ("other_uplink",), 0.0)
    assert verdict([pc(uplink="wwan0"), pc(uplink="eth0")]).state == "up"  # one PC uses the line


def test_a_week_of_whole_days_below_the_threshold_makes_a_line_unused_for_that_many_days() -> None:
    quiet = busy_days(S.unused_below_mb_per_day / 2)
    got = verdict([pc(traffic_by_day=quiet)])
    assert (got.state, got.reasons, got.days_unused) == ("unused", ("low_traffic",), float(S.unused_after_days))


def test_one_busy_day_in_the_window_or_one_day_without_data_keeps_the_line_up() -> None:
    quiet = busy_days(1.0)
    busy = {**quiet, unused_window(NOW, S.unused_after_days)[-1]: S.unused_below_mb_per_day * 1e6}
    assert verdict([pc(traffic_by_day=busy)]).state == "up"
    missing = {d: v for d, v in quiet.items() if d != unused_window(NOW, S.unused_after_days)[2]}
    assert verdict([pc(traffic_by_day=missing)]).state == "up"


def test_traffic_of_the_pcs_is_summed_per_day_before_the_unused_threshold() -> None:
    half = busy_days(S.unused_below_mb_per_day / 2 + 1)
    assert verdict([pc(traffic_by_day=half)]).state == "unused"
    assert verdict([pc(traffic_by_day=half), pc(traffic_by_day=dict(half))]).state == "up"


def test_without_a_registered_line_a_commune_is_never_unused() -> None:
    assert verdict([pc(uplink="wwan0", traffic_by_day=busy_days(0.0))], line=None).state == "up"


def test_traffic_figures_are_the_mean_of_the_window_days_with_data_and_the_last_busy_day() -> None:
    yesterday, before = unused_window(NOW, 2)
    per_day = {yesterday: 60e6, before: 20e6, LOCAL_DAYS.day(NOW): 500e6}  # today is not a whole day yet
    mean_mb, last = rules.traffic_figures(per_day, S, NOW)
    assert mean_mb == 40.0
    assert last == datetime.strptime(LOCAL_DAYS.day(NOW), "%Y-%m-%d").replace(tzinfo=ZONE).timestamp()


# ---- degraded PCs, one rule each ----


def reasons(**facts: object) -> tuple[str, ...]:
    return rules.degraded_reasons(HostFacts(**facts), S, NOW)  # type: ignore[arg-type]


def test_a_disk_above_the_limit_is_disk_full_and_one_at_it_is_not() -> None:
    assert reasons(disk_percent=S.disk_full_percent + 0.1) == ("disk_full",)
    assert reasons(disk_percent=S.disk_full_percent) == ()


def test_memory_pressure_and_a_pegged_cpu_count_only_once_sustained() -> None:
    assert reasons(mem_high_since=NOW - S.memory_sustained_s) == ("memory_pressure",)
    assert reasons(mem_high_since=NOW - S.memory_sustained_s + 1) == ()
    assert reasons(cpu_high_since=NOW - S.cpu_sustained_s) == ("cpu_pegged",)
    assert reasons(cpu_high_since=NOW - S.cpu_sustained_s + 1) == ()


def test_temperature_is_judged_against_the_sensors_own_limit_before_the_setting() -> None:
    assert reasons(temp_c=70.0, temp_limit_c=70.0) == ("temperature_high",)
    assert reasons(temp_c=S.temperature_c - 1) == ()
    assert reasons(temp_c=S.temperature_c) == ("temperature_high",)


def test_reboots_and_report_gaps_count_over_the_last_day_only() -> None:
    recent = [NOW - 60 * i for i in range(S.reboots_per_day)]
    assert reasons(reboots=recent) == ("frequent_reboots",)
    assert reasons(reboots=[*recent[:-1], NOW - DAY_S - 1]) == ()
    gaps = [NOW - 600 * i for i in range(S.gaps_per_day)]
    assert reasons(gaps=gaps) == ("report_gaps",)
    assert reasons(gaps=gaps[:-1]) == ()


def test_old_hardware_is_a_reason_and_unknown_hardware_is_not_old() -> None:
    assert reasons(ram_bytes=2 * 2**30, cpu_cores=4.0) == ("old_hardware",)
    assert reasons(ram_bytes=8 * 2**30, cpu_cores=1.0) == ("old_hardware",)
    assert reasons(ram_bytes=0.0, cpu_cores=0.0) == ()


def test_a_disk_is_failing_on_its_own_failed_verdict_or_on_bad_sectors_above_the_setting() -> None:
    assert reasons(disk_verdict_failed=True) == ("disk_failing",)
    assert reasons(disk_bad_sectors=S.disk_bad_sectors) == ()
    assert reasons(disk_bad_sectors=S.disk_bad_sectors + 1) == ("disk_failing",)
    assert reasons(disk_ioerr_rising=True) == ("disk_failing",)
    strict = FleetSettings(disk_bad_sectors=0)
    assert rules.degraded_reasons(HostFacts(disk_bad_sectors=1.0), strict, NOW) == ("disk_failing",)


def test_the_system_disk_is_slow_only_once_busy_for_disk_slow_minutes() -> None:
    assert reasons(disk_busy_since=NOW - S.disk_slow_minutes * 60) == ("disk_slow",)
    assert reasons(disk_busy_since=NOW - S.disk_slow_minutes * 60 + 1) == ()


def health_report(*disks: dict[str, float | str]) -> Report:
    return Report("inventory", NOW, {"disk_health": list(disks)})


def test_a_recorded_failing_hdd_sent_by_the_agent_makes_its_pc_disk_failing() -> None:
    """The agent's own parser on a real smartctl output (tests/recorded/smartctl/), through the
    wire contract, into the facts: ``disk_errors`` read a field no agent sent and never fired."""
    doc = json.loads((RECORDED / "hdd-hitachi-hds721050dle630-failing.json").read_text())
    item: dict[str, float | str] = {"disk": "sda", **smart.disk_fields(doc)}
    report = decode_report("inventory", encode({"v": 1, "ts": NOW, "disk_health": [item]}))
    facts = HostFacts()
    gather.gather_disk_health(facts, gather.read_disk_health(report))  # type: ignore[arg-type]
    assert (facts.disk_verdict_failed, facts.disk_bad_sectors) == (True, 1983.0)
    assert rules.degraded_reasons(facts, S, NOW) == ("disk_failing",)
    passed = {**item, "health_passed": 1.0, "reallocated_sectors": 1.0, "pending_sectors": 0.0}
    gather.gather_disk_health(facts, gather.read_disk_health(health_report(passed)))  # type: ignore[arg-type]
    assert rules.degraded_reasons(facts, S, NOW) == ()


def test_io_errors_rise_only_above_the_count_before_and_never_from_a_reboot_or_a_new_disk() -> None:
    facts = HostFacts()
    rising = []
    for sda, sdb in [(5.0, None), (5.0, None), (7.0, None), (7.0, None), (0.0, None), (1.0, 9.0)]:
        disks: list[dict[str, float | str]] = [{"disk": "sda", "ioerr_count": sda}]
        if sdb is not None:
            disks.append({"disk": "sdb", "ioerr_count": sdb})
        gather.gather_disk_health(facts, gather.read_disk_health(health_report(*disks)))  # type: ignore[arg-type]
        rising.append(facts.disk_ioerr_rising)
    assert rising == [False, False, True, False, False, True]  # the last: sda 0 -> 1; sdb is new


def test_an_agent_that_sends_no_disk_health_or_no_io_is_not_judged_on_them() -> None:
    assert gather.read_disk_health(Report("inventory", NOW, {"inventory": [{"ram_bytes": 8e9}]})) is None
    assert gather.read_inventory(health_report({"disk": "sda"})) is None
    facts = HostFacts(disk_busy_since=NOW - 3600)
    gather.gather_metrics(
        facts, gather.read_metrics(Report("metrics", NOW, {"system": [{"cpu_percent": 5.0}]})), NOW, S
    )
    assert facts.disk_busy_since == 0.0 and rules.degraded_reasons(facts, S, NOW) == ()


def test_busy_time_counts_from_the_first_report_above_the_share_and_ends_with_the_first_below() -> None:
    def busy(facts: HostFacts, percent: float, at: float) -> None:
        reading = gather.read_metrics(Report("metrics", at, {"io": [{"busy_percent": percent}]}))
        gather.gather_metrics(facts, reading, at, S)

    facts = HostFacts()
    busy(facts, S.disk_busy_percent, NOW - 700)
    assert facts.disk_busy_since == 0.0  # at the share is not above it
    busy(facts, S.disk_busy_percent + 0.1, NOW - 600)
    busy(facts, 100.0, NOW - 30)
    assert facts.disk_busy_since == NOW - 600 and rules.degraded_reasons(facts, S, NOW) == ("disk_slow",)
    busy(facts, 12.0, NOW)
    assert facts.disk_busy_since == 0.0


def test_an_agent_whose_spool_cannot_be_written_is_spool_failed() -> None:
    assert reasons(spool_failed=True) == ("spool_failed",)
    failing = Report("metrics", NOW, {"agent": [{"spool_ok": 0.0, "spool_error": "disk_full"}]})
    assert gather.read_metrics(failing).spool_failed
    working = Report("metrics", NOW, {"agent": [{"spool_ok": 1.0}]})
    assert not gather.read_metrics(working).spool_failed
    assert not gather.read_metrics(Report("metrics", NOW, {"agent": [{"cycle_ms": 5.0}]})).spool_failed  # older agents


def test_several_reasons_come_in_the_vocabulary_order() -> None:
    got = reasons(ram_bytes=2**30, disk_percent=99.0, reboots=[NOW] * 3, mem_high_since=NOW - 3600)
    assert got == ("disk_full", "memory_pressure", "frequent_reboots", "old_hardware")


def test_the_rules_do_not_change_the_facts_they_judge() -> None:
    facts = HostFacts(reboots=[NOW - 2 * DAY_S, NOW], gaps=[NOW - 2 * DAY_S], samples=samples(20.0, 40.0),
                      traffic_by_day=busy_days(1.0), uplink="eth0", probe_down_since=NOW - 600)  # fmt: skip
    before = copy.deepcopy(facts)
    rules.degraded_reasons(facts, S, NOW)
    rules.line_verdict([Member(True, False, facts)], LINE, S, NOW)
    rules.line_verdict([Member(False, False, facts)], LINE, S, NOW)
    assert facts == before


# ---- offline ----


def test_a_pc_is_offline_after_its_last_will_or_a_silence_of_three_intervals_but_not_during_the_grace() -> None:
    quiet = HostFacts(last_report=NOW - 3 * 30 - 1, interval_s=30.0)
    assert rules.is_offline(quiet, 0.0, "online", False, S, NOW)
    assert not rules.is_offline(HostFacts(last_report=NOW - 90, interval_s=30.0), 0.0, "online", False, S, NOW)
    will = HostFacts(last_report=NOW, offline_will=True)
    assert rules.is_offline(will, NOW, "online", False, S, NOW)
    assert not rules.is_offline(quiet, 0.0, "online", True, S, NOW)  # silence does not count in the grace
    assert not rules.is_offline(will, NOW, "online", True, S, NOW)
    assert rules.is_offline(will, NOW, "offline", True, S, NOW)


# ---- conditions and their words ----

KEY = HostKey("08", "02473", "pc-1")


def test_a_cut_line_is_one_line_down_condition_and_no_host_offline() -> None:
    down = CommuneStatus("08", "yen-son", "02473", 1, 0, 0, "down", 100.0, 0.0, ("all_hosts_offline",),
                         reasons_vi=("mọi máy mất kết nối",))  # fmt: skip
    (line,) = rules.conditions([HostStatus(KEY, "yen-son", False, NOW - 400.0, (), NOW)], [down])
    assert (line.rule, line.host, line.severity) == ("line_down", "-", "critical")
    assert line.summary_vi == "Mất kết nối đường truyền tại Xã Yên Sơn (mọi máy mất kết nối)"
    assert line.summary_en == "Line down at Xã Yên Sơn: every PC is offline (all_hosts_offline)"


def test_a_degraded_pc_is_described_in_words_in_both_languages_and_its_codes_go_in_the_details() -> None:
    host = HostStatus(KEY, "yen-son", True, NOW - 5.0, ("disk_full", "old_hardware"), 0.0)
    up = CommuneStatus("08", "yen-son", "02473", 1, 1, 1, "up", 100.0, 0.0)
    (degraded,) = rules.conditions([host], [up])
    assert degraded.summary_vi == "Máy pc-1 tại Xã Yên Sơn: ổ đĩa gần đầy, phần cứng cũ"
    assert degraded.summary_en == "Host pc-1 at Xã Yên Sơn: disk nearly full, old hardware"
    assert degraded.details == (("reasons", "disk_full,old_hardware"),)


def test_an_unofficial_commune_code_is_shown_as_the_code() -> None:
    host = HostStatus(HostKey("08", "99999", "pc-9"), "unassigned", False, NOW - 400.0, (), NOW)
    (offline,) = rules.conditions([host], [CommuneStatus("08", "unassigned", "99999", 2, 1, 0, "up", 0.0, 0.0)])
    assert offline.summary_en == "Host pc-9 at 99999 is offline"


# ---- gathering: typed readings, pruning on the gathering side ----


def test_a_metrics_report_is_read_once_into_typed_values() -> None:
    report = Report("metrics", NOW, {
        "system": [{"cpu_percent": 12.0, "mem_used_percent": 40.0, "boot_time": 1000.0}],
        "disk": [{"mount": "/", "used_percent": 50.0}, {"mount": "/data", "used_percent": 93.0}],
        "sensors": [{"sensor": "cpu", "temp_c": 60.0, "temp_high_c": 80.0}, {"sensor": "nvme", "temp_c": 70.0}],
        "net": [{"nic": "eth0", "default_route": 1.0, "rx_bytes_per_s": 300.0, "tx_bytes_per_s": 100.0},
                {"nic": "wlan0", "default_route": 0.0, "rx_bytes_per_s": 9e6}],
        "agent": [{"interval_s": 60.0}],
    })  # fmt: skip
    got = gather.read_metrics(report)
    assert (got.interval_s, got.cpu_percent, got.mem_percent, got.swap_percent) == (60.0, 12.0, 40.0, 0.0)
    assert (got.disk_percent, got.temp_c, got.temp_limit_c) == (93.0, 70.0, 80.0)
    assert (got.uplink, got.uplink_bytes_per_s) == ("eth0", 400.0)
    assert gather.read_metrics(Report("metrics", NOW, {})).interval_s is None


def test_gathering_drops_reboots_and_gaps_older_than_a_day() -> None:
    facts = HostFacts(interval_s=30.0, last_report=NOW - 200, boot_time=1000.0,
                      reboots=[NOW - DAY_S - 5, NOW - 100], gaps=[NOW - DAY_S - 5])  # fmt: skip
    gather.gather_report(facts, NOW)
    reading = gather.read_metrics(Report("metrics", NOW, {"system": [{"boot_time": 9000.0}]}))
    gather.gather_metrics(facts, reading, NOW, S)
    assert facts.gaps == [NOW] and facts.reboots == [NOW - 100, NOW]


def test_a_failing_wan_counts_from_the_first_probe_round_that_saw_it_and_a_success_clears_it() -> None:
    def round_(wan_ok: float | None) -> list[gather.ProbeResult]:
        wan: dict[str, float | str] = {"target": "province", "scope": "wan", "method": "ping", "loss_percent": 100.0}
        if wan_ok is not None:
            wan["ok"] = wan_ok
        items: list[dict[str, float | str]] = [{"target": "gateway", "scope": "gateway", "ok": 1.0}, wan]
        return gather.read_probes(Report("probe", NOW, {"probe": items}))

    facts = HostFacts()
    gather.gather_probes(facts, round_(0.0), NOW - 60, S)
    gather.gather_probes(facts, round_(0.0), NOW, S)
    assert facts.probe_down_since == NOW - 60
    gather.gather_probes(facts, round_(None), NOW, S)  # a probe that did not say is not a failure
    assert facts.probe_down_since == 0.0


def test_facts_survive_the_state_file_round_trip() -> None:
    facts = HostFacts(reboots=[NOW], samples=samples(1.0, 2.0), traffic_by_day={"2026-11-19": 5.0}, uplink="eth0")
    (row,) = persistence.rows([(KEY, facts)])
    assert persistence.from_json(json.loads(row[1])) == facts


def test_the_api_lists_communes_worst_line_first_then_most_degraded_pcs() -> None:
    def commune(code: str, state: str, degraded: int = 0) -> CommuneStatus:
        return CommuneStatus("08", "a", code, 3, 3, degraded, state, 100.0, 0.0)

    found = [commune("00001", "up", 2), commune("00002", "unknown"), commune("00003", "unused"),
             commune("00004", "degraded"), commune("00005", "down"), commune("00006", "up", 3),
             commune("00007", "up")]  # fmt: skip
    request = Request({"type": "http", "method": "GET", "path": "/api/v1/communes", "query_string": b"", "headers": []})
    listed = communes(rules.Snapshot(communes=found), Pager(request, Response(), DEFAULT_LIMIT, None, WHOLE))
    assert [c["commune"] for c in listed] == ["00005", "00004", "00003", "00002", "00006", "00001", "00007"]
    response, asked = Response(), Request({**request.scope, "query_string": b"limit=4"})
    first = communes(rules.Snapshot(communes=found), Pager(asked, response, 4, None, WHOLE))
    assert [c["commune"] for c in first] == ["00005", "00004", "00003", "00002"]
    assert response.headers["Link"].startswith("</api/v1/communes?limit=4&cursor=")  # the rest, in the same order


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Europe/Berlin"])  # and one with daylight saving
def test_local_day_is_the_same_with_the_day_kept_as_without(zone: str) -> None:
    """``LocalDays`` keeps the last day asked with its bounds: it must give what a plain conversion
    gives for any moment, including across midnight and back in time."""
    days = LocalDays(ZoneInfo(zone))
    moments = [
        NOW + step * 1799.5 for step in range(-20_000, 20_000)
    ]  # over a year: daylight saving too + [NOW, NOW - 3 * DAY_S, NOW + 0.001]
    for at in moments:
        assert days.day(at) == datetime.fromtimestamp(at, ZoneInfo(zone)).strftime("%Y-%m-%d")


def test_a_day_of_traffic_is_vietnams_day_on_a_collector_whose_clock_is_in_utc(monkeypatch: pytest.MonkeyPatch) -> None:
    """06:30 and 08:00 in Vietnam are 23:30 and 01:00 UTC: one day of traffic, the commune's last
    traffic day is that date, and the unused rule's whole days start at Vietnam's midnight."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        morning = datetime(2026, 11, 20, 6, 30, tzinfo=ZONE).timestamp()
        facts = HostFacts()
        for at in (morning, morning + 5400):
            reading = gather.MetricsReading(30.0, 5.0, 20.0, 0.0, morning - 600, 40.0, 0.0, 0.0, "eth0", 1e6)
            gather.gather_metrics(facts, reading, at, S)
        assert facts.traffic_by_day == {"2026-11-20": 2 * 30 * 1e6}
        _mean, last = rules.traffic_figures(facts.traffic_by_day, S, morning + 86400)
        assert last == datetime(2026, 11, 20, tzinfo=ZONE).timestamp()
        status = CommuneStatus("08", "KV01", "02473", 1, 1, 0, "up", 100.0, 0.0, last_traffic_at=morning)
        assert points.commune_point(status, {}, int(morning)).fields["last_traffic_day"] == "2026-11-20"
        assert unused_window(morning + 86400, 2) == ["2026-11-20", "2026-11-19"]
    finally:
        monkeypatch.undo()
        time.tzset()
