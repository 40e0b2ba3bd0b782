"""Bounds, per host, the distinct values of each tag that comes from the agent (``mount``, ``nic``,
``sensor``, ``target``, ``mode``).

InfluxDB 1.x holds its series index in memory, and every new tag value is a new series: a buggy
or hostile host inventing mount names in each report would grow it without end. So a host may hold
at most ``max_values`` values of each such tag seen within ``window_s``; a value not seen for a
window gives its place back. Beyond the bound a new value is dropped (that one point only: the
host's known series keep flowing) and the host counts as over its bound until a window passes
without a drop. Like InfluxDB's ``max-values-per-tag`` and Prometheus' ``label_limit``, but per
host, so one host cannot use up what the others need. Kept in memory: a restart starts afresh.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from collector.ingest.lineprotocol import Point
from collector.registry.registry import HostKey
from common.wire import SECTIONS_BY_KIND

# Tag keys whose values the agent chooses: every section's label in the wire contract.
AGENT_TAGS = frozenset(
    spec.label for sections in SECTIONS_BY_KIND.values() for spec in sections.values() if spec.label is not None
)


@dataclass(frozen=True)
class Dropped:
    """What one message lost to the bound: how many points, and the first new value refused."""

    points: int
    tag: str
    example: str


class SeriesBounds:
    def __init__(self, max_values: int, window_s: float) -> None:
        self.max_values = max_values
        self.window_s = window_s
        self._lock = threading.Lock()
        self._seen: dict[tuple[HostKey, str], dict[str, float]] = {}  # (host, tag) -> value -> last seen
        self._last_drop: dict[HostKey, float] = {}

    def admit(self, host: HostKey, points: list[Point], now: float) -> tuple[list[Point], Dropped | None]:
        """The points this host may write; the rest are dropped and described."""
        kept: list[Point] = []
        refused: list[tuple[str, str]] = []
        with self._lock:
            for point in points:
                tag = _agent_tag(point)
                if tag is None or self._admit_value(host, tag, point.tags[tag], now):
                    kept.append(point)
                else:
                    refused.append((tag, point.tags[tag]))
            if refused:
                self._last_drop[host] = now
        if not refused:
            return kept, None
        return kept, Dropped(len(refused), *refused[0])

    def admit_value(self, host: HostKey, tag: str, value: str, now: float) -> bool:
        """Whether this host may write a point with this value of ``tag`` (one whose value the
        agent supplies); a refusal marks the host over its bound, as ``admit`` does."""
        with self._lock:
            if self._admit_value(host, tag, value, now):
                return True
            self._last_drop[host] = now
            return False

    def _admit_value(self, host: HostKey, tag: str, value: str, now: float) -> bool:
        values = self._seen.setdefault((host, tag), {})
        if value in values:
            values[value] = now
            return True
        if len(values) >= self.max_values:
            for stale in [v for v, seen in values.items() if now - seen > self.window_s]:
                del values[stale]
        if len(values) >= self.max_values:
            return False
        values[value] = now
        return True

    def over_bound(self, now: float) -> dict[HostKey, float]:
        """Hosts that had a value dropped within the window, with the time of the last drop."""
        with self._lock:
            for host in [h for h, at in self._last_drop.items() if now - at > self.window_s]:
                del self._last_drop[host]
            return dict(self._last_drop)


def _agent_tag(point: Point) -> str | None:
    """The tag of a point whose value the agent supplies (``mount``, ``nic``...), if any."""
    for key in point.tags:
        if key in AGENT_TAGS:
            return key
    return None
