"""A province that survives its server going away, at a small size: 100 virtual PCs
(``commune-sim``) and real agents with their spools, on a broker, InfluxDB and
collector of their own, with short thresholds (reports every 1-2 s, a 20 s restart grace, a
report measured 5 s before it came is backlog). ``bench/recovery.py`` measures the same at 3,700.

- A broker restart: every PC is back, and the collector raises no ``host_offline`` or
  ``line_down`` (the broker's shutdown sends every Last Will; the collector's own reconnect gets
  its restart grace).
- The whole server down (collector, broker, InfluxDB), then back: every agent's spool drains,
  nothing is lost (counted), no false alert, and a commune whose line is cut during the drain
  gives its one ``line_down``. The virtual PCs keep what they measure meanwhile in their spools
  and send it when back: every one's reports from the outage are stored, and none is lost
  (counted per PC from the simulator's ``--counts-out``).
"""

from __future__ import annotations

import json
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import Agent, Collector, Influxd, Mosquitto, Process, wait_until
from stack import Stack, stored_seconds
from test_faults import cycles, outbox, spooled_seconds, unaccounted

from collector.registry import units

GRACE_S = 20
AGENTS = {"pc-a1": "02473", "pc-a2": "02473", "pc-b1": "02536", "pc-c1": "02215"}  # pc-c1's line gets cut
VIRTUAL_COMMUNES = [c.code for c in units.communes_of("08") if c.code not in AGENTS.values()][:25]
HOSTS = len(AGENTS) + 4 * len(VIRTUAL_COMMUNES)  # 4 virtual PCs in each of 25 communes


def virtual_reports(influxd: Influxd, database: str, where: str = "") -> dict[str, int]:
    """The virtual PCs' metrics reports stored (``pc-01``.. ``pc-04``; the real agents are ``pc-a1``..)."""
    rows = influxd.query(f"SELECT count(cpu_percent) FROM system WHERE host =~ /^pc-0/ {where} GROUP BY commune, host",
                         database)  # fmt: skip
    return {f"{row['commune']}/{row['host']}": int(row["count"]) for row in rows}


def backlog(spool: Path, before: float) -> int:
    """Reports in an agent's spool measured before ``before`` (the server's return): its backlog."""
    with sqlite3.connect(spool) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE created < ?", (before,)).fetchone()[0])


class Province:
    """The collector's view, sampled every half second: which communes it ever called down, and
    which alerts it ever raised."""

    def __init__(self, collector: Collector) -> None:
        self.collector = collector
        self.down: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def hosts(self) -> dict[str, dict[str, Any]]:
        return {h["host"] if h["host"] in AGENTS else f"{h['commune']}/{h['host']}": h
                for h in self.collector.get_json("/api/v1/hosts")}  # fmt: skip

    def all_back_since(self, moment: float, but: str = "") -> bool:
        hosts = {name: h for name, h in self.hosts().items() if name != but}
        return len(hosts) == HOSTS - bool(but) and all(
            h["status"] == "online" and h["last_seen"] > moment for h in hosts.values()
        )

    def alerts(self, *rules: str) -> list[dict[str, Any]]:
        return [a for a in self.collector.get_json("/api/v1/alerts") if a["rule"] in rules]

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            try:
                communes = self.collector.get_json("/api/v1/communes")
            except RuntimeError:  # between collectors
                continue
            self.down |= {c["commune"] for c in communes if c["line_state"] == "down"}

    def watch(self, collector: Collector) -> None:
        self.collector = collector
        if not self._thread.is_alive():
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


class ProvinceStack:
    """Collectors with short thresholds, the real agents and 100 virtual PCs, on the test's own broker."""

    def __init__(self, stack: Stack, tmp_path: Path) -> None:
        self.stack, self.tmp_path = stack, tmp_path
        self.simulator: Process | None = None
        self.counts = tmp_path / "simulate-counts.json"

    def collector(self, **influxdb: Any) -> Collector:
        return self.stack.collector(
            influxdb=influxdb,
            fleet={"restart_grace_s": GRACE_S, "evaluate_interval_s": 1},
            alerts={"for_s": {"host_offline": 2}},
            ingest={"backlog_after_s": 5},
        )

    def start(self, **influxdb: Any) -> tuple[Collector, dict[str, Agent]]:
        first = self.collector(**influxdb)
        first.start()
        spool = {"drain_per_s": 5, "ack_timeout_s": 5}  # a drain of some seconds; lost acks re-sent soon
        agents = {host: self.stack.agent(commune=commune, host=host, spool=spool) for host, commune in AGENTS.items()}
        for agent in agents.values():
            agent.start()
        self.simulator = Process(
            [sys.executable, "-m", "devtools.simulate.cli", "-c", str(first.config_path), "--interval", "2",
             "--fault-share", "0", "--hosts-per-commune", "4", "--communes", ",".join(VIRTUAL_COMMUNES),
             "--counts-out", str(self.counts)],
            self.tmp_path, "simulate",
        )  # fmt: skip
        self.simulator.start()
        wait_until(lambda: Province(first).all_back_since(0), 60, f"{HOSTS} PCs online")
        return first, agents


