"""Outage records kept by fleet state: opened when every PC of a commune went silent, closed when
one is back, decided once the spooled backlog is in (or after a bounded wait), written as an
``outage`` point, and kept in the state file across a collector restart.

Reports go through the real ingest checks into ``FleetState`` on a real SQLite state file; the
clock is the ``received_at`` each report is handed with, so nothing waits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collector.config import FleetSettings, IngestSettings
from collector.fleet.outage_book import recent
from collector.fleet.state import FleetState
from collector.ingest.checks import Ingestor
from collector.ingest.receipts import Receipts
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import encode, report_topic

T0 = 1_790_000_000.0  # a Sunday evening: no office hours are configured here, so nothing is quiet
BOOT = T0 - 3600
PCS = ("pc-01", "pc-02")
SETTINGS = FleetSettings(restart_grace_s=0, outage_decide_max_s=600)


class Commune:
    """Two PCs of commune 02473 reporting into one collector's ingest and fleet state."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp_path = tmp_path
        self.store = Store(tmp_path / "state.sqlite")
        self.registry = Registry(self.store, "unassigned")
        self.fleet = FleetState(self.store, self.registry, SETTINGS, started_at=T0 - 100)
        self.ingestor = Ingestor(
            self.registry, SelfMetrics(), IngestSettings(max_age_s=86400), Receipts(tmp_path / "r.sqlite", 86400)
        )
        self.ingestor.observers.append(self.fleet.observe)
        self.points: list[Any] = []

    def restart(self, now: float) -> None:
        """The collector stops (saving as it does) and starts again on the same state file."""
        self.fleet.save()
        self.registry.flush()
        self.store.close()
        self.store = Store(self.tmp_path / "state.sqlite")
        self.registry = Registry(self.store, "unassigned")
        self.fleet = FleetState(self.store, self.registry, SETTINGS, started_at=now)
        self.ingestor.registry = self.registry
        self.ingestor.observers = [self.fleet.observe]

    def send(self, host: str, kind: str, body: dict[str, Any], received_at: float) -> None:
        handled = self.ingestor.handle_message(report_topic("08", "02473", host, kind), encode(body), received_at)
        assert handled.lines or kind == "status", f"{kind} report rejected"

    def metrics(self, host: str, ts: float, received_at: float, boot: float = BOOT) -> None:
        body = {"v": 1, "ts": int(ts), "system": {"cpu_percent": 5, "boot_time": boot}, "agent": {"interval_s": 30}}
        self.send(host, "metrics", body, received_at)

    def probe(self, host: str, ts: float, received_at: float, line_ok: bool) -> None:
        items = [{"target": "gw", "method": "ping", "scope": "gateway", "ok": 1},
                 {"target": "wan", "method": "ping", "scope": "wan", "ok": 1 if line_ok else 0}]  # fmt: skip
        self.send(host, "probe", {"v": 1, "ts": int(ts), "probe": items}, received_at)

    def evaluate(self, now: float) -> list[Any]:
        snapshot = self.fleet.evaluate(now)
        return [p for p in self.fleet.points(snapshot, now) if p.measurement == "outage"]

    def run_until_dark(self) -> float:
        """Both PCs report for two minutes, then fall silent until the commune's line is down."""
        for t in range(0, 120, 30):
            for host in PCS:
                self.metrics(host, T0 + t, T0 + t + 1)
                self.probe(host, T0 + t, T0 + t + 1, line_ok=True)
            self.evaluate(T0 + t + 2)
        dark = T0 + 90 + 4 * 30
        assert self.evaluate(dark) == []
        assert [c.line_state for c in self.fleet.snapshot.communes] == ["down"]
        return dark


