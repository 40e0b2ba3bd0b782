"""Sends each agent the acknowledgements the collector owes it, batched: at most one message a
second per host (``[mqtt] ack_interval_s``), QoS 1, on the host's own ``.../cmd/ack`` topic.

The writer wakes it after each stored batch (``notify``), so a report is usually acknowledged
within moments of being stored; what a host is owed within its second waits for the next round.

Only the collector may publish there and only that host may read it (the broker's ACL), so an
acknowledgement cannot be forged by another PC. One lost on the way costs a re-sent report,
which the collector recognises and acknowledges again.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from collector.ingest.receipts import Receipts
from collector.selfmetrics import SelfMetrics
from common.version import VERSION
from common.wire import ACK_COMMAND, CAPABILITIES, MAX_ACK_RANGES, ack_payload, command_topic

log = logging.getLogger("commune_collector.acks")

Publish = Callable[[str, bytes], bool]  # topic, payload -> taken by the MQTT client
ROUND = 64  # streams' acks taken from the receipts at a time


class Acknowledger:
    def __init__(self, receipts: Receipts, publish: Publish, metrics: SelfMetrics, interval_s: float) -> None:
        self._receipts = receipts
        self._publish = publish
        self._metrics = metrics
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name="acknowledger", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Send what is owed one last time, then stop."""
        self._stop.set()
        self._wake.set()
        self._thread.join(10)

    def notify(self) -> None:
        """Reports were stored: acknowledge them now where the per-host interval allows."""
        self._wake.set()

    def flush(self, min_gap_s: float = 0.0) -> int:
        """Publish the owed acknowledgements (of hosts not acknowledged within ``min_gap_s``);
        returns how many messages went out. Once the MQTT client refuses one (its queue is full:
        the broker takes acks more slowly than they are owed), that one and the rest of its round
        of ``ROUND`` streams are owed again, and streams not yet taken stay owed: all wait for a
        later flush, only growing by ranges meanwhile, never lost."""
        sent = 0
        refused = False
        while not refused:
            # a round at a time: once the client is full, only the rest of this round goes back
            # (taking every stream owed, then owing nearly all of them again, was most of the cost)
            taken = self._receipts.take_acks(min_gap_s, ROUND)
            for host, stream, ranges in taken:
                topic = command_topic(host.province, host.commune, host.host, ACK_COMMAND)
                for start in range(0, max(1, len(ranges)), MAX_ACK_RANGES):
                    chunk = ranges[start : start + MAX_ACK_RANGES]
                    # an ack with no ranges answers a hello: it says this collector's release and capabilities
                    payload = ack_payload(stream, chunk) if chunk else ack_payload(stream, chunk, VERSION, CAPABILITIES)
                    if not refused and self._publish(topic, payload):
                        sent += 1
                        continue
                    refused = True
                    self._receipts.owe_again(host, stream, chunk)
                    self._metrics.acks_failed.inc()
            if len(taken) < ROUND:
                break
        self._metrics.acks_sent.inc(sent)
        return sent

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval_s)
            self._wake.clear()
            stopping = self._stop.is_set()
            try:
                self.flush(0.0 if stopping else self._interval_s)
            except Exception:
                log.exception("sending acknowledgements failed")
            if stopping:
                return
