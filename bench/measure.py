"""Small measuring tools shared by the benchmarks: the CPU an action costs this process."""

from __future__ import annotations

import time
from collections.abc import Callable


def cpu_ms(action: Callable[[], object]) -> float:
    """The process CPU (user + system, ``time.process_time``) that one call of ``action`` took, in ms."""
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000
