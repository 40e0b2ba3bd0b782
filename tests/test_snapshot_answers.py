"""A snapshot keeps what readers make from it (``Snapshot.answer``): the status page and the list of
communes are made once per evaluation, not once per request (nation scale: 3,321 communes made
into a page took 30 ms of CPU per request). Each is made once per key; what fails is not kept;
at most ``ANSWERS_KEPT`` are kept, the oldest dropped first; a new evaluation starts with none.
The status page says when the evaluation it shows was made."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
from realservices import served_app, write_toml

from collector.config import load_config
from collector.fleet.rules import ANSWERS_KEPT, CommuneStatus, Snapshot
from collector.http.app import build_app
from collector.service import CollectorService


def test_an_answer_is_made_once_per_key_and_snapshot() -> None:
    snapshot = Snapshot().indexed()
    made: Counter[str] = Counter()

    def make(key: str) -> str:
        made[key] += 1
        return key.upper()

    assert [snapshot.answer(key, lambda key=key: make(key)) for key in ("a", "b", "a", "a", "b")] == list("ABAAB")
    assert made == {"a": 1, "b": 1}
    assert Snapshot().indexed().answer("a", lambda: make("a")) == "A"
    assert made["a"] == 2  # a new evaluation makes it again


def test_what_fails_is_not_kept_and_the_oldest_answer_goes_first() -> None:
    snapshot = Snapshot().indexed()

    def fails() -> str:
        raise LookupError("no such page")

    with pytest.raises(LookupError):
        snapshot.answer("page 9", fails)
    assert snapshot.answer("page 9", lambda: "made later") == "made later"
    for n in range(ANSWERS_KEPT):
        snapshot.answer(n, lambda n=n: n)
    assert snapshot.answer("page 9", lambda: "made again") == "made again"  # it was the oldest: dropped
    assert snapshot.answer(ANSWERS_KEPT - 1, lambda: -1) == ANSWERS_KEPT - 1  # the newest are still kept


def test_the_status_page_and_the_communes_are_those_of_the_snapshot_they_answer_from(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "collector.toml", {"state": {"path": str(tmp_path / "state.sqlite")}})
    service = CollectorService(load_config(config))
    try:
        token = service.tokens.add("grafana", "viewer")
        evaluated = time.mktime((2026, 12, 6, 9, 30, 15, 0, 0, -1))
        red = CommuneStatus("08", "a1", "02473", 2, 0, 0, "down", 100.0, 0.0)
        service.fleet.snapshot = Snapshot(communes=[red], at=evaluated).indexed()
        with served_app(build_app(service.http_parts())) as get:
            status, page = get("/status", token)
            assert status == 200 and "09:30:15 06/12/2026" in page and "02473" in page
            assert '"line_state":"down"' in get("/api/v1/communes", token)[1]
            green = CommuneStatus("08", "a1", "02473", 2, 2, 0, "up", 100.0, 0.0)
            service.fleet.snapshot = Snapshot(communes=[green], at=evaluated + 5).indexed()
            assert "09:30:20 06/12/2026" in get("/status", token)[1]
            assert '"line_state":"up"' in get("/api/v1/communes", token)[1]
    finally:
        service.store.close()