@pytest.fixture
def province_stack(own_stack: Stack, tmp_path: Path) -> Iterator[ProvinceStack]:
    made = ProvinceStack(own_stack, tmp_path)
    yield made
    if made.simulator is not None:
        made.simulator.stop()
        assert "Traceback" not in made.simulator.log()


def test_a_broker_restart_brings_every_pc_back_without_host_offline_or_line_down(
    province_stack: ProvinceStack, own_broker: Mosquitto
) -> None:
    collector, _agents = province_stack.start()
    province = Province(collector)
    province.watch(collector)
    try:
        restarted = time.time()
        own_broker.stop()  # Mosquitto sends every PC's Last Will as it shuts down
        own_broker.start()
        wait_until(lambda: province.all_back_since(restarted), 60, "every PC back after the broker restart")
        wait_until(lambda: collector.log().count("msg=connected") >= 2, 30, "the collector reconnected")
        time.sleep(GRACE_S + 3)  # past the collector's grace: a Will still standing would count now
    finally:
        province.stop()
    wills = [h for h in province.hosts().values() if h["status_since"] > restarted]
    assert len(wills) == HOSTS  # every PC went offline (its Will) and came back online
    assert province.down == set()
    assert province.alerts("host_offline", "line_down") == []


def test_the_province_server_down_then_back_drains_every_spool_without_loss_or_false_alert(
    province_stack: ProvinceStack, own_broker: Mosquitto, own_influxd: Influxd
) -> None:
    own_influxd.create_database("recovery")
    collector, agents = province_stack.start(url=own_influxd.url, database="recovery")
    spools = {host: agent.workdir / "spool.sqlite" for host, agent in agents.items()}
    down = time.time()
    collector.stop()
    own_broker.stop()
    own_influxd.stop()
    measured = {host: cycles(agent) for host, agent in agents.items()}
    wait_until(lambda: all(cycles(a) >= measured[h] + 10 for h, a in agents.items()), 60, "10 reports spooled each")
    own_influxd.start()
    own_broker.start()
    back = time.time()
    assert province_stack.simulator is not None
    second = province_stack.collector(url=own_influxd.url, database="recovery")
    second.start()
    province = Province(second)
    province.watch(second)
    cut = agents["pc-c1"]
    try:
        wait_until(lambda: cut.log().count("msg=connected") >= 2, 60, "pc-c1 back")
        assert backlog(spools["pc-c1"], back) > 0  # still draining (5 reports a second, 2 new ones)
        cut.kill()  # its line is cut in the middle of the drain
        live = [host for host in agents if host != "pc-c1"]
        wait_until(lambda: all(backlog(spools[host], back) == 0 for host in live), 90, "every spool drained")
        wait_until(lambda: province.alerts("line_down") != [], GRACE_S + 30, "the cut commune's line_down")
        wait_until(lambda: province.all_back_since(back, but="pc-c1"), 60, "every other PC back")
        time.sleep(3)
        line_down, host_offline = province.alerts("line_down"), province.alerts("host_offline")
        cut_status = province.hosts()["pc-c1"]["status"]
    finally:
        province.stop()
        for host in live:
            agents[host].stop()

    # nothing lost: every report each agent measured is stored or still waits in its spool, the cut
    # PC's too (a report stored whose acknowledgement had not come back when its agent stopped is
    # both: sent again later, it is the same point, so reports are accounted for by their times)
    def missing(host: str) -> int:
        return unaccounted(
            cycles(agents[host]), stored_seconds(own_influxd, "recovery", host), spooled_seconds(spools[host])
        )

    for host in agents:
        assert outbox(spools[host])[1] == 0  # none dropped
    for host in live:
        wait_until(lambda h=host: missing(h) == 0, 30, f"every report of {host} stored or spooled")
    # killed, the cut PC may have spooled one report it had not logged yet: -1
    wait_until(lambda: missing("pc-c1") in (0, -1), 30, "every report of pc-c1 stored or spooled")
    assert [(a["commune"], a["state"]) for a in line_down] == [("02215", "firing")]
    assert province.down == {"02215"} and cut_status == "offline"
    assert [a["host"] for a in host_offline] in ([], ["pc-c1"])
    # the virtual PCs: what each measured while the server was down came from its spool, and
    # every report it made is stored or still waited in its spool when it stopped
    province_stack.simulator.stop()
    per_pc = json.loads(province_stack.counts.read_text())["per_pc"]
    assert len(per_pc) == HOSTS - len(AGENTS)
    during = virtual_reports(own_influxd, "recovery", f"AND time > {int(down) + 3}s AND time < {int(back) - 3}s")
    # every PC has reports measured inside the outage (how many rounds a loaded machine runs is not
    # counted from the clock); the exact accounting below finds any report that went missing
    assert len(during) == len(per_pc) and min(during.values()) >= 1, during
    assert sum(n["metrics_dropped"] for n in per_pc.values()) == 0

    def virtual_unaccounted() -> dict[str, int]:
        stored = virtual_reports(own_influxd, "recovery")
        return {pc: n["metrics_made"] - n["metrics_pending"] - stored.get(pc, 0) for pc, n in per_pc.items()
                if stored.get(pc, 0) + n["metrics_pending"] < n["metrics_made"]}  # fmt: skip

    wait_until(lambda: not virtual_unaccounted(), 30, "every virtual PC's reports stored")
