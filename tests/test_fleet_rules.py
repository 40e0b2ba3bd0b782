"""Fleet-state rules on their own: reports go through the real ingest path (wire validation
included) into FleetState over a real SQLite registry, with a controlled clock."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from collector.alerting.conditions import LINE_DEGRADED, LINE_DOWN, LINE_UNUSED, Condition
from collector.alerting.lifecycle import AlertManager
from collector.config import AlertSettings, ConfigError, FleetSettings, IngestSettings, load_config
from collector.fleet.state import FleetState
from collector.http import fleet_routes, status_page
from collector.ingest.checks import Ingestor
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import HostKey, Line, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import encode, report_topic

T0 = time.time() - 3600


class Fleet:
    def __init__(self, tmp_path: Path, **settings: Any) -> None:
        self.store = Store(tmp_path / "state.sqlite")
        self.registry = Registry(self.store, "unassigned")
        self.fleet = FleetState(
            self.store, self.registry, FleetSettings(**{"restart_grace_s": 0, **settings}), started_at=T0 - 100
        )
        self.ingestor = Ingestor(self.registry, SelfMetrics(), IngestSettings(max_age_s=86400 * 30))
        self.ingestor.observers.append(self.fleet.observe)
        self.ingestor.clock_offset = self.fleet.clock_offset  # as the service wires them

    def report(self, at: float, host: str, kind: str, body: dict[str, Any], commune: str = "02473") -> None:
        payload = encode({"v": 1, "ts": int(at), **body})
        assert self.ingestor.handle(report_topic("08", commune, host, kind), payload, at) or kind == "status"

    def conditions(self, at: float) -> dict[str, Condition]:
        return {f"{c.rule}:{c.commune}:{c.host}": c for c in self.fleet.evaluate(at).conditions}

    def state(self, at: float, commune: str = "02473") -> str:
        return next(c.line_state for c in self.fleet.evaluate(at).communes if c.commune == commune)


def probes(gateway_ok: bool, wan_ok: bool, loss: float = 0.0, rtt: float = 10.0) -> dict[str, Any]:
    return {
        "probe": [
            {"target": "gateway", "method": "ping", "scope": "gateway", "ok": float(gateway_ok), "loss_percent": 0.0},
            {"target": "province", "method": "ping", "scope": "wan", "ok": float(wan_ok), "loss_percent": loss,
             "rtt_avg_ms": rtt},
        ]
    }  # fmt: skip


def metrics(**system: float) -> dict[str, Any]:
    return {"system": {"cpu_percent": 5.0, "boot_time": 1000.0, **system}, "agent": {"interval_s": 30.0}}


def test_line_down_when_the_gateway_answers_but_the_wan_does_not_for_long_enough(tmp_path: Path) -> None:
    f = Fleet(tmp_path, line_down_probe_s=180)
    for step in range(0, 400, 30):
        f.report(T0 + step, "pc-1", "metrics", metrics())
        f.report(T0 + step, "pc-1", "probe", probes(gateway_ok=True, wan_ok=step < 60))
        if step == 210:
            assert f.state(T0 + step) == "up"  # failing for 150 s only
    assert f.state(T0 + 390) == "down"
    (down,) = [c for c in f.conditions(T0 + 390).values() if c.rule == LINE_DOWN]
    assert down.host == "-" and "wan_unreachable" in down.summary_en
    f.report(T0 + 420, "pc-1", "probe", probes(gateway_ok=True, wan_ok=True))
    assert f.state(T0 + 420) == "up"


def test_line_degraded_by_loss_or_by_a_slow_speed_test(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    for step in range(0, 150, 30):
        f.report(T0 + step, "pc-1", "metrics", metrics())
        f.report(T0 + step, "pc-1", "probe", probes(True, True, loss=20.0, rtt=40.0))
    assert f.state(T0 + 150) == "degraded"
    assert "loss 20.0%" in f.conditions(T0 + 150)[f"{LINE_DEGRADED}:02473:-"].summary_en
    (commune,) = f.fleet.evaluate(T0 + 150).communes
    assert commune.reasons_vi == ("mất gói 20.0%, độ trễ 40 ms",)

    g = Fleet(tmp_path / "speed")
    g.registry.upsert_lines([Line("C-1", "08", "02536", "VNPT", 100.0, 100.0, "2025-08-01")])
    g.report(T0, "pc-2", "metrics", metrics(), commune="02536")
    g.report(T0, "pc-2", "speedtest", {"speedtest": [{"mode": "wan", "ok": 1, "download_mbps": 30.0}]}, "02536")
    assert g.state(T0 + 10, "02536") == "degraded"
    assert "speed 30% of contract" in g.conditions(T0 + 10)[f"{LINE_DEGRADED}:02536:-"].summary_en
    (commune,) = g.fleet.evaluate(T0 + 10).communes
    assert commune.reasons_vi == ("tốc độ 30% hợp đồng",)


def test_degraded_pc_reasons_need_to_be_sustained(tmp_path: Path) -> None:
    f = Fleet(tmp_path, memory_sustained_s=600, cpu_sustained_s=900)
    for step in range(0, 1000, 30):
        f.report(T0 + step, "pc-1", "metrics", metrics(mem_used_percent=97.0, swap_used_percent=80.0, cpu_percent=99.0,
                                                       boot_time=1000.0 + (step // 300) * 5000))  # fmt: skip
        if step == 540:
            assert f.fleet.evaluate(T0 + step).hosts[0].reasons == ()  # not yet sustained; one reboot
    (host,) = f.fleet.evaluate(T0 + 990).hosts
    assert host.reasons == ("memory_pressure", "cpu_pegged", "frequent_reboots")


def test_a_commune_whose_pcs_route_through_a_4g_dongle_has_an_unused_line(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.registry.upsert_lines([Line("C-1", "08", "02473", "VNPT", 100.0, 100.0, "2025-08-01")])
    net = [{"nic": "wwan0", "default_route": 1, "rx_bytes_per_s": 5000.0, "tx_bytes_per_s": 1000.0},
           {"nic": "eth0", "default_route": 0}]  # fmt: skip
    f.report(T0, "pc-1", "metrics", {**metrics(), "net": net})
    assert f.state(T0 + 5) == "unused"
    assert "other_uplink" in f.conditions(T0 + 5)[f"{LINE_UNUSED}:02473:-"].summary_en


def test_a_line_that_carries_almost_nothing_for_a_week_is_unused_until_a_busy_day(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.registry.upsert_lines([Line("C-1", "08", "02473", "VNPT", 100.0, 100.0, "2025-08-01")])

    def day_of_traffic(at: float, bytes_per_s: float) -> None:  # one report of 30 s on the default route
        net = [{"nic": "eth0", "default_route": 1, "rx_bytes_per_s": bytes_per_s, "tx_bytes_per_s": 0.0}]
        f.report(at, "pc-1", "metrics", {**metrics(), "net": net})

    for days_ago in range(9, 0, -1):
        day_of_traffic(T0 - days_ago * 86400, 100.0)  # 3 kB a day
    day_of_traffic(T0, 100.0)
    (commune,) = f.fleet.evaluate(T0 + 5).communes
    assert commune.line_state == "unused" and commune.reasons == ("low_traffic",)
    assert commune.reasons_vi == ("lưu lượng rất thấp",)
    assert commune.traffic_mb_per_day == 0.0 and commune.last_traffic_at == 0.0

    day_of_traffic(T0 - 86400, 2_000_000.0)  # yesterday: 60 MB
    (commune,) = f.fleet.evaluate(T0 + 5).communes
    assert commune.line_state == "up"
    assert 8 < commune.traffic_mb_per_day < 9  # 60 MB over the 7 days of the window
    yesterday = datetime.fromtimestamp(T0 - 86400, ZoneInfo("Asia/Ho_Chi_Minh"))  # Vietnam's day, not the server's
    assert commune.last_traffic_at == yesterday.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def test_maintenance_window_holds_messages_and_english_text_is_available(tmp_path: Path) -> None:
    sent: list[tuple[str, str]] = []
    store = Store(tmp_path / "s.sqlite")
    now = time.time()
    local = time.localtime(now)
    minute = local.tm_hour * 60 + local.tm_min
    start, end = ((minute + shift) % 1440 for shift in (-1, 60))  # may run past midnight
    window = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    settings = AlertSettings(for_s={"host_offline": 0}, maintenance=[{"area": "yen-son", "time": window}])
    manager = AlertManager(store, settings, lambda _p: None, lambda ev: sent.extend((k, a.summary_en) for k, a in ev))
    held = Condition("host_offline", "08", "yen-son", "02473", "pc-1", "critical", "Máy pc-1", "Host pc-1 is offline")
    other = Condition(
        "host_offline", "08", "son-duong", "02536", "pc-2", "critical", "Máy pc-2", "Host pc-2 is offline"
    )
    manager.update([held, other], now)
    assert sent == [("firing", "Host pc-2 is offline")]
    assert {a.host for a in manager.alerts("firing")} == {"pc-1", "pc-2"}


def test_a_line_cut_seen_pc_by_pc_gives_one_line_down_and_no_host_offline_with_the_defaults(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    sent: list[tuple[str, str, str]] = []
    manager = AlertManager(f.store, AlertSettings(), lambda _p: None,
                           lambda events: sent.extend((k, a.rule, a.host) for k, a in events))  # fmt: skip
    phases = {"pc-1": 0, "pc-2": 10, "pc-3": 20}  # PCs report every 30 s, each at its own second
    for step in range(0, 300, 30):
        for host, phase in phases.items():
            f.report(T0 + step + phase, host, "metrics", metrics())
    cut = T0 + 300
    # each Last Will comes when that PC's keepalive (60 s, 1.5x) runs out after its last report
    wills = {60 + phase: host for host, phase in phases.items()}  # seconds after the cut
    delivered = []
    for offset in range(0, 240, 5):
        if offset in wills:
            f.report(cut + offset, wills[offset], "status", {"state": "offline"})
            delivered.append(wills[offset])
        manager.update(list(f.conditions(cut + offset).values()), cut + offset)
    assert delivered == ["pc-1", "pc-2", "pc-3"] and f.state(cut + 240) == "down"
    assert sent == [("firing", "line_down", "-")]


def test_rules_left_out_of_for_s_keep_their_default_and_unknown_rules_are_refused(tmp_path: Path) -> None:
    assert AlertSettings().for_s == {"host_offline": 90.0, "line_degraded": 300.0, "host_degraded": 600.0}
    assert AlertSettings(for_s={"line_degraded": 60}).for_s["host_offline"] == 90.0
    config = tmp_path / "collector.toml"
    config.write_text("[alerts]\nfor_s = { host_ofline = 30 }\n")
    with pytest.raises(ConfigError, match=r"alerts\.for_s: .*unknown rule.*host_ofline.*host_offline"):
        load_config(config)
    config.write_text("[alerts]\nfor_s = { host_offline = nan }\n")
    with pytest.raises(ConfigError, match=r"alerts\.for_s: .*seconds, 0 or more"):
        load_config(config)


def test_a_maintenance_window_may_run_past_midnight_and_bad_windows_are_refused(tmp_path: Path) -> None:
    sent: list[str] = []
    store = Store(tmp_path / "s.sqlite")
    settings = AlertSettings(for_s={"host_offline": 0}, maintenance=[{"time": "22:00-06:00"}])
    manager = AlertManager(
        store, settings, lambda _p: None, lambda ev: sent.extend(a.host for k, a in ev if k == "firing")
    )
    today = time.localtime()
    for hour, minute in ((5, 59), (6, 0), (12, 0), (21, 59), (22, 0), (23, 0)):
        at = time.mktime((today.tm_year, today.tm_mon, today.tm_mday, hour, minute, 0, 0, 0, -1))
        host = f"pc-{hour:02d}{minute:02d}"
        manager.update([Condition("host_offline", "08", "yen-son", "02473", host, "critical", host, host)], at)
    assert sent == ["pc-0600", "pc-1200", "pc-2159"]

    config = tmp_path / "collector.toml"
    for window, problem in (('{ time = "5:30-07:00" }', "not HH:MM-HH:MM"),
                            ('{ time = "22:00-24:00" }', "not HH:MM-HH:MM"),
                            ('{ time = "08:00-08:00" }', "starts where it ends"),
                            ('{ zone = "yen-son", time = "22:00-23:00" }', "unknown key.*zone"),
                            ('{ area = "yen-son" }', "not HH:MM-HH:MM"),
                            ('{ rule = "host_ofline", time = "22:00-23:00" }', "unknown rule 'host_ofline'"),
                            ('{ time = "22:00-23:00\\n" }', "not HH:MM-HH:MM")):  # fmt: skip
        config.write_text(f"[alerts]\nmaintenance = [{window}]\n")
        with pytest.raises(ConfigError, match=rf"alerts\.maintenance: .*window 1: .*{problem}"):
            load_config(config)


def test_a_firing_held_by_a_window_is_sent_when_the_window_ends_even_after_a_restart(tmp_path: Path) -> None:
    sent: list[tuple[str, str]] = []
    settings = AlertSettings(for_s={"host_offline": 0}, maintenance=[{"time": "22:00-06:00"}])

    def manager() -> AlertManager:
        return AlertManager(
            Store(tmp_path / "s.sqlite"), settings, lambda _p: None, lambda ev: sent.extend((k, a.host) for k, a in ev)
        )

    def at(day: int, hour: int, minute: int = 0) -> float:
        today = time.localtime()
        return time.mktime((today.tm_year, today.tm_mon, today.tm_mday + day, hour, minute, 0, 0, 0, -1))

    def down(*hosts: str) -> list[Condition]:
        return [Condition("host_offline", "08", "yen-son", "02473", h, "critical", h, h) for h in hosts]

    night = manager()
    night.update(down("pc-a", "pc-b", "pc-d"), at(0, 23))
    night.update(down("pc-a", "pc-d"), at(1, 2))  # pc-b back inside the window: nothing to say
    assert sent == []
    morning = manager()  # restarted during the night
    morning.update(down("pc-a"), at(1, 6))  # pc-d back as the window ends: its firing was never sent
    assert sent == [("firing", "pc-a")]
    morning.update(down("pc-a"), at(1, 6, 5))
    morning.update([], at(1, 7))
    assert sent == [("firing", "pc-a"), ("resolved", "pc-a")]


def offline_hosts(f: Fleet, at: float) -> set[str]:
    return {h.key.host for h in f.fleet.evaluate(at).hosts if not h.online}


def test_a_broker_restart_raises_nothing_and_a_will_still_standing_when_the_grace_ends_counts(tmp_path: Path) -> None:
    f = Fleet(tmp_path, restart_grace_s=60)
    for host in ("pc-1", "pc-2"):
        f.report(T0, host, "metrics", metrics())
    # the broker shuts down: it sends every PC's Last Will, then drops the collector
    for host in ("pc-1", "pc-2"):
        f.report(T0 + 1, host, "status", {"state": "offline", "reason": "will"})
    f.fleet.lost_broker(T0 + 1.2)
    for at in (T0 + 2, T0 + 600):  # blind: neither the Wills nor the silence count
        assert offline_hosts(f, at) == set() and f.state(at) == "up" and f.conditions(at) == {}
    f.fleet.regained_broker(T0 + 900)
    f.report(T0 + 905, "pc-1", "status", {"state": "online"})  # pc-1 comes back; pc-2 does not
    f.report(T0 + 906, "pc-1", "metrics", metrics())
    assert offline_hosts(f, T0 + 950) == set() and f.conditions(T0 + 950) == {}  # the grace after the return
    assert offline_hosts(f, T0 + 961) == {"pc-2"} and f.state(T0 + 961) == "up"


def test_wills_queued_while_the_collector_was_away_wait_for_its_grace_but_an_older_one_counts(tmp_path: Path) -> None:
    f = Fleet(tmp_path, restart_grace_s=60)
    f.report(T0, "pc-old", "metrics", metrics())
    f.report(T0 + 1, "pc-old", "status", {"state": "offline", "reason": "will"})  # died before the restart
    f.fleet.started_at = f.fleet.grace_from = T0 + 100  # the collector starts again
    f.report(T0 + 101, "pc-1", "status", {"state": "offline", "reason": "will"})  # queued while it was away
    assert offline_hosts(f, T0 + 110) == {"pc-old"}
    f.report(T0 + 120, "pc-1", "status", {"state": "online"})
    assert offline_hosts(f, T0 + 161) == {"pc-old"}


def test_backlog_reports_are_stored_but_never_make_a_pc_online_now(tmp_path: Path) -> None:
    f = Fleet(tmp_path)
    f.report(T0, "pc-1", "metrics", metrics())
    f.report(T0 + 10, "pc-1", "status", {"state": "offline", "reason": "will"})
    f.report(T0, "pc-2", "metrics", metrics())  # pc-2 just goes silent
    late = T0 + 2000
    for host in ("pc-1", "pc-2"):  # what a broker held for the collector, measured half an hour ago
        payload = encode({"v": 1, "ts": int(T0 + 5), **metrics()})
        assert f.ingestor.handle(report_topic("08", "02473", host, "metrics"), payload, late)  # stored
    assert offline_hosts(f, late + 1) == {"pc-1", "pc-2"} and f.state(late + 1) == "down"
    assert all(r.last_seen < late for r in f.registry.hosts())
    f.report(late + 2, "pc-2", "metrics", metrics())  # measured now: pc-2 is there
    assert offline_hosts(f, late + 3) == {"pc-1"}
    # pc-2 drains its spool, oldest first: backlog keeps a PC that is online now online
    for n in range(1, 5):
        payload = encode({"v": 1, "ts": int(T0 + 30 * n), **metrics()})
        assert f.ingestor.handle(report_topic("08", "02473", "pc-2", "metrics"), payload, late + 60 * n)
    assert offline_hosts(f, late + 250) == {"pc-1"}


SLOW = 400  # a PC whose clock is behind by more than [ingest] backlog_after_s (300 s)


def slow_reports(f: Fleet, host: str, start: float, end: float, skew: float = SLOW) -> None:
    """``host`` reporting live every 30 s from ``start`` to ``end``, its clock ``skew`` s behind."""
    for at in range(int(start), int(end), 30):
        payload = encode({"v": 1, "ts": int(at - skew), **metrics()})
        assert f.ingestor.handle(report_topic("08", "02473", host, "metrics"), payload, at)


def test_a_slow_clock_is_learned_and_its_live_reports_count_even_after_a_restart(tmp_path: Path) -> None:
    f = Fleet(tmp_path, clock_settle_s=600)
    slow_reports(f, "pc-1", T0, T0 + 660)  # lag 400 s, the same for 11 minutes: the clock is behind
    assert f.fleet.clock_offset(HostKey("08", "02473", "pc-1")) == SLOW
    slow_reports(f, "pc-1", T0 + 660, T0 + 700)
    assert f.registry.host(HostKey("08", "02473", "pc-1")).last_seen == int(T0) + 690  # type: ignore[union-attr]
    f.fleet.save()
    f.registry.flush()
    back = T0 + 900  # the collector was down 200 s; a new one reads the state file
    again = Fleet.__new__(Fleet)
    again.store, again.registry = f.store, Registry(f.store, "unassigned")
    again.fleet = FleetState(f.store, again.registry, FleetSettings(restart_grace_s=60), started_at=back)
    again.ingestor = Ingestor(again.registry, SelfMetrics(), IngestSettings())
    again.ingestor.observers.append(again.fleet.observe)
    again.ingestor.clock_offset = again.fleet.clock_offset
    slow_reports(again, "pc-1", back, back + 900)
    assert offline_hosts(again, back + 900) == set()
    assert not [c for c in again.conditions(back + 900).values() if c.rule == "host_offline"]


def test_a_slow_clocks_backlog_after_a_line_cut_is_still_backlog(tmp_path: Path) -> None:
    f = Fleet(tmp_path, clock_settle_s=600)
    slow_reports(f, "pc-1", T0, T0 + 700)
    cut = T0 + 700  # its line is cut: silent for half an hour, then what the broker held comes
    late = cut + 1800
    for n in range(3):  # measured during the first minutes of the cut, 400 + ~1700 s lag
        payload = encode({"v": 1, "ts": int(cut + 30 * n - SLOW), **metrics()})
        assert f.ingestor.handle(report_topic("08", "02473", "pc-1", "metrics"), payload, late + n)
    assert offline_hosts(f, late + 5) == {"pc-1"}
    assert f.registry.host(HostKey("08", "02473", "pc-1")).last_seen < cut  # type: ignore[union-attr]


def test_a_draining_backlog_never_teaches_a_clock_that_its_reports_are_fresh(tmp_path: Path) -> None:
    f = Fleet(tmp_path, clock_settle_s=60)
    key = HostKey("08", "02473", "pc-new")
    arrived = T0 + 3000
    for n in range(60):  # a spool of half an hour drained oldest first, 2 reports a second
        payload = encode({"v": 1, "ts": int(T0 + 30 * n), **metrics()})
        assert f.ingestor.handle(report_topic("08", "02473", "pc-new", "metrics"), payload, arrived + n / 2)
    assert f.fleet.clock_offset(key) == 0.0
    assert f.registry.host(key).last_seen == int(T0 + 30 * 59)  # type: ignore[union-attr]  # only its measured time


def test_a_clock_set_right_is_followed_at_once(tmp_path: Path) -> None:
    f = Fleet(tmp_path, clock_settle_s=600)
    key = HostKey("08", "02473", "pc-1")
    slow_reports(f, "pc-1", T0, T0 + 700)
    assert f.fleet.clock_offset(key) == SLOW
    slow_reports(f, "pc-1", T0 + 700, T0 + 730, skew=0)  # NTP set it right
    assert f.fleet.clock_offset(key) == 0.0


def backlog_report(f: Fleet, host: str, measured: float, arrives: float) -> None:
    """A metrics report the broker or a spool held: measured long before it arrives."""
    payload = encode({"v": 1, "ts": int(measured), **metrics()})
    assert f.ingestor.handle(report_topic("08", "02473", host, "metrics"), payload, arrives)


def test_the_restart_grace_lasts_while_a_backlog_drains_so_pcs_waiting_behind_it_stay_online(tmp_path: Path) -> None:
    # after a 30-minute outage the collector starts again with a province's backlog queued for it:
    # the PCs' live reports wait behind it, so silence is judged only once the backlog is in
    f = Fleet(tmp_path, restart_grace_s=60, grace_while_draining_max_s=600)
    for host in ("pc-1", "pc-2", "pc-gone"):
        f.report(T0, host, "metrics", metrics())
    back = T0 + 1800
    f.fleet.started_at = f.fleet.grace_from = back
    for n in range(30):  # 300 s of backlog arriving, measured during the outage
        backlog_report(f, "pc-1", T0 + 30 + 30 * n, back + 10 * n)
        if n * 10 > 60:
            assert offline_hosts(f, back + 10 * n + 1) == set(), n  # past restart_grace_s: still draining
    f.report(back + 295, "pc-1", "metrics", metrics())  # the live reports behind the backlog come in
    f.report(back + 296, "pc-2", "metrics", metrics())
    assert offline_hosts(f, back + 340) == set() and f.conditions(back + 340) == {}
    # the backlog is in: restart_grace_s after its last report, silence counts again
    assert offline_hosts(f, back + 291 + 61) == {"pc-gone"}


def test_the_grace_while_draining_ends_at_its_maximum_even_if_backlog_keeps_coming(tmp_path: Path) -> None:
    f = Fleet(tmp_path, restart_grace_s=60, grace_while_draining_max_s=300)
    for host in ("pc-1", "pc-gone"):
        f.report(T0, host, "metrics", metrics())
    back = T0 + 1800
    f.fleet.started_at = f.fleet.grace_from = back
    for n in range(40):  # 400 s of a slow spool draining
        backlog_report(f, "pc-1", T0 + 30 + 30 * n, back + 10 * n)
        f.report(back + 10 * n + 5, "pc-1", "status", {"state": "online"})  # pc-1 is there, live
    f.report(back + 390, "pc-1", "metrics", metrics())
    assert offline_hosts(f, back + 290) == set()
    assert offline_hosts(f, back + 301) == {"pc-gone"}


def test_without_the_grace_while_draining_pcs_behind_a_backlog_go_offline_after_restart_grace_s(
    tmp_path: Path,
) -> None:
    f = Fleet(tmp_path, restart_grace_s=60, grace_while_draining_max_s=0)
    for host in ("pc-1", "pc-2"):
        f.report(T0, host, "metrics", metrics())
    back = T0 + 1800
    f.fleet.started_at = f.fleet.grace_from = back
    for n in range(10):
        backlog_report(f, "pc-1", T0 + 30 + 30 * n, back + 10 * n)
    assert offline_hosts(f, back + 91) == {"pc-1", "pc-2"}  # what the 30-minute bench saw: false host_offline


def test_a_commune_with_issued_equipment_but_no_pc_or_line_is_on_the_status_page_and_in_the_api(
    tmp_path: Path,
) -> None:
    f = Fleet(tmp_path)
    f.report(T0, "pc-1", "metrics", {"system": {"cpu_percent": 5}})
    token = IssuedItem("08", "02536", "token", "ePass2003", "A3F1", "Chủ tịch", "2026-01-05")
    Equipment(f.store).replace_communes([token])
    snapshot = f.fleet.evaluate(T0 + 10)
    listed = {c["commune"]: c for c in map(fleet_routes.commune_json, snapshot.communes)}  # what /api/v1/communes lists
    assert set(listed) == {"02473", "02536"}
    assert (listed["02536"]["hosts_total"], listed["02536"]["line_state"]) == (0, "unknown")
    line_rules = (LINE_DOWN, LINE_DEGRADED, LINE_UNUSED)
    assert not [c for c in snapshot.conditions if c.commune == "02536" and c.rule in line_rules]  # no line to judge
    page = status_page.render(snapshot.communes, {}, T0 + 10, snapshot.hosts, snapshot.equipment)
    assert "Sơn Dương" in page
    (area,) = status_page.areas(snapshot.communes, {}, snapshot.equipment)
    row = next(r for r in area.rows if r.code == "02536")
    assert (row.issued, row.in_use, row.unused, row.level) == (1, 0, 1, "amber")  # never plugged in since January
