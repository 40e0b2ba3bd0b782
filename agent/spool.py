"""The agent's on-disk outbox: every report waits here until the broker acknowledges it.

SQLite in WAL mode with full sync survives kill -9 and power loss. The spool is bounded by
size and age; when full, the oldest reports are dropped first and counted, so a line that is
down for days costs old data, never the agent's disk.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class SpooledMessage:
    id: int
    topic: str
    payload: bytes


class Spool:
    """A bounded FIFO of (topic, payload) kept on disk."""

    def __init__(self, path: str | Path, max_bytes: int, max_age_s: float) -> None:
        if str(path) != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()[0])

    def put(self, topic: str, payload: bytes, now: float | None = None) -> None:
        """Append a message, then enforce the age and size bounds."""
        now = time.time() if now is None else now
        with self._lock:
            self._db.execute("INSERT INTO outbox (topic, payload, created) VALUES (?, ?, ?)", (topic, payload, now))
            self._bytes += len(payload)
            self._enforce_bounds(now)

    def peek(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [SpooledMessage(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def remove(self, message_id: int) -> None:
        """Forget a message the broker has acknowledged."""
        with self._lock:
            row = self._db.execute("SELECT LENGTH(payload) FROM outbox WHERE id = ?", (message_id,)).fetchone()
            if row is None:
                return
            self._db.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
            self._bytes -= int(row[0])

    def depth(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def size_bytes(self) -> int:
        with self._lock:
            return self._bytes

    def dropped(self) -> int:
        """How many messages were dropped for age or size over the spool's whole life."""
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = 'dropped'").fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _enforce_bounds(self, now: float) -> None:
        dropped = self._db.execute("DELETE FROM outbox WHERE created < ?", (now - self._max_age_s,)).rowcount
        while self._bytes > self._max_bytes:
            oldest = self._db.execute("SELECT id, LENGTH(payload) FROM outbox ORDER BY id LIMIT 256").fetchall()
            if not oldest:
                break
            freed_ids = []
            for message_id, size in oldest:
                if self._bytes <= self._max_bytes:
                    break
                freed_ids.append(message_id)
                self._bytes -= int(size)
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in freed_ids])
            dropped += len(freed_ids)
        if dropped > 0:
            self._bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()[0])
            self._db.execute(
                "INSERT INTO counters (name, value) VALUES ('dropped', ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                (dropped,),
            )
