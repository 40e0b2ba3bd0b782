"""The agent's USB peripherals: read from sysfs as the kernel lays it out, classified, tracked through the
day and published as the ``peripherals`` report (fixture bus: tests/data/usb_sysfs/README.md)."""

from __future__ import annotations

import csv
import json
import os
import queue
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Agent, Mosquitto, wait_until
from stack import Stack

from agent.config import ConfigError, PeripheralsConfig, config_from_dict, extra_known_ids
from agent.peripherals.classify import KnownIdsError, classify, parse_known_ids, shipped_known_ids
from agent.peripherals.source import UsbDevice
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker, device_label
from common.wire import decode_report, encode, report_topic

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "data" / "usb_sysfs"
FIXTURE_BUS = FIXTURE / "sys" / "bus" / "usb" / "devices"
USB_IDS = Path("/usr/share/misc/usb.ids")
TOKEN, SCANNER, PRINTER, FLASH = (
    "0529-0620-0A1B2C3D",
    "04a9-1913-1-1.2",
    "03f0-002a-000000000QN8LTK5PR1a",
    "0781-5567-1-3",
)
EXPECTED_KINDS = {TOKEN: "token", SCANNER: "scanner", PRINTER: "printer", FLASH: "other"}


def reported(root: Path) -> dict[str, tuple[str, UsbDevice]]:
    known = shipped_known_ids()
    out = {}
    for device in SysfsSource(root).devices():
        kind = classify(device, known)
        if kind is not None:
            out[device_label(device)] = (kind.kind, device)
    return out


def test_the_fixture_bus_reports_token_scanner_printer_and_flash_drive_but_not_hubs_or_the_mouse() -> None:
    devices = SysfsSource(FIXTURE_BUS).devices()
    assert [d.port for d in devices] == ["1-1", "1-1.1", "1-1.2", "1-1.3", "1-2", "1-3"]  # root hub usb1 left out
    found = reported(FIXTURE_BUS)
    assert {label: kind for label, (kind, _d) in found.items()} == EXPECTED_KINDS
    token = found[TOKEN][1]
    assert (token.manufacturer, token.product, token.interface_classes) == ("Aladdin", "Token JC", ("0b",))
    assert found[PRINTER][1].interface_classes == ("07", "ff")
    assert classify(found[SCANNER][1], shipped_known_ids()).model == "Canon CanoScan LiDE 300"  # type: ignore[union-attr]


def test_a_device_whose_strings_cannot_be_read_is_reported_by_its_ids_and_port() -> None:
    flash = reported(FIXTURE_BUS)[FLASH][1]
    assert (flash.vendor_id, flash.product_id, flash.port) == ("0781", "5567", "1-3")
    assert (flash.serial, flash.manufacturer, flash.product) == ("", "", "")


def test_a_device_whose_ids_cannot_be_read_is_skipped_and_counted(tmp_path: Path) -> None:
    bus = tmp_path / "devices"
    shutil.copytree(FIXTURE / "sys", tmp_path / "sys", symlinks=True)
    os.symlink(tmp_path / "sys" / "bus" / "usb" / "devices", bus)
    broken = tmp_path / "sys/devices/pci0000:00/0000:00:14.0/usb1/1-2/idVendor"
    broken.unlink()
    broken.mkdir()  # reading it fails
    source = SysfsSource(bus)
    assert "1-2" not in [d.port for d in source.devices()]
    assert source.unreadable == 1


def test_without_a_usb_bus_the_source_lists_nothing(tmp_path: Path) -> None:
    assert SysfsSource(tmp_path / "no-such-bus").devices() == []


def test_classes_decide_what_an_unknown_device_is() -> None:
    known = shipped_known_ids()

    def kind(device_class: str, *interfaces: str) -> str | None:
        found = classify(UsbDevice("2-1", "1234", "5678", product="X", device_class=device_class,
                                   interface_classes=interfaces), known)  # fmt: skip
        return None if found is None else found.kind

    assert kind("00", "0b") == "token"  # any CCID smart-card interface
    assert kind("0b") == "token"
    assert kind("00", "07", "ff") == "printer"
    assert kind("09", "09") is None  # hub
    assert kind("00", "03") is None and kind("00", "03", "03") is None  # keyboard, mouse, both
    assert kind("00", "03", "08") == "other"  # HID beside a storage interface is not just a keyboard
    assert kind("ff", "ff") == "other"  # vendor-specific and not in the data file


