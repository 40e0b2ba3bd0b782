"""The agent's on-disk outbox: every report waits here until it is known to be stored.

SQLite in WAL mode survives kill -9 and power loss. A report is kept by one transaction synced
to the disk (``synchronous=FULL``: the WAL is flushed at its commit), so once ``put`` returns it
survives a power cut. The later steps of its life are committed without waiting for the disk
(``synchronous=NORMAL``), because losing them in a power cut costs nothing but a duplicate: a
lost ``sent`` mark is cleared at the next start anyway, and a lost release sends the report
again, the same InfluxDB point. The next report's synced commit flushes them too. So a report
costs one disk flush, not three. The WAL is checkpointed every ``WAL_CHECKPOINT_PAGES`` pages and
cut back to ``WAL_LIMIT_BYTES`` (SQLite's default lets it grow to 4 MB, which a nearly full disk has
not got), so the spool needs little more than its own bound. The spool is bounded by
size and age; when full, the oldest reports are dropped first and counted, so a line that is
down for days costs old data, never the agent's disk.

A report's row id is its sequence number on the wire, and the spool's random ``stream`` id
names the numbering (a new spool file starts a new stream). A report goes through two steps:
the broker's PUBACK marks it ``sent`` (with the connection it went out on), and the collector's
acknowledgement releases it. With a collector that does not acknowledge, the publisher
releases it at the PUBACK instead (broker-level release).
"""

from __future__ import annotations

