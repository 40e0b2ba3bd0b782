"""The benches' bare MQTT 3.1.1 client (``devtools/rawmqtt.py``) against a real Mosquitto, read back by
a real paho client: QoS 1 messages beyond the window arrive once each, in order, byte for byte;
packet ids wrap past 65,535 and an id still in flight is never sent again; a subscription gets
QoS 0 and 1 messages and its PUBACKs keep the broker from sending them again; an idle client pings.
The parser is also fed packets split at every byte, with no broker at all.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Mosquitto, wait_until

from devtools.rawmqtt import (
    MAX_PACKET_ID,
    PINGRESP,
    PUBACK,
    MqttProtocolError,
    RawMqttClient,
    packet,
    prepare,
    publish_packet,
    read_remaining_length,
    remaining_length,
    utf8,
)


class Paho:
    """A paho client subscribed at QoS 1 to one test root, keeping (topic, payload, qos) in arrival order."""

    def __init__(self, port: int, root: str) -> None:
        self.root = root
        self.received: list[tuple[str, bytes, int]] = []
        self._lock = threading.Lock()
        subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-paho")
        self.client.on_subscribe = lambda *_a: subscribed.set()
        self.client.on_connect = lambda c, *_a: c.subscribe(f"{root}/to-paho/#", qos=1)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert subscribed.wait(10), "paho not subscribed"

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.received.append((message.topic, bytes(message.payload), message.qos))

    def on(self, topic: str) -> list[tuple[str, bytes, int]]:
        with self._lock:
            return [item for item in self.received if item[0] == topic]


@pytest.fixture(scope="module")
def paho(mosquitto: Mosquitto) -> Iterator[Paho]:
    watcher = Paho(mosquitto.port, f"raw-{uuid.uuid4().hex[:8]}")
    yield watcher
    watcher.client.disconnect()
    watcher.client.loop_stop()


def raw_client(mosquitto: Mosquitto, name: str, **options: Any) -> RawMqttClient:
    client = RawMqttClient("127.0.0.1", mosquitto.port, f"{name}-{uuid.uuid4().hex[:8]}", **options)
    client.connect()
    return client


def payloads(count: int) -> list[bytes]:
    """Distinct payloads of many sizes: 1- to 3-byte remaining lengths, some longer than one TCP segment."""
    return [
        f"{i:05d}:".encode() + bytes([65 + i % 26]) * (i * 37 % 700 + (20_000 if i % 97 == 0 else 0))
        for i in range(count)
    ]


def publish_and_read_back(
    client: RawMqttClient, paho: Paho, topic: str, count: int, **ids: int
) -> tuple[list[bytes], list[int]]:
    sent = payloads(count)
    prepared = prepare([(topic, body) for body in sent], **ids)
    client.publish(prepared)
    client.wait_acked(30)
    wait_until(lambda: len(paho.on(topic)) >= count, 30, f"{count} messages on {topic}", 0.02)
    client.disconnect()
    return [body for _t, body, _q in paho.on(topic)], prepared.ids


def test_qos1_messages_beyond_the_window_arrive_once_each_in_order_with_exact_payloads(
    mosquitto: Mosquitto, paho: Paho
) -> None:
    client = raw_client(mosquitto, "window", inflight=20)
    topic = f"{paho.root}/to-paho/window"
    received, _ids = publish_and_read_back(client, paho, topic, 300)
    assert received == payloads(300)
    assert client.acked == 300
    assert client.most_in_flight == 20  # the window filled, and no more went out unacknowledged


def test_packet_ids_wrap_past_65535_to_1_and_every_publish_is_acknowledged(mosquitto: Mosquitto, paho: Paho) -> None:
    client = raw_client(mosquitto, "wrap")
    topic = f"{paho.root}/to-paho/wrap"
    received, ids = publish_and_read_back(client, paho, topic, 150, first_id=MAX_PACKET_ID - 49)
    assert ids[49:51] == [MAX_PACKET_ID, 1]
    assert received == payloads(150)
    assert client.acked == 150


def test_an_id_range_smaller_than_the_window_never_sends_an_id_still_in_flight(
    mosquitto: Mosquitto, paho: Paho
) -> None:
    client = raw_client(mosquitto, "reuse", inflight=100)
    topic = f"{paho.root}/to-paho/reuse"
    received, ids = publish_and_read_back(client, paho, topic, 120, low_id=1, high_id=8)
    assert set(ids) == set(range(1, 9))
    assert received == payloads(120)
    assert client.acked == 120
    assert client.most_in_flight <= 8  # each id waited for its PUBACK before going out again


def test_paced_publishes_go_out_in_order_none_before_its_time(mosquitto: Mosquitto, paho: Paho) -> None:
    client = raw_client(mosquitto, "paced")
    topic = f"{paho.root}/to-paho/paced"
    prepared = prepare([(topic, body) for body in payloads(40)])
    start, rate = time.time() + 0.05, 400.0
    times = client.publish(prepared, rate, start)
    client.wait_acked(30)
    client.disconnect()
    assert all(sent >= start + j / rate for j, sent in enumerate(times)), "a publish went out before its time"
    assert times == sorted(times)
    wait_until(lambda: len(paho.on(topic)) >= 40, 30, "the paced messages", 0.02)
    assert [body for _t, body, _q in paho.on(topic)] == payloads(40)


def test_a_subscription_gets_qos1_and_qos0_messages_and_its_pubacks_stop_any_resend(mosquitto: Mosquitto) -> None:
    """250 QoS 1 messages all arrive only if PUBACKs flow (the broker sends at most 100 unacknowledged),
    and a session taken up again gets nothing sent again before a new message."""
    root = f"raw-sub-{uuid.uuid4().hex[:8]}"
    got: list[tuple[str, bytes]] = []
    client_id = f"{root}-raw"

    def subscriber() -> RawMqttClient:
        return RawMqttClient(
            "127.0.0.1", mosquitto.port, client_id, clean_session=False, on_message=lambda t, p: got.append((t, p))
        )

    raw = subscriber()
    raw.connect()
    assert raw.subscribe(f"{root}/#", qos=1) == 1
    sender = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{root}-sender")
    sender.connect("127.0.0.1", mosquitto.port)
    sender.loop_start()
    try:
        expected = [(f"{root}/qos1/{i}", f"message {i}".encode() * (1 + i % 5)) for i in range(250)]
        expected.append((f"{root}/big", b"x" * 300_000))  # longer than one read of the client's
        for topic, body in expected:
            sender.publish(topic, body, qos=1).wait_for_publish(10)
        sender.publish(f"{root}/qos0", b"at most once", qos=0).wait_for_publish(10)
        assert raw.wait_for(lambda: len(got) > len(expected), 30), f"{len(got)} of {len(expected) + 1} arrived"
        # QoS 0 is not held back with the QoS 1 messages beyond the broker's window: it may come first
        qos0 = (f"{root}/qos0", b"at most once")
        assert got.count(qos0) == 1
        assert [item for item in got if item != qos0] == expected
        raw.disconnect()

        got.clear()
        again = subscriber()
        assert again.connect(), "the broker kept no session: a resend could not have shown"
        sender.publish(f"{root}/marker", b"after", qos=1).wait_for_publish(10)
        assert again.wait_for(lambda: (f"{root}/marker", b"after") in got, 30)
        assert got == [(f"{root}/marker", b"after")], "the broker sent again what had been acknowledged"
        again.disconnect()
        forget = RawMqttClient("127.0.0.1", mosquitto.port, client_id)  # a clean session: the broker forgets it
        forget.connect()
        forget.disconnect()
    finally:
        sender.disconnect()
        sender.loop_stop()


def test_an_idle_client_pings_within_half_its_keepalive(mosquitto: Mosquitto) -> None:
    client = raw_client(mosquitto, "idle", keepalive_s=1)
    assert client.wait_for(lambda: client.pongs >= 1, 10), "no PINGRESP"
    assert client.pings >= 1
    client.disconnect()


def test_packets_split_anywhere_across_reads_are_handled_whole() -> None:
    seen: list[tuple[str, bytes]] = []
    client = RawMqttClient("127.0.0.1", 1, "parser", on_message=lambda t, p: seen.append((t, p)))
    qos0 = packet(0x30, utf8("a/qos0") + b"plain")
    stream = publish_packet("a/small", b"s" * 100, 7) + qos0 + bytes([PINGRESP, 0])
    stream += publish_packet("a/large", b"L" * 20_000, 65535)  # a 3-byte remaining length
    expected = [("a/small", b"s" * 100), ("a/qos0", b"plain"), ("a/large", b"L" * 20_000)]
    for piece in (1, 2, 3, 5, 4096, len(stream)):
        seen.clear()
        owed = b"".join(client.feed(stream[i : i + piece]) for i in range(0, len(stream), piece))
        assert seen == expected, f"pieces of {piece} bytes"
        assert owed == bytes([PUBACK, 2, 0, 7, PUBACK, 2, 0xFF, 0xFF]), f"pieces of {piece} bytes"
    assert client.pongs == 6


def test_a_puback_for_an_id_not_in_flight_and_a_qos2_publish_are_protocol_errors() -> None:
    client = RawMqttClient("127.0.0.1", 1, "parser")
    with pytest.raises(MqttProtocolError, match="packet id 9"):
        client.feed(bytes([PUBACK, 2, 0, 9]))
    client = RawMqttClient("127.0.0.1", 1, "parser")
    with pytest.raises(MqttProtocolError, match="QoS 2"):
        client.feed(packet(0x34, utf8("a/b") + b"\x00\x01" + b"body"))


@pytest.mark.parametrize("size", [0, 127, 128, 16_383, 16_384, 2_097_151, 2_097_152, 268_435_455])
def test_remaining_lengths_read_back_as_written(size: int) -> None:
    encoded = remaining_length(size)
    assert read_remaining_length(b"\x30" + encoded, 1, 1 + len(encoded)) == (1 + len(encoded), size)
    assert read_remaining_length(b"\x30" + encoded, 1, len(encoded)) is None  # one byte short


def test_a_remaining_length_of_five_bytes_is_a_protocol_error() -> None:
    with pytest.raises(MqttProtocolError, match="more than 4 bytes"):
        read_remaining_length(b"\x30\xff\xff\xff\xff\x01", 1, 6)
