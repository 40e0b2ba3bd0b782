"""The collector's state file on a real full disk: a copy in memory keeps its rows, and is
written back when the file opens; a corrupt file is refused rather than set aside.

Each test that needs a full disk mounts its own small tmpfs (the tests run as root).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from smalldisk import small_disk

from collector.diskhealth import DiskHealth
from collector.selfmetrics import SelfMetrics
from collector.service import open_state
from collector.store import StoreError


def health(path: Path) -> DiskHealth:
    return DiskHealth(SelfMetrics(), {"buffer": str(path.with_name("buffer.sqlite")), "state": str(path)})


@pytest.mark.services  # mounts a small tmpfs
def test_a_state_file_on_a_full_disk_is_copied_to_memory_and_written_back_when_space_returns(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        path = disk.path / "state.sqlite"
        first, in_memory = open_state(str(path), health(path))
        assert not in_memory
        first.execute("INSERT INTO commune_areas (commune, area) VALUES ('02473', 'yen-son')")
        first.close()
        disk.fill()
        watch = health(path)
        store, in_memory = open_state(str(path), watch)
        assert in_memory and watch.report()["state"]["error"] == "disk_full"
        assert store.query("SELECT area FROM commune_areas") == [("yen-son",)]  # the copy
        store.execute("INSERT INTO commune_areas (commune, area) VALUES ('02536', 'son-duong')")
        with pytest.raises(StoreError):
            store.move_to(path)  # still full: nothing changes
        assert store.query("SELECT count(*) FROM commune_areas") == [(2,)]
        disk.free()
        store.move_to(path)
        store.execute("INSERT INTO commune_areas (commune, area) VALUES ('02215', 'tp-tuyen-quang')")
        store.close()
        with sqlite3.connect(path) as db:
            assert db.execute("SELECT count(*) FROM commune_areas").fetchone() == (3,)


def test_a_corrupt_state_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(os.urandom(16 * 1024))
    with pytest.raises(StoreError, match="cannot be used"):
        open_state(str(path), health(path))
    assert len(path.read_bytes()) == 16 * 1024
