"""The collector's own counters and gauges, rendered in the Prometheus text format for /metrics.

Rejections are counted per reason and logged at most once per reason per minute, with one
example, so a flood of bad messages cannot flood the log. Points dropped from a message that is
otherwise stored (a host over its series bound) are counted and logged the same way, apart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger("commune_collector.rejects")

REJECT_LOG_INTERVAL_S = 60.0
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Histogram:
    def __init__(self, buckets: tuple[float, ...]) -> None:
        self.buckets = buckets
        self.counts = [0] * len(buckets)
        self.total = 0
        self.sum = 0.0

    def observe(self, value: float) -> None:
        self.total += 1
        self.sum += value
        for i, bound in enumerate(self.buckets):
            if value <= bound:
                self.counts[i] += 1


class SelfMetrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counters: dict[str, float] = defaultdict(float)
        self.rejected: dict[str, int] = defaultdict(int)
        self.dropped: dict[str, int] = defaultdict(int)
        self.write_latency = Histogram(LATENCY_BUCKETS)
        self.gauges: dict[str, Callable[[], float]] = {}
        self._last_logged: dict[str, float] = {}

    def inc(self, name: str, amount: float = 1.0) -> None:
        with self._lock:
            self.counters[name] += amount

    def reject(self, reason: str, detail: str, topic: str) -> None:
        """Count a rejected message and log it unless this reason was logged in the last minute."""
        self._count(self.rejected, "message rejected", reason, 1, detail, topic)

    def drop(self, reason: str, points: int, detail: str, topic: str) -> None:
        """Count points dropped from an accepted message; logged like a rejection."""
        self._count(self.dropped, "points dropped", reason, points, detail, topic)

    def _count(self, counts: dict[str, int], what: str, reason: str, amount: int, detail: str, topic: str) -> None:
        now = time.monotonic()
        with self._lock:
            counts[reason] += amount
            last = self._last_logged.get(f"{what}:{reason}")
            if last is not None and now - last < REJECT_LOG_INTERVAL_S:
                return
            self._last_logged[f"{what}:{reason}"] = now
            count = counts[reason]
        log.warning(
            what, extra={"reason": reason, "detail": detail[:200], "topic": topic[:200], "total_for_reason": count}
        )

    def observe_write(self, seconds: float) -> None:
        with self._lock:
            self.write_latency.observe(seconds)

    def render(self) -> str:
        """Prometheus text exposition format 0.0.4."""
        lines: list[str] = []
        with self._lock:
            for name in sorted(self.counters):
                metric = f"commune_collector_{name}"
                lines += [f"# TYPE {metric} counter", f"{metric} {self.counters[name]:g}"]
            lines.append("# HELP commune_collector_messages_rejected_total Messages rejected, by reason.")
            lines.append("# TYPE commune_collector_messages_rejected_total counter")
            for reason in sorted(self.rejected):
                lines.append(f'commune_collector_messages_rejected_total{{reason="{reason}"}} {self.rejected[reason]}')
            lines.append(
                "# HELP commune_collector_points_dropped_total Points dropped from accepted messages, by reason."
            )
            lines.append("# TYPE commune_collector_points_dropped_total counter")
            for reason in sorted(self.dropped):
                lines.append(f'commune_collector_points_dropped_total{{reason="{reason}"}} {self.dropped[reason]}')
            hist = self.write_latency
            metric = "commune_collector_influx_write_seconds"
            lines.append(f"# TYPE {metric} histogram")
            for bound, count in zip(hist.buckets, hist.counts, strict=True):
                lines.append(f'{metric}_bucket{{le="{bound:g}"}} {count}')
            lines.append(f'{metric}_bucket{{le="+Inf"}} {hist.total}')
            lines += [f"{metric}_sum {hist.sum:g}", f"{metric}_count {hist.total}"]
            gauges = dict(self.gauges)
        for name in sorted(gauges):
            metric = f"commune_collector_{name}"
            lines += [f"# TYPE {metric} gauge", f"{metric} {gauges[name]():g}"]
        return "\n".join(lines) + "\n"
