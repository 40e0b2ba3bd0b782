"""A bare MQTT 3.1.1 client for the benches: publishers that cost almost nothing.

Why: a bench's publishers stand for thousands of remote commune PCs, whose CPU is not on the
province server, yet here they share its two cores with the broker, the collector and InfluxDB.
paho spends about 85 µs of CPU on each QoS 1 publish (a message object, locks, its network
thread, a queue scan per acknowledgement): more than the collector it feeds. This client does
only what the protocol needs. Every PUBLISH is built as bytes before the clock starts (``prepare``);
many go out in one ``sendall``; PUBACKs are read in large ``recv`` calls and parsed in place; a
window keeps at most ``inflight`` unacknowledged (the broker's ``max_inflight_messages``), and a
packet id still in flight is never sent again.

It speaks real MQTT 3.1.1 to the real broker: CONNECT/CONNACK, PUBLISH at QoS 1 with PUBACK both
ways (an incoming QoS 0 or 1 PUBLISH goes to ``on_message``), SUBSCRIBE/SUBACK, PINGREQ when
nothing was sent for half the keepalive, DISCONNECT. It has no TLS, no QoS 2 and no reconnect: a
bench that loses its broker has failed, and says so. Benches and their tests only; agents and the
collector use paho.
"""

from __future__ import annotations

import math
import select
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 0x10, 0x20, 0x30, 0x40, 0x80, 0x90
PINGREQ, PINGRESP, DISCONNECT = 0xC0, 0xD0, 0xE0
MAX_PACKET_ID = 65535
READ_CHUNK = 256 * 1024
PACE_TICK_S = 0.002  # a paced publisher wakes at most this often, and sends all that is due
CONNACK_REFUSALS = {
    1: "unacceptable protocol version",
    2: "client identifier rejected",
    3: "server unavailable",
    4: "bad user name or password",
    5: "not authorized",
}

OnMessage = Callable[[str, bytes], None]


class MqttProtocolError(ConnectionError):
    """The broker sent something MQTT 3.1.1 does not allow here, or refused us."""


def remaining_length(size: int) -> bytes:
    """The fixed header's remaining length: 7 bits a byte, low first, at most 4 bytes."""
    if not 0 <= size <= 268_435_455:
        raise ValueError(f"an MQTT packet holds at most 268,435,455 bytes after its header, not {size}")
    out = bytearray()
    while True:
        size, digit = divmod(size, 128)
        out.append(digit | (0x80 if size else 0))
        if not size:
            return bytes(out)


def utf8(text: str) -> bytes:
    """An MQTT string: two bytes of length, then UTF-8."""
    data = text.encode()
    if len(data) > 0xFFFF:
        raise ValueError(f"an MQTT string holds at most 65,535 bytes, not {len(data)}")
    return len(data).to_bytes(2, "big") + data


def read_remaining_length(buf: bytes, at: int, end: int) -> tuple[int, int] | None:
    """(where the body starts, its size) for a remaining length at ``buf[at:]``; None if not all of
    it is before ``end``."""
    size = 0
    for shift in (0, 7, 14, 21):
        if at >= end:
            return None
        digit = buf[at]
        at += 1
        size += (digit & 0x7F) << shift
        if digit < 0x80:
            return at, size
    raise MqttProtocolError("a remaining length of more than 4 bytes")


def packet(first_byte: int, body: bytes) -> bytes:
    return bytes([first_byte]) + remaining_length(len(body)) + body


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    """A QoS 1 PUBLISH (not retained, not a duplicate)."""
    return packet(PUBLISH | 0x02, utf8(topic) + packet_id.to_bytes(2, "big") + payload)


def packet_ids(count: int, first: int = 1, low: int = 1, high: int = MAX_PACKET_ID) -> list[int]:
    """``count`` packet ids from ``first``, wrapping from ``high`` back to ``low`` (never 0)."""
    if not 1 <= low <= first <= high <= MAX_PACKET_ID:
        raise ValueError(f"packet ids need 1 <= low <= first <= high <= 65535, not {low}, {first}, {high}")
    span = high - low + 1
    return [low + (first - low + j) % span for j in range(count)]


