"""Keeping Python's garbage collector off the fleet's long-lived facts, and timing its pauses.

A nation's collector holds about a million tracked objects for 100,000 PCs (each PC's facts, its
lists of reboots and gaps, its samples). They live as long as the collector, yet the collector
scanned them all in a full (generation 2) collection that each evaluation tick set off with its
own 200,000 new tuples: about 0.3 s of a 1.3 s tick (docs/en/nation-scale.md). The keeper, on the
evaluator thread after a tick, moves what is alive into the permanent generation (``gc.freeze``)
whenever the fleet has grown by a quarter since it last did, after one full collection so no
garbage is frozen with it. Frozen objects are still freed when nothing refers to them (a
forgotten PC); only cycles among them would never be, and the facts hold none. While it runs, a
full collection also waits for 100 collections of the middle generation instead of 10, since
what remains to scan is the ticks' own short-lived objects.

It also adds the time every collection held the interpreter to
``commune_collector_gc_pause_seconds_total`` (per generation), so operators see the pauses.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from prometheus_client import Counter

FREEZE_GROWTH = 1.25  # the fleet grew by a quarter since the last freeze: freeze again
FREEZE_MIN_HOSTS = 1000  # below this the full collections are cheap: nothing is frozen
OLDEST_THRESHOLD = 100  # collections of generation 1 before one of generation 2 (Python's default: 10)


class GcKeeper:
    """Started and stopped with the collector; ``after_tick`` is called by the evaluator thread."""

    def __init__(self, pauses: Counter) -> None:
        self._pauses = [pauses.labels(generation=str(g)) for g in range(3)]
        self._started_at = 0.0
        self._thresholds = gc.get_threshold()
        self.frozen_at_hosts = 0  # the fleet's size at the last freeze, 0 before any

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

    def after_tick(self, hosts: int) -> bool:
        """Freeze what is alive when the fleet (``hosts`` PCs known) has grown enough; whether it did."""
        if hosts < FREEZE_MIN_HOSTS or hosts < self.frozen_at_hosts * FREEZE_GROWTH:
            return False
        gc.collect()
        gc.freeze()
        self.frozen_at_hosts = hosts
        return True

    def _timed(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started_at = time.perf_counter()
        else:
            self._pauses[info["generation"]].inc(time.perf_counter() - self._started_at)
