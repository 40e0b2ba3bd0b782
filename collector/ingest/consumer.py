"""MQTT side of the collector: a persistent session on every report topic.

The session (fixed client id, clean_start off, long expiry) makes the broker hold QoS 1
reports while the collector restarts. Each message is handed to the ingestor; its lines go
to the batch writer. Acknowledgements are manual: a message is acknowledged only once its
lines are stored (InfluxDB or the disk buffer), so the broker re-sends whatever a killed
collector had not stored. A numbered report is marked stored in the receipts at that same
moment; the acknowledger then tells its agent (``collector/ingest/acks.py``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.config import MqttSettings
from collector.ingest.checks import Ingestor
from collector.ingest.receipts import Receipt, Receipts
from collector.ingest.writer import BatchWriter
from common.wire import TOPIC_ROOT

log = logging.getLogger("commune_collector.mqtt")

SUBSCRIPTION = f"{TOPIC_ROOT}/+/+/+/+"
READ_CHUNK = 256 * 1024
MAX_QUEUED = 1000
PUBACK_HEAD = bytes([mqtt.PUBACK, 2])  # a PUBACK, then its 2-byte packet id


class BufferedClient(mqtt.Client):
    """paho's client, reading its socket in large pieces.

    paho reads each packet with several ``recv`` calls (its type, its length byte by byte, then
    the rest) and waits in ``select`` before each packet: a system call or more per byte of header,
    under load a large part of the collector's receive path. Here one ``recv`` takes what the
    socket holds (up to ``READ_CHUNK``) and paho's small reads are served from it; ``loop_read``
    goes on while bytes are buffered, since ``select`` cannot see them.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inbox = b""
        self._inbox_at = 0

    def _sock_recv(self, bufsize: int) -> bytes:
        if self._inbox_at >= len(self._inbox):
            self._inbox, self._inbox_at = super()._sock_recv(max(bufsize, READ_CHUNK)), 0
        start = self._inbox_at
        self._inbox_at = min(start + bufsize, len(self._inbox))
        return self._inbox[start : self._inbox_at]

    def _sock_close(self) -> None:
        self._inbox, self._inbox_at = b"", 0  # a new connection starts with nothing of the old one
        super()._sock_close()

    def _packet_read(self) -> MQTTErrorCode:
        if self._in_packet["command"] == 0:  # between packets: one wholly buffered is read in place
            fast = self._buffered_publish()
            if fast is not None:
                return fast
        return super()._packet_read()

    def _buffered_publish(self) -> MQTTErrorCode | None:
        """A QoS 0/1 PUBLISH without properties lying whole in the buffer, handed to ``on_message``
        without paho's byte-by-byte reads or its ``Properties`` object (13 µs a message); None for
        anything else (other packets, properties, QoS 2, a packet not all here yet), which paho
        reads as always from the same bytes. The message is the one paho would build, with
        ``properties`` None: the broker sets none on what agents publish."""
        inbox, at = self._inbox, self._inbox_at
        end = len(inbox)
        if end - at < 8 or inbox[at] & 0xF0 != mqtt.PUBLISH or inbox[at] & 0x04:
            return None
        command, pos, length, shift = inbox[at], at + 1, 0, 0
        while True:  # the remaining length: up to 4 bytes, 7 bits each
            byte = inbox[pos]
            length |= (byte & 0x7F) << shift
            pos += 1
            if not byte & 0x80:
                break
            shift += 7
            if shift > 21 or pos >= end:
                return None
        last = pos + length
        qos = (command & 0x06) >> 1
        topic_end = pos + 2 + ((inbox[pos] << 8) | inbox[pos + 1]) if last <= end and length >= 3 else last
        props_at = topic_end + 2 * (qos > 0)
        if topic_end == pos + 2 or props_at >= last or inbox[props_at] != 0:
            return None  # no topic (an alias, in properties), properties, or not all here yet
        message = mqtt.MQTTMessage(
            (inbox[topic_end] << 8) | inbox[topic_end + 1] if qos else 0, inbox[pos + 2 : topic_end]
        )
        message.dup, message.qos, message.retain = bool(command & 0x08), qos, bool(command & 0x01)
        message.payload = inbox[props_at + 1 : last]
        message.timestamp = self._last_bytes_received = mqtt.time_func()
        self._inbox_at = last
        self._handle_on_message(message)
        return MQTTErrorCode.MQTT_ERR_SUCCESS

    def ack_many(self, mids: list[int]) -> MQTTErrorCode:
        """PUBACKs for QoS 1 messages taken with manual acks, queued as one write (in order)."""
        return self._packet_queue(mqtt.PUBACK, b"".join([PUBACK_HEAD + mid.to_bytes(2) for mid in mids]), 0, 0)

    def loop_read(self, max_packets: int = 1) -> MQTTErrorCode:
        rc = super().loop_read(max_packets)
        while rc == MQTTErrorCode.MQTT_ERR_SUCCESS and self._inbox_at < len(self._inbox) and self._sock:
            if self.want_write():
                # what other threads queued (PUBACKs, acks to agents) goes out between packets, as
                # paho's own loop sends it after each packet: under a steady stream this loop may
                # not return for long, and a broker that hears nothing drops the connection
                rc = self.loop_write()
                if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or not self._sock:
                    return rc
            rc = super().loop_read(1)
        return rc


def subscriptions(provinces: list[str]) -> list[str]:
    """The topic filters of a collector taking these provinces (every province when empty)."""
    return [f"{TOPIC_ROOT}/{code}/+/+/+" for code in provinces] or [SUBSCRIPTION]


