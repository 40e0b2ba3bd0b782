"""Full disks and corrupt spools with real agent, broker, collector and InfluxDB processes.

Each test mounts its own small tmpfs for the files under test (the tests run as root) and
unmounts it at the end. Reports are counted from the agent's own ``cycle`` log lines against
the points InfluxDB holds: zero lost.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import REPO, Agent, Collector, Influxd, free_port, http_get, wait_until
from smalldisk import SmallDisk, small_disk
from stack import Stack, stored_reports


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    # 1 MiB: once the filler is gone, the spool's WAL (up to agent.spool.WAL_LIMIT_BYTES and a checkpoint's
    # worth) and the acknowledgement bookkeeping (a write per report sent) need a few hundred KiB to drain
    with small_disk(tmp_path / "disk", size_kb=1024) as mounted:
        yield mounted


def cycles(agent: Agent) -> int:
    return len(re.findall(r"msg=cycle kind=metrics", agent.log()))


def last_agent_section(stack: Stack, host: str) -> dict[str, Any]:
    """The spool fields of the agent's last report (the collector's own status points share the
    ``agent`` measurement, so the last row may not be the agent's)."""
    rows = stack.query(f"SELECT last(spool_ok) AS spool_ok FROM agent WHERE host = '{host}' AND spool_ok >= 0")
    if not rows:
        return {}
    when = rows[0]["time"]
    errors = stack.query(f"SELECT spool_error FROM agent WHERE host = '{host}' AND time = {when}s")
    return {"spool_ok": rows[0]["spool_ok"], "spool_error": errors[0]["spool_error"] if errors else None}


