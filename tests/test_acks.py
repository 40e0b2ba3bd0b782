"""End-to-end acknowledgements with real processes: a report leaves the agent's spool only once
the collector has stored it.

- The collector stopped as for an upgrade, then the broker killed with kill -9 and restarted
  (persistence on): every report the agent measured is stored, once, with no gap.
- The collector killed with SIGKILL after storing and before acknowledging (one that answers the
  hello at once and would acknowledge reports only an hour later): the reports are sent again,
  stored once per series and second, and counted as duplicates by the next collector.
- A collector that never acknowledges (``acks = false``): it still answers the hello with its release,
  so the agent falls back to broker-level release, as logged, and sends full reports (peripherals too).
- A forged acknowledgement from another host's credentials is refused by the broker's ACL.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realservices import Agent, Collector, Influxd, Mosquitto, Process, free_port, wait_until
from test_enrollment import COLLECTOR_PASSWORD, COLLECTOR_USER, Client, secured  # noqa: F401 - a fixture

from common.version import VERSION
from common.wire import ack_payload, command_topic

FIXTURE_BUS = Path(__file__).resolve().parent / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"

ACKNOWLEDGING = "collector acknowledges stored reports"
FALLBACK = "falling back to broker-level release"


def agent_sections(host: str, port: int, spool: Path, **spool_options: Any) -> dict[str, dict[str, Any]]:
    return {
        "identity": {"province": "08", "commune": "02473", "host": host},
        "mqtt": {"host": "127.0.0.1", "port": port},
        "collect": {"interval_s": 2, "inventory_interval_s": 86400},
        "probe": {"gateway": False},
        "spool": {"path": str(spool), **spool_options},
    }


def cycles(agent: Agent) -> int:
    """Metrics reports the agent has measured (one debug line each)."""
    return len(re.findall(r"msg=cycle kind=metrics", agent.log()))


def spool_state(path: Path) -> dict[str, Any]:
    """Metrics reports in the agent's spool (depth) and of them sent, awaiting an ack; bytes of all."""
    with sqlite3.connect(path) as db:
        total, sent = db.execute("SELECT count(*), count(sent) FROM outbox WHERE topic LIKE '%/metrics'").fetchone()
        size = db.execute("SELECT coalesce(sum(length(payload)), 0) FROM outbox").fetchone()[0]
        dropped = db.execute("SELECT coalesce(max(value), 0) FROM counters WHERE name = 'dropped'").fetchone()[0]
        stream = db.execute("SELECT value FROM meta WHERE name = 'stream'").fetchone()[0]
    return {"depth": int(total), "sent": int(sent), "bytes": int(size), "dropped": int(dropped), "stream": stream}


def measured_and_sent(agent: Agent, state: dict[str, Any]) -> int:
    """Metrics reports that reached the broker. A stopping agent waits a few seconds for its last
    acknowledgements; a report still unacknowledged then is at the broker or the running collector,
    and one measured as it stopped may not have been sent at all."""
    return cycles(agent) - (state["depth"] - state["sent"])


def stored_times(influxd: Influxd, database: str, host: str) -> list[int]:
    rows = influxd.query(f"SELECT cpu_percent FROM system WHERE host = '{host}'", database)
    return [int(row["time"]) for row in rows]


def last_reports_stored(
    agent: Agent, spool: Path, influxd: Influxd, database: str, host: str, *services: Process
) -> tuple[dict[str, Any], int]:
    """After the agent has stopped: waits until every report it measured and sent is stored, then stops
    ``services``. Gives the spool's last state and how many reports were measured and sent."""
    state = spool_state(spool)
    expected = measured_and_sent(agent, state)
    try:
        wait_until(lambda: len(stored_times(influxd, database, host)) >= expected, 30, "the last reports")
    finally:
        for service in services:
            service.stop()
    return state, expected


def peripheral_series(influxd: Influxd, database: str, host: str) -> set[str]:
    rows = influxd.query(f"SELECT last(present) FROM peripheral WHERE host = '{host}' GROUP BY device", database)
    return {str(row["device"]) for row in rows}


def largest_gap(times: list[int]) -> int:
    return max((b - a for a, b in itertools.pairwise(times)), default=0)


