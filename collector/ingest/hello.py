"""What the collector and each agent agreed, logged once per host (docs/en/versions.md).

An agent's ``online`` status is its hello: its release and its capabilities (0.1.0 says neither).
The collector compares them with its own, like a Netdata parent with a child: it logs, once per
host and again only when the hello changes, the agent's release, what both sides do (``agreed``),
and whether this collector's release promises to serve that agent's (``common.version.served``).
The agent's release itself is kept in the registry (``/api/v1/hosts``, ``agent_version``).

The collector answers every hello (an ack with no ranges: its release and capabilities), so the agent
knows it is not release 0.1.0 and sends every field and kind. An acknowledging collector's
acknowledger sends that answer with its first round (``Receipts.hello``); with ``[mqtt] acks = false``
there is no acknowledger, and ``answer`` sends it here, with no ``acks`` in its capabilities.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Final

from collector.registry.registry import HostKey
from common.version import VERSION, served
from common.wire import ACK_COMMAND, CAPABILITIES, ack_payload, agreed, command_topic

log = logging.getLogger("commune_collector.hello")

MAX_HOSTS: Final = 65536  # hellos remembered; a flood of invented hosts costs log lines again, never memory
OLDEST: Final = "0.1.0"  # what an agent that says no release is: the one release before hellos

Publish = Callable[[str, bytes], bool]  # topic, payload -> taken by the MQTT client


class Hellos:
    """The last hello logged per host."""

    def __init__(self, caps: tuple[str, ...] = CAPABILITIES) -> None:
        self.caps = caps  # this collector's: without "acks" when [mqtt] acks is off
        self.publish: Publish | None = None  # [mqtt] acks off: ``answer`` sends the answer to each hello
        self.unanswered = 0  # answers the MQTT client could not take (the agent falls back, holding new kinds)
        self._seen: dict[HostKey, tuple[str | None, tuple[str, ...] | None]] = {}
        self._lock = threading.Lock()

    def answer(self, host: HostKey, stream: str) -> None:
        """Answer a hello at once with this collector's release and capabilities (``publish`` set)."""
        if self.publish is None:
            return
        topic = command_topic(host.province, host.commune, host.host, ACK_COMMAND)
        if not self.publish(topic, ack_payload(stream, [], VERSION, self.caps)):
            self.unanswered += 1
            log.warning("hello not answered: the broker cannot take it now", extra={"host": host.host})

    def heard(self, host: HostKey, version: str | None, caps: tuple[str, ...] | None) -> None:
        """An online status: log what was agreed unless this host said the same before."""
        with self._lock:
            if self._seen.get(host) == (version, caps):
                return
            if len(self._seen) >= MAX_HOSTS:
                self._seen.clear()
            self._seen[host] = (version, caps)
        release = version or OLDEST
        extra = {
            "province": host.province,
            "commune": host.commune,
            "host": host.host,
            "agent_version": release,
            "agent_caps": ",".join(caps or ()),
            "agreed": ",".join(agreed(self.caps, caps)),
            "collector_version": VERSION,
        }
        if served(VERSION, release):
            log.info("agent hello", extra=extra)
        else:
            log.warning("agent hello: a release this collector does not promise to serve", extra=extra)