import contextlib
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
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
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""
# The WAL's bound: checkpointed every 64 pages written (SQLite's default, 1,000 pages, is 4 MB, and the
# file never shrinks from it), and cut back to this size once a checkpoint lets it start again.
WAL_CHECKPOINT_PAGES = 64
WAL_LIMIT_BYTES = 256 * 1024
# Spools written before acknowledgements: every report in them counts as not yet sent.
SENT_COLUMNS = (
    "ALTER TABLE outbox ADD COLUMN sent REAL",  # the broker's PUBACK, publisher's monotonic clock; NULL: not sent
    "ALTER TABLE outbox ADD COLUMN conn INTEGER NOT NULL DEFAULT 0",  # the connection it went out on
)


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
        self._db.execute(f"PRAGMA wal_autocheckpoint={WAL_CHECKPOINT_PAGES}")
        self._db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # a WAL an older agent left at 4 MB: emptied
        self._db.execute("PRAGMA synchronous=FULL")
        self._synced = True  # the connection's synchronous level: FULL (True) or NORMAL
        self._db.executescript(SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(outbox)")}
        for statement in SENT_COLUMNS if "sent" not in columns else ():
            self._db.execute(statement)
        # A report sent by an earlier process (or before the file failed and was opened again) waits
        # for an ack that may never come: it is sent again at once, a duplicate at worst.
        self._db.execute("UPDATE outbox SET sent = NULL, conn = 0 WHERE sent IS NOT NULL")
        self.stream = self._meta("stream") or self._set_meta("stream", secrets.token_hex(8))
        # ids handed to the network and not yet settled (publisher's thread); a bound that drops one
        # counts it as sent, since it may well have arrived
        self.in_flight: set[int] = set()
        self._lock = threading.Lock()
        self._max_bytes = max_bytes
        self._max_age_s = max_age_s
        self._bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()[0])

    def put(self, topic: str, payload: bytes, now: float | None = None) -> int:
        """Append a message, then enforce the age and size bounds; returns its sequence number."""
        now = time.time() if now is None else now
        with self._lock, self._transaction(synced=True):
            cursor = self._db.execute(
                "INSERT INTO outbox (topic, payload, created) VALUES (?, ?, ?)", (topic, payload, now)
            )
            self._bytes += len(payload)
            self._enforce_bounds(now)
        return int(cursor.lastrowid or 0)

    @contextlib.contextmanager
    def _transaction(self, synced: bool) -> Iterator[None]:
        """One transaction, its commit flushed to the disk (``synced``) or not; rolled back on an error.
        The caller holds the lock."""
        if synced != self._synced:  # SQLite refuses to change it inside a transaction
            self._db.execute(f"PRAGMA synchronous={'FULL' if synced else 'NORMAL'}")
            self._synced = synced
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def unsent(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages the broker has not acknowledged, with an id above ``after_id``."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE sent IS NULL AND id > ? ORDER BY id LIMIT ?",
                (after_id, limit),
            ).fetchall()
        return [SpooledMessage(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def mark_sent(self, message_id: int, now: float, connection: int) -> None:
        """The broker has the message; it stays until the collector acknowledges it."""
        with self._lock, self._transaction(synced=False):  # lost in a power cut: cleared at start anyway
            self._db.execute("UPDATE outbox SET sent = ?, conn = ? WHERE id = ?", (now, connection, message_id))

    def due(self, limit: int, sent_before: float, connection: int, lost_below: int) -> list[SpooledMessage]:
        """Sent messages to send again, oldest first: sent before ``sent_before`` and either on an
        earlier connection (the broker may have lost them) or older than a report the collector has
        acknowledged (``lost_below``: the collector stored later ones, so these went missing)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE sent IS NOT NULL AND sent < ? "
                "AND (conn < ? OR id < ?) ORDER BY id LIMIT ?",
                (sent_before, connection, lost_below, limit),
            ).fetchall()
        return [SpooledMessage(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def release(self, ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> int:
        """Forget the messages the collector has stored (inclusive id ranges); returns how many."""
        released = 0
        with self._lock, self._transaction(synced=False):  # lost in a power cut: sent again, a duplicate
            for first, last in ranges:
                row = self._db.execute(
                    "SELECT COUNT(*), COALESCE(SUM(LENGTH(payload)), 0) FROM outbox WHERE id BETWEEN ? AND ?",
                    (first, last),
                ).fetchone()
                if int(row[0]) == 0:
                    continue
                self._db.execute("DELETE FROM outbox WHERE id BETWEEN ? AND ?", (first, last))
                released += int(row[0])
                self._bytes -= int(row[1])
        return released

    def unsend(self) -> int:
        """Every report sent and not acknowledged counts as not sent again (the collector stopped
        acknowledging: the publisher sends them again its other way); returns how many."""
        with self._lock, self._transaction(synced=False):  # lost in a power cut: cleared at start anyway
            return self._db.execute("UPDATE outbox SET sent = NULL, conn = 0 WHERE sent IS NOT NULL").rowcount

    def awaiting_ack(self) -> int:
        """Messages the broker has and the collector has not acknowledged yet."""
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox WHERE sent IS NOT NULL").fetchone()[0])

    def earliest_sent(self, since: float) -> float | None:
        """The earliest ``sent`` time at or after ``since``; None when no such report is held."""
        with self._lock:
            row = self._db.execute("SELECT MIN(sent) FROM outbox WHERE sent >= ?", (since,)).fetchone()
        return None if row[0] is None else float(row[0])

    def acks_heard(self) -> bool:
        """Whether a collector has ever acknowledged this spool's reports (kept across restarts)."""
        with self._lock:
            return self._meta("acks_heard") == "1"

    def set_acks_heard(self, heard: bool) -> None:
        with self._lock:
            self._set_meta("acks_heard", "1" if heard else "0")

    def peek(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        """The oldest ``limit`` messages with an id above ``after_id``, sent or not."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, topic, payload FROM outbox WHERE id > ? ORDER BY id LIMIT ?", (after_id, limit)
            ).fetchall()
        return [SpooledMessage(int(r[0]), str(r[1]), bytes(r[2])) for r in rows]

    def remove(self, message_id: int) -> None:
        """Forget one message (broker-level release: the broker's PUBACK is enough)."""
        with self._lock, self._transaction(synced=False):  # lost in a power cut: sent again, a duplicate
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
        """How many messages were dropped for age or size, never sent, over the spool's whole life."""
        return self._counter("dropped")

    def dropped_sent(self) -> int:
        """How many sent and never acknowledged messages were dropped for age or size (their fate is unknown)."""
        return self._counter("dropped_sent")

    def _counter(self, name: str) -> int:
        with self._lock:
            row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _meta(self, name: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else None

    def _set_meta(self, name: str, value: str) -> str:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (name, value),
        )
        return value

    def _enforce_bounds(self, now: float) -> None:
        """Drop the oldest reports beyond the age and size bounds. Counted apart: ``dropped`` never
        left the PC; ``dropped_sent`` reached the broker at least once and were never acknowledged."""
        cutoff = now - self._max_age_s
        expired = self._db.execute("SELECT id, sent IS NOT NULL FROM outbox WHERE created < ?", (cutoff,)).fetchall()
        sent = sum(1 for message_id, was_sent in expired if was_sent or message_id in self.in_flight)
        if expired:
            self._db.execute("DELETE FROM outbox WHERE created < ?", (cutoff,))
        dropped = {"dropped": len(expired) - sent, "dropped_sent": sent}
        while self._bytes > self._max_bytes:
            oldest = self._db.execute(
                "SELECT id, LENGTH(payload), sent IS NOT NULL FROM outbox ORDER BY id LIMIT 256"
            ).fetchall()
            if not oldest:
                break
            freed_ids = []
            for message_id, size, was_sent in oldest:
                if self._bytes <= self._max_bytes:
                    break
                freed_ids.append(message_id)
                self._bytes -= int(size)
                dropped["dropped_sent" if was_sent or message_id in self.in_flight else "dropped"] += 1
            self._db.executemany("DELETE FROM outbox WHERE id = ?", [(i,) for i in freed_ids])
        if sum(dropped.values()) > 0:
            self._bytes = int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM outbox").fetchone()[0])
            self._db.executemany(
                "INSERT INTO counters (name, value) VALUES (?, ?) "
                "ON CONFLICT(name) DO UPDATE SET value = value + excluded.value",
                [(name, count) for name, count in dropped.items() if count],
            )
