"""The agent's main loop wakes as seldom as its work allows, and a wake with nothing new costs no query.

Most of an idle agent's CPU is paid per wake of its main loop, so jobs share wakes (they run on
grids that stay in step) and the publisher asks the spool only what a wake can have changed while
still sending a missing report again. The publisher's test uses a real Mosquitto, the agent's
real publisher and outbox in this process; the outbox counts the queries ``drain`` and ``busy`` make.
"""

from __future__ import annotations

import subprocess
import uuid
from collections import Counter
from pathlib import Path

from realservices import Mosquitto, wait_until

from agent.config import SpoolConfig, config_from_dict
from agent.outbox import Outbox
from agent.publisher import Publisher, network_loop_timeout
from agent.runner import next_run
from agent.spool import SpooledMessage
from common.wire import ACK_COMMAND, ack_payload, command_topic, encode, report_topic


class CountingOutbox(Outbox):
    """The agent's outbox, counting the queries that list reports to send."""

    def __init__(self, config: SpoolConfig) -> None:
        super().__init__(config)
        self.asked: Counter[str] = Counter()

    def unsent(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        self.asked["unsent"] += 1
        return super().unsent(limit, after_id)

    def due(self, limit: int, sent_before: float, connection: int, lost_below: int) -> list[SpooledMessage]:
        self.asked["due"] += 1
        return super().due(limit, sent_before, connection, lost_below)

    def earliest_sent(self, since: float) -> float | None:
        self.asked["earliest_sent"] += 1
        return super().earliest_sent(since)


def test_idle_wakes_ask_the_spool_nothing_and_a_report_gone_missing_is_still_sent_again(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    identity = {"province": "08", "commune": "02473", "host": f"pc-{uuid.uuid4().hex[:6]}"}
    config = config_from_dict(
        {
            "identity": identity,
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
            "spool": {"path": str(tmp_path / "spool.sqlite"), "ack_timeout_s": 1},
        }
    )
    outbox = CountingOutbox(config.spool)
    outbox.set_acks_heard(True)  # a collector acknowledged before: reports stay until acknowledged
    publisher = Publisher(config, outbox)
    publisher.start()
    try:
        wait_until(publisher.connected.is_set, 10, "the connection")
        topic = report_topic(identity["province"], identity["commune"], identity["host"], "metrics")
        for second in (1, 2):
            outbox.put(topic, encode({"v": 1, "ts": 1.7e9 + second, "system": {"cpu_percent": 1.0}}))
        wait_until(lambda: publisher.drain(10) >= 0 and outbox.awaiting_ack() == 2, 10, "both reports at the broker")

        outbox.asked.clear()
        for _ in range(20):  # twenty wakes with nothing new: no PUBACK, no ack, no report
            assert not publisher.busy() and publisher.drain(10) == 0
        assert outbox.asked == {}

        first, second = (message.id for message in outbox.peek(2))
        ack = command_topic(identity["province"], identity["commune"], identity["host"], ACK_COMMAND)
        payload = ack_payload(outbox.stream, [(second, second)]).decode()
        subprocess.run(["mosquitto_pub", "-p", str(mosquitto.port), "-q", "1", "-t", ack, "-m", payload], check=True)
        # the collector stored the later report: the first went missing, and goes again after ack_timeout_s
        wait_until(lambda: publisher.drain(10) >= 0 and publisher.resent == 1, 10, "the first report sent again")
        assert [message.id for message in outbox.peek(10)] == [first]
    finally:
        publisher.stop(timeout_s=0.1)
        outbox.close()


def test_jobs_stay_in_step_so_the_metrics_and_the_probes_wake_the_loop_no_more_than_the_usb_poll() -> None:
    intervals = (5.0, 30.0, 60.0)  # the USB poll, the metrics and the probes, by default
    due = dict.fromkeys(intervals, 0.0)
    now, wakes = 1000.0, 0
    while now < 1000.0 + 600:
        for interval in intervals:
            if now >= due[interval]:
                due[interval] = next_run(due[interval], interval, now)
        wakes += 1
        now = min(due.values()) + 0.004  # the loop wakes a few milliseconds late every time
    assert wakes == 600 / 5  # one wake per poll: the 30 s and 60 s jobs never need one of their own
    assert due[30.0] - due[5.0] in (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)  # still on the poll's grid
    assert next_run(due[30.0], 30.0, now + 3600) == now + 3600 + 30  # after a suspend: a new grid from now


def test_the_network_thread_sleeps_15_s_when_idle_and_never_more_than_a_quarter_keepalive() -> None:
    assert network_loop_timeout(60) == 15.0  # the default keepalive: a PINGREQ at most 15 s late, of 90
    assert (network_loop_timeout(20), network_loop_timeout(2), network_loop_timeout(600)) == (5.0, 1.0, 15.0)
    assert network_loop_timeout(0) == 15.0  # keepalive off
