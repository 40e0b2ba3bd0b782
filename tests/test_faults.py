"""Fault tests with real processes; each counts reports sent against points stored: zero lost.

- InfluxDB stopped for 60 s while reports keep coming (the collector's disk buffer).
- The collector killed with SIGKILL mid-stream (manual acknowledgements + persistent session).
- An agent cut off from the broker, then back with a spool full of reports (and one whose
  spool expired reports: exactly the counted, oldest reports are missing).
"""

from __future__ import annotations

import json
import re
import sqlite3
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Agent, Influxd, Mosquitto, free_port, wait_until
from stack import Stack, stored_reports, stored_seconds

from common.wire import encode, report_topic


class SteadyPublisher:
    """Publishes numbered metrics reports (QoS 1) at a steady rate in a thread until stopped."""

    def __init__(self, port: int, host: str, per_s: float) -> None:
        self.host = host
        self.per_s = per_s
        self.sent = 0
        self.base = int(time.time()) - 3600  # one second apart, all distinct and in the past
        self._stop = threading.Event()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"steady-{host}")
        self._client.max_queued_messages_set(0)
        self._client.connect("127.0.0.1", port)
        self._client.loop_start()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        topic = report_topic("08", "02473", self.host, "metrics")
        while not self._stop.wait(1 / self.per_s):
            payload = encode({"v": 1, "ts": self.base + self.sent, "system": {"cpu_percent": float(self.sent % 100)}})
            info = self._client.publish(topic, payload, qos=1)
            info.wait_for_publish(30)
            self.sent += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)
        self._client.loop_stop()
        self._client.disconnect()


def test_influxdb_stopped_for_60_s_loses_nothing(stack: Stack, own_influxd: Influxd) -> None:
    own_influxd.create_database("faults")
    collector = stack.started_collector(influxdb={"url": own_influxd.url, "database": "faults"})
    publisher = SteadyPublisher(stack.broker.port, "pc-influx-down", per_s=20)
    publisher.start()
    try:
        wait_until(lambda: stored_reports(own_influxd, "faults", "pc-influx-down") >= 20, 30, "first points")
        own_influxd.stop()
        down_at = time.monotonic()
        wait_until(
            lambda: collector.metric("commune_collector_write_buffer_points") >= 100, 60, "points buffered on disk"
        )
        time.sleep(max(0.0, 60 - (time.monotonic() - down_at)))
        buffered = collector.metric("commune_collector_write_buffer_points")
        own_influxd.start()
    finally:
        publisher.stop()
    assert buffered >= 60 * 20 * 0.8, buffered  # what arrived while InfluxDB was down waited on disk
    wait_until(
        lambda: stored_reports(own_influxd, "faults", "pc-influx-down") == publisher.sent, 90, "every report stored"
    )
    wait_until(lambda: collector.metric("commune_collector_write_buffer_points") == 0, 30, "buffer drained")
    assert collector.metric("commune_collector_points_drained_total") >= buffered


def test_collector_sigkill_mid_stream_loses_nothing(stack: Stack) -> None:
    first = stack.started_collector()
    publisher = SteadyPublisher(stack.broker.port, "pc-sigkill", per_s=100)
    publisher.start()
    try:
        wait_until(lambda: stack.stored_reports("pc-sigkill") >= 100, 30, "first points")
        first.kill()
        time.sleep(2)  # reports keep arriving at the broker while no collector runs
        stack.started_collector()
        wait_until(lambda: publisher.sent >= 800, 60, "more reports")
    finally:
        publisher.stop()
    wait_until(lambda: stack.stored_reports("pc-sigkill") == publisher.sent, 60, "every report stored")


def cycles(agent: Agent) -> int:
    return len(re.findall(r"msg=cycle kind=metrics", agent.log()))


def spooled_seconds(path: Path) -> set[int]:
    """The times (whole seconds) of the metrics reports still in an agent's spool."""
    with sqlite3.connect(path) as db:
        rows = db.execute("SELECT payload FROM outbox WHERE topic LIKE '%/metrics'").fetchall()
    return {int(json.loads(payload)["ts"]) for (payload,) in rows}


def unaccounted(made: int, stored: set[int], spooled: set[int]) -> int:
    """Of ``made`` metrics reports, how many are neither stored nor still in the spool (negative:
    more reports than were made). A report the collector stored whose acknowledgement had not come
    back when its agent stopped is both stored and spooled: sent again later, it is the same point,
    so reports are counted by their times, not added up."""
    return made - len(stored | spooled)


def outbox(path: Path) -> tuple[int, int]:
    """Metrics reports still in the agent's spool, and how many the spool has dropped."""
    with sqlite3.connect(path) as db:
        remaining = db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/metrics'").fetchone()[0]
        row = db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
    return int(remaining), int(row[0]) if row else 0


