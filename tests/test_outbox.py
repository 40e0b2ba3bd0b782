"""The agent's outbox on real filesystems: a full disk, a disk filling up, a read-only disk and
corrupt spool files never stop it, and nothing held in memory is lost when the disk comes back.

Each test mounts its own small tmpfs (the tests run as root) and unmounts it at the end.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from manualclock import Clock
from smalldisk import SmallDisk, small_disk

from agent.config import SpoolConfig
from agent.outbox import Outbox, integrity_problem
from agent.speedtests.job import Usage
from agent.spool import WAL_LIMIT_BYTES

REPORT = 2000  # bytes, about a metrics report


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[SmallDisk]:
    with small_disk(tmp_path / "disk", size_kb=300) as mounted:
        yield mounted


def spool_config(path: Path, **overrides: object) -> SpoolConfig:
    return replace(SpoolConfig(path=str(path), max_bytes=1 << 20, memory_bytes=64 * 1024, retry_s=30), **overrides)  # type: ignore[arg-type]


def payload(i: int) -> bytes:
    return f"{i:08d}".encode() + b"x" * (REPORT - 8)


def all_payloads(outbox: Outbox) -> list[bytes]:
    return [m.payload for m in outbox.peek(100_000)]


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_outbox_on_a_full_disk_holds_reports_in_memory_then_moves_them_to_the_spool(disk: SmallDisk) -> None:
    disk.fill()
    clock = Clock()
    outbox = Outbox(spool_config(disk.path / "spool.sqlite"), clock)
    health = outbox.health()
    assert (health.spool_ok, health.error) == (False, "disk_full")
    for i in range(10):
        outbox.put("t", payload(i))
    assert outbox.health().memory == 10
    assert all_payloads(outbox) == [payload(i) for i in range(10)]  # the publisher sends from memory

    disk.free()
    clock.now += 31
    generation = outbox.generation
    outbox.put("t", payload(10))
    health = outbox.health()
    assert (health.spool_ok, health.error, health.memory) == (True, "", 0)
    assert outbox.generation != generation  # ids changed store: the publisher starts again
    assert all_payloads(outbox) == [payload(i) for i in range(11)]
    outbox.close()
    reopened = sqlite3.connect(disk.path / "spool.sqlite")
    assert reopened.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] == 11
    reopened.close()


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_outbox_keeps_every_report_while_the_disk_fills_and_empties(disk: SmallDisk) -> None:
    clock = Clock()
    outbox = Outbox(spool_config(disk.path / "spool.sqlite"), clock)
    assert outbox.health().spool_ok
    for i in range(5):
        outbox.put("t", payload(i))
    disk.fill()
    sent = 5
    while outbox.health().spool_ok:  # the spool's own free pages last a little while
        outbox.put("t", payload(sent))
        sent += 1
        assert sent < 500, "the spool never noticed the full disk"
    assert outbox.health().error == "disk_full"
    for _ in range(10):
        outbox.put("t", payload(sent))
        sent += 1
    clock.now += 10
    outbox.put("t", payload(sent))  # before retry_s: still in memory, the disk is not tried
    sent += 1
    assert not outbox.health().spool_ok

    clock.now += 30  # a retry while the disk is still full changes nothing and loses nothing
    outbox.put("t", payload(sent))
    sent += 1
    assert not outbox.health().spool_ok
    disk.free()
    clock.now += 31
    outbox.put("t", payload(sent))
    sent += 1
    assert outbox.health().spool_ok and outbox.health().memory == 0
    assert all_payloads(outbox) == [payload(i) for i in range(sent)]  # in order, none lost, none twice
    outbox.close()


@pytest.mark.services  # mounts a small tmpfs
def test_outbox_keeps_using_its_spool_on_a_disk_with_less_free_than_sqlites_default_wal(tmp_path: Path) -> None:
    """SQLite's default checkpoints the WAL only at 1,000 pages (4 MB) and never shrinks it. A spool
    bounded at 256 KiB on a 1 MiB disk must keep every report it is allowed to keep, through a line
    down (the spool fills to its bound) and a day of reports sent and acknowledged."""
    max_bytes = 256 * 1024
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        path = disk.path / "spool.sqlite"
        outbox = Outbox(spool_config(path, max_bytes=max_bytes), Clock())
        largest_wal = 0
        for i in range(400):  # the line is down: the oldest are dropped at the bound
            outbox.put("t", payload(i))
            largest_wal = max(largest_wal, wal_bytes(path))
        kept = outbox.depth()
        assert kept * REPORT <= max_bytes and outbox.dropped() == 400 - kept
        for i in range(400, 3000):  # the line is up: the backlog, then each report, sent and acknowledged
            while sent := outbox.unsent(16):
                for message in sent:
                    outbox.mark_sent(message.id, float(i), connection=1)
                    outbox.release([(message.id, message.id)])
            outbox.put("t", payload(i))
            largest_wal = max(largest_wal, wal_bytes(path))
        health = outbox.health()
        assert (health.spool_ok, health.error, health.memory, outbox.generation) == (True, "", 0, 0), health
        assert outbox.depth() == 1 and outbox.dropped() == 400 - kept
        assert largest_wal <= 2 * WAL_LIMIT_BYTES, largest_wal
        outbox.close()


def wal_bytes(spool: Path) -> int:
    wal = spool.with_name(spool.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_memory_queue_is_bounded_and_counts_what_it_drops(disk: SmallDisk) -> None:
    disk.fill()
    outbox = Outbox(spool_config(disk.path / "spool.sqlite", memory_bytes=64 * 1024), Clock())
    for i in range(100):
        outbox.put("t", payload(i))
    health = outbox.health()
    assert health.memory * REPORT <= 64 * 1024
    assert health.memory + health.memory_dropped == 100
    assert all_payloads(outbox)[-1] == payload(99)  # the oldest go first
    outbox.close()


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_outbox_on_a_read_only_disk_says_so_and_recovers(disk: SmallDisk) -> None:
    disk.read_only()  # as an old disk's filesystem is remounted after errors
    clock = Clock()
    outbox = Outbox(spool_config(disk.path / "spool.sqlite"), clock)
    outbox.put("t", payload(0))
    assert (outbox.health().spool_ok, outbox.health().error) == (False, "read_only")
    disk.read_only(False)
    clock.now += 31
    outbox.put("t", payload(1))
    assert outbox.health().spool_ok
    assert all_payloads(outbox) == [payload(0), payload(1)]
    outbox.close()


def test_a_spool_of_random_bytes_is_moved_aside_and_a_fresh_one_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(os.urandom(64 * 1024))
    with caplog.at_level(logging.ERROR, logger="commune_agent.outbox"):
        outbox = Outbox(spool_config(path), Clock())
    assert outbox.health().spool_ok
    outbox.put("t", payload(0))
    assert all_payloads(outbox) == [payload(0)]
    (kept,) = tmp_path.glob("spool.sqlite.corrupt-*")
    assert len(kept.read_bytes()) == 64 * 1024
    assert [r.getMessage() for r in caplog.records] == ["corrupt spool file moved aside; starting a fresh spool"]
    outbox.close()


def test_a_truncated_spool_is_moved_aside_and_a_fresh_one_started(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    good = Outbox(spool_config(path), Clock())
    for i in range(200):
        good.put("t", payload(i))
    good.close()
    size = path.stat().st_size
    with open(path, "r+b") as damaged:  # what a power cut on an old disk leaves
        damaged.truncate(size // 3)
    assert integrity_problem(path) != ""
    outbox = Outbox(spool_config(path), Clock())
    assert outbox.health().spool_ok
    assert outbox.depth() == 0
    outbox.put("t", payload(0))
    assert all_payloads(outbox) == [payload(0)]
    assert len(list(tmp_path.glob("spool.sqlite.corrupt-*"))) == 1
    outbox.close()


def test_corrupt_copies_kept_are_bounded_in_number_and_size(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    for name, size in (("20260101T000000Z", 1000), ("20260102T000000Z", 1000), ("20260103T000000Z", 1000)):
        (tmp_path / f"spool.sqlite.corrupt-{name}").write_bytes(b"x" * size)
    path.write_bytes(b"not a database at all" * 100)
    Outbox(spool_config(path, keep_corrupt=2, keep_corrupt_bytes=10_000), Clock()).close()
    kept = sorted(p.name for p in tmp_path.glob("spool.sqlite.corrupt-*"))
    assert len(kept) == 2
    assert kept[0] == "spool.sqlite.corrupt-20260103T000000Z"  # the newest old one, then today's
    path.write_bytes(b"still not a database" * 1000)
    Outbox(spool_config(path, keep_corrupt=5, keep_corrupt_bytes=1500), Clock()).close()
    kept_sizes = [p.stat().st_size for p in tmp_path.glob("spool.sqlite.corrupt-*")]
    assert sum(kept_sizes) <= 1500  # the new 20 kB copy alone is over the bound: not kept


@pytest.mark.services  # mounts a small tmpfs (the `disk` fixture)
def test_speedtest_state_on_a_full_disk_is_kept_in_memory(disk: SmallDisk) -> None:
    usage = Usage(disk.path / "speedtest.json")
    usage.record(1_800_000_000.0, 1e6)
    disk.fill()
    usage.record(1_800_000_100.0, 2e6)  # does not raise
    assert usage.write_errors == 1
    assert usage.today(1_800_000_100.0) == 3e6
    disk.free()
    usage.record(1_800_000_200.0, 1e6)
    assert Usage(disk.path / "speedtest.json").today(1_800_000_200.0) == 4e6