def test_every_id_the_shipped_data_file_takes_from_usb_ids_is_in_it_and_every_row_cites_a_package() -> None:
    text = (REPO / "agent" / "peripherals" / "known_ids.csv").read_text(encoding="utf-8")
    rows = list(csv.DictReader(text.splitlines()))
    assert {row["kind"] for row in rows} == {"scanner", "token"}
    vendors = {row["vendor_id"] for row in rows if row["kind"] == "scanner"}
    assert {"04a9", "04b8", "03f0", "04c5", "04f9", "07b3"} <= vendors  # Canon Epson HP Fujitsu/PFU Brother Plustek
    database: dict[str, set[str]] = {}
    vendor = ""
    for line in USB_IDS.read_text(encoding="utf-8", errors="replace").splitlines():
        if line.startswith("C "):
            break  # device classes follow the vendors
        if len(line) > 6 and line[4:6] == "  " and not line.startswith(("#", "\t")):
            vendor = line[:4]
            database[vendor] = set()
        elif line.startswith("\t") and not line.startswith("\t\t") and vendor:
            database[vendor].add(line[1:5])
    from_usb_ids = [r for r in rows if r["source"].startswith("usb.ids ")]  # the rest: tests/test_known_ids.py
    missing = [
        f"{r['vendor_id']}:{r['product_id']}"
        for r in from_usb_ids
        if r["product_id"] not in database.get(r["vendor_id"], ())
    ]
    assert from_usb_ids and not missing, f"ids not in {USB_IDS}: {missing}"
    assert all(row["source"].startswith(("libsane1 ", "libccid ", "usb.ids ")) for row in rows)
    assert len(shipped_known_ids()) == len(rows)


def test_a_bad_known_ids_row_names_its_line() -> None:
    with pytest.raises(KnownIdsError, match="line 3: product_id"):
        parse_known_ids("vendor_id,product_id,kind,model,source\n04a9,1913,scanner,x,y\n04a9,19,scanner,x,y\n", "f")
    with pytest.raises(KnownIdsError, match="kind"):
        parse_known_ids("vendor_id,product_id,kind,model,source\n04a9,1913,camera,x,y\n", "f")


def test_extra_ids_in_the_config_make_a_vendor_specific_device_a_scanner() -> None:
    raw = {
        "identity": {"province": "08", "commune": "02473", "host": "pc"},
        "peripherals": {"extra_ids": [{"vendor_id": "1234", "product_id": "ABCD", "kind": "scanner", "model": "M"}]},
    }
    known = {**shipped_known_ids(), **extra_known_ids(config_from_dict(raw).peripherals)}
    found = classify(UsbDevice("1-4", "1234", "abcd", device_class="ff", interface_classes=("ff",)), known)
    assert found is not None and (found.kind, found.model) == ("scanner", "M")
    with pytest.raises(ConfigError, match=r"extra_ids\[0\]: kind"):
        extra_known_ids(PeripheralsConfig(extra_ids=[{"vendor_id": "1234", "product_id": "abcd", "kind": "camera"}]))
    with pytest.raises(ConfigError, match=r"extra_ids\[0\] must be a table"):
        extra_known_ids(PeripheralsConfig(extra_ids=["1234:abcd"]))


