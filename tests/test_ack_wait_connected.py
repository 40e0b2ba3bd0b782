"""``[spool] ack_wait_s`` counts only time connected: an agent that has not yet heard a collector's
answer when its line goes down waits again, once back, before it falls back to broker-level release.

Counted from its first connection instead, an outage longer than ``ack_wait_s`` made the agent fall
back the moment it reconnected, before the collector could answer its hello: its reports then went
without the fields and kinds release 0.1.0 did not know. A real Mosquitto (stopped and started), the
agent's real publisher and outbox in this process.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from realservices import Mosquitto, wait_until

from agent.config import config_from_dict
from agent.outbox import Outbox
from agent.publisher import BROKER, WAITING, Publisher
from common.wire import encode, report_topic

pytestmark = pytest.mark.services

ACK_WAIT_S = 5.0  # the checks right after the reconnection come well within it


def test_the_wait_for_a_collectors_answer_starts_again_at_each_connection(
    own_broker: Mosquitto, tmp_path: Path
) -> None:
    identity = {"province": "08", "commune": "02473", "host": f"pc-{uuid.uuid4().hex[:6]}"}
    config = config_from_dict(
        {
            "identity": identity,
            "mqtt": {"host": "127.0.0.1", "port": own_broker.port},
            "spool": {"path": str(tmp_path / "spool.sqlite"), "ack_wait_s": ACK_WAIT_S},
        }
    )
    outbox = Outbox(config.spool)  # a new spool: no collector has acknowledged it
    publisher = Publisher(config, outbox)
    publisher.start()
    try:
        wait_until(publisher.connected.is_set, 10, "the first connection")
        topic = report_topic("08", "02473", identity["host"], "metrics")
        outbox.put(topic, encode({"v": 1, "ts": 1.7e9, "system": {"cpu_percent": 1.0}}))
        assert publisher.drain(10) == 0 and publisher.mode == WAITING  # no collector has answered: held
        own_broker.stop()  # the line goes down before any collector answers
        wait_until(lambda: not publisher.connected.is_set(), 10, "the connection lost")
        time.sleep(ACK_WAIT_S + 1)  # offline longer than ack_wait_s
        own_broker.start()
        wait_until(publisher.connected.is_set, 40, "the connection back")
        assert (publisher.drain(10), publisher.mode) == (0, WAITING)  # within ack_wait_s of this connection
        # connected for ack_wait_s with no answer: it falls back, and the report goes
        wait_until(lambda: publisher.drain(10) >= 0 and publisher.mode == BROKER, 10, "the fallback")
        wait_until(lambda: publisher.drain(10) >= 0 and outbox.depth() == 0, 10, "the report released at PUBACK")
    finally:
        publisher.stop(timeout_s=0.1)
        outbox.close()
