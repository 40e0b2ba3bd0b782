"""Mixed releases, live: the previous release (``common.version.PREVIOUS``, built from its commit by
devtools/releases.py in a git worktree with a venv of its own, kept under build/releases/) runs
against today's programs on a real Mosquitto and InfluxDB, both ways.

- The previous agent reports to this collector: every report it published is stored, none refused.
- This agent, new, reports to the previous collector (which never acknowledges and refused fields it
  did not know): it falls back to broker-level release, leaves out what that release did not know,
  and every report it published is stored there, none refused.
- This agent, acknowledged by this collector, then facing the previous collector put back in its
  place (a rollback): it falls back (logged once), its spool stops growing, and no report is lost.
- This agent started while this collector is down (an upgrade): it falls back without knowing the
  collector's release, holds its peripherals report in the spool, and sends it once the collector answers.

What each agent published is counted by a listener on the broker, not taken from the agent.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Agent, Collector, wait_until
from stack import Stack

from common.version import PREVIOUS, VERSION
from common.wire import KNOWN_TO_0_1
from devtools.releases import Release, build

pytestmark = pytest.mark.services  # builds and runs the previous release

FALLBACK = "collector stopped acknowledging; falling back to broker-level release"
ACKNOWLEDGING = "collector acknowledges stored reports"


@pytest.fixture(scope="module")
def previous() -> Release:
    return build(PREVIOUS)  # a few minutes the first time, then kept under build/releases/


class Listener:
    """Every report published on the broker for one host: topic kind -> the set of ``ts`` seen."""

    def __init__(self, port: int, host: str) -> None:
        self.kinds: dict[str, set[int]] = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{host}")
        self._client.on_message = self._keep
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(f"commune/v1/+/+/{host}/+", qos=1)
        self._client.loop_start()

    def _keep(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        kind = message.topic.rsplit("/", 1)[1]
        with self._lock:
            self.kinds.setdefault(kind, set()).add(int(json.loads(message.payload)["ts"]))

    def times(self, kind: str) -> set[int]:
        with self._lock:
            return set(self.kinds.get(kind, ()))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


@pytest.fixture
def listeners(own_stack: Stack) -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        listener.close()


def previous_collector(stack: Stack, release: Release) -> Collector:
    """The previous release's collector on the stack's broker, database and MQTT session."""
    collector = stack.collector()
    collector.argv[0] = str(release.python)
    collector.env = release.env()
    return collector


def previous_agent(stack: Stack, release: Release, host: str) -> Agent:
    agent = stack.agent(host=host, probe={"gateway": False, "interval_s": 2, "targets": [PING]})
    agent.argv[0] = str(release.python)
    agent.env = release.env()
    return agent


PING = {"name": "loopback", "method": "ping", "address": "127.0.0.1", "scope": "wan"}


def stored(stack: Stack, measurement: str, host: str) -> set[int]:
    return {int(row["time"]) for row in stack.query(f"SELECT * FROM \"{measurement}\" WHERE host = '{host}'")}


def rejected(collector: Collector) -> float:
    lines = collector.metrics_text().splitlines()
    return sum(
        float(line.split()[-1]) for line in lines if line.startswith("commune_collector_messages_rejected_total{")
    )


def every_report_stored(stack: Stack, listener: Listener, host: str) -> None:
    """Every metrics and probe report the broker took from ``host`` is a point (duplicates are one)."""
    for kind, measurement in (("metrics", "system"), ("probe", "probe")):
        published = listener.times(kind)
        assert published, kind
        wait_until(
            lambda m=measurement, p=published: p <= stored(stack, m, host),  # type: ignore[misc]
            30,
            f"every {kind} report stored",
        )


DUMP_CONTRACT = (
    "import json, common.wire as w; print(json.dumps({k: {n: sorted([*s.fields, *([s.label] if s.label else [])])"
    " for n, s in secs.items()} for k, secs in w.SECTIONS_BY_KIND.items()}))"
)


def test_what_this_agent_sends_an_unknown_collector_is_what_the_previous_release_knew(
    previous: Release, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(previous.python), "-c", DUMP_CONTRACT], capture_output=True, text=True, cwd=tmp_path, env=previous.env()
    )
    assert done.returncode == 0, done.stderr
    theirs = json.loads(done.stdout)
    assert {kind: {n: sorted(f) for n, f in sections.items()} for kind, sections in KNOWN_TO_0_1.items()} == theirs


def test_the_previous_agent_reports_to_this_collector_with_nothing_lost_or_refused(
    own_stack: Stack, previous: Release, listeners: list[Listener]
) -> None:
    stack = own_stack  # a broker of its own: no other test's hosts or retained statuses
    collector = stack.started_collector()
    listeners.append(listener := Listener(stack.broker.port, "pc-previous"))
    agent = previous_agent(stack, previous, "pc-previous")
    agent.start()
    wait_until(lambda: len(listener.times("metrics")) >= 5 and listener.times("probe"), 60, f"reports\n{agent.log()}")
    agent.stop()
    every_report_stored(stack, listener, "pc-previous")
    assert rejected(collector) == 0
    assert {h["host"]: h["agent_version"] for h in collector.get_json("/api/v1/hosts")}["pc-previous"] == PREVIOUS
    assert "agent_version=0.1.0" in collector.log() and "agent hello" in collector.log()


def test_this_agent_reports_to_the_previous_collector_with_nothing_lost_or_refused(
    own_stack: Stack, previous: Release, listeners: list[Listener]
) -> None:
    stack = own_stack  # a broker of its own: no other test's hosts or retained statuses
    collector = previous_collector(stack, previous)
    collector.start()
    listeners.append(listener := Listener(stack.broker.port, "pc-current"))
    agent = stack.agent(
        host="pc-current", spool={"ack_wait_s": 2}, probe={"gateway": False, "interval_s": 2, "targets": [PING]}
    )
    agent.start()
    wait_until(lambda: len(listener.times("metrics")) >= 5 and listener.times("probe"), 60, f"reports\n{agent.log()}")
    agent.stop()
    every_report_stored(stack, listener, "pc-current")
    assert rejected(collector) == 0, collector.metrics_text()
    assert "falling back to broker-level release" in agent.log()
    assert not listener.times("peripherals")  # a kind 0.1.0 did not know is not sent to it


def test_an_acknowledged_agent_facing_the_previous_collector_falls_back_and_loses_nothing(
    own_stack: Stack, previous: Release, listeners: list[Listener], tmp_path: Path
) -> None:
    stack = own_stack  # a broker of its own: no other test's hosts or retained statuses
    current = stack.started_collector()
    listeners.append(listener := Listener(stack.broker.port, "pc-rollback"))
    agent = stack.agent(
        host="pc-rollback", spool={"ack_wait_s": 3}, probe={"gateway": False, "interval_s": 2, "targets": [PING]}
    )
    spool = Path(agent.config_path).parent / "spool.sqlite"
    agent.start()
    try:
        wait_until(lambda: ACKNOWLEDGING in agent.log(), 60, f"the first ack\n{agent.log()}")
        assert f"collector_version={VERSION}" in agent.log()
        current.stop()  # rolled back: the previous release takes over the same session
        old = previous_collector(stack, previous)
        old.start()
        wait_until(lambda: FALLBACK in agent.log(), 60, f"the fallback\n{agent.log()}")
        measured = len(listener.times("metrics"))
        wait_until(lambda: len(listener.times("metrics")) >= measured + 5, 60, "five more reports")
        depths = []
        for _ in range(4):
            depths.append(spool_depth(spool))
            time.sleep(0.5)
    finally:
        agent.stop()
    every_report_stored(stack, listener, "pc-rollback")
    assert agent.log().count(FALLBACK) == 1
    assert max(depths) <= 3, depths  # the spool no longer grows while nobody acknowledges
    # what the old collector refused is only what went out numbered before the fallback (sent again since)
    assert rejected(old) <= current_numbered_at_fallback(agent)


FIXTURE_BUS = Path(__file__).resolve().parent / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"


def test_an_agent_facing_a_collector_that_is_down_holds_its_peripherals_until_the_collector_answers(
    own_stack: Stack, listeners: list[Listener]
) -> None:
    stack = own_stack  # a broker of its own: no other test's hosts or retained statuses
    listeners.append(listener := Listener(stack.broker.port, "pc-upgrade"))
    agent = stack.agent(
        host="pc-upgrade",
        spool={"ack_wait_s": 2},
        peripherals={"sysfs_root": str(FIXTURE_BUS)},  # four USB devices, reported at start
        probe={"gateway": False},
    )
    spool = Path(agent.config_path).parent / "spool.sqlite"
    agent.start()
    try:
        # no collector yet (being upgraded): after ack_wait_s the agent falls back, release unknown
        wait_until(lambda: "falling back to broker-level release" in agent.log(), 60, f"the fallback\n{agent.log()}")
        wait_until(lambda: len(listener.times("metrics")) >= 2, 60, "reports released at the PUBACK")
        assert held(spool, "peripherals") == 1, agent.log()  # neither sent nor deleted
        assert not listener.times("peripherals")
        stack.started_collector()  # back: it answers the (retained) hello with its release
        wait_until(lambda: listener.times("peripherals"), 60, f"the held report sent\n{agent.log()}")
        query = "SELECT last(present) FROM peripheral WHERE host = 'pc-upgrade' GROUP BY device"
        wait_until(lambda: len(stack.query(query)) == 4, 30, "the four peripherals stored")
        wait_until(lambda: held(spool, "peripherals") == 0, 30, "the spool emptied of it")
    finally:
        agent.stop()


def held(path: Path, kind: str) -> int:
    """Reports of ``kind`` in the agent's spool not sent."""
    with sqlite3.connect(path) as db:
        query = "SELECT count(*) FROM outbox WHERE sent IS NULL AND topic LIKE ?"
        return int(db.execute(query, (f"%/{kind}",)).fetchone()[0])


def spool_depth(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM outbox").fetchone()[0])


def current_numbered_at_fallback(agent: Agent) -> int:
    """How many reports were sent again at the fallback (its log line says)."""
    for line in agent.log().splitlines():
        if FALLBACK in line:
            return int(line.split("sent_again=")[1].split()[0])
    raise AssertionError("no fallback line")
