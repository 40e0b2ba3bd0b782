"""Smart-card use observed through PC/SC (agent/peripherals/pcsc.py, smartcards.py).

Against real parts: Debian's pcscd with the vpcd virtual reader, vicc as the card, and a real
pyscard client in its own process opening the card (tests/pcscservice.py). The agent's own
peripherals job reports the connection; with no client, the card's presence only. No service, no
reader and a service that stops leave the watch running with one warning each.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pcscservice import READER, Pcscd, open_card, socket_path
from realservices import wait_until

from agent.config import config_from_dict
from agent.peripherals.classify import shipped_known_ids
from agent.peripherals.pcsc import PcscWatch, load_scard
from agent.peripherals.smartcards import WithSmartcards
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker
from agent.runner import AgentRunner
from devtools.localstack import free_port

pytestmark = pytest.mark.services  # starts pcscd, vicc and a PC/SC client

FIXTURE_BUS = Path(__file__).resolve().parent / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"
POLL_S = 0.2
socket_path()  # before pyscard first connects in this process


@pytest.fixture
def pcscd(tmp_path: Path) -> Iterator[Pcscd]:
    service = Pcscd(tmp_path)
    yield service
    service.stop()


@pytest.fixture
def watch() -> Iterator[PcscWatch]:
    scard = load_scard()
    assert scard is not None, "pyscard is installed in the test venv (make venv)"
    found = PcscWatch(scard, poll_s=POLL_S, retry_s=0.5)
    found.start()
    yield found
    found.close()


def peripherals_job(watch: PcscWatch) -> WithSmartcards:
    """The agent's peripherals job (as agent.runner builds it), reporting at every call."""
    tracker = PeripheralsTracker(SysfsSource(FIXTURE_BUS), shipped_known_ids(), report_interval_s=0)
    return WithSmartcards(tracker, watch)


def reader_item(sections: dict[str, Any]) -> dict[str, Any]:
    return next(item for item in sections.get("smartcard", []) if item["name"] == READER)


def card_seen(job: WithSmartcards) -> dict[str, Any]:
    """Reports until one shows the card in the virtual reader; that report's reader item."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        sections = job()
        items = [item for item in sections.get("smartcard", []) if item["name"] == READER and item["card_now"]]
        found[:] = items
        return bool(items)

    wait_until(seen, 30, "the virtual card in the reader")
    return found[0]


def test_a_client_that_opens_the_card_is_reported_and_without_one_only_the_card_is(
    pcscd: Pcscd, watch: PcscWatch
) -> None:
    pcscd.card()
    job = peripherals_job(watch)
    first = card_seen(job)
    assert (first["reader"], first["card_present"], first["in_use"], first["opened"]) == (
        "Virtual_PCD_00_00", 1, 0, 0
    )  # fmt: skip
    assert "device" not in first  # a virtual reader is no USB token
    before = time.time()
    open_card(READER, hold_s=1.0)
    after = time.time()
    looks = watch.looks
    wait_until(lambda: watch.looks >= looks + 2, 10, "a look after the client closed")
    used = job()
    assert all("pcsc" not in item for item in used["peripherals"])  # the fixture bus's token is no reader here
    item = reader_item(used)
    assert (item["card_present"], item["in_use"], item["opened"], item["in_use_now"]) == (1, 1, 1, 0)
    assert before - 1 <= item["last_in_use"] <= after + 1
    looks = watch.looks
    wait_until(lambda: watch.looks >= looks + 3, 10, "looks with no client")
    idle = reader_item(job())
    assert (idle["card_present"], idle["in_use"], idle["opened"], idle["last_in_use"]) == (1, 0, 0, 0)


def test_a_reader_without_a_card_reports_neither_card_nor_use(pcscd: Pcscd, watch: PcscWatch) -> None:
    wait_until(lambda: watch.looks >= 2, 10, "looks at the readers")
    item = reader_item(peripherals_job(watch)())
    assert (item["card_present"], item["card_now"], item["in_use"], item["opened"]) == (0, 0, 0, 0)


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "commune_agent.pcsc" and r.levelno >= logging.WARNING]


def test_no_service_then_a_service_that_stops_each_give_one_warning_and_the_watch_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "commune_agent.pcsc")
    scard = load_scard()
    watch = PcscWatch(scard, poll_s=POLL_S, retry_s=0.2)
    watch.start()
    try:
        time.sleep(1.5)  # several tries against no service
        assert warnings(caplog) == ["PC/SC unavailable, smart-card use not observed"]
        job = peripherals_job(watch)
        sections = job()
        assert "smartcard" not in sections and all("pcsc" not in item for item in sections["peripherals"])
        service = Pcscd(tmp_path)
        try:
            wait_until(lambda: "smartcard" in job(), 30, "the watch to find the service once it runs")
        finally:
            service.stop()
        wait_until(lambda: len(warnings(caplog)) == 2, 30, "a warning for the service stopping")
        time.sleep(1.0)  # more tries against the stopped service: no more warnings
        assert len(warnings(caplog)) == 2
        assert watch._thread.is_alive()
        job()  # the window in which it stopped
        assert "smartcard" not in job()
    finally:
        watch.close()
    assert not watch._thread.is_alive()


def test_a_service_with_no_reader_gives_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "commune_agent.pcsc")
    service = Pcscd(tmp_path, readers=False)
    watch = PcscWatch(load_scard(), poll_s=POLL_S, retry_s=0.2)
    watch.start()
    try:
        wait_until(lambda: watch.looks >= 3, 10, "looks at no reader")
        assert warnings(caplog) == ["PC/SC has no reader, smart-card use not observed until one appears"]
        sections = peripherals_job(watch)()
        assert "smartcard" not in sections  # no reader to report
        assert all("pcsc" not in item for item in sections["peripherals"])  # nor a token whose use is seen
    finally:
        watch.close()
        service.stop()


@pytest.mark.parametrize("pcsc", [True, False])
def test_the_agent_watches_its_readers_and_its_hello_says_pcsc_unless_told_not_to(tmp_path: Path, pcsc: bool) -> None:
    config = config_from_dict(
        {
            "identity": {"province": "08", "commune": "02473", "host": "pc-pcsc"},
            "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: nothing is sent
            "spool": {"path": str(tmp_path / "spool.sqlite")},
            "peripherals": {"sysfs_root": str(FIXTURE_BUS), "pcsc": pcsc},
        }
    )
    runner = AgentRunner(config)
    try:
        assert (runner.pcsc is not None) == pcsc
        assert ("pcsc" in runner.publisher.caps) == pcsc
    finally:
        runner.spool.close()
