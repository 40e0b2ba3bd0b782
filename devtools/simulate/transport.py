"""How virtual PCs reach the broker: one MQTT connection per PC, each with its own client id and
Last Will, so the broker sees a province's worth of real sessions, all driven by one thread.

A thread per paho client (what the simulator first did) does not hold a province: at 2,950
connections the broker closed 18,354 of them in three minutes and nothing arrived after the first
minute. Here every paho client runs without a thread of its own: one ``selectors`` loop (epoll)
watches all their sockets and calls ``loop_read``/``loop_write``/``loop_misc``, which paho offers
for exactly this. The simulator's schedule runs in the same thread through ``Transport.wait``, so
nothing is shared between threads and no lock is taken per message.

A PC that loses the broker reconnects with the agent's randomized backoff
(``agent.publisher.reconnect_delays``), so a restarted broker is not hit by every PC in the same
second. Connections are opened at a bounded rate (``CONNECTS_PER_ROUND`` per turn of the loop),
as a province's PCs are switched on over the morning, not in one burst.

For demos and benchmarks, on a broker without per-host ACLs: every connection uses the
credentials of ``[mqtt]``.
"""

from __future__ import annotations

import contextlib
import heapq
import logging
import random
import selectors
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from agent.publisher import reconnect_delays
from collector.config import MqttSettings
from devtools.localstack import open_files_at_least

log = logging.getLogger("devtools.simulate")
KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 5.0
CONNECTS_PER_ROUND = 50  # new TCP connections per turn of the loop, between which I/O is served
MISC_EVERY_S = 2.0  # keepalive pings: paho's loop_misc for every connection this often
STOP_CHECK_S = 0.5  # the longest the loop sleeps before it looks at the stop flag again
FLUSH_S = 3.0  # at the end: how long to let the last ``offline`` and DISCONNECTs go out


class Stop(Protocol):
    """A threading or multiprocessing Event."""

    def is_set(self) -> bool: ...


class Link(Protocol):
    """One virtual PC's connection, as its PC sees it."""

    def ready(self) -> bool: ...

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None: ...

    def subscribe(self, topic: str) -> None: ...

    def drop(self) -> None: ...

    def close(self, topic: str, payload: bytes) -> None: ...


class NoLink:
    """A PC not connected yet, or captured without a broker (the backfill): sends nothing."""

    def ready(self) -> bool:
        return False

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        return None

    def subscribe(self, topic: str) -> None:
        return None

    def drop(self) -> None:
        return None

    def close(self, topic: str, payload: bytes) -> None:
        return None


NO_LINK = NoLink()


