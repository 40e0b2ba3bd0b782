"""Hands the imported known USB ids (``collector/registry/known_ids.py``) to each agent on its hello.

An agent that says ``online`` (on connecting: its hello) gets the whole list on its own
``.../<host>/cmd/known_ids`` (QoS 1; only the collector may publish there and only that host may
read it), empty when nothing is imported, so an agent always holds the current list and a row
removed here is removed there at its next connection. The list is read from the state file at
most every ``refresh_s`` (2 s: after a collector restart the broker hands over every PC's retained
``online`` at once), so an import reaches each agent on its next hello. An observer of accepted
reports, called on the consumer's thread.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from collector.ingest.checks import Accepted
from common.wire import KNOWN_IDS_COMMAND, KnownIdRow, command_topic, known_ids_payload

log = logging.getLogger("commune_collector.known_ids")

Publish = Callable[[str, bytes], bool]  # topic, payload -> taken by the MQTT client


class KnownIdsHandout:
    def __init__(
        self,
        read: Callable[[], list[KnownIdRow]],
        publish: Publish,
        refresh_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._read = read
        self._publish = publish
        self._refresh_s = refresh_s
        self._clock = clock
        self._rows: list[KnownIdRow] = []
        self._read_at: float | None = None
        self.handed = 0  # hellos answered

    def rows(self) -> list[KnownIdRow]:
        now = self._clock()
        if self._read_at is None or now - self._read_at >= self._refresh_s:
            self._rows, self._read_at = self._read(), now
        return self._rows

    def observe(self, accepted: Accepted) -> None:
        report = accepted.report
        if report.kind != "status" or report.state != "online":
            return
        host = accepted.host
        topic = command_topic(host.province, host.commune, host.host, KNOWN_IDS_COMMAND)
        rows = self.rows()
        if self._publish(topic, known_ids_payload(rows)):
            self.handed += 1
        else:
            log.warning("known ids not handed over: the broker cannot take them now", extra={"host": host.host})
