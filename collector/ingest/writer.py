"""Writes line protocol into InfluxDB in batches; spills to the disk buffer when InfluxDB is down.

A message's ``ack`` (the MQTT PUBACK) runs only once its lines are in InfluxDB or committed to
the disk buffer, so a collector killed at any moment loses nothing: the broker sends again
what was not acknowledged, and a point written twice is the same point. When the in-memory
queue is full, ``put`` blocks the MQTT thread and the broker holds further messages; when the
disk buffer is full too, batches wait in memory until InfluxDB or the disk takes them. A disk
buffer that cannot be written (full disk) never stops writes to InfluxDB while it is up.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable

from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient, InfluxError
from collector.selfmetrics import SelfMetrics

log = logging.getLogger("commune_collector.writer")

MAX_BACKOFF_S = 30.0
FULL_LOG_INTERVAL_S = 60.0

Ack = Callable[[], None]


class BatchWriter:
    def __init__(
        self,
        client: InfluxClient,
        metrics: SelfMetrics,
        batch_size: int,
        flush_interval_s: float,
        max_points: int,
        buffer: DiskBuffer,
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[tuple[str, Ack | None]] = queue.Queue(maxsize=max_points)
        self._buffer = buffer
        self._stop = threading.Event()
        self._stopping_drain = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._drainer = threading.Thread(target=self._drain_loop, name="buffer-drain", daemon=True)
        self._pending = 0  # lines taken off the queue but not yet stored
        self.after_batch: list[Callable[[], None]] = []  # run once a batch's acks have run
        metrics.write_queue_points.set_function(lambda: float(self.depth()))
        metrics.write_buffer_points.set_function(lambda: float(buffer.points()))
        metrics.write_buffer_bytes.set_function(lambda: float(buffer.size_bytes()))

    def start(self) -> None:
        self._thread.start()
        self._drainer.start()

    def put(self, lines: list[str], ack: Ack | None = None) -> None:
        """Queue a message's lines; ``ack`` runs once all of them are stored (in order)."""
        for index, line in enumerate(lines):
            self._queue.put((line, ack if index == len(lines) - 1 else None))

    def depth(self) -> int:
        return self._queue.qsize() + self._pending

    def stop(self, timeout_s: float = 15.0) -> None:
        """Store what is queued (InfluxDB or disk, within ``timeout_s``) and stop."""
        self._stop.set()
        self._thread.join(timeout_s)
        self._stopping_drain.set()
        self._drainer.join(timeout_s)
        self._buffer.close()

    def _run(self) -> None:
        while True:
            batch, acks = self._take_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            if self._store(batch):
                for ack in acks:
                    ack()
                for hook in self.after_batch:
                    hook()
            self._pending = 0

    def _take_batch(self) -> tuple[list[str], list[Ack]]:
        batch: list[str] = []
        acks: list[Ack] = []
        deadline = time.monotonic() + self._flush_interval_s
        while len(batch) < self._batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (self._stop.is_set() and self._queue.empty()):
                break
            try:
                line, ack = self._queue.get(timeout=min(timeout, 0.2))
            except queue.Empty:
                continue
            batch.append(line)
            if ack is not None:
                acks.append(ack)
        self._pending = len(batch)
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
