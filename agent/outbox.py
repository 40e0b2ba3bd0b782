"""The agent's outbox: the on-disk spool when it works, a small memory queue when it does not.

A full disk, a read-only filesystem, a failing disk or a spool file left corrupt by a power cut
must never stop the agent: under systemd that is a restart loop that never reports, and the PC
shows up as offline instead of as ``disk_full``. So every spool call is guarded here, and on a
failure the agent goes on with reports held in a bounded memory queue (an in-memory SQLite
spool with the same semantics, oldest dropped first and counted). The spool is tried again every
``retry_s`` seconds; when it works again the memory queue is moved into it, oldest first, and
nothing held in memory is lost. A spool file that fails ``PRAGMA quick_check`` (or says it is
corrupt while running) is moved aside with a timestamped name, kept for inspection within a
count and a size bound, and a fresh spool is started.

``agent.spool`` keeps the semantics of one spool (including acknowledgements: sent, released,
due again); this module only decides which one is used. The memory queue is a spool of its own
with a stream of its own, so acknowledgements for one never release reports of the other;
reports moved from memory to disk are sent again from the disk spool (the same points).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agent.config import SpoolConfig
from agent.spool import Spool, SpooledMessage
from common.fserrors import CORRUPT, error_class, move_aside, prune_corrupt

log = logging.getLogger("commune_agent.outbox")

MIGRATE_BATCH = 256


@dataclass(frozen=True)
class OutboxHealth:
    """What the ``agent`` section says about the spool."""

    spool_ok: bool
    error: str  # one of common.fserrors.ERROR_CLASSES; "" while the spool works
    memory: int  # reports held in memory
    memory_dropped: int  # reports dropped from the memory queue since the agent started


def integrity_problem(path: Path) -> str:
    """What ``PRAGMA quick_check`` finds wrong with an existing spool file; "" when it is sound."""
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        rows = db.execute("PRAGMA quick_check").fetchall()
    except sqlite3.DatabaseError as exc:
        if error_class(exc) != CORRUPT:
            raise  # cannot read it now (disk full, I/O): not proof that the file is bad
        return str(exc)
    finally:
        db.close()
    found = [str(row[0]) for row in rows]
    return "" if found == ["ok"] else "; ".join(found)[:300]


class Outbox:
    """The spool's interface (put, peek, remove, depth, size_bytes, dropped) that never raises.

    ``generation`` changes whenever the store behind it changes (disk to memory or back): ids
    from an older generation mean nothing, so the publisher sends again from the start.
    """

    def __init__(self, config: SpoolConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self._config = config
        self._path = Path(config.path)
        self._clock = clock
        self._memory = Spool(":memory:", config.memory_bytes, config.max_age_s)
        self._disk: Spool | None = None
        self._error = ""
        self._next_retry = 0.0
        self.generation = 0
        self.puts = 0  # reports ever put, in either store: the publisher knows from it that none is new
        self._acks_heard = False
        self._recover()

    # ---- the spool's interface ----

    def put(self, topic: str, payload: bytes) -> None:
        """Keep a report: in the spool, else in memory."""
        self.puts += 1
        if self._disk is None and self._clock() >= self._next_retry and self._recover((topic, payload)):
            return
        if self._disk is not None:
            try:
                self._disk.put(topic, payload)
                return
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, "put")
        self._memory.put(topic, payload)

    def peek(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        if self._disk is not None:
            try:
                return self._disk.peek(limit, after_id)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, "peek")
                return []  # a new generation: the publisher starts again from the memory queue
        return self._memory.peek(limit, after_id)

    def remove(self, message_id: int) -> None:
        if self._disk is not None:
            try:
                self._disk.remove(message_id)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, "remove")
            return
        self._memory.remove(message_id)

    def unsent(self, limit: int, after_id: int = 0) -> list[SpooledMessage]:
        return self._listed(lambda spool: spool.unsent(limit, after_id), "unsent")

    def due(self, limit: int, sent_before: float, connection: int, lost_below: int) -> list[SpooledMessage]:
        return self._listed(lambda spool: spool.due(limit, sent_before, connection, lost_below), "due")

    def mark_sent(self, message_id: int, now: float, connection: int) -> None:
        self._changed(lambda spool: spool.mark_sent(message_id, now, connection), "mark_sent")

    def release(self, ranges: list[tuple[int, int]] | tuple[tuple[int, int], ...]) -> int:
        released = [0]

        def release(spool: Spool) -> None:
            released[0] = spool.release(ranges)

        self._changed(release, "release")
        return released[0]

    def unsend(self) -> int:
        unsent = [0]

        def unsend(spool: Spool) -> None:
            unsent[0] = spool.unsend()

        self._changed(unsend, "unsend")
        return unsent[0]

    def awaiting_ack(self) -> int:
        return self._guarded(lambda disk: disk.awaiting_ack()) + self._memory.awaiting_ack()

    def earliest_sent(self, since: float) -> float | None:
        """The earliest time a report held was sent, of those sent at or after ``since``; None when none was."""
        if self._disk is not None:
            try:
                return self._disk.earliest_sent(since)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, "earliest_sent")
        return self._memory.earliest_sent(since)

    @property
    def stream(self) -> str:
        """The stream of the spool in use: acknowledgements name it."""
        return self._current().stream

    @property
    def in_flight(self) -> set[int]:
        return self._current().in_flight

    def acks_heard(self) -> bool:
        """Whether a collector ever acknowledged (kept in the disk spool; remembered while in memory)."""
        if self._disk is not None:
            with contextlib.suppress(sqlite3.Error, OSError):
                self._acks_heard = self._acks_heard or self._disk.acks_heard()
        return self._acks_heard

    def set_acks_heard(self, heard: bool) -> None:
        self._acks_heard = heard
        self._changed(lambda spool: spool.set_acks_heard(heard), "set_acks_heard")

    def dropped_sent(self) -> int:
        """Sent, never acknowledged reports the on-disk spool dropped for age or size."""
        return self._guarded(lambda disk: disk.dropped_sent())

    def depth(self) -> int:
        return self._guarded(lambda disk: disk.depth()) + self._memory.depth()

    def size_bytes(self) -> int:
        return self._guarded(lambda disk: disk.size_bytes()) + self._memory.size_bytes()

    def dropped(self) -> int:
        """Reports the on-disk spool dropped for age or size (over the spool file's life)."""
        return self._guarded(lambda disk: disk.dropped())

    def close(self) -> None:
        self._close_disk()
        self._memory.close()

    # ---- health ----

    def health(self) -> OutboxHealth:
        return OutboxHealth(self._disk is not None, self._error, self._memory.depth(), self._memory.dropped())

    # ---- failure and recovery ----

    def _current(self) -> Spool:
        return self._disk if self._disk is not None else self._memory

    def _listed(self, read: Callable[[Spool], list[SpooledMessage]], during: str) -> list[SpooledMessage]:
        if self._disk is not None:
            try:
                return read(self._disk)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, during)
                return []  # a new generation: the publisher starts again from the memory queue
        return read(self._memory)

    def _changed(self, write: Callable[[Spool], None], during: str) -> None:
        if self._disk is not None:
            try:
                write(self._disk)
            except (sqlite3.Error, OSError) as exc:
                self._fail(exc, during)
            return
        write(self._memory)

    def _guarded(self, read: Callable[[Spool], int]) -> int:
        if self._disk is None:
            return 0
        try:
            return read(self._disk)
        except (sqlite3.Error, OSError) as exc:
            self._fail(exc, "read")
            return 0

    def _fail(self, exc: BaseException, during: str) -> None:
        """Leave the disk spool: hold reports in memory, and try it again after ``retry_s``."""
        self._close_disk()
        self._error = error_class(exc, self._path.parent)
        self._next_retry = self._clock() + self._config.retry_s
        self.generation += 1
        log.error(
            "spool failed; reports are held in memory and the spool is tried again",
            extra={
                "path": str(self._path),
                "error": self._error,
                "during": during,
                "detail": str(exc)[:200],
                "retry_s": self._config.retry_s,
            },
        )
        if self._error == CORRUPT:
            self._move_aside(str(exc))

    def _recover(self, pending: tuple[str, bytes] | None = None) -> bool:
        """Open the spool (moving a corrupt file aside) and move the memory queue into it, then
        ``pending``. The spool counts as working again only once a report was written to it, so a
        disk that can be opened but not written does not flap. True when ``pending`` was written."""
        first = self.generation == 0 and not self._error
        try:
            disk = self._open()
        except (sqlite3.Error, OSError) as exc:
            self._unusable(exc, first)
            return False
        moved = 0
        try:
            while batch := self._memory.peek(MIGRATE_BATCH):
                for message in batch:
                    disk.put(message.topic, message.payload)
                    self._memory.remove(message.id)
                    moved += 1
            if pending is not None:
                disk.put(*pending)
        except (sqlite3.Error, OSError) as exc:
            # what was moved stays on disk (sent once the spool works); the rest stays in memory
            _close_quietly(disk)
            self._unusable(exc, first)
            return False
        self._disk = disk
        if self._acks_heard:  # learnt while the disk spool could not be written
            with contextlib.suppress(sqlite3.Error, OSError):
                disk.set_acks_heard(True)
        if not first:
            self.generation += 1
            log.warning("spool works again", extra={"path": str(self._path), "moved_from_memory": moved})
        self._error = ""
        return pending is not None

    def _unusable(self, exc: BaseException, first: bool) -> None:
        error = error_class(exc, self._path.parent)
        if first or error != self._error:
            log.error(
                "spool cannot be used; reports are held in memory and the spool is tried again",
                extra={
                    "path": str(self._path),
                    "error": error,
                    "detail": str(exc)[:200],
                    "retry_s": self._config.retry_s,
                },
            )
        self._error = error
        self._next_retry = self._clock() + self._config.retry_s
        if error == CORRUPT:
            self._move_aside(str(exc))

    def _open(self) -> Spool:
        self._path.parent.mkdir(parents=True, exist_ok=True)
        if self._path.exists() and self._path.stat().st_size > 0:
            problem = integrity_problem(self._path)
            if problem:
                self._move_aside(problem)
        return Spool(self._path, self._config.max_bytes, self._config.max_age_s)

    def _move_aside(self, problem: str) -> None:
        """Rename the spool file (and its WAL) to ``<name>.corrupt-<UTC time>``, then keep within bounds."""
        try:
            target = move_aside(self._path)
        except OSError as exc:
            log.error(
                "corrupt spool file cannot be moved aside",
                extra={"path": str(self._path), "problem": problem[:200], "detail": str(exc)[:200]},
            )
            return
        removed = prune_corrupt(self._path, self._config.keep_corrupt, self._config.keep_corrupt_bytes)
        log.error(
            "corrupt spool file moved aside; starting a fresh spool",
            extra={
                "path": str(self._path),
                "moved_to": target.name,
                "problem": problem[:200],
                "old_copies_removed": removed,
            },
        )

    def _close_disk(self) -> None:
        if self._disk is not None:
            _close_quietly(self._disk)
            self._disk = None


def _close_quietly(spool: Spool) -> None:
    with contextlib.suppress(sqlite3.Error):
        spool.close()
