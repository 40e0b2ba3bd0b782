"""Batches written at the same time (``[influxdb] writes_in_flight``) are acknowledged in the
order they were taken, as MQTT wants PUBACKs in the order messages came, even when a later
write finishes first; and every point reaches a real InfluxDB."""

from __future__ import annotations

import threading
from collections.abc import Callable
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


class FirstWriteDiffers(InfluxClient):
    """The real client, but its first write first runs ``before_first``: to hold it until a later
    write is in InfluxDB (so the later batch finishes first), or to fail it with an error that is
    not InfluxDB's answer (a fault of ours)."""

    def __init__(self, settings: InfluxSettings, before_first: Callable[[FirstWriteDiffers], None]) -> None:
        super().__init__(settings)
        self.before_first = before_first
        self.calls = 0
        self.later_written = threading.Event()
        self.lock = threading.Lock()

    def write_lines(self, lines: list[str], retention_policy: str | None = None) -> None:
        with self.lock:
            self.calls += 1
            first = self.calls == 1
        if first:
            self.before_first(self)
        super().write_lines(lines, retention_policy)
        if not first:
            self.later_written.set()


def held_until_a_later_write(client: FirstWriteDiffers) -> None:
    assert client.later_written.wait(10), "no second write while the first was held"


def failed(_client: FirstWriteDiffers) -> None:
    raise ValueError("not InfluxDB's answer")


def written_through(
    influxd: Influxd, tmp_path: Path, before_first: Callable[[FirstWriteDiffers], None], database: str
) -> tuple[FirstWriteDiffers, list[int]]:
    """60 messages of two lines, batches of five messages (twelve), two writes in flight; waits until all
    are acknowledged and all their points are in InfluxDB. The client and the acks, in order run."""
    influxd.create_database(database)
    client = FirstWriteDiffers(InfluxSettings(url=influxd.url, database=database), before_first)
    writer = BatchWriter(client, SelfMetrics(), 10, 0.05, 10_000, DiskBuffer(tmp_path / "buffer.sqlite", 1 << 20), 2)
    acked: list[int] = []
    for n in range(60):
        lines = [f"m,host=h{n} a={n} {1_700_000_000 + n}", f"m,host=h{n} b={n} {1_700_000_000 + n}"]
        writer.put(lines, lambda n=n: acked.append(n))  # type: ignore[misc]
    writer.start()

    def stored() -> tuple[int, int]:
        rows = influxd.query('SELECT count("a") AS a, count("b") AS b FROM "m"', database)
        return (int(rows[0]["a"]), int(rows[0]["b"])) if rows else (0, 0)

    try:
        wait_until(lambda: len(acked) == 60, 30, "every message acknowledged")
        wait_until(lambda: stored() == (60, 60), 30, "every point in InfluxDB")
    finally:
        writer.stop()
        client.close()
    return client, acked


def test_a_later_batch_written_first_is_acknowledged_after_the_earlier_one(influxd: Influxd, tmp_path: Path) -> None:
    client, acked = written_through(influxd, tmp_path, held_until_a_later_write, "in_order")
    assert client.later_written.is_set()
    assert acked == list(range(60))


def test_a_write_failing_unexpectedly_keeps_its_batch_and_the_writers_going(influxd: Influxd, tmp_path: Path) -> None:
    client, acked = written_through(influxd, tmp_path, failed, "unexpected")  # the batch through the disk buffer
    assert acked == list(range(60))
    assert client.calls == 13  # twelve batches written once each, and the failed first try
