"""The collector's on-disk write buffer: batches of line protocol kept while InfluxDB is down or slow.

SQLite in WAL mode: a committed batch survives the collector being killed. Bounded by size;
when full, ``append`` says so and the writer stops taking messages (the broker holds them).

No failure of the buffer's file stops the collector: a buffer that cannot be opened or written
(full disk, read-only filesystem, I/O error) answers "not kept" and reports the failure to
``DiskHealth``, so the writer goes straight to InfluxDB while it is up; a corrupt file is moved
aside and a fresh one started. ``maintain`` (called by the drain thread) tries a failed buffer
again every ``retry_s`` seconds, and a batch sent to InfluxDB whose delete failed is skipped,
not sent again and again, until the delete works.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from collector.diskhealth import DiskHealth
from common.fserrors import CORRUPT, error_class, move_aside, prune_corrupt

SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    points INTEGER NOT NULL,
    lines TEXT NOT NULL
);
"""
RETRY_S = 10.0
KEEP_CORRUPT = 2  # corrupt buffer files kept for inspection (the buffer may be thrown away)
KEEP_CORRUPT_BYTES = 256 * 1024 * 1024

Errors = (sqlite3.Error, OSError)


class DiskBuffer:
    def __init__(
        self,
        path: str | Path,
        max_bytes: int,
        health: DiskHealth | None = None,
        retry_s: float = RETRY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._path = Path(path)
        self._max_bytes = max_bytes
        self._health = health
        self._retry_s = retry_s
        self._clock = clock
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._points = 0
        self._bytes = 0
        self._writable = False
        self._next_retry = 0.0
        self._unremoved: dict[int, int] = {}  # batch id -> points: stored in InfluxDB, delete failed
        with self._lock:
            self._open()

    # ---- the buffer ----

    def size_bytes(self) -> int:
        with self._lock:
            if self._db is not None:
                try:
                    self._bytes = self._used_bytes(self._db)
                except Errors as exc:
                    self._failed(exc, "read")
            return self._bytes

    def points(self) -> int:
        return self._points - sum(self._unremoved.values())

    def writable(self) -> bool:
        """Whether the last write to the buffer's file worked."""
        return self._writable

    def append(self, lines: list[str]) -> bool:
        """Keep a batch; False (and nothing kept) when the buffer is full or cannot be written."""
        text = "\n".join(lines)
        with self._lock:
            if self._db is None and not self._retry_open():
                return False
            assert self._db is not None
            try:
                if self._used_bytes(self._db) + len(text) > self._max_bytes:
                    return False
                self._db.execute("INSERT INTO batches (points, lines) VALUES (?, ?)", (len(lines), text))
            except Errors as exc:
                self._failed(exc, "append")
                return False
            self._points += len(lines)
            self._succeeded()
        return True

    def oldest(self) -> tuple[int, list[str]] | None:
        with self._lock:
            if self._db is None:
                return None
            skip = ",".join(str(i) for i in self._unremoved)
            try:
                row = self._db.execute(
                    f"SELECT id, lines FROM batches WHERE id NOT IN ({skip}) ORDER BY id LIMIT 1"
                ).fetchone()
            except Errors as exc:
                self._failed(exc, "read")
                return None
        if row is None:
            return None
        return int(row[0]), str(row[1]).split("\n")

    def remove(self, batch_id: int) -> None:
        with self._lock:
            if self._db is None:
                return
            try:
                row = self._db.execute("SELECT points FROM batches WHERE id = ?", (batch_id,)).fetchone()
                if row is None:
                    return
                points = int(row[0])
            except Errors as exc:
                self._failed(exc, "read")
                return
            try:
                self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
            except Errors as exc:
                self._unremoved[batch_id] = points  # in InfluxDB already: do not send it again
                self._failed(exc, "remove")
                return
            self._points -= points
            self._succeeded()

    def maintain(self) -> None:
        """Try a failed buffer again (open it, or a test write) every ``retry_s`` seconds."""
        with self._lock:
            if self._writable or self._clock() < self._next_retry:
                return
            if self._db is None:
                self._retry_open()
                return
            self._next_retry = self._clock() + self._retry_s
            try:
                with self._db:  # a write that needs free space, then rolled back by the delete
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute("INSERT INTO batches (points, lines) VALUES (0, '')")
                    self._db.execute("DELETE FROM batches WHERE points = 0 AND lines = ''")
                for batch_id, points in list(self._unremoved.items()):
                    self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,))
                    self._points -= points
                    del self._unremoved[batch_id]
            except Errors as exc:
                self._failed(exc, "retry")
                return
            self._succeeded()

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
                self._db = None

    # ---- opening and failures (callers hold the lock) ----

    def _open(self) -> bool:
        db: sqlite3.Connection | None = None
        try:
            self._path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
            self._points = int(db.execute("SELECT coalesce(sum(points), 0) FROM batches").fetchone()[0])
            self._bytes = self._used_bytes(db)
        except Errors as exc:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
            if self._failed(exc, "open") == CORRUPT:
                self._move_corrupt_aside()
            return False
        self._db = db
        self._unremoved.clear()
        self._writable = True
        return True

    def _retry_open(self) -> bool:
        if self._clock() < self._next_retry:
            return False
        if not self._open():
            return False
        self._succeeded()
        return True

    def _move_corrupt_aside(self) -> None:
        with contextlib.suppress(OSError):
            move_aside(self._path)
            prune_corrupt(self._path, KEEP_CORRUPT, KEEP_CORRUPT_BYTES)
            self._next_retry = 0.0  # a fresh file can be started at once

    def _failed(self, exc: BaseException, doing: str) -> str:
        self._writable = False
        self._next_retry = self._clock() + self._retry_s
        if self._health is not None:
            self._health.failed("buffer", exc, doing)
        return error_class(exc, self._path.parent)

    def _succeeded(self) -> None:
        self._writable = True
        if self._health is not None:
            self._health.succeeded("buffer")

    @staticmethod
    def _used_bytes(db: sqlite3.Connection) -> int:
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        return int((pages - free) * page_size)