def test_broker_killed_while_the_collector_is_stopped_loses_no_report(
    make_collector: Callable[..., Collector], own_broker: Mosquitto, influxd: Influxd, database: str, tmp_path: Path
) -> None:
    broker, port = own_broker, own_broker.port  # persistence true, autosave at its default
    first = make_collector(mqtt={"port": port})
    first.start()
    spool = tmp_path / "spool.sqlite"
    agent = Agent(tmp_path / "agent", agent_sections("pc-crash", port, spool, ack_timeout_s=5))
    agent.start()
    second = make_collector(mqtt={"port": port})
    try:
        wait_until(lambda: ACKNOWLEDGING in agent.log(), 60, f"the collector's first ack\n{agent.log()[-3000:]}")
        wait_until(lambda: len(stored_times(influxd, database, "pc-crash")) >= 3, 60, "first points")
        first.stop()  # as for an upgrade: the broker queues the reports for the collector's session
        time.sleep(30)
        queued = spool_state(spool)["sent"]
        broker.kill()  # power cut at the province server: what it queued in memory is gone
        broker.start()
        second.start()
        time.sleep(10)  # the agent keeps measuring after the crash
        wait_until(lambda: spool_state(spool)["sent"] <= 1, 90, "re-sent reports acknowledged")
    finally:
        agent.stop()
    state, expected = last_reports_stored(agent, spool, influxd, database, "pc-crash", second, broker)
    assert queued >= 12, f"only {queued} reports were waiting for an ack while the collector was down"
    assert state["depth"] <= 2 and state["dropped"] == 0, state
    times = stored_times(influxd, database, "pc-crash")
    assert len(times) == expected, f"{len(times)} stored of {expected} measured and sent"
    # timestamps are whole seconds: a 2 s interval gives steps of 2 s, sometimes 3 s
    assert largest_gap(times) <= 3, f"largest gap {largest_gap(times)} s"


def test_collector_killed_between_storing_and_acknowledging_counts_the_re_sent_reports(
    make_collector: Callable[..., Collector], own_broker: Mosquitto, influxd: Influxd, database: str, tmp_path: Path
) -> None:
    broker, port = own_broker, own_broker.port
    acknowledging = make_collector(mqtt={"port": port})
    acknowledging.start()
    spool = tmp_path / "spool.sqlite"
    agent = Agent(tmp_path / "agent", agent_sections("pc-unacked", port, spool, ack_timeout_s=5))
    agent.start()
    # answers the hello (with what it stored first), then stores and records what it stored, and is killed
    # before it acknowledges any of that: a host is acknowledged at most once per ack_interval_s
    silent = make_collector(mqtt={"port": port, "ack_interval_s": 3600})
    restarted = make_collector(mqtt={"port": port})
    try:
        wait_until(lambda: ACKNOWLEDGING in agent.log(), 60, "the collector's first ack")
        acknowledging.stop()
        silent.start()
        wait_until(lambda: silent.metric("commune_collector_acks_sent_total") >= 1, 60, "the answer to the hello")
        before = len(stored_times(influxd, database, "pc-unacked"))
        wait_until(lambda: len(stored_times(influxd, database, "pc-unacked")) >= before + 8, 60, "points stored")
        unacknowledged = len(stored_times(influxd, database, "pc-unacked")) - before
        assert spool_state(spool)["sent"] >= unacknowledged  # stored, and still in the agent's spool
        assert silent.metric("commune_collector_acks_sent_total") == 1  # the hello's answer, none since
        silent.kill()
        restarted.start()
        # the last report stored may not have been recorded yet when the kill came: then it counts as new
        wait_until(
            lambda: restarted.metric("commune_collector_reports_duplicate_total") >= unacknowledged - 1,
            90,
            "re-sent reports recognised as duplicates",
        )
        wait_until(lambda: spool_state(spool)["sent"] <= 1, 60, "every report acknowledged")
    finally:
        agent.stop()
    state, expected = last_reports_stored(agent, spool, influxd, database, "pc-unacked", restarted, broker)
    assert state["depth"] <= 2, state
    times = stored_times(influxd, database, "pc-unacked")
    assert len(times) == expected == len(set(times)), f"{len(times)} stored of {expected}"


