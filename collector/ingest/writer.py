"""Writes line protocol into InfluxDB in batches; spills to the disk buffer when InfluxDB is down.

A message's ``ack`` (the MQTT PUBACK) runs only once its lines are in InfluxDB or committed to
the disk buffer, so a collector killed at any moment loses nothing: the broker sends again
what was not acknowledged, and a point written twice is the same point. Up to ``in_flight``
batches are written at once, each by a thread of its own, and their acks run in the order the
batches were taken (MQTT wants PUBACKs in the order the messages came): one write at a time
left InfluxDB a core idle on a 2-core server while a backlog waited. A slow write (a cache
snapshot) still holds the acks of the batches after it, and their threads, until it is
answered; the next batch is written meanwhile. When the in-memory
queue is full, ``put`` blocks the MQTT thread and the broker holds further messages; when the
disk buffer is full too, batches wait in memory until InfluxDB or the disk takes them. A disk
buffer that cannot be written (full disk) never stops writes to InfluxDB while it is up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient, InfluxError
from collector.selfmetrics import SelfMetrics

log = logging.getLogger("commune_collector.writer")

MAX_BACKOFF_S = 30.0
FULL_LOG_INTERVAL_S = 60.0

Ack = Callable[[], None]


class Backlog:
    """Messages waiting to be written, each kept whole (its lines and its ack), bounded by points.

    One item per message rather than one per line: a queue operation per line (a lock and a
    condition each) cost more than the rest of a message's way to InfluxDB, and a message is never
    split across two batches. ``put`` blocks while ``max_points`` are waiting."""

    def __init__(self, max_points: int) -> None:
        self.max_points = max_points
        self._items: deque[tuple[list[str], Ack | None]] = deque()
        self._points = 0
        self._changed = threading.Condition()
        self._wanted = 1  # points the waiting taker asked for: fewer are not worth waking it

    def put(self, lines: list[str], ack: Ack | None) -> None:
        with self._changed:
            while self._points >= self.max_points:
                self._changed.wait()
            self._items.append((lines, ack))
            self._points += len(lines)
            if self._points >= self._wanted:
                self._changed.notify_all()

    def take(self, max_points: int, timeout_s: float) -> tuple[list[str], list[Ack]]:
        """Whole messages, up to ``max_points`` lines (at least one message when any waits), once
        ``max_points`` (or the queue's bound, when lower) are waiting or after ``timeout_s``. Woken
        by every message instead, the writer thread took them one by one: a thread switch per
        message under a steady stream."""
        lines: list[str] = []
        acks: list[Ack] = []
        wanted = min(max_points, self.max_points)  # never more than producers may queue
        with self._changed:
            deadline = time.monotonic() + timeout_s
            while self._points < wanted and (left := deadline - time.monotonic()) > 0:
                self._wanted = wanted
                self._changed.wait(left)
            self._wanted = 1
            while self._items and (not lines or len(lines) + len(self._items[0][0]) <= max_points):
                message, ack = self._items.popleft()
                lines += message
                if ack is not None:
                    acks.append(ack)
            self._points -= len(lines)
            if lines:
                self._changed.notify_all()
        return lines, acks

    def points(self) -> int:
        return self._points


class InOrder:
    """Turns for batches written at the same time: each takes a ticket in the order batches are
    taken, and ``wait_turn`` returns once every earlier ticket is ``done``."""

    def __init__(self) -> None:
        self._issued = 0
        self._done = 0
        self._turn = threading.Condition()

    def ticket(self) -> int:
        with self._turn:
            self._issued += 1
            return self._issued

    def wait_turn(self, ticket: int) -> None:
        with self._turn:
            while self._done != ticket - 1:
                self._turn.wait()

    def done(self, ticket: int) -> None:
        with self._turn:
            self._done = ticket
            self._turn.notify_all()


class BatchWriter:
    def __init__(
        self,
        client: InfluxClient,
        metrics: SelfMetrics,
        batch_size: int,
        flush_interval_s: float,
        max_points: int,
        buffer: DiskBuffer,
        in_flight: int = 1,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._backlog = Backlog(max_points)
        self._buffer = buffer
        self._stop = threading.Event()
        self._stopping_drain = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(n,), name=f"influx-writer-{n}", daemon=True)
            for n in range(in_flight)
        ]
        self._drainer = threading.Thread(target=self._drain_loop, name="buffer-drain", daemon=True)
        self._taking = threading.Lock()  # one thread fills a batch at a time: batches keep the messages' order
        self._turns = InOrder()
        self._held = False  # a batch was given up while stopping: no later batch may be acknowledged
        self._pending = [0] * in_flight  # lines each writer thread took off the queue, until their acks ran
        self.after_batch: list[Callable[[], None]] = []  # run once a batch's acks have run
        metrics.write_queue_points.set_function(lambda: float(self.depth()))
        metrics.write_buffer_points.set_function(lambda: float(buffer.points()))
        metrics.write_buffer_bytes.set_function(lambda: float(buffer.size_bytes()))

    def start(self) -> None:
        for thread in self._threads:
            thread.start()
        self._drainer.start()

    def put(self, lines: list[str], ack: Ack | None = None) -> None:
        """Queue a message's lines; ``ack`` runs once all of them are stored (in order)."""
        self._backlog.put(lines, ack)

    def depth(self) -> int:
        return self._backlog.points() + sum(self._pending)

    def stop(self, timeout_s: float = 15.0) -> None:
        """Store what is queued (InfluxDB or disk, within ``timeout_s``) and stop."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._stopping_drain.set()
        self._drainer.join(timeout_s)
        self._buffer.close()

    def _run(self, worker: int) -> None:
        while True:
            with self._taking:
                batch, acks = self._take_batch(worker)
                ticket = self._turns.ticket() if batch else 0
            if not batch:
                if self._stop.is_set():
                    return
                continue
            stored = self._store(batch)
            self._turns.wait_turn(ticket)
            try:
                if stored and not self._held:
                    for ack in acks:
                        ack()
                    for hook in self.after_batch:
                        hook()
                else:
                    self._held = True  # the broker sends this batch again, and every later one
            except Exception:  # a bug in an ack or hook must not end the thread and stop intake
                log.exception("acknowledging a stored batch failed; the broker may send it again")
            finally:
                self._pending[worker] = 0
                self._turns.done(ticket)

    def _take_batch(self, worker: int) -> tuple[list[str], list[Ack]]:
        batch: list[str] = []
        acks: list[Ack] = []
        deadline = time.monotonic() + self._flush_interval_s
        while len(batch) < self._batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (self._stop.is_set() and self._backlog.points() == 0):
                break
            wait_s = 0.0 if self._stop.is_set() else min(timeout, 0.2)  # stopping: store what waits now
            lines, message_acks = self._backlog.take(self._batch_size - len(batch), wait_s)
            if not lines and self._backlog.points():
                break  # the next message would overfill the batch: it starts the next one
            batch += lines
            acks += message_acks
            self._pending[worker] = len(batch)
        return batch, acks

    def _store(self, batch: list[str]) -> bool:
        """Into InfluxDB, else into the disk buffer; False only when stopping with nowhere to put it."""
        last_full_log = 0.0
        while True:
            # behind a backlog, new batches queue on disk in order; a buffer that cannot be written
            # (full disk) is no reason to stop writing to InfluxDB
            direct = self._buffer.points() == 0 or not self._buffer.writable()
            if direct and self._write(batch):
                return True
            if self._buffer.append(batch):
                self._metrics.points_buffered.inc(len(batch))
                return True
            if self._buffer.writable():
                self._metrics.buffer_full.inc()
            if time.monotonic() - last_full_log >= FULL_LOG_INTERVAL_S:
                last_full_log = time.monotonic()
                log.error(
                    "disk buffer cannot take the batch and influxdb unreachable; holding messages at the broker",
                    extra={"buffer": "full" if self._buffer.writable() else "not writable"},
                )
            if self._stop.wait(1.0):
                log.warning("stopping with a batch not stored; the broker will send it again")
                return False

    def _write(self, lines: list[str]) -> bool:
        """True when InfluxDB has the batch (or refused it as bad data, counted); False to keep it for later."""
        started = time.perf_counter()
        try:
            self._client.write_lines(lines)
        except InfluxError as exc:
            if not exc.retryable:
                self._metrics.points_refused.inc(len(lines))
                log.error("influxdb refused a batch", extra={"points": len(lines), "error": str(exc)})
                return True
            self._metrics.write_retries.inc()
            log.warning("influxdb write failed; keeping the batch on disk", extra={"error": str(exc)})
            return False
        except Exception:  # not InfluxDB's answer but a fault of ours: kept and tried again, never lost
            self._metrics.write_retries.inc()
            log.exception("writing a batch failed unexpectedly; keeping the batch on disk")
            return False
        self._metrics.influx_write_seconds.observe(time.perf_counter() - started)
        self._metrics.points_written.inc(len(lines))
        return True

    def _drain_loop(self) -> None:
        """Send buffered batches oldest first, backing off while InfluxDB keeps failing."""
        backoff = 0.5
        while not self._stopping_drain.is_set():
            self._buffer.maintain()
            oldest = self._buffer.oldest()
            if oldest is None:
                self._stopping_drain.wait(0.2)
                continue
            batch_id, lines = oldest
            if self._write(lines):
                self._buffer.remove(batch_id)
                self._metrics.points_drained.inc(len(lines))
                backoff = 0.5
                continue
            self._stopping_drain.wait(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