@pytest.mark.services  # runs the agent's CLI
def test_a_bad_extra_id_stops_the_agent_with_a_one_line_error_and_status_2(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        '[identity]\nprovince = "08"\ncommune = "02473"\n'
        '[peripherals]\nextra_ids = [{ vendor_id = "04a9", product_id = "zz", kind = "scanner" }]\n'
    )
    done = subprocess.run([sys.executable, "-m", "agent.cli", "once", "-c", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=60)  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "product_id" in done.stderr


class Clock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def local(hour: int, minute: int = 0, day: int = 1) -> float:
    return time.mktime((2026, 6, day, hour, minute, 0, 0, 0, -1))


@pytest.fixture
def bus(tmp_path: Path) -> Path:
    """A copy of the fixture bus whose devices can be unplugged (their symlink removed) and plugged back."""
    shutil.copytree(FIXTURE / "sys", tmp_path / "sys", symlinks=True)
    return tmp_path / "sys" / "bus" / "usb" / "devices"


def unplug(bus: Path, port: str) -> Path:
    target = bus / port
    link = os.readlink(target)
    target.unlink()
    return Path(link)


def by_device(sections: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {item["device"]: item for item in sections["peripherals"]}


def test_a_report_on_start_on_every_plug_and_unplug_and_hourly_and_none_in_between(bus: Path) -> None:
    clock = Clock(local(8))
    tracker = PeripheralsTracker(SysfsSource(bus), shipped_known_ids(), 3600.0, clock)
    first = by_device(tracker())
    assert {label: item["kind"] for label, item in first.items()} == EXPECTED_KINDS
    assert all(item["present"] == 1 and item["first_seen_today"] == int(local(8)) for item in first.values())
    clock.now += 5
    assert tracker() == {}  # nothing changed: nothing sent
    link = unplug(bus, "1-1.1")
    clock.now = local(8, 30)
    gone = by_device(tracker())[TOKEN]
    assert gone["present"] == 0 and gone["last_seen_today"] == int(local(8) + 5)
    clock.now += 5
    assert tracker() == {}
    os.symlink(link, bus / "1-1.1")  # plugged back: normal use of a token
    clock.now = local(9)
    back = by_device(tracker())[TOKEN]
    assert (
        back["present"] == 1 and back["first_seen_today"] == int(local(8)) and back["last_seen_today"] == int(local(9))
    )
    for minute in range(1, 60):
        clock.now = local(9, minute)
        assert tracker() == {}
    clock.now = local(10)
    hourly = by_device(tracker())
    assert hourly[TOKEN]["minutes_today"] == 60.1  # 5 s at 08:00, then 09:00-10:00 polled each minute
    # 5 s at 08:00 and 5 s at 08:30, 60 min from 09:00; the half-hour gaps between polls (a PC
    # asleep, not a device in use) do not count
    assert hourly[SCANNER]["minutes_today"] == 60.2


def test_a_new_local_day_forgets_what_was_unplugged_and_restarts_the_counts(bus: Path) -> None:
    clock = Clock(local(16))
    tracker = PeripheralsTracker(SysfsSource(bus), shipped_known_ids(), 3600.0, clock)
    tracker()
    for minute in range(1, 31):
        clock.now = local(16, minute)
        tracker()
    unplug(bus, "1-1.1")
    clock.now = local(17)
    assert by_device(tracker())[TOKEN]["minutes_today"] == 30.0
    clock.now = local(7, day=2)
    next_day = by_device(tracker())
    assert TOKEN not in next_day
    assert next_day[SCANNER]["first_seen_today"] == int(local(7, day=2)) and next_day[SCANNER]["minutes_today"] == 0


def test_the_report_meets_the_wire_contract(bus: Path) -> None:
    sections = PeripheralsTracker(SysfsSource(bus), shipped_known_ids())()
    report = decode_report("peripherals", encode({"v": 1, "ts": int(time.time()), **sections}))
    assert {item["device"]: item["kind"] for item in report.sections["peripherals"]} == EXPECTED_KINDS
    empty = PeripheralsTracker(SysfsSource(bus / "missing"), shipped_known_ids())()
    assert empty == {"peripherals": []}
    assert decode_report("peripherals", encode({"v": 1, "ts": 1, **empty})).sections == {"peripherals": []}


@pytest.mark.services  # runs the agent's CLI
def test_once_prints_the_peripherals_report(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[identity]\nprovince = "08"\ncommune = "02473"\n[spool]\npath = "{tmp_path / "spool.sqlite"}"\n'
        f'[probe]\ngateway = false\n[peripherals]\nsysfs_root = "{FIXTURE_BUS}"\n'
    )
    done = subprocess.run([sys.executable, "-m", "agent.cli", "once", "-c", str(config)], capture_output=True,
                          text=True, cwd=REPO, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)["peripherals"]
    assert {item["device"]: item["kind"] for item in printed["peripherals"]} == EXPECTED_KINDS


def first_report(broker: Mosquitto, agent: Agent, kind: str) -> dict[str, Any]:
    """Starts ``agent`` and returns the first ``kind`` report it publishes, read by a real MQTT client."""
    received: queue.Queue[bytes] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"periph-test-{os.getpid()}-{time.monotonic_ns()}")
    client.on_message = lambda _c, _u, message: received.put(message.payload)
    client.connect("127.0.0.1", broker.port)
    identity = agent.identity  # type: ignore[attr-defined]
    client.subscribe(report_topic(identity["province"], identity["commune"], identity["host"], kind), qos=1)
    client.loop_start()
    try:
        agent.start()
        payload: dict[str, Any] = json.loads(received.get(timeout=30))
        return payload
    finally:
        client.loop_stop()
        client.disconnect()


def test_a_real_agent_reading_the_fixture_bus_publishes_peripherals_and_the_collector_stores_them(
    stack: Stack,
) -> None:
    stack.started_collector()
    agent = stack.agent(host="pc-motcua", peripherals={"sysfs_root": str(FIXTURE_BUS)})
    payload = first_report(stack.broker, agent, "peripherals")
    assert {item["device"]: item["kind"] for item in payload["peripherals"]} == EXPECTED_KINDS
    where = "WHERE province='08' AND commune='02473' AND host='pc-motcua'"
    query = f'SELECT last(present), last(model) FROM "peripheral" {where} GROUP BY device, kind'

    def stored() -> dict[str, Any]:
        return {row["device"]: row for row in stack.query(query)}

    wait_until(lambda: len(stored()) == 4, 30, "four peripheral series")
    rows = stored()
    assert {device: row["kind"] for device, row in rows.items()} == EXPECTED_KINDS
    assert rows[SCANNER]["last_1"] == "Canon CanoScan LiDE 300" and rows[TOKEN]["last"] == 1


def test_a_real_agent_on_this_machine_without_a_usb_bus_reports_an_empty_list(stack: Stack) -> None:
    assert not Path("/sys/bus/usb/devices").exists(), "this test is about a machine without a USB bus"
    stack.started_collector()  # the acknowledging collector the agent waits for before it sends
    agent = stack.agent(host="pc-nousb")
    payload = first_report(stack.broker, agent, "peripherals")
    assert payload["peripherals"] == []
    assert agent.running()
    log = agent.log_path.read_text()
    assert "Traceback" not in log and "level=error" not in log
