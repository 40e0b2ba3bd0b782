"""Token buckets the routes are handed as dependencies, kept apart from the routes.

``Throttle`` makes the speed-test endpoint behave like a line of a given speed: one bucket is
shared by every transfer, so two agents testing at once share the rate, as they would share a real
line. ``FailureLimiter`` slows whoever keeps failing at self-enrolment: each address may fail a
number of times, and then once more per refill period; past that it is refused until then.
"""

from __future__ import annotations

import asyncio
import threading
import time


class Throttle:
    """A token bucket shared by every transfer; rate 0 means no limit."""

    def __init__(self, rate_mbps: float) -> None:
        self.bytes_per_s = rate_mbps * 1_000_000 / 8
        self._available = 0.0
        self._last = time.monotonic()
        self._lock = asyncio.Lock()

    async def take(self, size: int) -> None:
        if self.bytes_per_s <= 0:
            return
        async with self._lock:
            now = time.monotonic()
            self._available = min(self.bytes_per_s * 0.05, self._available + (now - self._last) * self.bytes_per_s)
            self._last = now
            self._available -= size
            if self._available < 0:
                await asyncio.sleep(-self._available / self.bytes_per_s)


class FailureLimiter:
    """Per-address failure budget: ``failures`` at first, one more every ``refill_s`` seconds."""

    MAX_ADDRESSES = 100_000  # beyond this, the addresses with a full budget again are forgotten

    def __init__(self, failures: int, refill_s: float) -> None:
        self.failures = failures
        self.refill_s = refill_s
        self._budget: dict[str, tuple[float, float]] = {}  # address -> (failures left, at monotonic time)
        self._lock = threading.Lock()

    def _left(self, address: str, now: float) -> float:
        left, at = self._budget.get(address, (float(self.failures), now))
        return min(float(self.failures), left + (now - at) / self.refill_s)

    def wait_s(self, address: str) -> float:
        """Seconds until ``address`` may try again: 0 while it has failures left."""
        now = time.monotonic()
        with self._lock:
            left = self._left(address, now)
        return 0.0 if left >= 1 else (1 - left) * self.refill_s

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            if len(self._budget) >= self.MAX_ADDRESSES:
                self._budget = {a: v for a, v in self._budget.items() if self._left(a, now) < self.failures}
            self._budget[address] = (max(0.0, self._left(address, now) - 1), now)