@dataclass(frozen=True)
class Prepared:
    """PUBLISH packets built before the clock starts, with the packet id each carries."""

    packets: list[bytes]
    ids: list[int]


def prepare(
    messages: list[tuple[str, bytes]], first_id: int = 1, low_id: int = 1, high_id: int = MAX_PACKET_ID
) -> Prepared:
    """QoS 1 PUBLISH packets for (topic, payload) pairs, ids taken in turn (``packet_ids``)."""
    ids = packet_ids(len(messages), first_id, low_id, high_id)
    packets = [publish_packet(topic, payload, pid) for (topic, payload), pid in zip(messages, ids, strict=True)]
    return Prepared(packets, ids)


class RawMqttClient:
    """One connection to a broker, driven by the calling thread (no thread of its own)."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        keepalive_s: int = 60,
        clean_session: bool = True,
        inflight: int = 100,
        on_message: OnMessage | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.keepalive_s, self.clean_session, self.inflight = keepalive_s, clean_session, inflight
        self.on_message = on_message
        self.acked = 0  # PUBACKs received for our PUBLISHes
        self.most_in_flight = 0
        self.pings = 0  # PINGREQs sent
        self.pongs = 0  # PINGRESPs received
        self._in_flight: set[int] = set()
        self._rest = b""  # the start of a packet not all read yet
        self._replies: list[bytes] = []  # PUBACKs owed for incoming QoS 1 messages
        self._connack: tuple[int, int] | None = None
        self._subacks: dict[int, bytes] = {}
        self._sent_at = time.monotonic()
        self._sock: socket.socket | None = None
        self._poller = select.poll()

    # --- the session -----------------------------------------------------------------------------

    def connect(self, timeout_s: float = 10.0) -> bool:
        """CONNECT and wait for the CONNACK; returns whether the broker kept a session for us."""
        self._sock = socket.create_connection((self.host, self.port), timeout=timeout_s)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.settimeout(max(1.0, self.keepalive_s / 2))  # bounds a sendall the broker stopped reading
        self._poller.register(self._sock.fileno(), select.POLLIN)
        flags = 0x02 if self.clean_session else 0x00
        body = utf8("MQTT") + bytes([4, flags]) + self.keepalive_s.to_bytes(2, "big") + utf8(self.client_id)
        self._send(packet(CONNECT, body))
        if not self.wait_for(lambda: self._connack is not None, timeout_s):
            raise TimeoutError(f"no CONNACK from {self.host}:{self.port} within {timeout_s} s")
        assert self._connack is not None
        session_present, code = self._connack
        if code:
            reason = CONNACK_REFUSALS.get(code, "unknown reason")
            raise MqttProtocolError(f"broker {self.host}:{self.port} refused {self.client_id!r}: {code} ({reason})")
        return bool(session_present & 0x01)

    def subscribe(self, topic_filter: str, qos: int = 1, timeout_s: float = 10.0) -> int:
        """SUBSCRIBE to one filter and wait for its SUBACK; returns the QoS granted."""
        if qos not in (0, 1):
            raise ValueError(f"this client takes QoS 0 or 1, not {qos}")
        pid = next(i for i in range(1, MAX_PACKET_ID + 1) if i not in self._in_flight and i not in self._subacks)
        self._send(packet(SUBSCRIBE | 0x02, pid.to_bytes(2, "big") + utf8(topic_filter) + bytes([qos])))
        if not self.wait_for(lambda: pid in self._subacks, timeout_s):
            raise TimeoutError(f"no SUBACK for {topic_filter!r} within {timeout_s} s")
        granted = self._subacks.pop(pid)[0]
        if granted == 0x80:
            raise MqttProtocolError(f"broker refused the subscription to {topic_filter!r}")
        return granted

    def disconnect(self, timeout_s: float = 5.0) -> None:
        """DISCONNECT, then wait for the broker to close its side before closing ours.

        Closing at once lost the last PUBACKs sent just before in about 4 runs of 10 (Mosquitto
        2.0.11 then sent those messages again to the persistent session); waiting for the broker's
        own close lost none in 20."""
        sock = self._sock
        if sock is None:
            return
        try:
            self._send(bytes([DISCONNECT, 0]))
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + timeout_s
            while (left := deadline - time.monotonic()) > 0 and self._poller.poll(math.ceil(left * 1000)):
                if not sock.recv(READ_CHUNK):
                    break
        finally:
            self.close()

    def close(self) -> None:
        if self._sock is not None:
            self._poller.unregister(self._sock.fileno())
            self._sock.close()
            self._sock = None

    def __enter__(self) -> RawMqttClient:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    # --- publishing --------------------------------------------------------------------------------

    def publish(self, prepared: Prepared, rate: float = 0.0, start: float = 0.0) -> list[float]:
        """Sends every packet in order; returns each one's wall time of sending.

        ``rate`` 0: as fast as the window allows, all it has room for in one write whenever PUBACKs
        come back. That write also carries the TCP ACK of those PUBACKs, which Mosquitto (Nagle on:
        ``set_tcp_nodelay`` is off by default) waits for before sending its next small segment;
        writing only once a quarter of the window was free left every read waiting for the kernel's
        delayed ACK (3,300 publishes/s on loopback instead of about 90,000).

        ``rate`` above 0: the j-th goes not before ``start + j / rate`` (wall clock), with whatever
        else is due (``_pause``). Returns once the last is written; PUBACKs still owed arrive in
        ``wait_acked``."""
        packets, ids = prepared.packets, prepared.ids
        count = len(packets)
        times = [0.0] * count
        j = 0
        while j < count:
            now = time.time()
            due = count if not rate else min(count, max(0, math.floor((now - start) * rate) + 1))
            room = self.inflight - len(self._in_flight)
            if due > j and room > 0:
                k = self._claim(ids, j, min(due, j + room))
                if k > j:
                    self._send(b"".join(packets[j:k]))
                    times[j:k] = [now] * (k - j)
                    j = k
                    continue
            if due <= j:  # not due yet
                self._pause(start + j / rate - now)
            else:  # due, but the window is full (or its next id still in flight): read PUBACKs
                self._read(None)
        return times

    def _pause(self, seconds: float) -> None:
        """Waits for a paced publish's time, at least PACE_TICK_S, without waking for each PUBACK
        (they wait in the socket, 4 bytes each); reads them once half the window is taken, or to
        ping. At 1,500 publishes/s, waking for each publish and each PUBACK cost about 30 µs of CPU
        per publish on this VM, a wake every 2 ms (about 3 publishes each) about 15; each publish's
        time is still recorded as sent."""
        time.sleep(max(PACE_TICK_S, min(seconds, self.keepalive_s / 4)))
        if 2 * len(self._in_flight) >= self.inflight or time.monotonic() >= self._sent_at + self.keepalive_s / 2:
            self._read(0)

    def wait_acked(self, timeout_s: float) -> None:
        if not self.wait_for(lambda: not self._in_flight, timeout_s):
            raise TimeoutError(f"{len(self._in_flight)} PUBLISHes still unacknowledged after {timeout_s} s")

    def wait_for(self, check: Callable[[], bool], timeout_s: float, poll_s: float | None = None) -> bool:
        """Reads (and answers, and pings) until ``check()`` holds or ``timeout_s`` passes.
        ``check`` is tried after every read; ``poll_s`` bounds a wait when it depends on something else."""
        deadline = time.monotonic() + timeout_s
        while not check():
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._read(left if poll_s is None else min(left, poll_s), quickack=True)
        return True

    def idle(self, seconds: float) -> None:
        """Reads, answers and pings for ``seconds`` (e.g. until a start time)."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._read(left)

    def _claim(self, ids: list[int], first: int, end: int) -> int:
        """Marks ids[first:end] in flight, stopping before one that still is; returns where it stopped."""
        in_flight = self._in_flight
        for index in range(first, end):
            pid = ids[index]
            if pid in in_flight:
                end = index
                break
            in_flight.add(pid)
        self.most_in_flight = max(self.most_in_flight, len(in_flight))
        return end

    # --- the socket --------------------------------------------------------------------------------

    def _connected(self) -> socket.socket:
        if self._sock is None:
            raise MqttProtocolError(f"{self.client_id!r} is not connected")
        return self._sock

    def _send(self, data: bytes) -> None:
        self._connected().sendall(data)
        self._sent_at = time.monotonic()

    def _read(self, timeout_s: float | None, quickack: bool = False) -> None:
        """Waits up to ``timeout_s`` (None: as long as the keepalive allows) for bytes, then handles
        every whole packet read; a PINGREQ goes out first if nothing was sent for half the keepalive.
        ``quickack``: acknowledge what was read at once, for waits with nothing to send."""
        sock = self._connected()
        ping_at = self._sent_at + self.keepalive_s / 2
        now = time.monotonic()
        if now >= ping_at:
            self._send(bytes([PINGREQ, 0]))
            self.pings += 1
            ping_at = self._sent_at + self.keepalive_s / 2
        wait = ping_at - now if timeout_s is None else min(timeout_s, ping_at - now)
        if not self._poller.poll(max(0, math.ceil(wait * 1000))):
            return
        data = sock.recv(READ_CHUNK)
        if not data:
            raise ConnectionError(f"broker {self.host}:{self.port} closed the connection of {self.client_id!r}")
        if quickack:  # nothing of ours will carry the ACK soon: send it now (see ``publish``)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        replies = self.feed(data)
        if replies:
            self._send(replies)

    def feed(self, data: bytes) -> bytes:
        """Handles every whole packet in ``data`` (bytes read from the broker) and keeps the start of
        one not all here yet for the next read: packets may be split anywhere. Returns what is owed
        to the broker: a PUBACK for each QoS 1 PUBLISH received."""
        buf = self._rest + data if self._rest else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            first = buf[pos]
            if first == PUBACK and buf[pos + 1] == 2 and end - pos >= 4:  # most of what comes back
                self._puback((buf[pos + 2] << 8) | buf[pos + 3])
                pos += 4
                continue
            header = read_remaining_length(buf, pos + 1, end)
            if header is None:
                break  # the length itself is not all here
            at, size = header
            if at + size > end:
                break
            self._dispatch(first, buf[at : at + size])
            pos = at + size
        self._rest = buf[pos:]
        replies, self._replies = b"".join(self._replies), []
        return replies

    def _dispatch(self, first: int, body: bytes) -> None:
        kind = first & 0xF0
        if kind == PUBLISH:
            self._incoming(first, body)
        elif kind == PUBACK and len(body) == 2:
            self._puback(int.from_bytes(body, "big"))
        elif kind == CONNACK and len(body) == 2:
            self._connack = (body[0], body[1])
        elif kind == SUBACK and len(body) >= 3:
            self._subacks[int.from_bytes(body[:2], "big")] = body[2:]
        elif kind == PINGRESP:
            self.pongs += 1
        else:
            where = f"{self.host}:{self.port}"
            raise MqttProtocolError(f"unexpected packet 0x{first:02x} of {len(body)} bytes from {where}")

    def _puback(self, pid: int) -> None:
        try:
            self._in_flight.remove(pid)
        except KeyError:
            raise MqttProtocolError(f"PUBACK for packet id {pid}, which is not in flight") from None
        self.acked += 1

    def _incoming(self, first: int, body: bytes) -> None:
        qos = (first >> 1) & 0x03
        if qos == 2:
            raise MqttProtocolError("a QoS 2 PUBLISH: this client subscribes at QoS 0 or 1 only")
        topic_end = 2 + int.from_bytes(body[:2], "big")
        topic = body[2:topic_end].decode()
        payload_at = topic_end + 2 * qos
        if qos:
            self._replies.append(bytes([PUBACK, 2]) + body[topic_end:payload_at])
        if self.on_message is not None:
            self.on_message(topic, body[payload_at:])
