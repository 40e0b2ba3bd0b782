"""The agent spool keeps reports in order until acknowledged and stays within its bounds."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from realservices import REPO

from agent.spool import WAL_LIMIT_BYTES, Spool


def test_messages_survive_reopening_in_order(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    for i in range(5):
        spool.put("t", f"m{i}".encode(), now=1000 + i)
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    assert [m.payload for m in reopened.peek(10)] == [b"m0", b"m1", b"m2", b"m3", b"m4"]
    first = reopened.peek(1)[0]
    reopened.remove(first.id)
    assert reopened.depth() == 4
    assert [m.payload for m in reopened.peek(2, after_id=first.id)] == [b"m1", b"m2"]


def test_oldest_are_dropped_first_and_counted_when_full(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=10_000, max_age_s=1e9)
    for i in range(30):
        spool.put("t", bytes([65 + i % 26]) * 1000, now=1000 + i)
    assert spool.size_bytes() <= 10_000
    assert spool.depth() == 10
    assert spool.dropped() == 20
    assert spool.peek(1)[0].payload == bytes([65 + 20 % 26]) * 1000


def test_reports_older_than_max_age_are_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=100)
    spool.put("t", b"old", now=1000)
    spool.put("t", b"new", now=1200)
    assert [m.payload for m in spool.peek(10)] == [b"new"]
    assert spool.dropped() == 1


def test_a_sent_report_stays_until_the_collector_acknowledges_it(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    seqs = [spool.put("t", f"m{i}".encode()) for i in range(4)]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    spool.mark_sent(seqs[0], now=100.0, connection=1)
    spool.mark_sent(seqs[1], now=100.0, connection=1)
    assert [m.id for m in spool.unsent(10)] == seqs[2:]
    assert spool.awaiting_ack() == 2 and spool.depth() == 4
    assert spool.release([(seqs[1], seqs[2])]) == 2
    assert [m.id for m in spool.peek(10)] == [seqs[0], seqs[3]]
    assert spool.size_bytes() == 4


def test_sent_reports_come_due_after_a_reconnect_or_when_later_ones_were_acknowledged(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=1e9)
    first, second = spool.put("t", b"a"), spool.put("t", b"b")
    spool.mark_sent(first, now=100.0, connection=1)
    spool.mark_sent(second, now=100.0, connection=1)
    assert spool.due(10, sent_before=200.0, connection=1, lost_below=0) == []  # same connection, nothing later acked
    assert spool.due(10, sent_before=50.0, connection=2, lost_below=0) == []  # not yet past the timeout
    assert [m.id for m in spool.due(10, sent_before=200.0, connection=2, lost_below=0)] == [first, second]
    assert [m.id for m in spool.due(10, sent_before=200.0, connection=1, lost_below=second)] == [first]


def test_the_stream_and_the_acknowledging_collector_are_remembered_across_restarts(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    stream = spool.stream
    assert not spool.acks_heard()
    seq = spool.put("t", b"x")
    spool.mark_sent(seq, now=1.0, connection=3)
    spool.set_acks_heard(True)
    spool.close()
    reopened = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=3600)
    assert reopened.stream == stream and reopened.acks_heard()
    # what an earlier process sent and never saw acknowledged is sent again at once
    assert [m.id for m in reopened.unsent(10)] == [seq] and reopened.awaiting_ack() == 0
    assert reopened.put("t", b"y") > seq
    assert Spool(tmp_path / "other.sqlite", max_bytes=1 << 20, max_age_s=3600).stream != stream


def test_a_spool_from_before_acknowledgements_opens_with_every_report_unsent(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(
            "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
            "payload BLOB NOT NULL, created REAL NOT NULL);"
            "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"
        )
        db.execute("INSERT INTO outbox (topic, payload, created) VALUES ('t', x'7b7d', 1e10)")
    spool = Spool(path, max_bytes=1 << 20, max_age_s=1e12)
    assert [m.payload for m in spool.unsent(10)] == [b"{}"]
    assert spool.awaiting_ack() == 0


def test_sent_reports_dropped_for_age_are_counted_apart_from_those_never_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=100)
    sent = spool.put("t", b"sent", now=1000)
    spool.put("t", b"never", now=1000)
    spool.mark_sent(sent, now=1001, connection=1)
    spool.put("t", b"new", now=1200)
    assert (spool.dropped(), spool.dropped_sent()) == (1, 1)
    assert [m.payload for m in spool.peek(10)] == [b"new"]


def test_a_report_in_flight_when_it_expires_counts_as_sent(tmp_path: Path) -> None:
    spool = Spool(tmp_path / "s.sqlite", max_bytes=1 << 20, max_age_s=100)
    flying = spool.put("t", b"published, no PUBACK yet", now=1000)
    spool.in_flight.add(flying)
    spool.put("t", b"new", now=1200)
    assert (spool.dropped(), spool.dropped_sent()) == (0, 1)


def test_a_large_wal_left_by_an_older_agent_is_emptied_when_the_spool_opens(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite"
    older = sqlite3.connect(path, isolation_level=None)  # as killed -9: never closed, never checkpointed
    older.execute("PRAGMA journal_mode=WAL")
    older.execute("PRAGMA wal_autocheckpoint=0")
    older.execute("CREATE TABLE filler (data BLOB)")
    for _ in range(500):
        older.execute("INSERT INTO filler VALUES (?)", (b"x" * 4000,))
    wal = tmp_path / "s.sqlite-wal"
    assert wal.stat().st_size > 2_000_000
    spool = Spool(path, max_bytes=1 << 20, max_age_s=3600)
    spool.put("t", b"report")
    assert wal.stat().st_size <= WAL_LIMIT_BYTES
    spool.close()
    older.close()


SPOOL_LIFE = """
import os, sys
from agent.spool import WAL_LIMIT_BYTES, Spool
spool = Spool(sys.argv[1], max_bytes=1 << 20, max_age_s=3600)
for i in range(5):
    os.chdir("/")  # marks the start of a put in the trace
    seq = spool.put("t", b"report %d" % i)
    os.chdir("/tmp")  # the put has returned: what follows is the report's later life
    spool.mark_sent(seq, now=100.0 + i, connection=1)
    spool.release([(seq, seq)])
os.chdir("/")
"""


@pytest.mark.services  # strace
def test_a_report_costs_one_disk_flush_made_before_put_returns(tmp_path: Path) -> None:
    """Kept once ``put`` returns (its commit flushed), while marking it sent and releasing it wait
    for no flush: losing them in a power cut only sends the report again."""
    trace = tmp_path / "trace"
    argv = ["strace", "-f", "-qq", "-e", "trace=fsync,fdatasync,chdir", "-o", str(trace), sys.executable, "-c"]
    done = subprocess.run(
        [*argv, SPOOL_LIFE, str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    flushes: dict[str, list[int]] = {"put": [], "later": []}
    phase = ""
    for line in trace.read_text().splitlines():
        call = line.split(None, 1)[1]
        if call.startswith("chdir("):
            phase = "later" if '"/tmp"' in call else "put"
            flushes[phase].append(0)
        elif call.startswith(("fsync(", "fdatasync(")) and phase:
            flushes[phase][-1] += 1
    assert flushes["put"][:5] == [1, 1, 1, 1, 1] and flushes["later"] == [0, 0, 0, 0, 0], trace.read_text()