class Consumer:
    def __init__(
        self, settings: MqttSettings, ingestor: Ingestor, writer: BatchWriter, receipts: Receipts | None = None
    ) -> None:
        self.settings = settings
        self._ingestor = ingestor
        self._writer = writer
        self._receipts = receipts
        self.connected = threading.Event()
        self._paused = threading.Event()
        self._connection = 0  # PUBACK packet ids belong to one connection; a later one must not get them
        self.on_lost: list[Callable[[float], None]] = []  # told the time the connection dropped
        self.on_regained: list[Callable[[float], None]] = []  # told the time of each connection after the first
        client = BufferedClient(
            CallbackAPIVersion.VERSION2, client_id=settings.client_id, protocol=mqtt.MQTTv5, manual_ack=True
        )
        if settings.username:
            client.username_pw_set(settings.username, settings.password.get_secret_value() or None)
        if settings.tls:
            client.tls_set(ca_certs=settings.ca_file or None)
        client.reconnect_delay_set(min_delay=1, max_delay=30)
        # QoS 1 messages (acks, commands) waiting to go out. Unbounded, a flood of acks behind a
        # slow broker wrapped paho's 16-bit message ids onto queued ones, and it refused those
        # publishes; bounded, it refuses early and the acknowledger keeps what is owed for later.
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self.client = client
        # (connection, mid, receipt) of messages stored, PUBACK not yet sent, receipt not yet marked
        self._stored: list[tuple[int, int, Receipt | None]] = []
        writer.after_batch.append(self._send_stored_acks)  # first: before receipts commit, as one by one

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.settings.session_expiry_s
        properties.ReceiveMaximum = self.settings.receive_maximum  # unacknowledged messages the broker may send
        log.info("connecting", extra={"broker": f"{self.settings.host}:{self.settings.port}"})
        self.client.connect_async(
            self.settings.host, self.settings.port, keepalive=30, clean_start=False, properties=properties
        )
        self.client.loop_start()

    def pause(self) -> None:
        """Take no more messages (the broker keeps them for the next start) while the rest stops."""
        self._paused.set()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()

    def publish_command(self, topic: str, payload: bytes) -> bool:
        """Send a command to an agent (QoS 1); False when the broker cannot take it now."""
        return self.client.publish(topic, payload, qos=1).rc == 0

    def _on_connect(self, client: mqtt.Client, _u: Any, flags: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.error("broker refused connection", extra={"reason": str(reason)})
            return
        self._connection += 1
        if self.settings.provinces:
            # a persistent session keeps the filters of an earlier configuration: drop the widest
            client.unsubscribe(SUBSCRIPTION)
        client.subscribe([(topic, 1) for topic in subscriptions(self.settings.provinces)])
        self.connected.set()
        log.info("connected", extra={"session_present": bool(flags.session_present)})
        if self._connection > 1:
            for regained in self.on_regained:
                regained(time.time())

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.connected.clear()
        log.warning("disconnected; will reconnect", extra={"reason": str(reason)})
        if not self._paused.is_set():  # not our own stop
            for lost in self.on_lost:
                lost(time.time())

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        if self._paused.is_set():
            return  # never acknowledged: the broker sends it again to the next collector
        ack = self._acker(message)
        try:
            topic = message.topic
        except UnicodeDecodeError:
            self._ingestor.metrics.reject("bad_topic", "topic is not UTF-8", repr(message._topic[:80]))
            ack()
            return
        handled = self._ingestor.handle_message(topic, bytes(message.payload), time.time())
        if handled.receipt is not None and self._receipts is not None and not handled.lines:
            ack = self._stored_then(handled.receipt, self._receipts, ack)
        if handled.lines:
            self._writer.put(handled.lines, self._batched_acker(message, handled.receipt))
        else:
            ack()

    @staticmethod
    def _stored_then(receipt: Receipt, receipts: Receipts, ack: Callable[[], None]) -> Callable[[], None]:
        def stored() -> None:
            receipts.stored(receipt)
            ack()

        return stored

    def _acker(self, message: mqtt.MQTTMessage) -> Callable[[], None]:
        connection, mid, qos = self._connection, message.mid, message.qos

        def ack() -> None:
            if qos > 0 and connection == self._connection and self.connected.is_set():
                self.client.ack(mid, qos)

        return ack

    def _batched_acker(self, message: mqtt.MQTTMessage, receipt: Receipt | None) -> Callable[[], None]:
        """The ack of a message the writer stores: its PUBACK goes out with its batch's others, and
        its receipt (a numbered report) is marked stored with theirs."""
        receipts = self._receipts
        if receipts is None:
            receipt = None
        if message.qos != 1:
            ack = self._acker(message)
            return ack if receipts is None or receipt is None else self._stored_then(receipt, receipts, ack)
        connection, mid = self._connection, message.mid
        return lambda: self._stored.append((connection, mid, receipt))

    def _send_stored_acks(self) -> None:
        """After each stored batch (writer thread): its numbered reports marked stored in the
        receipts at once, then its messages' PUBACKs in one write. One at a time, each PUBACK was
        a system call here and a wake of paho's thread, and each receipt a lock and a closure."""
        taken, self._stored = self._stored, []
        if self._receipts is not None:
            self._receipts.stored_all([receipt for _c, _m, receipt in taken if receipt is not None])
        mids = [mid for connection, mid, _r in taken if connection == self._connection]
        if mids and self.connected.is_set():
            self.client.ack_many(mids)
