"""Batches written at the same time (``[influxdb] writes_in_flight``) are acknowledged in the
order they were taken, as MQTT wants PUBACKs in the order messages came, even when a later
write finishes first; and every point reaches a real InfluxDB."""

from __future__ import annotations

import threading
from pathlib import Path

from collector.config import InfluxSettings
from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient
from collector.ingest.writer import BatchWriter, InOrder
from collector.selfmetrics import SelfMetrics
from devtools.localstack import Influxd, wait_until


def test_a_turn_waits_for_every_earlier_ticket_to_be_done() -> None:
    turns = InOrder()
    first, second = turns.ticket(), turns.ticket()
    order: list[int] = []

    def later() -> None:
        turns.wait_turn(second)
        order.append(second)

    waiter = threading.Thread(target=later)
    waiter.start()
    waiter.join(0.2)
    assert waiter.is_alive() and order == [], "the second turn came before the first was done"
    turns.wait_turn(first)  # the first ticket's turn is now
    order.append(first)
    turns.done(first)
    waiter.join(10)
    assert order == [first, second]


class FirstWriteWaits(InfluxClient):
    """The real client; its first write is sent only once a later one is in InfluxDB, so the
    later batch finishes first."""

    def __init__(self, settings: InfluxSettings) -> None:
        super().__init__(settings)
        self.calls = 0
        self.later_written = threading.Event()
        self.lock = threading.Lock()

    def write_lines(self, lines: list[str], retention_policy: str | None = None) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            assert self.later_written.wait(10), "no second write while the first was held"
        super().write_lines(lines, retention_policy)
        if not first:
            self.later_written.set()


def test_a_later_batch_written_first_is_acknowledged_after_the_earlier_one(influxd: Influxd, tmp_path: Path) -> None:
    database = "in_order"
    influxd.create_database(database)
    client = FirstWriteWaits(InfluxSettings(url=influxd.url, database=database))
    writer = BatchWriter(client, SelfMetrics(), 10, 0.05, 10_000, DiskBuffer(tmp_path / "buffer.sqlite", 1 << 20), 2)
    acked: list[int] = []
    for n in range(60):  # two lines a message: six batches of five messages
        lines = [f"m,host=h{n} a={n} {1_700_000_000 + n}", f"m,host=h{n} b={n} {1_700_000_000 + n}"]
        writer.put(lines, lambda n=n: acked.append(n))  # type: ignore[misc]
    writer.start()
    try:
        wait_until(lambda: len(acked) == 60, 30, "every message acknowledged")
        assert client.later_written.is_set()
        assert acked == list(range(60))
        rows = influxd.query('SELECT count("a") AS a, count("b") AS b FROM "m"', database)
        assert (rows[0]["a"], rows[0]["b"]) == (60, 60)
    finally:
        writer.stop()
        client.close()


class FirstWriteFails(InfluxClient):
    """The real client, but its first write fails with an error that is not InfluxDB's (a fault
    of ours, such as a bad header)."""

    def __init__(self, settings: InfluxSettings) -> None:
        super().__init__(settings)
        self.calls = 0
        self.lock = threading.Lock()

    def write_lines(self, lines: list[str], retention_policy: str | None = None) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            raise ValueError("not InfluxDB's answer")
        super().write_lines(lines, retention_policy)


def test_a_write_failing_unexpectedly_keeps_its_batch_and_the_writers_going(influxd: Influxd, tmp_path: Path) -> None:
    database = "unexpected"
    influxd.create_database(database)
    client = FirstWriteFails(InfluxSettings(url=influxd.url, database=database))
    writer = BatchWriter(client, SelfMetrics(), 10, 0.05, 10_000, DiskBuffer(tmp_path / "buffer.sqlite", 1 << 20), 2)
    acked: list[int] = []
    for n in range(60):
        writer.put([f"m,host=h{n} a={n} {1_700_000_000 + n}"], lambda n=n: acked.append(n))  # type: ignore[misc]
    writer.start()
    try:
        wait_until(lambda: len(acked) == 60, 30, "every message acknowledged")
        assert acked == list(range(60))

        def stored() -> int:
            rows = influxd.query('SELECT count("a") AS a FROM "m"', database)
            return int(rows[0]["a"]) if rows else 0

        wait_until(lambda: stored() == 60, 30, "every point in InfluxDB, the failed batch through the disk buffer")
        assert client.calls > 6  # the failed batch was written again
    finally:
        writer.stop()
        client.close()
