"""Every metric the collector exposes on /metrics, declared once here with its HELP text.

The metrics live in a ``prometheus_client`` registry of their own (not the library's global
one), so each collector, and each test, has its own; every counter reads 0 from the start
rather than appearing at its first increment, and the process and Python platform metrics come
with it. Parts of the collector receive this object and increment the metric they are about
(``metrics.points_written.inc(n)``); nothing names a metric with a string.

Rejections are counted per reason and logged at most once per reason per minute, with one
example, so a flood of bad messages cannot flood the log. Points dropped from a message that is
otherwise stored (a host over its series bound) are counted and logged the same way, apart. Fields
a collector does not know (``unknown_fields_total``) are counted, and each name logged once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)

log = logging.getLogger("commune_collector.rejects")

ENROLL_REFUSALS = (
    "unknown_key", "revoked", "expired", "outside_area", "max_hosts", "host_taken", "bad_request", "throttled"
)  # fmt: skip
"""Every reason a self-enrolment is refused (collector/registry/enroll_keys.py decides most)."""

REJECT_LOG_INTERVAL_S = 60.0
MAX_UNKNOWN_LOGGED = 1024
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
TICK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0)  # a fleet evaluation or save
PREFIX = "commune_collector_"

# In the text format a counter's creation time is a second series (``<name>_created``) beside each
# counter; the collector's counters are created when it starts, which process_start_time_seconds
# already says, so /metrics leaves them out (a process-wide setting of the library).
disable_created_metrics()  # type: ignore[no-untyped-call]  # the library leaves it unannotated


class SelfMetrics:
    """The collector's metrics in their own registry; ``render()`` is the /metrics body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.messages_received = self._counter("messages_received_total", "MQTT messages taken from the broker.")
        self.messages_accepted = self._counter(
            "messages_accepted_total", "Messages that passed every check and became points."
        )
        self.messages_rejected = Counter(
            PREFIX + "messages_rejected_total",
            "Messages rejected, by reason; they never reach InfluxDB.",
            ["reason"],
            registry=self.registry,
        )
        self.points_dropped = Counter(
            PREFIX + "points_dropped_total",
            "Points dropped from accepted messages, by reason; the rest of each message is stored.",
            ["reason"],
            registry=self.registry,
        )
        self.enroll_refused = Counter(
            PREFIX + "enroll_refused_total",
            "Self-enrolments (POST /api/v1/enroll) refused, by reason.",
            ["reason"],
            registry=self.registry,
        )
        for reason in ENROLL_REFUSALS:
            self.enroll_refused.labels(reason=reason)
        self.hosts_enrolled = self._counter("hosts_enrolled_total", "Hosts that enrolled themselves with a key.")
        self.clock_skew = self._counter(
            "clock_skew_total", "Reports whose agent timestamp was implausible and replaced by the receive time."
        )
        self.points_written = self._counter("points_written_total", "Points InfluxDB has stored.")
        self.points_refused = self._counter(
            "points_refused_total", "Points InfluxDB refused as bad data (HTTP 400), dropped."
        )
        self.points_buffered = self._counter(
            "points_buffered_total", "Points put in the disk buffer while InfluxDB could not take them."
        )
        self.points_drained = self._counter(
            "points_drained_total", "Points sent from the disk buffer to InfluxDB later."
        )
        self.write_retries = self._counter(
            "write_retries_total", "InfluxDB writes that failed and were kept to be sent again."
        )
        self.buffer_full = self._counter(
            "buffer_full_total", "Times a batch found the disk buffer full; its messages wait at the broker."
        )
        self.notifications_sent = self._counter(
            "notifications_sent_total", "Alert notifications delivered (one per channel)."
        )
        self.notification_failures = self._counter(
            "notification_failures_total", "Alert notification attempts that failed (retried a few times)."
        )
        self.api_refused_unknown_token = self._counter(
            "api_refused_unknown_token_total", "API requests refused because their bearer token is not known."
        )
        self.api_refused_role = self._counter(
            "api_refused_role_total", "API requests refused because a viewer token asked for a change."
        )
        self.api_refused_body_too_large = self._counter(
            "api_refused_body_too_large_total", "HTTP requests refused (413): the body passed the route's limit."
        )
        self.disk_errors = {
            "buffer": self._counter(
                "disk_errors_buffer_total", "Failed writes of the write buffer (disk buffer file)."
            ),
            "state": self._counter("disk_errors_state_total", "Failed writes of the state file."),
            "receipts": self._counter(
                "disk_errors_receipts_total", "Failed writes of the receipts file (agents' numbered reports stored)."
            ),
        }
        self.reports_backlog = self._counter(
            "reports_backlog_total",
            "Reports older than [ingest] backlog_after_s (corrected for the PC's clock) when they came: stored,"
            " but not taken as the PC being there now.",
        )
        self.reports_duplicate = self._counter(
            "reports_duplicate_total",
            "Numbered reports seen before (sent again by their agent): written again, kept from fleet state.",
        )
        self.acks_sent = self._counter("acks_sent_total", "Acknowledgements published to agents (cmd/ack).")
        self.acks_failed = self._counter(
            "acks_failed_total",
            "Acknowledgements the MQTT client could not take (its queue full, or no broker); kept for a later round.",
        )
        self.ack_streams = self._gauge(
            "ack_streams", "Agent spools (host and stream) whose numbered reports are known."
        )
        self.speedtest_uploads_short = self._counter(
            "speedtest_uploads_short_total",
            "Speed-test uploads answered after going quiet short of their declared length ([speedtest] upload_idle_s).",
        )
        self.speedtest_uploads_refused = self._counter(
            "speedtest_uploads_refused_total",
            "Speed-test uploads refused (503) because [speedtest] max_concurrent_uploads were running.",
        )
        self.speedtest_uploads_active = self._gauge(
            "speedtest_uploads_active", "Speed-test uploads being received now."
        )
        self.influx_write_seconds = self._histogram(
            "influx_write_seconds",
            "Time of one successful batch write to InfluxDB, in seconds.",
            LATENCY_BUCKETS,
        )
        self.fleet_evaluate_seconds = self._histogram(
            "fleet_evaluate_seconds",
            "Time of one evaluation of the whole fleet (every PC and commune), in seconds.",
            TICK_BUCKETS,
        )
        self.fleet_evaluate_cpu_seconds = self._counter(
            "fleet_evaluate_cpu_seconds_total",
            "CPU time the evaluator thread spent evaluating the fleet (its wall time above also waits for the GIL).",
        )
        self.fleet_save_seconds = self._histogram(
            "fleet_save_seconds",
            "Time of one save of every PC's facts to the state file, in seconds.",
            TICK_BUCKETS,
        )
        self.gc_pause_seconds = Counter(
            PREFIX + "gc_pause_seconds_total",
            "Time Python's garbage collector held the interpreter (every thread waits), per generation"
            " collected, in seconds. A full collection (generation 2) scans every PC's facts not frozen yet.",
            ["generation"],
            registry=self.registry,
        )
        self.write_queue_points = self._gauge("write_queue_points", "Points in memory waiting to be written.")
        self.write_buffer_points = self._gauge("write_buffer_points", "Points in the disk buffer.")
        self.write_buffer_bytes = self._gauge("write_buffer_bytes", "Size of the disk buffer file, in bytes.")
        self.unknown_fields = self._counter(
            "unknown_fields_total",
            "Fields and sections of accepted messages this collector does not know (a newer agent's):"
            " skipped, never stored, never refused. Each name is logged once.",
        )
        self.known_hosts = self._gauge(
            "known_hosts", "Hosts in the registry: each that has reported and was not forgotten."
        )
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._unknown_logged: set[str] = set()

    def _counter(self, name: str, help_text: str) -> Counter:
        return Counter(PREFIX + name, help_text, registry=self.registry)

    def _gauge(self, name: str, help_text: str) -> Gauge:
        return Gauge(PREFIX + name, help_text, registry=self.registry)

    def _histogram(self, name: str, help_text: str, buckets: Sequence[float]) -> Histogram:
        return Histogram(PREFIX + name, help_text, buckets=buckets, registry=self.registry)

    def declare_reasons(self, rejected: Iterable[str], dropped: Iterable[str] = ()) -> None:
        """Show each reason on /metrics at 0 before the first message rejected (or point dropped) for it."""
        for reason in rejected:
            self.messages_rejected.labels(reason=reason)
        for reason in dropped:
            self.points_dropped.labels(reason=reason)

    def reject(self, reason: str, detail: str, topic: str) -> None:
        """Count a rejected message and log it unless this reason was logged in the last minute."""
        self.messages_rejected.labels(reason=reason).inc()
        self._log("message rejected", "messages_rejected_total", reason, detail, topic)

    def drop(self, reason: str, points: int, detail: str, topic: str) -> None:
        """Count points dropped from an accepted message; logged like a rejection."""
        self.points_dropped.labels(reason=reason).inc(points)
        self._log("points dropped", "points_dropped_total", reason, detail, topic)

    def unknown(self, names: tuple[str, ...], kind: str, topic: str) -> None:
        """Count the fields a message carried that this collector does not know; each name of each
        kind is logged once (at most ``MAX_UNKNOWN_LOGGED`` names, so a flood cannot fill the log)."""
        self.unknown_fields.inc(len(names))
        with self._lock:
            new = [name for name in names if f"{kind}:{name}" not in self._unknown_logged]
            if not new or len(self._unknown_logged) >= MAX_UNKNOWN_LOGGED:
                return
            self._unknown_logged.update(f"{kind}:{name}" for name in new)
        log.info(
            "fields this collector does not know skipped (a newer agent's?)",
            extra={"kind": kind, "fields": ",".join(new)[:200], "topic": topic[:200]},
        )

    def _log(self, what: str, metric: str, reason: str, detail: str, topic: str) -> None:
        """Log ``what`` with one example unless it was logged for this reason in the last minute."""
        now = time.monotonic()
        with self._lock:
            last = self._last_logged.get(f"{what}:{reason}")
            if last is not None and now - last < REJECT_LOG_INTERVAL_S:
                return
            self._last_logged[f"{what}:{reason}"] = now
        log.warning(
            what,
            extra={
                "reason": reason,
                "detail": detail[:200],
                "topic": topic[:200],
                "total_for_reason": int(self.value(metric, reason=reason)),
            },
        )

    def rejections(self) -> dict[str, float]:
        """Messages rejected so far, by reason (declared reasons included, at 0 until their first)."""
        return {
            sample.labels["reason"]: sample.value
            for family in self.messages_rejected.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        }

    def value(self, name: str, **labels: str) -> float:
        """The current value of one sample (``name`` without the prefix), 0 when it has none yet."""
        found = self.registry.get_sample_value(PREFIX + name, labels)
        return 0.0 if found is None else found

    def render(self) -> bytes:
        """The Prometheus text exposition format (0.0.4) of every metric."""
        return generate_latest(self.registry)
