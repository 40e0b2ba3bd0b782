"""Keeping the series bounds across restarts: each host's agent-tag values with when each was last
seen (table ``series_bounds``, one JSON row per host, declared by ``collector/store.py``), so a
restart does not hand every host a fresh ``max_values_per_tag`` values. Hosts retired (forgotten in
the registry) or with no value seen for ``[fleet] forget_after_days`` are freed, in memory and in
the file. A row it cannot read is skipped: that host starts afresh.

This is the only place series bounds meet the state file.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from collector.ingest.series_bounds import SeriesBounds
from collector.registry.registry import HostKey
from collector.store import Store


class BoundsKeeper:
    def __init__(self, store: Store, bounds: SeriesBounds, forget_after_s: float) -> None:
        self._store = store
        self.bounds = bounds
        self.forget_after_s = forget_after_s

    def restore(self) -> int:
        """Load every host's saved values; how many hosts."""
        loaded = 0
        for name, body in self._store.query("SELECT host, body FROM series_bounds"):
            try:
                province, commune, host = str(name).split("/", 2)
                values = {
                    str(tag): {str(v): float(at) for v, at in seen.items()} for tag, seen in json.loads(body).items()
                }
            except (ValueError, TypeError, AttributeError):
                continue
            self.bounds.restore(HostKey(province, commune, host), values)
            loaded += 1
        return loaded

    def save(self, now: float) -> int:
        """Save the hosts whose values changed; how many."""
        changed = self.bounds.take_changed(now)
        if changed:
            rows = [(key_text(host), json.dumps(values)) for host, values in changed]
            self._store.upsert("series_bounds", ["host"], ["body"], rows)
        return len(changed)

    def to_free(self, now: float, known: Collection[HostKey]) -> list[HostKey]:
        """Hosts retired (not in ``known``) or silent for ``forget_after_s``."""
        return self.bounds.to_free(now - self.forget_after_s, known)

    def forget(self, hosts: Collection[HostKey]) -> None:
        """Delete these hosts' saved values (the caller frees them in memory)."""
        with self._store.transaction() as db:
            db.executemany("DELETE FROM series_bounds WHERE host = ?", [(key_text(h),) for h in hosts])


def key_text(host: HostKey) -> str:
    return f"{host.province}/{host.commune}/{host.host}"
