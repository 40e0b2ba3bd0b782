"""A clock the test moves by hand, for objects that take a ``clock`` callable (retry and expiry times),
so a test sets the time instead of waiting for it."""

from __future__ import annotations


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
