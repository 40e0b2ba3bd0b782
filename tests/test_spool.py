"""The agent spool keeps reports in order until acknowledged and stays within its bounds."""

from __future__ import annotations

from pathlib import Path

from agent.spool import Spool


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
