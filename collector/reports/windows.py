"""The monthly report's sums per office window, kept in the state file once the window is past.

A report sums the 5-minute rollups of every commune and PC over each office window of two months
(the month asked and the one before, for the changes). For a whole nation that is nearly 200
InfluxQL statements over thousands of series, and most of the report's time. A window that ended
more than ``SETTLED_S`` ago no longer changes (a continuous query rolls up each 5 minutes once), so
its sums are asked of InfluxDB once and read from here after that; ``WindowKeeper`` sums each
window soon after it ends, so the monthly report finds them all here.

A window is kept as final only when its data is known to be complete:
- it ended more than ``SETTLED_S`` ago (the continuous queries have rolled it up);
- it has data: the collector writes a status point per commune and PC every interval, day and
  night, so a window with none was summed before its history was there (a server restored from
  backup, a backfill or a province's backlog still to come, the collector down). It is asked of
  InfluxDB again at every report and keeper run until it has data; a window kept empty by an
  older release is read as not kept, and summed again;
- no range being written overlaps it: whatever writes the past (the backfill) holds its range
  here while it writes and rolls up (``hold``), which forgets the windows kept in it, and then
  releases it (``release``), which forgets them again; they are summed again once complete.
A late report from an agent's spool does not change a window's sums: they are read from the
collector's own status points, written live. Report revisions (a later issue) will record a
change to a month already reported.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from collector.localtime import Window
from collector.store import Store

log = logging.getLogger("commune_collector.report_windows")
SETTLED_S = 3600  # a window's rollups are complete this long after it ends
KEEP_DAYS = 400  # as long as the rollups are kept (rollup_retention's default)
KEEP_EVERY_S = 3600.0
HELD = "held"  # the kind of a report_windows row that holds a range whose history is being written
FIRST_AFTER_S = 300.0  # not while the collector starts: InfluxDB has the backlog to take first


@dataclass(frozen=True)
class Sums:
    """One commune's (or PC's) sums over one office window: slots with data, and two counts."""

    commune: str
    host: str
    n: float
    a: float
    b: float


class WindowSums:
    """The ``report_windows`` and ``report_slots`` tables (store migration 6)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def read(
        self, kind: str, windows: list[Window], commune: str = ""
    ) -> dict[int, list[tuple[str, str, float, float, float]]]:
        """The kept sums (commune, host, n, a, b) of those ``windows`` that are kept, by the window's
        index (of one commune only, if given)."""
        if not windows:
            return {}
        first, last = min(w.start for w in windows), max(w.start for w in windows)
        index = {(w.start, w.end): i for i, w in enumerate(windows)}
        done = self._store.query(
            "SELECT start, end FROM report_windows WHERE kind = ? AND start >= ? AND start <= ?", (kind, first, last)
        )
        out: dict[int, list[tuple[str, str, float, float, float]]] = {index[w]: [] for w in done if w in index}
        only, params = (" AND commune = ?", (commune,)) if commune else ("", ())
        rows = self._store.query(
            "SELECT start, end, commune, host, n, a, b FROM report_slots WHERE kind = ? AND start >= ? AND start <= ?"
            + only,
            (kind, first, last, *params),
        )
        for row in rows:
            found = out.get(index.get(row[:2], -1))
            if found is not None:
                found.append(row[2:])
        return {i: sums for i, sums in out.items() if sums}  # one kept empty (older releases) is summed again

    def save(self, kind: str, window: Window, sums: list[Sums]) -> bool:
        """Keeps a settled window's sums as final, unless it has no data or its range is held; says
        whether it did."""
        with self._store.transaction() as db:
            db.execute("DELETE FROM report_slots WHERE kind = ? AND start = ? AND end = ?",
                       (kind, window.start, window.end))  # fmt: skip
            held = db.execute("SELECT 1 FROM report_windows WHERE kind = ? AND end > ? AND start < ? LIMIT 1",
                              (HELD, window.start, window.end)).fetchone()  # fmt: skip
            if held or not any(s.n > 0 for s in sums):  # and one kept empty by an older release goes
                db.execute("DELETE FROM report_windows WHERE kind = ? AND start = ? AND end = ?",
                           (kind, window.start, window.end))  # fmt: skip
                return False
            db.executemany(
                "INSERT INTO report_slots (kind, start, end, commune, host, n, a, b) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(kind, window.start, window.end, s.commune, s.host, s.n, s.a, s.b) for s in sums],
            )
            db.execute("INSERT OR IGNORE INTO report_windows (kind, start, end) VALUES (?, ?, ?)",
                       (kind, window.start, window.end))  # fmt: skip
        return True

    def hold(self, start: float, end: float) -> None:
        """[start, end)'s history is being written: the windows kept in it are forgotten, and none is
        kept until ``release``."""
        with self._store.transaction() as db:
            self._forget(db, start, end)
            db.execute("INSERT OR IGNORE INTO report_windows (kind, start, end) VALUES (?, ?, ?)",
                       (HELD, int(start), int(end)))  # fmt: skip

    def release(self, start: float, end: float) -> None:
        """[start, end)'s history is complete: the hold goes, and its windows are summed again."""
        with self._store.transaction() as db:
            self._forget(db, start, end)
            db.execute("DELETE FROM report_windows WHERE kind = ? AND start = ? AND end = ?",
                       (HELD, int(start), int(end)))  # fmt: skip

    def forget(self, start: float, end: float) -> None:
        """Windows that overlap [start, end), whose rollups are being written again."""
        with self._store.transaction() as db:
            self._forget(db, start, end)

    @staticmethod
    def _forget(db: sqlite3.Connection, start: float, end: float) -> None:
        db.execute("DELETE FROM report_windows WHERE kind != ? AND end > ? AND start < ?", (HELD, start, end))
        db.execute("DELETE FROM report_slots WHERE end > ? AND start < ?", (start, end))

    def prune(self, now: float) -> None:
        """Windows and holds older than the rollups (a backfill that never finished leaves its hold:
        its windows are summed at every report, never kept, until a backfill of that range ends)."""
        self.forget(0, now - KEEP_DAYS * 86400)
        with self._store.transaction() as db:
            db.execute("DELETE FROM report_windows WHERE kind = ? AND end < ?", (HELD, now - KEEP_DAYS * 86400))


def settled(window: Window, now: float) -> bool:
    return window.end <= now - SETTLED_S


class WindowKeeper(threading.Thread):
    """Sums each office window of this month and the last soon after it ends (every hour), in a
    thread of the collector, so a report reads them from the state file."""

    def __init__(self, keep: Callable[[float], int]) -> None:
        super().__init__(name="report-windows", daemon=True)
        self._keep = keep
        self._stopping = threading.Event()

    def stop(self) -> None:
        self._stopping.set()
        if self.is_alive():
            self.join(30)

    def run(self) -> None:
        wait = FIRST_AFTER_S
        while not self._stopping.wait(wait):
            wait = KEEP_EVERY_S
            try:
                summed = self._keep(time.time())
            except Exception as exc:  # InfluxDB away: a report asks for what is missing itself
                log.warning("report windows not summed", extra={"error": str(exc)})
                continue
            if summed:
                log.info("report windows summed", extra={"windows": summed})
