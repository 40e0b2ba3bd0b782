"""The collector's MQTT client reads its socket in large pieces (collector/ingest/consumer.py):
under a long steady stream it must still send what other threads queue (PUBACKs), or the broker,
hearing nothing for its keepalive, drops it and sends everything unacknowledged again."""

from __future__ import annotations

import queue
import threading
import time
import uuid
from collections.abc import Callable
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


def subscriber(client: mqtt.Client, port: int, client_id: str, topics: str, clean: bool = True) -> mqtt.Client:
    """``client`` (a BufferedClient or paho's own) connected with MQTT v5, subscribed at QoS 1."""
    properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
    properties.SessionExpiryInterval = 0 if clean else 600
    properties.ReceiveMaximum = 1000  # unacknowledged messages the broker may send
    subscribed = threading.Event()
    client.on_subscribe = lambda *_a: subscribed.set()
    client.on_connect = lambda c, *_a: c.subscribe(topics, qos=1)
    client.connect("127.0.0.1", port, clean_start=clean, properties=properties)
    client.loop_start()
    assert subscribed.wait(10), f"{client_id} not subscribed"
    return client


def test_buffered_client_delivers_every_kind_of_publish_as_paho_does(mosquitto: Mosquitto) -> None:
    """Its own read of whole PUBLISH packets (no properties, QoS 0/1) must give what paho gives,
    and leave the rest (properties, packets longer than one read) to paho, unchanged."""
    root = f"cons-{uuid.uuid4().hex[:8]}"
    received: dict[str, list[tuple[str, bytes, int, bool, object]]] = {"ours": [], "paho": []}

    def keep(name: str) -> Callable[[mqtt.Client, Any, mqtt.MQTTMessage], None]:
        def on_message(client: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            props = message.properties
            user = props.UserProperty if props is not None and hasattr(props, "UserProperty") else None
            received[name].append((message.topic, bytes(message.payload), message.qos, message.dup, user))
            if message.qos:
                client.ack(message.mid, message.qos)

        return on_message

    ours = BufferedClient(CallbackAPIVersion.VERSION2, client_id=f"{root}-ours", protocol=mqtt.MQTTv5, manual_ack=True)
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-paho", protocol=mqtt.MQTTv5, manual_ack=True)
    ours.on_message, paho.on_message = keep("ours"), keep("paho")
    clients = [subscriber(c, mosquitto.port, str(c._client_id), f"{root}/#") for c in (ours, paho)]
    with_user = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    with_user.UserProperty = ("k", "v")
    with_expiry = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
    with_expiry.MessageExpiryInterval = 600
    sent: list[tuple[str, bytes, int, Properties | None]] = [
        (f"{root}/a", b"small", 0, None),
        (f"{root}/a", b"small at qos 1", 1, None),
        (f"{root}/b", b"", 1, None),  # no payload
        (f"{root}/b", b"y" * 200, 1, None),  # a two-byte remaining length
        (f"{root}/c", b"z" * 300_000, 1, None),  # longer than one read of the socket
        (f"{root}/xã/đ", "tiếng Việt".encode(), 1, None),
        (f"{root}/d", b"with a user property", 1, with_user),
        (f"{root}/d", b"with an expiry", 0, with_expiry),
    ] + [(f"{root}/e/{i}", f"burst {i}".encode() * (i % 7), i % 2, None) for i in range(500)]
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-pub", protocol=mqtt.MQTTv5)
    publisher.max_inflight_messages_set(1000)
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    try:
        infos = [publisher.publish(topic, payload, qos, properties=props) for topic, payload, qos, props in sent]
        for info in infos:
            info.wait_for_publish(30)
        wait_until(lambda: min(len(got) for got in received.values()) >= len(sent), 60, "every message received")
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        for client in clients:
            client.loop_stop()
            client.disconnect()
    for qos in (0, 1):  # order holds within a QoS: the broker sends QoS 0 past QoS 1 waiting for acks
        ours_, paho_ = ([m for m in received[name] if m[2] == qos] for name in ("ours", "paho"))
        assert ours_ == paho_
        assert [(topic, payload) for topic, payload, _q, _d, _u in ours_] == [
            (topic, payload) for topic, payload, q, _p in sent if q == qos
        ]
    assert [m[4] for m in received["ours"] if m[1] == b"with a user property"] == [[("k", "v")]]


def test_ack_many_acknowledges_exactly_the_messages_it_names(mosquitto: Mosquitto) -> None:
    """Stored messages' PUBACKs go out as one write: the broker must take each of them, and
    send again (to the same persistent session) exactly the ones left unacknowledged."""
    root = f"acks-{uuid.uuid4().hex[:8]}"
    taken: queue.Queue[tuple[int, bytes, bool]] = queue.Queue()

    def session_client() -> BufferedClient:
        client = BufferedClient(CallbackAPIVersion.VERSION2, client_id=root, protocol=mqtt.MQTTv5, manual_ack=True)
        client.on_message = lambda _c, _u, m: taken.put((m.mid, bytes(m.payload), bool(m.dup)))
        return client

    first = subscriber(session_client(), mosquitto.port, root, f"{root}/#", clean=False)
    publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-pub")
    publisher.connect("127.0.0.1", mosquitto.port)
    publisher.loop_start()
    for info in [publisher.publish(f"{root}/t", str(i).encode(), 1) for i in range(300)]:
        info.wait_for_publish(30)
    messages = [taken.get(timeout=30) for _ in range(300)]
    acked = [mid for mid, _payload, _dup in messages[:200]]
    assert isinstance(first, BufferedClient)
    first.ack_many(acked)
    wait_until(lambda: not first.want_write(), 10, "the PUBACKs written")
    first.loop_stop()
    first.disconnect()
    second = subscriber(session_client(), mosquitto.port, root, f"{root}/#", clean=False)
    try:  # the session's unacknowledged messages come first, then a new one marks the end
        publisher.publish(f"{root}/t", b"end", 1).wait_for_publish(30)
        again = []
        while not again or again[-1][1] != b"end":
            again.append(taken.get(timeout=30))
    finally:
        publisher.loop_stop()
        publisher.disconnect()
        second.loop_stop()
        second.disconnect()
    assert [payload for _mid, payload, _dup in again] == [str(i).encode() for i in range(200, 300)] + [b"end"]
    again.pop()
    assert all(dup for _mid, _payload, dup in again)
