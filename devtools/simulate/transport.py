"""How virtual PCs reach the broker: one MQTT connection per PC, each with its own client id and
Last Will, so the broker sees a province's worth of real sessions.

Separate from what a PC publishes (``pc``) and from the plan (``plan``), so the connection model
can change without touching either. A ``Transport`` opens ``Link``s and runs their network I/O;
the simulator's own loop waits through ``Transport.wait`` so publishing and I/O can share a thread.

For demos and benchmarks, on a broker without per-host ACLs: every connection uses the
credentials of ``[mqtt]``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import MqttSettings

log = logging.getLogger("devtools.simulate")
KEEPALIVE_S = 30


class Link(Protocol):
    """One virtual PC's connection, as its PC sees it."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None: ...

    def subscribe(self, topic: str) -> None: ...

    def drop(self) -> None: ...

    def close(self, topic: str, payload: bytes) -> None: ...


class NoLink:
    """A PC not connected yet, or captured without a broker (the backfill): sends nothing."""

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        return None

    def subscribe(self, topic: str) -> None:
        return None

    def drop(self) -> None:
        return None

    def close(self, topic: str, payload: bytes) -> None:
        return None


NO_LINK = NoLink()


class ThreadLink:
    """A paho client with its own network thread."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: tuple[str, bytes],
        on_connect: Callable[[], None],
        on_message: Callable[[bytes], None],
    ) -> None:
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv311)
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password.get_secret_value())
        if settings.tls:
            self.client.tls_set(ca_certs=settings.ca_file or None)
        self.client.will_set(will[0], will[1], qos=1, retain=True)
        self.on_connect, self.on_message = on_connect, on_message
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.dropped = False
        self.client.connect_async(settings.host, settings.port, keepalive=KEEPALIVE_S)

    def start(self) -> None:
        self.client.loop_start()

    def _connected(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("virtual agent refused", extra={"client": self.client._client_id, "reason": str(reason)})
            return
        self.on_connect()

    def _message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self.on_message(bytes(message.payload))

    def publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain)

    def subscribe(self, topic: str) -> None:
        self.client.subscribe(topic, qos=1)

    def drop(self) -> None:
        """The PC vanishes (power cut, dead line): no DISCONNECT, so the broker sends the Last Will."""
        self.dropped = True
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def close(self, topic: str, payload: bytes) -> None:
        """A clean shutdown, like the real agent's: a retained ``offline``, then DISCONNECT."""
        if self.dropped:
            return
        info = self.client.publish(topic, payload, qos=1, retain=True)
        if self.client.is_connected():
            info.wait_for_publish(timeout=2)
        self.client.disconnect()
        self.client.loop_stop()


class Transport:
    """Opens the virtual PCs' connections to the broker of ``[mqtt]`` and runs them."""

    def __init__(self, settings: MqttSettings, stop: threading.Event) -> None:
        self.settings, self.stop = settings, stop
        self.links: list[ThreadLink] = []

    def open(
        self,
        client_id: str,
        will: tuple[str, bytes],
        on_connect: Callable[[], None],
        on_message: Callable[[bytes], None],
    ) -> ThreadLink:
        link = ThreadLink(self.settings, client_id, will, on_connect, on_message)
        self.links.append(link)
        return link

    def start(self) -> None:
        """Connect everything opened so far (after each PC holds its link, so none publishes into the void)."""
        for link in self.links:
            link.start()

    def wait(self, seconds: float) -> None:
        """Let the connections work for ``seconds``, or until ``stop`` is set."""
        self.stop.wait(max(0.0, seconds))
