"""Which numbered reports of each agent the collector has taken and stored, and the acks it owes.

An agent that keeps reports until acknowledged numbers them (``seq``) within its spool's
``stream`` (``common/wire.py``). Per host and stream this keeps two sets of sequence numbers:

- ``claimed``: accepted by ingest (perhaps still queued for InfluxDB). A report claimed before
  is a re-sent one: it is counted as a duplicate and never reaches fleet state or alerts.
- ``stored``: in InfluxDB or the disk buffer. Committed to its own SQLite file after every
  stored batch, so a collector killed between storing and acknowledging still recognises the
  re-sent reports as duplicates after its restart; at start, ``claimed`` is what was stored.

Stored reports are owed an acknowledgement; ``take_acks`` hands them out, at most once per
``min_gap_s`` per host and stream (the acknowledger's ``[mqtt] ack_interval_s``), oldest owed
first and at most ``limit`` at a time (what the MQTT client can take). Sets are kept
as ranges, at most ``MAX_RANGES`` per stream: beyond that the oldest gap is closed (a report that
old arriving at last is counted as a duplicate; it is still written, as every duplicate is).
Streams not heard of for ``retention_s`` are forgotten.

A file of its own (``receipts.sqlite`` beside the state file), like the write buffer, not a table
of the state file: it is written after every stored batch, which should not wait on the state
file's lock, and losing it costs nothing but the duplicate count of reports re-sent afterwards.

Per report this runs on the collector's hottest path (a numbered report is claimed by ingest,
marked stored by the writer), so the work per report is a few dict look-ups and, for the usual
next number of a stream, one integer changed in place; everything else is per batch or per ack:
a batch's reports are marked stored under one lock (``stored_all``), and a stream owed an ack
is either ready (in the order owed) or waiting, by the time of its last ack, in a heap, so a round
never scans every stream.
"""

from __future__ import annotations

import bisect
import contextlib
import heapq
import itertools
import json
import sqlite3
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple

import msgspec

from collector.registry.registry import HostKey