def spooled(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/metrics'").fetchone()[0])


def degraded_reasons(collector: Collector, host: str) -> list[str]:
    return [r for h in collector.get_json("/api/v1/degraded") if h["host"] == host for r in h["reasons"]]


def agent_sections(host: str, port: int, spool: Path, **spool_options: Any) -> dict[str, dict[str, Any]]:
    return {
        "identity": {"province": "08", "commune": "02473", "host": host},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "collect": {"interval_s": 1},
        "probe": {"gateway": False},
        "spool": {"path": str(spool), "retry_s": 1, **spool_options},
    }


def test_agent_started_on_a_full_disk_reports_live_with_disk_full_and_spool_failed(
    disk: SmallDisk, stack: Stack, tmp_path: Path
) -> None:
    disk.fill()
    collector = stack.started_collector()
    host = "pc-full-at-start"
    agent = Agent(tmp_path / "agent", agent_sections(host, stack.broker.port, disk.path / "spool.sqlite"))
    agent.start()
    try:
        wait_until(lambda: stack.stored_reports(host) >= 3, 60, f"live reports\n{agent.log()}")
        wait_until(
            lambda: {"disk_full", "spool_failed"} <= set(degraded_reasons(collector, host)),
            30,
            "disk_full and spool_failed in the degraded list",
        )
        section = last_agent_section(stack, host)
        assert section["spool_ok"] == 0.0 and section["spool_error"] == "disk_full"
        assert agent.running()
        assert "spool cannot be used" in agent.log()
    finally:
        agent.stop()


def test_agent_keeps_reporting_while_its_disk_fills_and_loses_nothing_held_in_memory(
    disk: SmallDisk, own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack
    broker = stack.broker  # stopped and started again by this test
    stack.started_collector()
    host = "pc-disk-fills"
    spool = disk.path / "spool.sqlite"
    agent = Agent(tmp_path / "agent", agent_sections(host, broker.port, spool))
    agent.start()
    try:
        wait_until(lambda: stack.stored_reports(host) >= 2, 60, f"reports before the disk fills\n{agent.log()}")
        disk.fill()
        wait_until(lambda: "spool failed" in agent.log(), 60, "the agent notices the full disk")
        after_fill = stack.stored_reports(host)
        wait_until(lambda: stack.stored_reports(host) >= after_fill + 3, 60, "still reporting live")
        wait_until(lambda: last_agent_section(stack, host).get("spool_ok") == 0.0, 30, "spool_ok 0")
        assert last_agent_section(stack, host)["spool_error"] == "disk_full"

        broker.stop()  # the line goes down too: reports wait in memory
        held_from = cycles(agent)
        wait_until(lambda: cycles(agent) >= held_from + 5, 60, "reports measured while the broker is away")
        disk.free()
        wait_until(lambda: "spool works again" in agent.log(), 60, "the spool is used again")
        moved = int(re.findall(r"msg=\"spool works again\".*moved_from_memory=(\d+)", agent.log())[-1])
        assert moved >= 5
        assert spooled(spool) >= 5  # what memory held is in the spool file now

        broker.start()
        wait_until(lambda: spooled(spool) == 0, 60, "spool drained")
        wait_until(lambda: last_agent_section(stack, host).get("spool_ok") == 1.0, 30, "spool_ok 1")
    finally:
        agent.stop()
        made = cycles(agent)
        broker.stop()
    remaining = spooled(spool)
    wait_until(lambda: stack.stored_reports(host) >= made - remaining, 30, f"all {made - remaining} stored")
    assert stack.stored_reports(host) == made - remaining


@pytest.mark.parametrize("damage", ["random_bytes", "truncated"])
def test_agent_moves_a_corrupt_spool_aside_and_reports(damage: str, stack: Stack, tmp_path: Path) -> None:
    spool = tmp_path / "spool" / "spool.sqlite"
    spool.parent.mkdir()
    host = f"pc-corrupt-{damage.replace('_', '-')}"
    sections = agent_sections(host, free_port(), spool)  # no broker: the reports stay in the spool
    if damage == "random_bytes":
        spool.write_bytes(os.urandom(100 * 1024))
    else:
        first = Agent(tmp_path / "first", sections)
        first.start()
        wait_until(lambda: cycles(first) >= 20, 60, "a spool with reports in it")
        first.stop()
        with open(spool, "r+b") as damaged:  # what a power cut on an old disk leaves
            damaged.truncate(spool.stat().st_size // 3)
    stack.started_collector()
    sections["mqtt"]["port"] = stack.broker.port
    agent = Agent(tmp_path / "agent", sections)
    agent.start()
    try:
        wait_until(lambda: stack.stored_reports(host) >= 2, 60, f"reports\n{agent.log()}")
        assert agent.running()
        assert len(list(spool.parent.glob("spool.sqlite.corrupt-*"))) >= 1
        assert agent.log().count("corrupt spool file moved aside") == 1
        assert last_agent_section(stack, host)["spool_ok"] == 1.0
    finally:
        agent.stop()


def healthz(collector: Collector) -> tuple[int, dict[str, Any]]:
    status, body = http_get(f"{collector.url}/healthz")
    return status, json.loads(body)


def test_collector_on_a_full_disk_keeps_ingesting_counts_errors_and_recovers(
    stack: Stack, own_influxd: Influxd, tmp_path: Path
) -> None:
    own_influxd.create_database("fulldisk")
    with small_disk(tmp_path / "state-disk", size_kb=1024) as disk:
        collector = stack.collector(
            state={"path": str(disk.path / "state.sqlite")},
            influxdb={"url": own_influxd.url, "database": "fulldisk", "buffer_path": str(disk.path / "buffer.sqlite")},
        )
        collector.start()
        host = "pc-collector-disk-full"
        agent = Agent(tmp_path / "agent", agent_sections(host, stack.broker.port, tmp_path / "agent" / "spool.sqlite"))
        agent.start()
        try:
            wait_until(
                lambda: stored_reports(own_influxd, "fulldisk", host) >= 2, 60, f"first reports\n{collector.log()}"
            )
            disk.fill()
            # the registry writes the host's last report time every 5 s: the state file fails
            wait_until(lambda: not healthz(collector)[1]["disk"]["state"]["ok"], 60, "state failure in /healthz")
            status, health = healthz(collector)
            assert status == 503 and health["status"] == "degraded"
            assert health["disk"]["state"]["error"] == "disk_full" and health["disk"]["state"]["errors"] >= 1
            assert collector.metric("commune_collector_disk_errors_state_total") >= 1
            before = stored_reports(own_influxd, "fulldisk", host)
            wait_until(lambda: stored_reports(own_influxd, "fulldisk", host) >= before + 3, 60, "ingest goes on")
            silence = {"duration_s": 600, "author": "test", "comment": "", "matchers": {"host": host}}
            status, answer = collector.post_json("/api/v1/silences", silence)
            assert status == 503 and "state file cannot be written (disk_full)" in answer["detail"]

            own_influxd.stop()  # now the batches need the disk buffer, which cannot take them
            wait_until(lambda: collector.metric("commune_collector_disk_errors_buffer_total") >= 1, 60, "buffer fails")
            assert healthz(collector)[1]["disk"]["buffer"]["error"] == "disk_full"
            assert collector.running()

            disk.free()
            wait_until(lambda: healthz(collector)[1]["disk"]["buffer"]["ok"], 60, "buffer written again")
            wait_until(lambda: healthz(collector)[1]["disk"]["state"]["ok"], 60, "state written again")
            assert collector.metric("commune_collector_points_buffered_total") > 0
            own_influxd.start()
            wait_until(lambda: healthz(collector)[0] == 200, 60, "healthy again")
            assert collector.post_json("/api/v1/silences", silence)[0] == 201
        finally:
            agent.stop()
        made = cycles(agent)
        remaining = spooled(tmp_path / "agent" / "spool.sqlite")
        wait_until(lambda: stored_reports(own_influxd, "fulldisk", host) == made - remaining, 60, "every report stored")
        log = collector.log()
        collector.stop()
    assert log.count("cannot write a collector file") <= 4  # once per file and change, not per failure
    assert "Traceback" not in log


def test_collector_started_on_a_full_disk_runs_on_a_copy_of_its_state_and_writes_it_back(
    stack: Stack, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "state-disk", size_kb=1024) as disk:
        state = disk.path / "state.sqlite"
        collector = stack.collector(state={"path": str(state)})
        assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
        disk.fill()  # e.g. the server rebooted with a full disk
        collector.start(healthy=False)
        host = "pc-state-in-memory"
        agent = Agent(tmp_path / "agent", agent_sections(host, stack.broker.port, tmp_path / "agent" / "spool.sqlite"))
        agent.start()
        try:
            wait_until(lambda: stack.stored_reports(host) >= 2, 60, f"reports stored\n{collector.log()}")
            rows = stack.query(f"SELECT last(cpu_percent) FROM system WHERE host = '{host}' GROUP BY area")
            assert [row["area"] for row in rows] == ["yen-son"]  # the areas came from the copy of the file
            status, health = healthz(collector)
            assert status == 503 and health["disk"]["state"]["ok"] is False
            assert "running with a copy of it in memory" in collector.log()

            disk.free()
            wait_until(lambda: healthz(collector)[0] == 200, 90, f"state file opened again\n{collector.log()}")
            wait_until(lambda: host in known_hosts(state), 30, "the host learned meanwhile is in the file")
            with sqlite3.connect(state) as db:
                assert db.execute("SELECT area FROM commune_areas WHERE commune = '02473'").fetchone() == ("yen-son",)
        finally:
            agent.stop()
            collector.stop()


def known_hosts(state: Path) -> set[str]:
    with sqlite3.connect(state) as db:
        return {row[0] for row in db.execute("SELECT host FROM hosts")}
