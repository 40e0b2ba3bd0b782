"""Reports held while no collector has said its release: a kind release 0.1.0 did not know
(peripherals) stays in the spool, neither sent nor deleted, and goes once a collector that knows
it answers the hello (docs/en/versions.md). A real Mosquitto, the agent's real
publisher and outbox in this process, a listener on the broker for what it really got.
"""

from __future__ import annotations

import json
import subprocess
import threading
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Mosquitto, wait_until

from agent.config import AgentConfig, config_from_dict
from agent.outbox import Outbox
from agent.publisher import BROKER, Publisher
from common.version import VERSION
from common.wire import ACK_COMMAND, ack_payload, command_topic, encode, report_topic

IDENTITY = {"province": "08", "commune": "02473"}
PERIPHERALS = {"v": 1, "ts": 1_700_000_001, "peripherals": [{"device": "0529-0620-1", "kind": "token"}]}
METRICS = {"v": 1, "ts": 1_700_000_002, "system": {"cpu_percent": 1.0}, "agent": {"spool_ok": True}}


def agent_config(port: int, tmp_path: Path) -> AgentConfig:
    identity = {**IDENTITY, "host": f"pc-{uuid.uuid4().hex[:6]}"}
    spool = {"path": str(tmp_path / "spool.sqlite"), "ack_wait_s": 0}  # broker-level release at once
    return config_from_dict({"identity": identity, "mqtt": {"host": "127.0.0.1", "port": port}, "spool": spool})


class Listener:
    """What the broker took on the host's report topics: kind -> payloads."""

    def __init__(self, port: int, host: str) -> None:
        self.kinds: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()
        self._client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"listener-{host}")
        self._client.on_message = self._keep
        self._client.connect("127.0.0.1", port)
        self._client.subscribe(f"commune/v1/+/+/{host}/+", qos=1)
        self._client.loop_start()

    def _keep(self, _c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.kinds.setdefault(message.topic.rsplit("/", 1)[1], []).append(json.loads(message.payload))

    def got(self, kind: str) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.kinds.get(kind, ()))

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def answer_hello(port: int, config: AgentConfig, stream: str, caps: tuple[str, ...]) -> None:
    """A current collector's answer to the agent's hello (an ack with no ranges)."""
    ident = config.identity
    topic = command_topic(ident.province, ident.commune, ident.host, ACK_COMMAND)
    payload = ack_payload(stream, [], VERSION, caps).decode()
    subprocess.run(["mosquitto_pub", "-p", str(port), "-q", "1", "-t", topic, "-m", payload], check=True)


def test_a_kind_unknown_to_0_1_is_held_in_the_spool_until_a_collector_that_knows_it_answers(
    mosquitto: Mosquitto, tmp_path: Path
) -> None:
    config = agent_config(mosquitto.port, tmp_path)
    ident = config.identity
    listener = Listener(mosquitto.port, ident.host)
    outbox = Outbox(config.spool)
    publisher = Publisher(config, outbox)  # no collector has answered: it may be 0.1.0
    publisher.start()
    try:
        wait_until(publisher.connected.is_set, 10, "the connection")
        outbox.put(report_topic(ident.province, ident.commune, ident.host, "peripherals"), encode(PERIPHERALS))
        outbox.put(report_topic(ident.province, ident.commune, ident.host, "metrics"), encode(METRICS))
        wait_until(lambda: publisher.drain(10) >= 0 and len(listener.got("metrics")) == 1, 10, "the metrics report")
        wait_until(lambda: publisher.drain(10) >= 0 and outbox.depth() <= 1, 10, "the metrics report's PUBACK")
        assert publisher.mode == BROKER and publisher.collector_version is None
        assert listener.got("metrics")[0]["agent"] == {}  # what 0.1.0 did not know is left out
        # the peripherals report is held: still in the spool, not in flight, and nothing to do
        assert [message.topic.rsplit("/", 1)[1] for message in outbox.peek(10)] == ["peripherals"]
        assert outbox.in_flight == set() and publisher.inflight() == 0
        assert publisher.drain(10) == 0 and not publisher.busy() and publisher.held() == 1  # no spinning on it
        assert not listener.got("peripherals")
        answer_hello(mosquitto.port, config, outbox.stream, ("peripherals",))  # a current collector, acks off
        wait_until(lambda: publisher.drain(10) >= 0 and outbox.depth() == 0, 10, "the held report sent")
        wait_until(lambda: len(listener.got("peripherals")) == 1, 10, "the held report at the broker")
        assert listener.got("peripherals") == [PERIPHERALS]
        assert publisher.mode == BROKER and publisher.collector_version == VERSION and publisher.held() == 0
    finally:
        publisher.stop(timeout_s=0.1)
        outbox.close()
        listener.close()
