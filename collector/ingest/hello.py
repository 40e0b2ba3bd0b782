"""What the collector and each agent agreed, logged once per host (README "Versions and compatibility").

An agent's ``online`` status is its hello: its release and its capabilities (0.1.0 says neither).
The collector compares them with its own, like a Netdata parent with a child: it logs, once per
host and again only when the hello changes, the agent's release, what both sides do (``agreed``),
and whether this collector's release promises to serve that agent's (``common.version.served``).
The agent's release itself is kept in the registry (``/api/v1/hosts``, ``agent_version``).
"""

from __future__ import annotations

import logging
import threading
from typing import Final

from collector.registry.registry import HostKey
from common.version import VERSION, served
from common.wire import CAPABILITIES, agreed

log = logging.getLogger("commune_collector.hello")

MAX_HOSTS: Final = 65536  # hellos remembered; a flood of invented hosts costs log lines again, never memory
OLDEST: Final = "0.1.0"  # what an agent that says no release is: the one release before hellos


class Hellos:
    """The last hello logged per host."""

    def __init__(self, caps: tuple[str, ...] = CAPABILITIES) -> None:
        self.caps = caps  # this collector's: without "acks" when [mqtt] acks is off
        self._seen: dict[HostKey, tuple[str | None, tuple[str, ...] | None]] = {}
        self._lock = threading.Lock()

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