@pytest.mark.parametrize("spool_bounds", [{}, {"max_age_s": 5}], ids=["default-spool", "expiring-spool"])
def test_agent_offline_then_back_with_a_full_spool(
    spool_bounds: dict[str, float], stack: Stack, tmp_path: Path
) -> None:
    port = free_port()
    broker = Mosquitto(tmp_path / "late-broker", port=port)
    collector = stack.collector(mqtt={"port": port})
    host = f"pc-spool-{len(spool_bounds)}"
    spool = tmp_path / "spool.sqlite"
    agent = Agent(
        tmp_path / "agent",
        {
            "identity": {"province": "08", "commune": "02473", "host": host},
            "mqtt": {"host": "127.0.0.1", "port": port},
            "collect": {"interval_s": 1},
            "probe": {"gateway": False},
            "spool": {"path": str(spool), "drain_per_s": 20, **spool_bounds},
            "peripherals": {"enabled": False},  # metrics and one inventory only, so drops can be counted
        },
    )
    # The collector's persistent session exists before the line goes down, as in production: the
    # broker (persistence on) keeps its subscription across the stop below, so the backlog is
    # queued for the collector whether the agent or the collector gets back to the broker first.
    broker.start()
    collector.start()
    collector.stop()
    broker.stop()
    agent.start()  # no broker now: the PC's line is down
    try:
        wait_until(lambda: cycles(agent) >= 10, 60, "reports measured while offline")
        broker.start()
        collector.start()
        wait_until(lambda: outbox(spool)[0] == 0, 60, "spool drained")
    finally:
        agent.stop()
        made = cycles(agent)
        broker_log = broker.log()
        broker.stop()
        collector.stop()
    remaining, dropped = outbox(spool)
    if not spool_bounds:
        assert dropped == 0
        wait_until(
            lambda: unaccounted(made, stored_seconds(stack.influxd, stack.database, host), spooled_seconds(spool)) == 0,
            30,
            f"all {made} stored or spooled\n{broker_log}",
        )
    else:
        expected = made - remaining
        assert dropped >= 5  # reports older than 5 s expired while the line was down
        # The reports of other kinds made while offline (the inventory and the disk-health round sent
        # first) may be among the dropped ones: at most that many drops were not metrics.
        others = len(re.findall(r"msg=cycle kind=(?!metrics)", agent.log()))
        assert 1 <= others <= 3, others
        wait_until(lambda: stack.stored_reports(host) >= expected - dropped, 30, "survivors stored")
        assert expected - dropped <= stack.stored_reports(host) <= expected - dropped + others
        first = stack.query(f"SELECT first(cpu_percent) FROM system WHERE host = '{host}'")[0]["time"]
        last = stack.query(f"SELECT last(cpu_percent) FROM system WHERE host = '{host}'")[0]["time"]
        assert last - first < made - dropped + 3, "the oldest reports are the ones dropped"


def test_agent_killed_with_sigkill_keeps_a_sound_spool_and_sends_it_later(stack: Stack, tmp_path: Path) -> None:
    port = free_port()
    spool = tmp_path / "spool.sqlite"
    sections = {
        "identity": {"province": "08", "commune": "02473", "host": "pc-killed"},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "collect": {"interval_s": 1},
        "probe": {"gateway": False},
        "spool": {"path": str(spool)},
    }
    first = Agent(tmp_path / "first", sections)
    first.start()  # no broker: everything stays in the spool
    wait_until(lambda: cycles(first) >= 5, 60, "reports spooled")
    first.kill()  # like pulling the plug
    # a report of the next agent in the same second would be the same InfluxDB point (precision s)
    time.sleep(1.1)
    with sqlite3.connect(spool) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    spooled_before = outbox(spool)[0]
    assert spooled_before >= 5

    broker = Mosquitto(tmp_path / "broker", port=port)
    broker.start()
    collector = stack.started_collector(mqtt={"port": port})
    second = Agent(tmp_path / "second", sections)
    second.start()
    try:
        wait_until(lambda: stack.stored_reports("pc-killed") >= spooled_before + 2, 60, "spool sent after restart")
        second.stop()
        # the broker has acknowledged all the agent sent; the collector may still be writing the last of it
        expected = cycles(first) + cycles(second) - outbox(spool)[0]
        wait_until(lambda: stack.stored_reports("pc-killed") >= expected, 30, f"all {expected} reports stored")
    finally:
        second.stop()
        collector.stop()
        broker.stop()
    assert stack.stored_reports("pc-killed") == expected
