"""Fixtures: a real Mosquitto and a real influxd per test session, and factories for real
collector and agent processes wired to them. Every test gets its own database and client ids.

Two tiers (tests/tiers.py, loaded below): a test that uses one of these service fixtures is marked
``services`` automatically; a test that starts a process by other means needs
``@pytest.mark.services`` (or ``pytestmark`` in its module). Every other test is pure: it runs in
``make test-fast`` (``pytest -m "not services"``), and starting any process from it fails the test.
A new service fixture here goes into ``tiers.SERVICE_FIXTURES`` too.

``stack`` and ``own_stack`` hand over a collector and agents on one broker and database
(tests/stack.py says how): use them rather than listing the factories, broker and database.

``tests/psutil_fixtures.py`` (loaded below too) gives the agent's collectors psutil's own named
tuples with known values (fixture ``office_pc``); it needs no service.
"""

from __future__ import annotations

import dataclasses
import itertools
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, sync_playwright
from realservices import (
    API_TOKEN,
    Agent,
    Collector,
    Influxd,
    Mosquitto,
    free_port,
    merged,
    running,
    stopped_at_teardown,
)
from stack import Stack

from collector.http.auth import digest

pytest_plugins = ["tiers", "psutil_fixtures"]


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    yield from running(Mosquitto(tmp_path_factory.mktemp("mosquitto")))


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    yield from running(Influxd(tmp_path_factory.mktemp("influxd")))


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Mosquitto]:
    """A broker of the test's own, for tests that count every host: the session broker keeps other
    tests' retained status messages, so a collector on it learns their hosts too."""
    yield from running(Mosquitto(tmp_path / "own-broker"))


@pytest.fixture
def own_influxd(tmp_path: Path) -> Iterator[Influxd]:
    """An influxd of the test's own, for tests that stop and start it (the session's one stays up)."""
    yield from running(Influxd(tmp_path / "own-influxd"))


@pytest.fixture
def database(influxd: Influxd) -> str:
    name = f"t_{uuid.uuid4().hex[:10]}"
    influxd.create_database(name)
    return name


_ids = itertools.count()


def collector_sections(
    mosquitto: Mosquitto, influxd: Influxd, database: str, state_dir: Path, client_id: str
) -> dict[str, dict[str, Any]]:
    return {
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id},
        "influxdb": {"url": influxd.url, "database": database, "flush_interval_s": 0.2},
        "http": {
            "host": "127.0.0.1",
            "port": free_port(),
            "tokens": [{"name": "tests", "role": "admin", "sha256": digest(API_TOKEN)}],
        },
        "state": {"path": str(state_dir / "state.sqlite")},
        "ingest": {"status_interval_s": 1},
    }


@pytest.fixture
def make_collector(
    mosquitto: Mosquitto, influxd: Influxd, database: str, tmp_path: Path
) -> Iterator[Callable[..., Collector]]:
    """Builds (not starts) collector processes sharing this test's database and MQTT session."""
    client_id = f"collector-{uuid.uuid4().hex[:8]}"

    def build(**overrides: dict[str, Any]) -> Collector:
        sections = merged(collector_sections(mosquitto, influxd, database, tmp_path, client_id), overrides)
        return Collector(tmp_path / f"collector{next(_ids)}", sections)

    yield from stopped_at_teardown(build)


@pytest.fixture
def make_agent(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Callable[..., Agent]]:
    """Builds (not starts) agent processes publishing to the test broker every second."""

    def build(
        commune: str = "02473",
        host: str | None = None,
        province: str = "08",
        python: str = sys.executable,
        **overrides: dict[str, Any],
    ) -> Agent:
        workdir = tmp_path / f"agent{next(_ids)}"
        defaults: dict[str, dict[str, Any]] = {
            "identity": {"province": province, "commune": commune, "host": host or f"pc-{uuid.uuid4().hex[:6]}"},
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port},
            "collect": {"interval_s": 1},
            "spool": {"path": str(workdir / "spool.sqlite")},
            "probe": {"gateway": False},  # tests send nothing beyond loopback
            # A line probe's busy guard samples the machine's default-route NIC, which here carries other
            # sessions' downloads (seconds over 5 Mb/s happen): a speed test measured for its figure was
            # skipped as line_busy. The guard's own test sets a threshold and a NIC of its own.
            "speedtest": {"busy_threshold_mbps": 1e6},
        }
        sections = merged(defaults, overrides)
        agent = Agent(workdir, sections, python)
        agent.identity = sections["identity"]  # type: ignore[attr-defined]
        return agent

    yield from stopped_at_teardown(build)


@pytest.fixture
def stack(
    mosquitto: Mosquitto,
    influxd: Influxd,
    database: str,
    make_collector: Callable[..., Collector],
    make_agent: Callable[..., Agent],
) -> Stack:
    """Collectors and agents on the session broker and this test's database (tests/stack.py)."""
    return Stack(mosquitto, influxd, database, make_collector, make_agent)


@pytest.fixture
def own_stack(stack: Stack, own_broker: Mosquitto) -> Stack:
    """Collectors and agents on a broker of the test's own and this test's database (tests/stack.py)."""
    return dataclasses.replace(stack, broker=own_broker)


CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright's own browser download cannot run here
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """A real headless Chromium for the module's page tests (status page, web console)."""
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
