"""A token bucket that makes the speed-test endpoint behave like a line of a given speed.

One bucket is shared by every transfer, so two agents testing at once share the rate, as they
would share a real line. It lives apart from the routes so the app can build one and hand it to
them as a dependency.
"""

from __future__ import annotations

import asyncio
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
