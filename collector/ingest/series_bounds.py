"""Bounds, per host, the distinct values of each tag that comes from the agent (``mount``, ``nic``,
``sensor``, ``target``, ``mode``).

InfluxDB 1.x holds its series index in memory, and every new tag value is a new series: a buggy
or hostile host inventing mount names in each report would grow it without end. So a host may hold
at most ``max_values`` values of each such tag seen within ``window_s``; a value not seen for a
window gives its place back. Beyond the bound a new value is dropped (that one point only: the
host's known series keep flowing) and the host counts as over its bound until a window passes
without a drop. Like InfluxDB's ``max-values-per-tag`` and Prometheus' ``label_limit``, but per
host, so one host cannot use up what the others need. The values are kept across restarts in the
state file (``bounds_state.py`` saves the hosts whose values changed, ``take_changed``), and a host
retired or silent for long is freed (``free``), in memory and there.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
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


class HostBounds:
    """One host's values of each agent tag, with when each was last seen; held by ``SeriesBounds``
    for as long as it runs, so a caller may keep it (the ingest keeps it with the host's topic)."""

    __slots__ = ("_bounds", "host", "lock", "saved_at", "values")

    def __init__(self, bounds: SeriesBounds, host: HostKey) -> None:
        self._bounds = bounds
        self.lock = bounds.lock
        self.host = host
        self.values: dict[str, dict[str, float]] = {}  # tag -> value -> last seen
        self.saved_at = float("-inf")  # when the state file last got these values

    def admit(self, tag: str, value: str, now: float) -> bool:
        """Whether the host may write a point with this value of ``tag``; a refusal marks the host
        over its bound."""
        with self.lock:
            if self.admit_locked(tag, value, now):
                return True
            self.mark_drop(now)
            return False

    def mark_drop(self, now: float) -> None:
        """Mark the host over its bound (the caller holds ``lock``)."""
        self._bounds.last_drop[self.host] = now

    def admit_locked(self, tag: str, value: str, now: float) -> bool:
        """``admit`` for a caller holding ``SeriesBounds.lock``, without marking a refusal."""
        values = self.values.get(tag)
        if values is not None and value in values:  # the common case: a known value, seen again
            values[value] = now
            if now - self.saved_at > self._bounds.resave_s:  # last-seen times saved now and then
                self._bounds.dirty.add(self.host)
            return True
        if values is None:
            values = self.values[tag] = {}
        max_values = self._bounds.max_values
        if len(values) >= max_values:
            for stale in [v for v, seen in values.items() if now - seen > self._bounds.window_s]:
                del values[stale]
        if len(values) >= max_values:
            return False
        values[value] = now
        self._bounds.dirty.add(self.host)
        return True

    def newest(self) -> float:
        """When any of its values was last seen (-inf: none)."""
        return max((seen for values in self.values.values() for seen in values.values()), default=float("-inf"))


class SeriesBounds:
    def __init__(self, max_values: int, window_s: float) -> None:
        self.max_values = max_values
        self.window_s = window_s
        self.resave_s = window_s / 8  # a known value seen again is saved at most this often
        self.lock = threading.Lock()
        self._hosts: dict[HostKey, HostBounds] = {}
        self.last_drop: dict[HostKey, float] = {}
        self.dirty: set[HostKey] = set()  # hosts whose values the state file does not have yet

    def of(self, host: HostKey) -> HostBounds:
        """The host's bounds (made at its first call, then the same object)."""
        with self.lock:
            found = self._hosts.get(host)
            if found is None:
                found = self._hosts[host] = HostBounds(self, host)
            return found

    def restore(self, host: HostKey, values: dict[str, dict[str, float]]) -> None:
        """A host's values as the state file kept them (at start)."""
        bounds = self.of(host)
        with self.lock:
            bounds.values = {tag: dict(seen) for tag, seen in values.items()}
            bounds.saved_at = bounds.newest()

    def take_changed(self, now: float) -> list[tuple[HostKey, dict[str, dict[str, float]]]]:
        """The values of every host changed since the last call, to save; marked saved at ``now``."""
        with self.lock:
            changed = [self._hosts[h] for h in self.dirty if h in self._hosts]
            self.dirty.clear()
            for bounds in changed:
                bounds.saved_at = now
            return [(b.host, {tag: dict(seen) for tag, seen in b.values.items()}) for b in changed]

    def to_free(self, silent_before: float, known: Collection[HostKey]) -> list[HostKey]:
        """Hosts whose bounds can go: retired (not in ``known``) or no value seen since ``silent_before``."""
        with self.lock:
            return [h for h, b in self._hosts.items() if h not in known or b.newest() < silent_before]

    def free(self, hosts: Collection[HostKey]) -> None:
        """Forget these hosts' bounds (a holder of their ``HostBounds`` must let it go too)."""
        with self.lock:
            for host in hosts:
                self._hosts.pop(host, None)
                self.last_drop.pop(host, None)
                self.dirty.discard(host)

    def hosts(self) -> int:
        with self.lock:
            return len(self._hosts)

    def admit(self, host: HostKey, points: list[Point], now: float) -> tuple[list[Point], Dropped | None]:
        """The points this host may write; the rest are dropped and described."""
        kept: list[Point] = []
        refused: list[tuple[str, str]] = []
        bounds = self.of(host)
        with self.lock:
            for point in points:
                tag = _agent_tag(point)
                if tag is None or bounds.admit_locked(tag, point.tags[tag], now):
                    kept.append(point)
                else:
                    refused.append((tag, point.tags[tag]))
            if refused:
                self.last_drop[host] = now
        if not refused:
            return kept, None
        return kept, Dropped(len(refused), *refused[0])

    def over_bound(self, now: float) -> dict[HostKey, float]:
        """Hosts that had a value dropped within the window, with the time of the last drop."""
        with self.lock:
            for host in [h for h, at in self.last_drop.items() if now - at > self.window_s]:
                del self.last_drop[host]
            return dict(self.last_drop)


def _agent_tag(point: Point) -> str | None:
    """The tag of a point whose value the agent supplies (``mount``, ``nic``...), if any."""
    for key in point.tags:
        if key in AGENT_TAGS:
            return key
    return None
