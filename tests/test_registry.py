"""The registry keeps areas, lines and hosts across restarts."""

from __future__ import annotations

from pathlib import Path

from collector.registry.registry import HostKey, Line, Registry
from collector.store import Store


def test_lines_areas_and_hosts_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = Store(path)
    registry = Registry(store, "unassigned")
    registry.set_area("son-duong", "Khu vực Sơn Dương", ["02536"])
    registry.upsert_lines([Line("VNPT-TQ-0001", "08", "02536", "VNPT", 100.0, 100.0, "2025-08-01")])
    registry.upsert_lines([Line("VNPT-TQ-0001", "08", "02536", "VNPT", 200.0, 200.0, "2025-08-01")])
    registry.touch(HostKey("08", "02536", "pc-01"), 1000.0, status="online")
    registry.flush()
    store.close()

    again = Registry(Store(path), "unassigned")
    assert again.area_of("02536") == "son-duong" and again.area_of("02473") == "unassigned"
    assert again.areas() == {"son-duong": "Khu vực Sơn Dương"}
    assert [line.contracted_down_mbps for line in again.lines("02536")] == [200.0]
    assert again.lines("02473") == []
    host = again.host(HostKey("08", "02536", "pc-01"))
    assert host is not None and host.status == "online" and host.last_seen == 1000.0


def test_offline_status_does_not_move_last_seen(tmp_path: Path) -> None:
    registry = Registry(Store(":memory:"), "unassigned")
    key = HostKey("08", "02473", "pc-01")
    registry.touch(key, 100.0, status="online")
    registry.touch(key, 200.0, status="offline")
    record = registry.host(key)
    assert record is not None and record.last_seen == 100.0 and record.status == "offline"
    assert record.status_since == 200.0
