"""One commune's last days read back from InfluxDB, for the web console's small charts: PCs online,
measured download speed and the probes' round trip and loss, as hourly (speed: three-hourly) means.

One HTTP request with three InfluxQL statements per commune; answers are kept ``ttl_s`` seconds,
so a page opened by several people, or refreshed, costs InfluxDB one query a minute. InfluxDB down
or refusing gives a ``History`` marked ``failed`` (the page says so), never an error page.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from collector.ingest.influx import InfluxError
from common.wire import COMMUNE_RE

Series = list[tuple[float, float]]  # (UTC seconds, value), oldest first, gaps left out
DAYS = 7


@dataclass(frozen=True)
class History:
    online: Series = field(default_factory=list)
    total: Series = field(default_factory=list)
    download: Series = field(default_factory=list)
    rtt: Series = field(default_factory=list)
    loss: Series = field(default_factory=list)
    failed: bool = False  # InfluxDB could not answer


def statements(commune: str, days: int = DAYS) -> str:
    """The InfluxQL for one commune (its code checked, as it goes into the query text)."""
    if not COMMUNE_RE.match(commune):
        raise ValueError(f"commune {commune[:20]!r} is not a commune code")
    where = f"\"commune\" = '{commune}' AND time > now() - {days}d"
    return ";".join(
        (
            f'SELECT mean("hosts_online") AS "online", max("hosts_total") AS "total" FROM "commune" '
            f"WHERE {where} GROUP BY time(1h) fill(none)",
            f'SELECT mean("download_mbps") AS "download" FROM "speedtest" WHERE {where} AND "download_mbps" > 0 '
            f"GROUP BY time(3h) fill(none)",
            f'SELECT mean("rtt_avg_ms") AS "rtt", mean("loss_percent") AS "loss" FROM "probe" WHERE {where} '
            f"GROUP BY time(1h) fill(none)",
        )
    )


def column(results: list[dict[str, Any]], statement: int, name: str) -> Series:
    """One column of one statement's answer as (time, value), rows without a value left out."""
    if statement >= len(results):
        return []
    out: Series = []
    for series in results[statement].get("series", []):
        columns = series.get("columns", [])
        if name not in columns:
            continue
        at, index = columns.index("time"), columns.index(name)
        out += [(float(row[at]), float(row[index])) for row in series.get("values", []) if row[index] is not None]
    return sorted(out)


def history_of(results: list[dict[str, Any]]) -> History:
    return History(
        online=column(results, 0, "online"),
        total=column(results, 0, "total"),
        download=column(results, 1, "download"),
        rtt=column(results, 2, "rtt"),
        loss=column(results, 2, "loss"),
    )


Query = Callable[[str], list[dict[str, Any]]]
"""Runs InfluxQL and returns the ``results`` list (``InfluxClient.query``); raises on failure."""


class CommuneHistory:
    """``history(commune)``: the commune's last ``DAYS`` days, cached ``ttl_s`` seconds per commune."""

    def __init__(self, query: Query, ttl_s: float = 60.0, max_cached: int = 4000) -> None:
        self._query = query
        self.ttl_s = ttl_s
        self.max_cached = max_cached
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, History]] = {}

    def __call__(self, commune: str) -> History:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(commune)
        if cached is not None and now - cached[0] < self.ttl_s:
            return cached[1]
        try:
            found = history_of(self._query(statements(commune)))
        except (InfluxError, ValueError, KeyError, TypeError, IndexError):  # down, refusing, or nonsense: said
            found = History(failed=True)
        with self._lock:
            if len(self._cache) >= self.max_cached:
                self._cache.clear()
            self._cache[commune] = (now, found)
        return found
