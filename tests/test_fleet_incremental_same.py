"""Incremental fleet evaluation (issue 32) gives exactly what a full evaluation gives.

Two identical fleets, each a real registry, ingest path and ``FleetState`` over its own SQLite
file, go through the same random steps: reports of every kind through ``Ingestor.handle`` (new
PCs among them, Last Wills, backlog reports), points dropped over a series bound, areas, lines and
issued equipment changed, PCs touched in the registry alone or forgotten, the broker lost and
regained, and time moving by random amounts, across the rules' deadlines, the restart grace and
local midnight. After each step one fleet evaluates incrementally and the other fully
(``evaluate(now, full=True)``), and the two snapshots (PCs, communes, conditions, equipment)
must be equal.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector.config import FleetSettings, IngestSettings
from collector.fleet import points as fleet_points
from collector.fleet.state import FleetState
from collector.http.console.pages import pc_rows
from collector.http.console.view import ago
from collector.ingest.checks import Accepted, Ingestor
from collector.localtime import LOCAL_ZONE
from collector.registry import units
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import HostKey, Line, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import decode_report, encode, report_topic

START = datetime(2026, 11, 20, 22, 30, tzinfo=ZoneInfo(LOCAL_ZONE)).timestamp()  # evening: steps cross midnight
COMMUNES = [c.code for c in units.communes_of("08")[:5]]
HOSTS = [f"pc-{n}" for n in range(8)]
# short limits, so that random steps of seconds to hours cross them often
SETTINGS = dict(restart_grace_s=60.0, grace_while_draining_max_s=600.0, line_down_probe_s=40.0,
                degraded_window_s=300.0, memory_sustained_s=120.0, cpu_sustained_s=150.0, disk_slow_minutes=3.0,
                reboots_per_day=1, gaps_per_day=1, unused_after_days=2, offline_after_intervals=3.0)  # fmt: skip


class Twin:
    """One of the two fleets: a state file, a registry, the ingest path and the fleet state."""

    def __init__(self) -> None:
        self.store = Store(":memory:")
        self.registry = Registry(self.store, "unassigned")
        self.equipment = Equipment(self.store)
        self.fleet = FleetState(self.store, self.registry, FleetSettings(**SETTINGS), started_at=START - 30)
        self.ingestor = Ingestor(self.registry, SelfMetrics(), IngestSettings(max_age_s=86400 * 30))
        self.ingestor.observers.append(self.fleet.observe)
        self.ingestor.clock_offset = self.fleet.clock_offset


def metrics(p: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = {
        "system": {"cpu_percent": p["cpu"], "mem_used_percent": p["mem"], "swap_used_percent": p["swap"],
                   "boot_time": p["boot"]},
        "disk": [{"mount": "/", "used_percent": p["disk"]}],
        "agent": {"spool_ok": p["spool_ok"]},
    }  # fmt: skip
    if p["interval"] is not None:
        body["agent"]["interval_s"] = p["interval"]
    if p["busy"] is not None:
        body["io"] = {"system_disk": "sda", "busy_percent": p["busy"]}
    if p["uplink"]:
        body["net"] = [{"nic": p["uplink"], "default_route": 1.0, "rx_bytes_per_s": p["bytes"], "tx_bytes_per_s": 0.0}]
    return body


def probes(p: dict[str, Any]) -> dict[str, Any]:
    return {
        "probe": [
            {"target": "gateway", "method": "ping", "scope": "gateway", "ok": float(p["gateway"]), "loss_percent": 0.0},
            {"target": "province", "method": "ping", "scope": "wan", "ok": float(p["wan"]), "loss_percent": p["loss"],
             "rtt_avg_ms": p["rtt"]},
        ]
    }  # fmt: skip


metrics_bodies = st.fixed_dictionaries({
    "cpu": st.sampled_from([5.0, 99.0]), "mem": st.sampled_from([20.0, 95.0]), "swap": st.sampled_from([10.0, 60.0]),
    "boot": st.sampled_from([1000.0, 5000.0, 9000.0]), "disk": st.sampled_from([50.0, 97.0]),
    "spool_ok": st.sampled_from([1.0, 1.0, 0.0]), "interval": st.sampled_from([None, 30.0, 60.0]),
    "busy": st.sampled_from([None, 10.0, 95.0]), "uplink": st.sampled_from(["", "eth0", "eth0", "wwan0"]),
    "bytes": st.sampled_from([0.0, 1e3, 1e6]),
}).map(metrics)  # fmt: skip
probe_bodies = st.fixed_dictionaries({
    "gateway": st.booleans(), "wan": st.booleans(), "loss": st.sampled_from([0.0, 50.0]),
    "rtt": st.sampled_from([10.0, 500.0]),
}).map(probes)  # fmt: skip
inventory_bodies = st.one_of(
    st.builds(lambda ram, cores: {"inventory": {"ram_bytes": ram, "cpu_cores": cores}},
              st.sampled_from([2.0 * 2**30, 8.0 * 2**30]), st.sampled_from([1.0, 4.0])),
    st.builds(lambda passed, bad, ioerr: {"disk_health": [{"disk": "sda", "health_passed": passed,
                                                          "reallocated_sectors": bad, "ioerr_count": ioerr}]},
              st.sampled_from([1.0, 0.0]), st.sampled_from([0.0, 500.0]), st.sampled_from([0.0, 3.0, 9.0])),
)  # fmt: skip
speedtest_bodies = st.builds(lambda mbps: {"speedtest": [{"mode": "wan", "ok": 1.0, "download_mbps": mbps}]},
                             st.sampled_from([10.0, 95.0]))  # fmt: skip
status_bodies = st.sampled_from([{"state": "online"}, {"state": "offline", "reason": "will"}])
reports = st.one_of(
    st.tuples(st.just("metrics"), metrics_bodies),
    st.tuples(st.just("probe"), probe_bodies),
    st.tuples(st.just("inventory"), inventory_bodies),
    st.tuples(st.just("speedtest"), speedtest_bodies),
    st.tuples(st.just("status"), status_bodies),
)
places = st.tuples(st.integers(0, len(COMMUNES) - 1), st.integers(0, len(HOSTS) - 1))
seconds = st.one_of(
    st.floats(0, 60), st.floats(0, 400), st.floats(0, 4 * 3600), st.sampled_from([30.0, 3600.0, 43200.0, 86400.0])
)
STEPS = {
    "report": st.tuples(st.just("report"), places, reports, st.sampled_from([0.0, 0.0, 0.0, 3600.0])),  # late: backlog
    "advance": st.tuples(st.just("advance"), seconds),
    "dropped": st.tuples(st.just("dropped"), places),
    "area": st.tuples(st.just("area"), st.integers(0, len(COMMUNES) - 1), st.sampled_from(["north", "south"])),
    "line": st.tuples(st.just("line"), st.integers(0, len(COMMUNES) - 1),
                      st.sampled_from(["2025-08-15", "2026-11-20", ""])),
    "issue": st.tuples(st.just("issue"), st.integers(0, len(COMMUNES) - 1)),
    "forget": st.tuples(st.just("forget"), places),
    "touch": st.tuples(st.just("touch"), places, st.sampled_from([None, "online", "offline"])),
    "broker": st.tuples(st.just("broker"), st.sampled_from([True, False])),  # lost, or regained (when lost)
}  # fmt: skip
WEIGHTS = {
    "report": 8,
    "advance": 8,
    "dropped": 1,
    "area": 1,
    "line": 1,
    "issue": 1,
    "forget": 1,
    "touch": 1,
    "broker": 1,
}
steps = st.sampled_from([kind for kind, weight in WEIGHTS.items() for _ in range(weight)]).flatmap(STEPS.__getitem__)


def apply(twin: Twin, step: tuple[Any, ...], now: float) -> None:
    """One step on one fleet, as the service would see it happen at ``now``."""
    kind = step[0]
    if kind == "report":
        (commune, host), (report_kind, body), late = step[1], step[2], step[3]
        payload = encode({"v": 1, "ts": now - late, **body})
        twin.ingestor.handle(report_topic("08", COMMUNES[commune], HOSTS[host], report_kind), payload, now)
    elif kind == "dropped":  # a metrics report with points over the host's series bound
        key = HostKey("08", COMMUNES[step[1][0]], HOSTS[step[1][1]])
        report = decode_report("metrics", encode({"v": 1, "ts": now, "system": {"cpu_percent": 5.0}}))
        twin.registry.touch(key, now, "online")
        twin.fleet.observe(Accepted(key, "unassigned", report, now, int(now), dropped_points=3))
    elif kind == "area":
        twin.registry.set_area(step[2], step[2].title(), [COMMUNES[step[1]]])
    elif kind == "line":
        commune = COMMUNES[step[1]]
        twin.registry.upsert_lines([Line(f"L-{commune}", "08", commune, "VNPT", 100.0, 100.0, step[2])])
    elif kind == "issue":
        commune = COMMUNES[step[1]]
        token = IssuedItem("08", commune, "token", "ePass2003", "A1", "Chủ tịch", "2026-01-05")
        twin.equipment.replace_communes([token])
    elif kind == "touch":  # the registry hears of a PC with no report for the fleet (ingest refused it later)
        twin.registry.touch(HostKey("08", COMMUNES[step[1][0]], HOSTS[step[1][1]]), now, step[2])
    elif kind == "forget":
        twin.registry.forget(HostKey("08", COMMUNES[step[1][0]], HOSTS[step[1][1]]))
    elif kind == "broker":
        if step[1]:
            twin.fleet.lost_broker(now)
        else:
            twin.fleet.regained_broker(now)


fleets = st.lists(st.tuples(places, st.tuples(st.just("metrics"), metrics_bodies)), min_size=1, max_size=12)


def plain_metrics(boot: float = 1000.0) -> tuple[str, dict[str, Any]]:
    return ("metrics", metrics({"cpu": 5.0, "mem": 20.0, "swap": 10.0, "boot": boot, "disk": 50.0, "spool_ok": 1.0,
                                "interval": 30.0, "busy": None, "uplink": "eth0", "bytes": 1e3}))  # fmt: skip


WAN_FAILING = ("probe", probes({"gateway": True, "wan": False, "loss": 0.0, "rtt": 10.0}))
ONE_PC, EVERY_LINE = [((0, 0), plain_metrics())], [True] * len(COMMUNES)
# Deadlines random steps seldom reach by themselves, every run. A reboot or a gap leaves the last
# day during the local day after the one it happened in (its midnight judged everything again).
INTO_NEXT_DAY = [("advance", 3600.0), ("advance", 3600.0), ("advance", 82800.0)]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fleet=fleets, with_line=st.lists(st.booleans(), min_size=len(COMMUNES), max_size=len(COMMUNES)),
       steps=st.lists(steps, min_size=10, max_size=60))  # fmt: skip
@example(fleet=ONE_PC, with_line=EVERY_LINE,  # the WAN failing long enough seen from a PC still online
         steps=[("advance", 31.0), ("report", (0, 0), WAN_FAILING, 0.0), ("advance", 50.0)])  # fmt: skip
@example(fleet=ONE_PC, with_line=EVERY_LINE,  # a reboot leaving the last day
         steps=[("advance", 60.0), ("report", (0, 0), plain_metrics(5000.0), 0.0), *INTO_NEXT_DAY])  # fmt: skip
@example(fleet=ONE_PC, with_line=EVERY_LINE,  # a report gap leaving the last day
         steps=[("advance", 200.0), ("report", (0, 0), plain_metrics(), 0.0), *INTO_NEXT_DAY])  # fmt: skip
@example(fleet=ONE_PC, with_line=EVERY_LINE,  # the registry hearing of a PC with no report for the fleet
         steps=[("advance", 80.0), ("touch", (0, 0), None), ("advance", 50.0)])  # fmt: skip
def test_an_incremental_evaluation_equals_a_full_one_after_every_step(
    fleet: list[tuple[tuple[int, int], tuple[str, dict[str, Any]]]], with_line: list[bool], steps: list[tuple[Any, ...]]
) -> None:
    incremental, full = Twin(), Twin()
    now = START
    for twin in (incremental, full):
        twin.registry.upsert_lines([Line(f"L-{c}", "08", c, "VNPT", 100.0, 100.0, "2025-08-15")
                                    for c, has in zip(COMMUNES, with_line, strict=True) if has])  # fmt: skip
        for place, report in fleet:
            apply(twin, ("report", place, report, 0.0), now)
    assert incremental.fleet.evaluate(now) == full.fleet.evaluate(now, full=True)
    for n, step in enumerate(steps):
        if step[0] == "advance":
            now += step[1]
        for twin in (incremental, full):
            apply(twin, step, now)
        got, want = incremental.fleet.evaluate(now), full.fleet.evaluate(now, full=True)
        assert got.hosts == want.hosts, f"step {n}: {step}"
        assert got.communes == want.communes, f"step {n}: {step}"
        assert got == want, f"step {n}: {step}"


def test_a_quiet_tick_judges_no_pc_again_and_keeps_their_statuses() -> None:
    """What makes it cheaper: PCs with nothing new keep the very status object of the tick before,
    and a report makes its PC (and no other) judged again."""
    twin = Twin()
    for host in range(3):
        apply(twin, ("report", (0, host), plain_metrics(), 0.0), START)
    first = twin.fleet.evaluate(START + 61)
    second = twin.fleet.evaluate(START + 62)
    assert all(a is b for a, b in zip(first.hosts, second.hosts, strict=True))
    apply(twin, ("report", (0, 1), plain_metrics(), 0.0), START + 63)
    third = twin.fleet.evaluate(START + 63)
    assert [a is b for a, b in zip(second.hosts, third.hosts, strict=True)] == [True, False, True]
    assert third.hosts[1].last_heard == START + 63 and third.at == START + 63


def test_the_seconds_since_a_report_are_counted_from_the_evaluation_as_before() -> None:
    """A kept status holds when the PC was last heard; the ``agent`` point and the console count
    the seconds from the snapshot's moment, as ``seconds_since_report`` was."""
    twin = Twin()
    apply(twin, ("report", (0, 0), plain_metrics(), 0.0), START)
    twin.fleet.evaluate(START + 40)
    snapshot = twin.fleet.evaluate(START + 75.25)
    (agent,) = [p for p in fleet_points.points(snapshot, {}, START + 80) if p.measurement == "agent"]
    assert agent.fields["seconds_since_report"] == 75.2 and agent.ts == int(START + 80)
    (row,) = pc_rows(snapshot.hosts, snapshot.at, "en")
    assert row.last_report == ago(75.25, "en")
