"""The API's reads do not wait behind the state file's writers (nation scale).

At 100,000 PCs the fleet save and the registry flush hold the store's lock for long stretches; a
request's token check, areas, lines and outages read the file through ``Store.read`` (query-only
connections beside the writer) and the registry answers from memory, so a request is answered while
another thread holds that lock. What was committed is read; what was not, is not. A token revoked
is refused at once. The app here is the collector's own (``CollectorService`` and ``build_app``)
over a real state file; no broker or InfluxDB is needed for these routes.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import served_app, write_toml

from collector.config import load_config
from collector.fleet.outage_book import OutageRecord, recent
from collector.http.app import build_app
from collector.http.auth import TokenStore
from collector.registry.registry import Line, Registry
from collector.service import CollectorService
from collector.store import Store

WAIT_S = 30.0  # how long a read may take before it counts as waiting for the lock (it takes milliseconds)


class RolledBack(Exception):
    """Thrown to end ``while_locked``'s transaction without committing it."""


def while_locked(store: Store, read: Callable[[], Any]) -> Any:
    """``read``'s answer, asked from another thread while this one holds the store's lock inside an
    open write transaction (an area added, then rolled back); fails if the read waits for that lock."""
    answer: list[Any] = []
    with pytest.raises(RolledBack), store.transaction() as db:
        db.execute("INSERT INTO areas (code, name) VALUES ('uncommitted', 'not yet')")
        asker = threading.Thread(target=lambda: answer.append(read()), daemon=True)
        asker.start()
        asker.join(WAIT_S)
        assert not asker.is_alive(), "the read waited for the store's lock"
        raise RolledBack
    return answer[0]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "state.sqlite") as opened:
        yield opened


def test_reads_answer_the_last_commit_while_the_lock_is_held(store: Store) -> None:
    tokens, registry = TokenStore(store, []), Registry(store, "unassigned")
    token = tokens.add("grafana", "viewer")
    registry.set_areas({"a1": "Khu vực 1"}, {"a1": ["02473"]})
    registry.upsert_lines([Line("C1", "08", "02473", "VNPT", 100.0, 100.0, "2025-01-01")])
    outage = OutageRecord("08", "02473", "a1", 100.0, 110.0, 400.0, "decided", "power", 0.9)
    store.execute("INSERT INTO outages (province, commune, start, state, body) VALUES ('08', '02473', 100.0, ?, ?)",
                  (outage.state, outage.body()))  # fmt: skip

    found = while_locked(store, lambda: tokens.lookup(token))
    assert found is not None and found.name == "grafana"
    assert while_locked(store, registry.areas) == {"a1": "Khu vực 1"}  # not the uncommitted area
    assert [line.circuit_id for line in while_locked(store, lambda: registry.lines("02473"))] == ["C1"]
    assert while_locked(store, lambda: registry.area_of("02473")) == "a1"
    assert while_locked(store, registry.communes_by_area) == {"a1": ["02473"]}
    assert [r.cause for r in while_locked(store, lambda: recent(store, 0.0, "02473"))] == ["power"]
    registry.set_area("a2", "Khu vực 2", ["02476"])
    assert while_locked(store, registry.areas) == {"a1": "Khu vực 1", "a2": "Khu vực 2"}  # once committed, read


def test_a_revoked_token_is_refused_at_once(store: Store) -> None:
    tokens = TokenStore(store, [])
    token = tokens.add("grafana", "viewer")
    assert tokens.lookup(token) is not None
    assert tokens.revoke("grafana")
    assert tokens.lookup(token) is None


def test_a_copy_in_memory_reads_its_own_rows_and_then_the_file_it_moved_to(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with Store(path) as first:
        token = TokenStore(first, []).add("kept", "admin")
    copy = Store.memory_copy(path)
    tokens = TokenStore(copy, [])
    assert tokens.lookup(token) is not None
    made_in_memory = tokens.add("made-in-memory", "viewer")
    assert tokens.lookup(made_in_memory) is not None
    copy.move_to(path)  # the file can be written again: the copy goes back to it
    later = tokens.add("made-after-the-move", "viewer")
    assert [t.name for t in tokens.tokens()] == ["kept", "made-after-the-move", "made-in-memory"]
    assert tokens.lookup(later) is not None
    copy.close()


def state_files_open(path: Path) -> int:
    """How many of this process's file descriptors are open on ``path``."""
    fds = Path("/proc/self/fd")
    return sum(1 for fd in fds.iterdir() if os.path.realpath(fd) == str(path.resolve()))


def test_readers_are_shared_by_threads_that_come_and_go(tmp_path: Path) -> None:
    """The API's thread pool lets idle threads end and starts new ones: 50 threads reading one
    after another use one reader, not one each (50 open files after a day of requests)."""
    path = tmp_path / "state.sqlite"
    with Store(path) as store:
        tokens = TokenStore(store, [])
        token = tokens.add("grafana", "viewer")
        for _ in range(50):
            reader = threading.Thread(target=tokens.lookup, args=(token,))
            reader.start()
            reader.join()
        assert state_files_open(path) == 2  # the store's connection and one reader
    assert state_files_open(path) == 0


def test_a_store_read_after_close_or_without_its_file_fails_and_makes_no_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = Store(path)
    store.read("SELECT * FROM areas")
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.read("SELECT * FROM areas")
    with Store(path) as store:
        for name in ("state.sqlite", "state.sqlite-wal", "state.sqlite-shm"):
            (tmp_path / name).unlink(missing_ok=True)
        with pytest.raises(sqlite3.OperationalError):
            store.read("SELECT * FROM areas")
        assert not path.exists()


def test_a_store_moved_to_another_file_reads_that_file(tmp_path: Path) -> None:
    with Store(tmp_path / "first.sqlite") as store:
        registry = Registry(store, "unassigned")
        registry.set_area("a1", "Khu vực 1", ["02473"])
        assert registry.areas() == {"a1": "Khu vực 1"}
        store.move_to(tmp_path / "second.sqlite")
        registry.set_area("a2", "Khu vực 2", ["02476"])
        assert registry.areas() == {"a1": "Khu vực 1", "a2": "Khu vực 2"}
    with Store(tmp_path / "first.sqlite") as first:
        assert Registry(first, "unassigned").areas() == {"a1": "Khu vực 1"}  # the second area is not there


def test_the_api_answers_while_the_state_file_lock_is_held(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "collector.toml",
        {"state": {"path": str(tmp_path / "state.sqlite")}, "http": {"public_status_page": False}},
    )
    service = CollectorService(load_config(config))
    try:
        token = service.tokens.add("grafana", "viewer")
        area_token = service.tokens.add("area-a1", "viewer", "area:a1")
        commune_token = service.tokens.add("commune-02473", "viewer", "commune:02473")
        service.registry.set_areas({"a1": "Khu vực 1"}, {"a1": ["02473"]})
        with served_app(build_app(service.http_parts())) as get:
            for held in (token, area_token, commune_token):
                for route in ("/api/v1/communes", "/api/v1/areas", "/status", "/api/v1/outages?commune=02473"):
                    status, body = while_locked(service.store, lambda route=route, held=held: get(route, held))
                    assert status == 200, (route, body[:200])
            assert while_locked(service.store, lambda: get("/api/v1/areas?area=a2", area_token))[0] == 404
            assert "Khu vực 1" in while_locked(service.store, lambda: get("/api/v1/areas", token))[1]
            assert service.tokens.revoke("grafana")
            assert get("/api/v1/communes", token)[0] == 403
    finally:
        service.store.close()