def test_a_collector_that_never_acknowledges_gets_broker_level_release(
    make_collector: Callable[..., Collector], influxd: Influxd, database: str, tmp_path: Path
) -> None:
    port = free_port()
    broker = Mosquitto(tmp_path / "broker", port=port)
    broker.start()
    collector = make_collector(mqtt={"port": port, "acks": False})
    collector.start()
    spool = tmp_path / "spool.sqlite"
    sections = agent_sections("pc-fallback", port, spool, ack_wait_s=4, max_bytes=1024 * 1024)
    sections["peripherals"] = {"sysfs_root": str(FIXTURE_BUS)}  # four USB devices, reported at start
    agent = Agent(tmp_path / "agent", sections)
    agent.start()
    try:
        wait_until(lambda: FALLBACK in agent.log(), 60, "the fallback")
        wait_until(lambda: cycles(agent) >= 10, 60, "ten reports")
        depths = []
        for _ in range(10):
            depths.append(spool_state(spool))
            time.sleep(0.5)
    finally:
        agent.stop()
    expected = cycles(agent) - spool_state(spool)["depth"]
    try:
        wait_until(lambda: len(stored_times(influxd, database, "pc-fallback")) == expected, 30, "every report stored")
        # a kind release 0.1.0 did not know is sent: the collector said its release
        wait_until(lambda: len(peripheral_series(influxd, database, "pc-fallback")) == 4, 30, "the peripherals")
        acks_sent = collector.metric("commune_collector_acks_sent_total")
    finally:
        collector.stop()
        broker.stop()
    assert ACKNOWLEDGING not in agent.log() and acks_sent == 0  # the answer to the hello is no acknowledgement
    assert f"collector_version={VERSION}" in agent.log() and "not sent" not in agent.log()
    assert all(state["depth"] <= 2 and state["sent"] == 0 and state["bytes"] <= 1024 * 1024 for state in depths)


def test_an_acknowledgement_forged_with_another_hosts_credentials_is_refused(
    secured: tuple[Mosquitto, Collector, dict[str, Path]],  # noqa: F811 - the fixture imported above
    tmp_path: Path,
) -> None:
    broker, collector, configs = secured
    generated = tomllib.loads(configs["pc-b"].read_text())
    spool = tmp_path / "agent-b" / "spool.sqlite"
    agent = Agent(
        tmp_path / "agent-b",
        {**generated, "collect": {"interval_s": 2}, "probe": {"gateway": False}, "spool": {"path": str(spool)}},
    )
    agent.start()
    try:
        wait_until(lambda: ACKNOWLEDGING in agent.log(), 60, "pc-b's first ack")
        collector.stop()  # pc-b's reports now wait in its spool for an ack
        wait_until(lambda: spool_state(spool)["sent"] >= 3, 30, "reports waiting for an ack")
        stream = spool_state(spool)["stream"]
        forged = ack_payload(stream, [(1, 10**9)])
        pc_a = tomllib.loads(configs["pc-a"].read_text())["mqtt"]
        intruder = Client(broker.port, pc_a["username"], pc_a["password"])
        assert intruder.publish(command_topic("08", "02536", "pc-b", "ack"), forged).value == 0x87
        assert intruder.publish(command_topic("08", "02473", "pc-a", "ack"), forged).value == 0x87
        own = Client(broker.port, generated["mqtt"]["username"], generated["mqtt"]["password"])
        assert own.publish(command_topic("08", "02536", "pc-b", "ack"), forged).value == 0x87  # not even its own
        waiting = spool_state(spool)["sent"]
        time.sleep(3)
        assert spool_state(spool)["sent"] >= waiting  # nothing was released
        province = Client(broker.port, COLLECTOR_USER, COLLECTOR_PASSWORD)
        assert province.publish(command_topic("08", "02536", "pc-b", "ack"), forged).value == 0
        wait_until(lambda: spool_state(spool)["sent"] <= 1, 20, "the collector's ack releases the reports")
        for client in (intruder, own, province):
            client.close()
    finally:
        agent.stop()
        broker.stop()
