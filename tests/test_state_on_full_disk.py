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
from collector.store import Store, StoreError


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


@pytest.mark.services  # mounts a small tmpfs
def test_an_import_made_while_the_state_was_in_memory_survives_the_copy_written_back(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk", size_kb=1024) as disk:
        path = disk.path / "state.sqlite"
        first, _in_memory = open_state(str(path), health(path))
        first.execute("INSERT INTO commune_areas (commune, area) VALUES ('02473', 'yen-son')")
        first.execute("INSERT INTO commune_areas (commune, area) VALUES ('02215', 'old-area')")
        first.execute("INSERT INTO api_tokens (name, role, sha256, created_at) VALUES ('old', 'viewer', 'ab', 1)")
        first.close()
        disk.fill()
        store, in_memory = open_state(str(path), health(path))
        assert in_memory
        store.execute("INSERT INTO commune_areas (commune, area) VALUES ('02536', 'son-duong')")  # the collector's
        store.execute("DELETE FROM api_tokens WHERE name = 'old'")  # e.g. a token revoked through the API
        disk.free()
        with Store(path) as other:  # meanwhile another process (commune-collector registry import-...) writes the file
            other.execute("UPDATE commune_areas SET area = 'tp-tuyen-quang' WHERE commune = '02215'")
            other.execute("INSERT INTO lines (circuit_id, province, commune, isp, contracted_down_mbps,"
                          " contracted_up_mbps) VALUES ('VNPT-1', '08', '02473', 'VNPT', 100, 100)")  # fmt: skip
        version = store.data_version()
        store.move_to(path)
        assert store.data_version() != version  # so the registry reads its areas again
        store.close()
        with sqlite3.connect(path) as db:
            areas = dict(db.execute("SELECT commune, area FROM commune_areas").fetchall())
            assert areas == {"02473": "yen-son", "02536": "son-duong", "02215": "tp-tuyen-quang"}
            assert db.execute("SELECT circuit_id FROM lines").fetchall() == [("VNPT-1",)]
            assert db.execute("SELECT count(*) FROM api_tokens").fetchone() == (0,)


def test_a_corrupt_state_file_is_refused_not_replaced(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(os.urandom(16 * 1024))
    with pytest.raises(StoreError, match="cannot be used"):
        open_state(str(path), health(path))
    assert len(path.read_bytes()) == 16 * 1024