MAX_RANGES = 512
PRUNE_INTERVAL_S = 3600.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS stored (
    host TEXT NOT NULL,
    stream TEXT NOT NULL,
    ranges TEXT NOT NULL,
    touched REAL NOT NULL,
    PRIMARY KEY (host, stream)
) WITHOUT ROWID;
"""


class Receipt(NamedTuple):
    """One numbered report of one agent (a named tuple: one is built per numbered report)."""

    host: HostKey
    stream: str
    seq: int


class SeqSet:
    """A set of positive integers as sorted, disjoint, non-adjacent inclusive ranges."""

    def __init__(self, ranges: list[tuple[int, int]] | None = None) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for first, last in sorted(ranges or []):
            self.add_range(first, last)

    def __contains__(self, seq: int) -> bool:
        index = bisect.bisect_right(self.starts, seq) - 1
        return index >= 0 and self.ends[index] >= seq

    @classmethod
    def of_sorted(cls, ranges: list[tuple[int, int]]) -> SeqSet:
        """A set of ranges as ``ranges()`` gives them (sorted, disjoint, non-adjacent), taken as they are."""
        seqs = cls()
        seqs.starts = [first for first, _last in ranges]
        seqs.ends = [last for _first, last in ranges]
        return seqs

    def add(self, seq: int) -> bool:
        """Add one number; False when it was already there."""
        ends = self.ends
        if ends and seq > ends[-1]:  # the usual case: a stream's next numbers, in order
            if seq == ends[-1] + 1:
                ends[-1] = seq
            else:
                self.starts.append(seq)
                ends.append(seq)
                self._bound()
            return True
        if seq in self:
            return False
        self.add_range(seq, seq)
        return True

    def add_range(self, first: int, last: int) -> None:
        index = bisect.bisect_left(self.starts, first)
        # merge with the range before when it touches or overlaps
        if index > 0 and self.ends[index - 1] >= first - 1:
            index -= 1
            first = self.starts[index]
            last = max(last, self.ends[index])
        end = index
        while end < len(self.starts) and self.starts[end] <= last + 1:
            last = max(last, self.ends[end])
            end += 1
        self.starts[index:end] = [first]
        self.ends[index:end] = [last]
        self._bound()

    def _bound(self) -> None:
        while len(self.starts) > MAX_RANGES:  # close the oldest gap
            self.ends[0:2] = [self.ends[1]]
            del self.starts[1]

    def ranges(self) -> list[tuple[int, int]]:
        return list(zip(self.starts, self.ends, strict=True))


def host_text(host: HostKey) -> str:
    return f"{host.province}/{host.commune}/{host.host}"


Key = tuple[HostKey, str]  # host and stream


def ranges_text(seqs: SeqSet) -> str:
    """The stored column: ``[[first,last],...]``, JSON as ``json.dumps`` wrote it, without spaces."""
    if len(seqs.starts) == 1:  # nearly every stream: one range from its first report on
        return f"[[{seqs.starts[0]},{seqs.ends[0]}]]"
    return msgspec.json.encode(seqs.ranges()).decode()


Failure = Callable[[BaseException, str], object]  # the error and what was being done


class Receipts:
    """Never raises for its file: a disk that cannot hold it costs duplicate counts after a
    restart, reported through ``failed`` / ``succeeded`` (the collector's disk health)."""

    def __init__(
        self,
        path: str | Path,
        retention_s: float,
        failed: Failure | None = None,
        succeeded: Callable[[], None] | None = None,
    ) -> None:
        self._failed = failed or (lambda _exc, _doing: None)
        self._succeeded = succeeded or (lambda: None)
        try:
            self._db = self._open(Path(path))
        except (sqlite3.Error, OSError) as exc:
            self._failed(exc, "open")
            self._db = self._open(Path(":memory:"))  # this run only
        self._lock = threading.Lock()
        self._retention_s = retention_s
        self._claimed: dict[Key, SeqSet] = {}
        self._stored: dict[Key, SeqSet] = {}
        self._touched: dict[Key, float] = {}  # wall clock
        self._dirty: set[Key] = set()
        self._owed: dict[Key, SeqSet] = {}
        self._last_ack: dict[Key, float] = {}  # monotonic
        # every owed stream is in one of these: ``_ready`` (may be acknowledged now, oldest owed
        # first), or ``_waiting`` (a heap by its last ack's time: it may be again after the gap)
        self._ready: OrderedDict[Key, None] = OrderedDict()
        self._waiting: list[tuple[float, int, Key]] = []
        self._order = itertools.count()  # ties in ``_waiting`` never compare keys
        self._last_prune = 0.0
        self._load(time.time())

    @staticmethod
    def _open(path: Path) -> sqlite3.Connection:
        if str(path) != ":memory:":
            path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
        except sqlite3.Error:
            db.close()
            raise
        return db

    def _load(self, now: float) -> None:
        self._db.execute("DELETE FROM stored WHERE touched < ?", (now - self._retention_s,))
        for host, stream, ranges, touched in self._db.execute("SELECT host, stream, ranges, touched FROM stored"):
            province, commune, name = str(host).split("/", 2)
            key = (HostKey(province, commune, name), str(stream))
            pairs = [(int(first), int(last)) for first, last in json.loads(ranges)]
            self._stored[key] = SeqSet(pairs)
            self._claimed[key] = SeqSet(pairs)
            self._touched[key] = float(touched)
        self._last_prune = now

    def claim(self, receipt: Receipt) -> bool:
        """True for a report seen for the first time; False for a re-sent one."""
        key = (receipt.host, receipt.stream)
        with self._lock:
            self._touched[key] = time.time()
            claimed = self._claimed.get(key)
            if claimed is None:
                claimed = self._claimed[key] = SeqSet()
            return claimed.add(receipt.seq)

    def owe(self, receipt: Receipt) -> None:
        """Acknowledge without storing: a report refused for good (counted as rejected)."""
        with self._lock:
            self._owed_locked((receipt.host, receipt.stream)).add(receipt.seq)

    def owe_again(self, host: HostKey, stream: str, ranges: list[tuple[int, int]]) -> None:
        """Acknowledgements taken but not sent (the MQTT client refused them): owed again."""
        key = (host, stream)
        with self._lock:
            if key not in self._owed:  # nothing stored since it was taken: the ranges as they were
                self._owed[key] = SeqSet.of_sorted(ranges)
                self._queue_locked(key)
                return
            owed = self._owed[key]
            for first, last in ranges:
                owed.add_range(first, last)

    def hello(self, host: HostKey, stream: str) -> None:
        """An agent announced its stream: answer with an empty ack (this collector acknowledges)."""
        with self._lock:
            self._owed_locked((host, stream))

    def stored(self, receipt: Receipt) -> None:
        """The report's points are in InfluxDB or the disk buffer (writer thread)."""
        self.stored_all((receipt,))

    def stored_all(self, receipts: Iterable[Receipt]) -> None:
        """``stored`` for a batch's reports at once (writer thread, after the batch is stored)."""
        stored_sets, dirty = self._stored, self._dirty
        with self._lock:
            for host, stream, seq in receipts:
                key = (host, stream)
                seqs = stored_sets.get(key)
                if seqs is None:
                    seqs = stored_sets[key] = SeqSet()
                seqs.add(seq)
                self._owed_locked(key).add(seq)
                dirty.add(key)

    def _owed_locked(self, key: Key) -> SeqSet:
        """The stream's owed set; a new one is queued for a round."""
        owed = self._owed.get(key)
        if owed is None:
            owed = self._owed[key] = SeqSet()
            self._queue_locked(key)
        return owed

    def _queue_locked(self, key: Key) -> None:
        """A stream newly owed: ready, or waiting after its last ack."""
        acked_at = self._last_ack.get(key)
        if acked_at is None:
            self._ready[key] = None
        else:
            heapq.heappush(self._waiting, (acked_at, next(self._order), key))

    def commit(self) -> None:
        """Write the stored sets changed since the last commit (after each stored batch)."""
        now = time.time()
        with self._lock:
            stored, touched = self._stored, self._touched
            rows = [(host_text(key[0]), key[1], ranges_text(stored[key]), touched.get(key, now)) for key in self._dirty]
            dirty, self._dirty = self._dirty, set()
            try:
                if rows:
                    self._db.execute("BEGIN")
                    self._db.executemany(
                        "INSERT INTO stored (host, stream, ranges, touched) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(host, stream) DO UPDATE SET ranges = excluded.ranges, touched = excluded.touched",
                        rows,
                    )
                    self._db.execute("COMMIT")
                if now - self._last_prune >= PRUNE_INTERVAL_S:
                    self._prune(now)
            except (sqlite3.Error, OSError) as exc:
                if self._db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        self._db.execute("ROLLBACK")
                self._dirty |= dirty  # written at the next commit that works
                failure: BaseException | None = exc
            else:
                failure = None
        if failure is not None:
            self._failed(failure, "commit")
        elif rows:
            self._succeeded()

    def take_acks(
        self, min_gap_s: float = 0.0, limit: int | None = None
    ) -> list[tuple[HostKey, str, list[tuple[int, int]]]]:
        """The acknowledgements owed, as (host, stream, ranges), each handed out once, oldest owed
        first and at most ``limit``; a stream acknowledged less than ``min_gap_s`` ago waits for a
        later call."""
        now = time.monotonic()
        taken: list[tuple[Key, SeqSet]] = []
        with self._lock:
            waiting, ready, owed = self._waiting, self._ready, self._owed
            cutoff = now - min_gap_s
            while waiting and waiting[0][0] <= cutoff:
                ready[heapq.heappop(waiting)[2]] = None
            while ready and (limit is None or len(taken) < limit):
                key, _ = ready.popitem(last=False)
                taken.append((key, owed.pop(key)))
                self._last_ack[key] = now
        return [(host, stream, seqs.ranges()) for (host, stream), seqs in taken]

    def streams(self) -> int:
        with self._lock:
            return len(self._claimed)

    def close(self) -> None:
        self.commit()
        with self._lock, contextlib.suppress(sqlite3.Error):
            self._db.close()

    def _prune(self, now: float) -> None:
        self._last_prune = now
        cutoff = now - self._retention_s
        for key in [key for key, touched in self._touched.items() if touched < cutoff]:
            for table in (self._claimed, self._stored, self._touched, self._last_ack):
                table.pop(key, None)
        self._db.execute("DELETE FROM stored WHERE touched < ?", (cutoff,))
