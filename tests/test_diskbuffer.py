"""The collector's disk buffer on real filesystems: a full disk or a corrupt file never raises,
each failure is counted, and the buffer is used again when space returns.

Each test mounts its own small tmpfs (the tests run as root) and unmounts it at the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from manualclock import Clock
from smalldisk import SmallDisk, small_disk

from collector.diskhealth import DiskHealth
from collector.ingest.diskbuffer import DiskBuffer
from collector.selfmetrics import SelfMetrics

LINES = [f"system,host=pc-{i} cpu_percent={i}.0 1800000000" for i in range(50)]


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk", size_kb=400) as mounted:
        yield mounted


def make(path: Path, clock: Clock) -> tuple[DiskBuffer, DiskHealth, SelfMetrics]:
    metrics = SelfMetrics()
    health = DiskHealth(metrics, {"buffer": str(path), "state": str(path.with_name("state.sqlite"))})
    return DiskBuffer(path, 10 << 20, health, retry_s=10, clock=clock), health, metrics


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_buffer_opened_on_a_full_disk_refuses_batches_counts_them_and_opens_when_space_returns(
    disk: SmallDisk,
) -> None:
    disk.fill()
    clock = Clock()
    buffer, health, metrics = make(disk.path / "buffer.sqlite", clock)
    assert not buffer.writable()
    assert buffer.append(LINES) is False
    assert health.report()["buffer"] == {"ok": False, "error": "disk_full", "errors": 1}
    assert metrics.value("disk_errors_buffer_total") == 1
    assert not health.ok()
    disk.free()
    clock.now += 11
    buffer.maintain()
    assert buffer.writable() and health.ok()
    assert buffer.append(LINES) is True
    assert buffer.oldest() == (1, LINES)
    buffer.close()


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_buffer_filling_the_disk_refuses_the_batch_then_takes_it_after_space_returns(disk: SmallDisk) -> None:
    clock = Clock()
    buffer, health, _ = make(disk.path / "buffer.sqlite", clock)
    assert buffer.append(LINES)
    disk.fill()
    kept = 1
    while buffer.append(LINES):
        kept += 1
        assert kept < 1000, "the buffer never noticed the full disk"
    assert health.report()["buffer"]["error"] == "disk_full"
    assert buffer.points() == kept * len(LINES)
    clock.now += 11
    buffer.maintain()  # a retry while still full fails again and changes nothing
    assert not buffer.writable()
    disk.free()
    clock.now += 11
    buffer.maintain()
    assert buffer.writable() and health.ok()
    assert buffer.append(LINES)
    assert buffer.points() == (kept + 1) * len(LINES)
    buffer.close()


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_a_batch_stored_in_influxdb_whose_delete_fails_is_not_sent_again(disk: SmallDisk) -> None:
    clock = Clock()
    buffer, health, _ = make(disk.path / "buffer.sqlite", clock)
    for _ in range(3):
        assert buffer.append(LINES)
    disk.fill()
    first = buffer.oldest()
    assert first is not None
    buffer.remove(first[0])  # InfluxDB has it; the delete cannot be written on a full disk
    second = buffer.oldest()
    assert second is not None and second[0] != first[0]
    assert buffer.points() == 2 * len(LINES)
    disk.free()
    clock.now += 11
    buffer.maintain()
    assert health.ok() and buffer.points() == 2 * len(LINES)
    buffer.close()
    reopened, _, _ = make(disk.path / "buffer.sqlite", clock)
    assert reopened.points() == 2 * len(LINES)  # the skipped delete was done on the retry
    reopened.close()


def test_a_corrupt_buffer_file_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "buffer.sqlite"
    path.write_bytes(os.urandom(32 * 1024))
    clock = Clock()
    buffer, health, metrics = make(path, clock)
    assert health.report()["buffer"]["error"] == "corrupt"
    assert len(list(tmp_path.glob("buffer.sqlite.corrupt-*"))) == 1
    assert buffer.append(LINES)  # opened fresh at once, no retry wait
    assert health.ok()
    assert metrics.value("disk_errors_buffer_total") == 1
    buffer.close()