def test_a_cut_line_is_decided_line_once_each_pcs_backlog_is_in(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    commune.run_until_dark()
    [record] = recent(commune.store)
    assert (record.state, record.start, record.end) == ("open", T0 + 90, 0.0)
    back = T0 + 900
    for host in PCS:  # the spool delivers what was measured meanwhile, oldest first
        for t in range(120, 900, 30):
            commune.metrics(host, T0 + t, back)
            commune.probe(host, T0 + t, back, line_ok=False)
    assert commune.evaluate(back + 1) == []  # back, but the backlog may not be all in yet
    assert recent(commune.store)[0].state == "ended"
    commune.metrics("pc-01", back + 10, back + 11)
    assert commune.evaluate(back + 12) == []  # pc-02's backlog is not known to be in yet
    commune.metrics("pc-02", back + 20, back + 21)
    [point] = commune.evaluate(back + 22)
    assert (point.tags["cause"], point.tags["commune"], point.ts) == ("line", "02473", int(T0 + 90))
    assert point.fields["duration_s"] == back + 1 - (T0 + 90) and point.fields["confidence"] == 1.0
    [record] = recent(commune.store)
    assert (record.state, record.cause) == ("decided", "line")
    assert all("gateway_ok_outside_failed" in row["reasons"] for row in record.evidence)  # type: ignore[operator]
    assert [r.cause for r in commune.fleet.take_decided()] == ["line"]  # once, for the follow-up message
    assert commune.fleet.take_decided() == []


def test_a_power_cut_decided_after_a_collector_restart_keeps_its_record(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    dark = commune.run_until_dark()
    [opened] = recent(commune.store)
    commune.restart(dark + 60)
    back = T0 + 1800
    for i, host in enumerate(PCS):  # switched on again: a new boot time, nothing spooled
        commune.metrics(host, back + i, back + i + 2, boot=back - 60)
    commune.evaluate(back + 5)
    commune.metrics("pc-01", back + 30, back + 31, boot=back - 60)
    commune.metrics("pc-02", back + 31, back + 32, boot=back - 60)
    [point] = commune.evaluate(back + 35)
    assert point.tags["cause"] == "power"
    [record] = recent(commune.store)
    assert (record.id, record.start, record.cause) == (opened.id, opened.start, "power")
    assert [row["reasons"] for row in record.evidence] == [["no_report_during_outage", "booted_after_outage_start"]] * 2


def test_agents_killed_and_restarted_with_the_same_boot_time_are_unknown(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    commune.run_until_dark()
    back = T0 + 900
    for host in PCS:
        commune.metrics(host, back, back + 1)
    commune.evaluate(back + 2)
    for host in PCS:
        commune.metrics(host, back + 30, back + 31)
    [point] = commune.evaluate(back + 32)
    assert point.tags["cause"] == "unknown"
    assert recent(commune.store)[0].reasons == ["agent_silent_boot_unchanged"]


def test_a_clean_stop_of_every_pc_is_an_office_closed(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    for host in PCS:
        commune.metrics(host, T0, T0 + 1)
    commune.evaluate(T0 + 2)
    for host in PCS:
        commune.send(host, "status", {"v": 1, "ts": int(T0 + 5), "state": "offline", "reason": "stop"}, T0 + 6)
    commune.evaluate(T0 + 10)
    assert recent(commune.store)[0].hosts["pc-01"].offline_reason == "stop"
    back = T0 + 13 * 3600
    for host in PCS:
        commune.metrics(host, back, back + 1, boot=back - 120)
    commune.evaluate(back + 2)
    for host in PCS:
        commune.metrics(host, back + 30, back + 31, boot=back - 120)
    [point] = commune.evaluate(back + 32)
    assert point.tags["cause"] == "office_closed"


def test_a_pc_that_never_returns_is_decided_after_the_bounded_wait(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    commune.run_until_dark()
    back = T0 + 900
    commune.metrics("pc-01", back, back + 1)
    commune.evaluate(back + 2)
    commune.metrics("pc-01", back + 30, back + 31)
    assert commune.evaluate(back + 40) == []
    [point] = commune.evaluate(back + 2 + SETTINGS.outage_decide_max_s)
    assert point.tags["cause"] == "unknown"
    assert recent(commune.store)[0].hosts["pc-02"].caught_up is False


def test_no_record_opens_for_a_commune_whose_pcs_never_reported(tmp_path: Path) -> None:
    commune = Commune(tmp_path)
    commune.send("pc-01", "status", {"v": 1, "ts": int(T0), "state": "online"}, T0)
    commune.evaluate(T0 + 600)  # known from its status only, silent: offline, but it never went dark
    assert recent(commune.store) == []
