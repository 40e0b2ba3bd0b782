"""The collector's on-disk write buffer: batches of line protocol kept while InfluxDB is down or slow.

SQLite in WAL mode: a committed batch survives the collector being killed. Bounded by size;
when full, ``append`` says so and the writer stops taking messages (the broker holds them).
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    points INTEGER NOT NULL,
    lines TEXT NOT NULL
);
"""


class DiskBuffer:
    def __init__(self, path: str | Path, max_bytes: int) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._points = self._count_points()

    def _count_points(self) -> int:
        return int(self._db.execute("SELECT coalesce(sum(points), 0) FROM batches").fetchone()[0])

    def size_bytes(self) -> int:
        with self._lock:
            pages = self._db.execute("PRAGMA page_count").fetchone()[0]
            free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
            page_size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page_size)

    def points(self) -> int:
        return self._points

    def append(self, lines: list[str]) -> bool:
        """Keep a batch; False (and nothing kept) when the buffer is full."""
        text = "\n".join(lines)
        if self.size_bytes() + len(text) > self._max_bytes:
            return False
        with self._lock:
            self._db.execute("INSERT INTO batches (points, lines) VALUES (?, ?)", (len(lines), text))
            self._points += len(lines)
        return True

    def oldest(self) -> tuple[int, list[str]] | None:
        with self._lock:
            row = self._db.execute("SELECT id, lines FROM batches ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return int(row[0]), str(row[1]).split("\n")

    def remove(self, batch_id: int) -> None:
        with self._lock:
            row = self._db.execute("SELECT points FROM batches WHERE id = ?", (batch_id,)).fetchone()
            self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            if row is not None:
                self._points -= int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
