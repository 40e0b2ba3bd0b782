"""Keeping Python's garbage collector off the fleet's long-lived objects, and timing its pauses.

A nation's collector holds about a million tracked objects for 100,000 PCs (each PC's facts, its
lists of reboots and gaps, its samples, its registry record). They live as long as the collector,
and their containers are replaced as reports come, yet a full (generation 2) collection scans
them all: at 100,000 PCs it held the whole process for about 0.6 s, six times a minute, and the
API's slowest requests were the ones that waited for it (docs/en/nation-scale.md).

So the keeper, on the evaluator thread after each tick, collects the young generations and moves
what survived into the permanent generation (``gc.freeze``), which collections never scan: the
full collections Python starts by itself then scan only what was made since the last tick. What
is frozen is still freed when nothing refers to it; only garbage cycles frozen with the living
would stay, so every ``FULL_EVERY_S``, and whenever the fleet has grown by a quarter, everything is
unfrozen and collected in full once (the one long pause, an hour apart), then frozen again. A
small fleet is left to Python's own policy. While it runs, a full collection also waits for 100
collections of the middle generation instead of 10.

It also adds the time every collection held the interpreter to
``commune_collector_gc_pause_seconds_total`` (per generation), so operators see the pauses.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Counter

FREEZE_GROWTH = 1.25  # the fleet grew by a quarter since the last full collection: one more
FREEZE_MIN_HOSTS = 1000  # below this the full collections are cheap: nothing is frozen
FULL_EVERY_S = 3600.0  # everything unfrozen and collected once an hour: frozen garbage cycles freed
OLDEST_THRESHOLD = 100  # collections of generation 1 before one of generation 2 (Python's default: 10)


class GcKeeper:
    """Started and stopped with the collector; ``after_tick`` is called by the evaluator thread."""

    def __init__(self, pauses: Counter) -> None:
        self._pauses = [pauses.labels(generation=str(g)) for g in range(3)]
        self._started_at = 0.0
        self._thresholds = gc.get_threshold()
        self.frozen_at_hosts = 0  # the fleet's size at the last full collection, 0 before any
        self.full_at = 0.0  # when that was (time.monotonic)

    def start(self) -> None:
        self._thresholds = gc.get_threshold()
        first, middle, _oldest = self._thresholds
        gc.set_threshold(first, middle, OLDEST_THRESHOLD)
        gc.callbacks.append(self._timed)

    def stop(self) -> None:
        if self._timed in gc.callbacks:
            gc.callbacks.remove(self._timed)
        gc.set_threshold(*self._thresholds)
        if self.frozen_at_hosts:
            gc.unfreeze()  # back into the oldest generation: this process may go on without us
            self.frozen_at_hosts = 0

    def after_tick(self, hosts: int, now: float | None = None) -> str:
        """After a tick with ``hosts`` PCs known: ``""`` (a small fleet, nothing done), ``"young"``
        (the young generations collected, their survivors frozen) or ``"full"`` (everything
        unfrozen, collected and frozen again)."""
        if hosts < FREEZE_MIN_HOSTS:
            return ""
        now = time.monotonic() if now is None else now
        grown = hosts >= self.frozen_at_hosts * FREEZE_GROWTH
        if grown or now - self.full_at >= FULL_EVERY_S:
            gc.unfreeze()
            gc.collect()
            gc.freeze()
            self.frozen_at_hosts, self.full_at = hosts, now
            return "full"
        gc.collect(1)
        gc.freeze()
        return "young"

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
        else:
            self._pauses[info["generation"]].inc(time.perf_counter() - self._started_at)
