"""The collector's MQTT client reads its socket in large pieces (collector/ingest/consumer.py):
under a long steady stream it must still send what other threads queue (PUBACKs), or the broker,
hearing nothing for its keepalive, drops it and sends everything unacknowledged again."""

from __future__ import annotations

import queue
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from realservices import Mosquitto, wait_until

from collector.ingest.consumer import BufferedClient

MESSAGES = 10_000
KEEPALIVE_S = 2  # the broker drops a client it has not heard from for 1.5 times this


def session(port: int) -> BufferedClient:
    client = BufferedClient(CallbackAPIVersion.VERSION2, client_id="consumer", protocol=mqtt.MQTTv5, manual_ack=True)
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 3600
    properties.ReceiveMaximum = MESSAGES
    client.connect("127.0.0.1", port, keepalive=KEEPALIVE_S, clean_start=False, properties=properties)
    return client


def queue_messages(port: int) -> None:
    """A persistent session subscribed, then every message published while it is away."""
    client = session(port)
    client.subscribe("t/#", qos=1)
    client.loop(1)
    client.disconnect()
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="publisher")
    publisher.max_inflight_messages_set(1000)
    publisher.max_queued_messages_set(0)
    publisher.connect("127.0.0.1", port)
    publisher.loop_start()
    sent = [publisher.publish(f"t/{i % 100}", b"x" * 900, qos=1) for i in range(MESSAGES)]
    for info in sent:
        info.wait_for_publish(60)
    publisher.loop_stop()
    publisher.disconnect()


def test_a_long_stream_is_taken_without_losing_the_connection(own_broker: Mosquitto) -> None:
    broker = own_broker
    queue_messages(broker.port)
    seen = {"messages": 0, "redelivered": 0, "disconnects": 0}
    to_ack: queue.Queue[tuple[int, int] | None] = queue.Queue()

    def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        seen["messages"] += 1
        seen["redelivered"] += message.dup
        time.sleep(0.0004)  # a busy collector: the stream lasts longer than the keepalive
        to_ack.put((message.mid, message.qos))

    def on_disconnect(*_: Any) -> None:
        seen["disconnects"] += 1

    client = session(broker.port)
    client.on_message = on_message
    client.on_disconnect = on_disconnect

    def acknowledge() -> None:  # acks come from another thread, as the writer's do
        while (item := to_ack.get()) is not None:
            client.ack(*item)

    acker = threading.Thread(target=acknowledge, daemon=True)
    acker.start()
    client.loop_start()
    try:
        wait_until(lambda: seen["messages"] >= MESSAGES, 120, f"every message taken ({seen})")
    finally:
        client.loop_stop()
        to_ack.put(None)
    assert seen == {"messages": MESSAGES, "redelivered": 0, "disconnects": 0}