class SharedLink:
    """A paho client without a thread: its socket is watched by the transport's selector."""

    def __init__(
        self,
        transport: Transport,
        client_id: str,
        will: tuple[str, bytes],
        on_connect: Callable[[], None],
        on_message: Callable[[bytes], None],
    ) -> None:
        settings = transport.settings
        self.transport = transport
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password.get_secret_value())
        if settings.tls:
            self.client.tls_set(ca_certs=settings.ca_file or None)
        self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.client.connect_timeout = CONNECT_TIMEOUT_S
        self.client.connect_async(settings.host, settings.port, keepalive=KEEPALIVE_S)
        self.on_connect, self.on_message = on_connect, on_message
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = self._message
        self.client.on_socket_open = self._socket_open
        self.client.on_socket_close = self._socket_close
        self.client.on_socket_register_write = self._want_write
        self.client.on_socket_unregister_write = self._written
        self.sock: Any = None  # the socket the selector watches, if any
        self.writing = False
        self.up = False  # CONNACK received, not lost since
        self.dropped = False  # vanished on purpose: never reconnects
        self.closing = False  # clean shutdown under way: never reconnects
        self.connects = 0
        self.backoff: Iterator[float] = iter(())

    # paho's callbacks, all called on the transport's thread
    def _socket_open(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        self.sock, self.writing = sock, False
        self.transport.selector.register(sock, selectors.EVENT_READ, self)

    def _socket_close(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        if self.sock is sock:
            self.transport.forget(sock)
            self.sock = None

    def _want_write(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        if sock is self.sock and not self.writing:
            self.writing = True
            self.transport.selector.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, self)

    def _written(self, _c: mqtt.Client, _u: Any, sock: Any) -> None:
        if sock is self.sock and self.writing:
            self.writing = False
            self.transport.selector.modify(sock, selectors.EVENT_READ, self)

    def _connected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("virtual agent refused", extra={"client": self.client_id, "reason": str(reason)})
            return
        self.up = True
        self.connects += 1
        self.backoff = reconnect_delays(self.transport.rng)
        self.on_connect()

    def _disconnected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self.up = False
        if not (self.dropped or self.closing):
            self.transport.lost += 1
            self.transport.later(self, next(self.backoff))

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.on_message(bytes(message.payload))

    @property
    def client_id(self) -> str:
        return self.client._client_id.decode()

    def connect(self) -> None:
        """Open the TCP connection and send CONNECT; on failure, try again after the backoff."""
        if self.dropped or self.closing:
            return
        try:
            self.client.reconnect()
        except OSError as exc:
            self.transport.refused += 1
            if self.sock is not None:
                self.transport.forget(self.sock)
                self.sock = None
            log.debug("virtual agent cannot connect", extra={"client": self.client_id, "error": str(exc)})
            self.transport.later(self, next(self.backoff))

    def ready(self) -> bool:
        """Connected now: a report handed over goes out (otherwise it stays in the PC's spool)."""
        return self.up

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def drop(self) -> None:
        """The PC vanishes (power cut, dead line): no DISCONNECT, so the broker sends the Last Will."""
        self.dropped, self.up = True, False
        sock, self.sock = self.sock, None
        if sock is not None:
            self.transport.forget(sock)
            sock.close()

    def close(self, topic: str, payload: bytes) -> None:
        """A clean shutdown, like the real agent's: a retained ``offline``, then DISCONNECT."""
        if self.dropped:
            return
        self.closing = True
        if self.up:
            self.client.publish(topic, payload, qos=1, retain=True)
            self.client.disconnect()
        elif self.sock is not None:
            self.transport.forget(self.sock)
            self.sock.close()
            self.sock = None


class Transport:
    """Opens the virtual PCs' connections to the broker of ``[mqtt]`` and runs them on one thread."""

    def __init__(self, settings: MqttSettings, stop: Stop, rng: random.Random) -> None:
        self.settings, self.stop, self.rng = settings, stop, rng
        self.selector = selectors.DefaultSelector()
        self.links: list[SharedLink] = []
        self.due: list[tuple[float, int, SharedLink]] = []  # (when, tie-break, link) to connect
        self.next_misc = 0.0
        self.lost = 0  # connections the broker or the network closed
        self.refused = 0  # connection attempts that failed

    def open(
        self,
        client_id: str,
        will: tuple[str, bytes],
        on_connect: Callable[[], None],
        on_message: Callable[[bytes], None],
        at_once: bool = False,
    ) -> SharedLink:
        """A PC's connection, connected by ``start``; or ``at_once``, for a PC back from going dark
        (power cut, office closed) while the others run."""
        link = SharedLink(self, client_id, will, on_connect, on_message)
        self.links.append(link)
        if at_once:
            link.backoff = reconnect_delays(self.rng)
            self.later(link, 0.0)
        return link

    def start(self) -> None:
        """Connect everything opened so far (after each PC holds its link, so none publishes into the void)."""
        open_files_at_least(len(self.links) + 256)()  # a socket each
        now = time.monotonic()
        for link in self.links:
            link.backoff = reconnect_delays(self.rng)
            self.later(link, 0.0, now)

    def later(self, link: SharedLink, delay_s: float, now: float | None = None) -> None:
        when = (time.monotonic() if now is None else now) + delay_s
        heapq.heappush(self.due, (when, id(link), link))

    def forget(self, sock: socket.socket) -> None:
        with contextlib.suppress(KeyError, ValueError):  # never registered, or already closed
            self.selector.unregister(sock)

    def connected(self) -> int:
        return sum(1 for link in self.links if link.up)

    def wait(self, seconds: float) -> None:
        """Serve the connections for ``seconds``, or until ``stop`` is set."""
        deadline = time.monotonic() + max(0.0, seconds)
        while not self.stop.is_set():
            now = time.monotonic()
            if now >= deadline:
                return
            self._connect_due(now)
            if now >= self.next_misc:
                self.next_misc = now + MISC_EVERY_S
                for link in self.links:
                    if link.sock is not None:
                        link.client.loop_misc()
            pending = self.due[0][0] if self.due else deadline
            timeout = max(0.0, min(deadline, pending, self.next_misc, now + STOP_CHECK_S) - time.monotonic())
            self._serve(timeout)

    def _connect_due(self, now: float) -> None:
        for _ in range(CONNECTS_PER_ROUND):
            if not self.due or self.due[0][0] > now:
                return
            link = heapq.heappop(self.due)[2]
            link.connect()

    def _serve(self, timeout: float) -> None:
        for key, events in self.selector.select(timeout):
            link: SharedLink = key.data
            if events & selectors.EVENT_READ and link.sock is not None:
                link.client.loop_read()
            if events & selectors.EVENT_WRITE and link.sock is not None:
                link.client.loop_write()

    def finish(self) -> None:
        """After every PC's ``close``: let the ``offline`` messages and DISCONNECTs out, then close."""
        deadline = time.monotonic() + FLUSH_S
        self.due.clear()
        while self.selector.get_map() and time.monotonic() < deadline:
            self._serve(0.1)
        for link in self.links:
            if link.sock is not None:
                self.forget(link.sock)
                link.sock.close()
                link.sock = None
        self.selector.close()
