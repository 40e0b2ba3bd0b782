"""The re-send timer runs on a monotonic clock: a wall clock stepped back (NTP correcting a PC whose
clock ran fast, a user setting it by hand) must not hold back a report that went missing.

A real Mosquitto, the agent's real publisher and outbox in this process. One test steps this
process's wall clock (``time.time``) back an hour once both reports are sent; the other injects the
timer's clock (``tests/manualclock.py``) and moves it by hand.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from manualclock import Clock
from realservices import Mosquitto, wait_until

from agent.config import AgentConfig, config_from_dict
from agent.outbox import Outbox
from agent.publisher import Publisher
from common.wire import ACK_COMMAND, ack_payload, command_topic, encode, report_topic

IDENTITY = {"province": "08", "commune": "02473"}


def agent_config(port: int, tmp_path: Path, ack_timeout_s: float) -> AgentConfig:
    identity = {**IDENTITY, "host": f"pc-{uuid.uuid4().hex[:6]}"}
    return config_from_dict(
        {
            "identity": identity,
            "mqtt": {"host": "127.0.0.1", "port": port},
            "spool": {"path": str(tmp_path / "spool.sqlite"), "ack_timeout_s": ack_timeout_s},
        }
    )


def two_reports_sent(publisher: Publisher, outbox: Outbox, config: AgentConfig) -> tuple[int, int]:
    """Two reports at the broker, awaiting the collector's acknowledgement; their ids."""
    ident = config.identity
    topic = report_topic(ident.province, ident.commune, ident.host, "metrics")
    for second in (1, 2):
        outbox.put(topic, encode({"v": 1, "ts": 1.7e9 + second, "system": {"cpu_percent": 1.0}}))
    wait_until(lambda: publisher.drain(10) >= 0 and outbox.awaiting_ack() == 2, 10, "both reports at the broker")
    first, second = (message.id for message in outbox.peek(2))
    return first, second


def acknowledge(port: int, config: AgentConfig, stream: str, seq: int) -> None:
    """The collector stored report ``seq`` (so the ones before it, unacknowledged, went missing)."""
    ident = config.identity
    topic = command_topic(ident.province, ident.commune, ident.host, ACK_COMMAND)
    payload = ack_payload(stream, [(seq, seq)]).decode()
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-m", payload], check=True)


def started(config: AgentConfig, clock: Callable[[], float] | None = None) -> tuple[Publisher, Outbox]:
    outbox = Outbox(config.spool)
    outbox.set_acks_heard(True)  # a collector acknowledged before: reports stay until acknowledged
    publisher = Publisher(config, outbox) if clock is None else Publisher(config, outbox, clock)
    publisher.start()
    wait_until(publisher.connected.is_set, 10, "the connection")
    return publisher, outbox


def test_a_wall_clock_stepped_back_an_hour_does_not_delay_a_missing_reports_re_send(
    mosquitto: Mosquitto, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = agent_config(mosquitto.port, tmp_path, ack_timeout_s=1)
    publisher, outbox = started(config)
    try:
        first, second = two_reports_sent(publisher, outbox, config)
        wall = time.time
        monkeypatch.setattr(time, "time", lambda: wall() - 3600)  # NTP steps the clock back an hour
        acknowledge(mosquitto.port, config, outbox.stream, second)
        # due one ack_timeout_s (1 s) after it was sent; with the wall clock, an hour later
        wait_until(lambda: publisher.drain(10) >= 0 and publisher.resent == 1, 10, "the first report sent again")
        assert [message.id for message in outbox.peek(10)] == [first]
    finally:
        monkeypatch.undo()
        publisher.stop(timeout_s=0.1)
        outbox.close()


def test_a_missing_report_is_sent_again_when_the_timers_clock_passes_ack_timeout(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    clock = Clock()
    config = agent_config(mosquitto.port, tmp_path, ack_timeout_s=120)
    publisher, outbox = started(config, clock)
    try:
        first, second = two_reports_sent(publisher, outbox, config)
        acknowledge(mosquitto.port, config, outbox.stream, second)
        wait_until(lambda: publisher.drain(10) >= 0 and outbox.depth() == 1, 10, "the second report released")
        clock.now += 119
        assert publisher.drain(10) == 0 and publisher.resent == 0  # not yet past ack_timeout_s
        clock.now += 2
        assert publisher.drain(10) == 1 and publisher.resent == 1
        assert [message.id for message in outbox.peek(10)] == [first]
    finally:
        publisher.stop(timeout_s=0.1)
        outbox.close()
