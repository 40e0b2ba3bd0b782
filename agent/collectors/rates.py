"""Turns monotonically increasing counters into per-second rates between two samples."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping


class RateTracker:
    """Remembers the last counters per key and returns per-second rates since then.

    ``clock`` (``time.monotonic`` by default) is passed in so tests pin the elapsed time.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last: dict[str, tuple[float, Mapping[str, float]]] = {}

    def rates(self, key: str, counters: Mapping[str, float], now: float | None = None) -> dict[str, float]:
        """Rates for ``counters`` since the previous call for ``key``; empty on the first call.

        A counter that went backwards (reboot, wrap, driver reset) gives no rate this time.
        """
        now = self._clock() if now is None else now
        previous = self._last.get(key)
        self._last[key] = (now, dict(counters))
        if previous is None:
            return {}
        then, old = previous
        elapsed = now - then
        if elapsed <= 0:
            return {}
        out = {}
        for name, value in counters.items():
            before = old.get(name)
            if before is not None and value >= before:
                out[name] = (value - before) / elapsed
        return out
