"""Batches line protocol into InfluxDB from a bounded queue, retrying with backoff when it is down.

When the queue is full, ``put`` blocks the MQTT thread: the broker then holds further
messages in the collector's persistent session, so back-pressure never loses data.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

from collector.influx import InfluxClient, InfluxError
from collector.selfmetrics import SelfMetrics

log = logging.getLogger("commune_collector.writer")

MAX_BACKOFF_S = 30.0


class BatchWriter:
    def __init__(
        self, client: InfluxClient, metrics: SelfMetrics, batch_size: int, flush_interval_s: float, max_points: int
    ) -> None:
        self._client = client
        self._metrics = metrics
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._queue: queue.Queue[str] = queue.Queue(maxsize=max_points)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-writer", daemon=True)
        self._pending = 0  # lines taken off the queue but not yet written
        metrics.gauges["write_queue_points"] = lambda: float(self.depth())

    def start(self) -> None:
        self._thread.start()

    def put(self, lines: list[str]) -> None:
        for line in lines:
            self._queue.put(line)

    def depth(self) -> int:
        return self._queue.qsize() + self._pending

    def stop(self, timeout_s: float = 15.0) -> None:
        """Flush what is queued (within ``timeout_s``) and stop."""
        self._stop.set()
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stop.is_set():
                    return
                continue
            self._write_with_retry(batch)

    def _take_batch(self) -> list[str]:
        batch: list[str] = []
        deadline = time.monotonic() + self._flush_interval_s
        while len(batch) < self._batch_size:
            timeout = deadline - time.monotonic()
            if timeout <= 0 or (self._stop.is_set() and self._queue.empty()):
                break
            try:
                batch.append(self._queue.get(timeout=min(timeout, 0.2)))
            except queue.Empty:
                continue
        self._pending = len(batch)
        return batch

    def _write_with_retry(self, batch: list[str]) -> None:
        backoff = 0.5
        while True:
            started = time.perf_counter()
            try:
                self._client.write_lines(batch)
            except InfluxError as exc:
                if not exc.retryable:
                    self._metrics.inc("points_refused_total", len(batch))
                    log.error("influxdb refused a batch", extra={"points": len(batch), "error": str(exc)})
                    break
                self._metrics.inc("write_retries_total")
                log.warning("influxdb write failed; retrying", extra={"in_s": backoff, "error": str(exc)})
                if self._stop.wait(backoff) and backoff >= MAX_BACKOFF_S:
                    log.error("giving up at shutdown", extra={"points_lost": len(batch)})
                    break
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._metrics.observe_write(time.perf_counter() - started)
            self._metrics.inc("points_written_total", len(batch))
            break
        self._pending = 0
