"""Devices the agents cannot place (kind ``other``): listed per commune by the API and the status page
with their USB id and model text; rows imported with ``registry import-known-ids`` are handed to each
agent on its hello (``.../cmd/known_ids``), and the agent classifies its devices again with them."""

from __future__ import annotations

import json
import queue
import re
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import http_get, wait_until
from stack import Stack

from agent.peripherals.classify import Known, shipped_known_ids
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker
from collector.fleet.equipment import SeenDevice, commune_equipment, usb_id
from collector.http.status_page import MAX_OTHER_DEVICES, other_devices
from collector.ingest.checks import Accepted
from collector.ingest.known_ids import KnownIdsHandout
from collector.registry.known_ids import KnownIds, KnownIdsImportError, import_known_ids, parse_known_ids_file
from collector.registry.registry import HostKey
from collector.store import Store
from common.wire import Report, WireError, decode_known_ids, known_ids_payload, report_topic

COMMUNE = "02473"  # Xã Yên Sơn
LEXMARK = ("043d", "01bd")  # usb.ids: Lexmark S800 Series Scanner; in neither SANE nor libccid
HEADER = "vendor_id,product_id,kind,model,source\n"


def write_device(bus: Path, port: str, vendor: str, product: str, text: str) -> None:
    device = bus / port
    (device / f"{port}:1.0").mkdir(parents=True)
    for name, value in (("idVendor", vendor), ("idProduct", product), ("bDeviceClass", "00"), ("product", text)):
        (device / name).write_text(f"{value}\n")
    (device / f"{port}:1.0" / "bInterfaceClass").write_text("ff\n")


def seen(device: str, kind: str, last_seen: float, model: str = "M", host: str = "pc-01") -> SeenDevice:
    return SeenDevice(device, kind, "", model, host, last_seen - 60, last_seen)


# ---- pure ----


def test_the_known_ids_command_round_trips_and_a_bad_one_is_refused_whole() -> None:
    rows = [("043d", "01bd", "scanner", "Lexmark S800"), ("abcd", "0001", "token", "")]
    assert decode_known_ids(known_ids_payload(rows, 1_700_000_000)) == rows
    assert decode_known_ids(known_ids_payload([])) == []
    bad = json.dumps({"v": 1, "ts": 1, "rows": [list(rows[0]), ["043d", "01", "scanner", ""]]}).encode()
    with pytest.raises(WireError, match="product_id"):
        decode_known_ids(bad)
    with pytest.raises(WireError, match="kind"):
        decode_known_ids(json.dumps({"v": 1, "rows": [["043d", "01bd", "camera", ""]]}).encode())
    with pytest.raises(WireError):
        decode_known_ids(b'{"v": 1, "rows": {}}')


def test_a_commune_lists_its_other_devices_with_usb_id_most_recent_first() -> None:
    devices = [seen("0781-5567-1-3", "other", 100.0, "Cruzer Blade"), seen("043d-01bd-SN1", "other", 200.0, "S800"),
               seen("096e-0807-TOK", "token", 300.0)]  # fmt: skip
    kit = commune_equipment("08", COMMUNE, [], devices, 14, 1000.0)
    assert [(usb_id(d.device), d.model) for d in kit.other] == [("043d:01bd", "S800"), ("0781:5567", "Cruzer Blade")]
    assert usb_id("not-an-id") == ""


def test_the_status_page_lists_each_usb_id_once_seen_in_most_communes_first() -> None:
    kits = [
        commune_equipment("08", "02473", [], [seen("0781-5567-1-3", "other", 100.0, "Cruzer"),
                                              seen("043d-01bd-SN1", "other", 50.0, "S800 old")], 14, 1000.0),
        commune_equipment("08", "02536", [], [seen("043d-01bd-SN2", "other", 90.0, "S800 Series")], 14, 1000.0),
    ]  # fmt: skip
    shown, left = other_devices(kits)
    assert [(d.usb_id, d.model, d.codes) for d in shown] == [
        ("043d:01bd", "S800 Series", "02473 02536"),  # the text of the device seen last
        ("0781:5567", "Cruzer", "02473"),
    ]
    assert shown[0].communes == ["Xã Yên Sơn", "Xã Sơn Dương"] and left == 0
    many = [commune_equipment("08", "02473", [], [seen(f"1234-{n:04x}-x", "other", 1.0) for n in range(60)], 14, 2.0)]
    assert len(other_devices(many)[0]) == MAX_OTHER_DEVICES and other_devices(many)[1] == 60 - MAX_OTHER_DEVICES


def test_an_import_checks_every_row_first_and_a_bad_file_keeps_what_was_stored(tmp_path: Path) -> None:
    good = tmp_path / "good.csv"
    good.write_text(HEADER + "043D,01BD,scanner,Lexmark S800 Series Scanner,usb.ids\n1234,abcd,token,,\n")
    with Store(tmp_path / "state.sqlite") as store:
        known = KnownIds(store)
        assert import_known_ids(known, good) == 2
        assert known.rows() == [
            ("043d", "01bd", "scanner", "Lexmark S800 Series Scanner"),
            ("1234", "abcd", "token", ""),
        ]
        bad = tmp_path / "bad.csv"
        bad.write_text(HEADER + "043d,01bd,scanner,x,\n043d,zz,scanner,x,\n1,2,camera,x,\n043d,01bd,token,y,\n")
        with pytest.raises(KnownIdsImportError) as raised:
            import_known_ids(known, bad)
        message = str(raised.value)
        assert "\n" not in message and "nothing imported" in message
        assert "line 3: product_id" in message and "(and 2 more bad row(s))" in message
        assert len(known.rows()) == 2  # untouched
    missing = tmp_path / "missing.csv"
    missing.write_text("vendor,product\n043d,01bd\n")
    with pytest.raises(KnownIdsImportError, match="line 1: missing column"):
        parse_known_ids_file(missing)
    with pytest.raises(KnownIdsImportError, match="cannot read"):
        parse_known_ids_file(tmp_path / "nowhere.csv")


def test_each_hello_gets_the_current_rows_and_other_reports_get_nothing() -> None:
    sent: list[tuple[str, bytes]] = []
    stored: list[Any] = [[("043d", "01bd", "scanner", "S800")]]
    clock = [0.0]
    handout = KnownIdsHandout(lambda: stored[0], lambda t, p: sent.append((t, p)) or True, 2.0, lambda: clock[0])
    host = HostKey("08", COMMUNE, "pc-01")

    def accepted(kind: str, state: str | None) -> Accepted:
        return Accepted(host, "yen-son", Report(kind, 0.0, state=state), 0.0, 0)

    handout.observe(accepted("status", "online"))
    handout.observe(accepted("status", "offline"))
    handout.observe(accepted("peripherals", None))
    assert [t for t, _p in sent] == [f"commune/v1/08/{COMMUNE}/pc-01/cmd/known_ids"]
    assert decode_known_ids(sent[0][1]) == [("043d", "01bd", "scanner", "S800")]
    stored[0] = []  # the list was emptied by an import
    clock[0] = 1.0
    handout.observe(accepted("status", "online"))
    assert decode_known_ids(sent[-1][1]) == [("043d", "01bd", "scanner", "S800")]  # read at most every 2 s
    clock[0] = 2.5
    handout.observe(accepted("status", "online"))
    assert decode_known_ids(sent[-1][1]) == [] and handout.handed == 3


def test_ids_handed_over_make_a_plugged_device_a_scanner_and_a_report_due(tmp_path: Path) -> None:
    write_device(tmp_path, "1-4", *LEXMARK, "S800 Series")
    clock = [1_780_000_000.0]
    tracker = PeripheralsTracker(SysfsSource(tmp_path), shipped_known_ids(), 3600.0, lambda: clock[0])
    (item,) = tracker()["peripherals"]
    assert (item["kind"], item["model"]) == ("other", "S800 Series")
    clock[0] += 5
    assert tracker() == {}
    tracker.use_known({**shipped_known_ids(), LEXMARK: Known("scanner", "Lexmark S800 Series Scanner")})
    clock[0] += 5
    (item,) = tracker()["peripherals"]  # due at once: the device's kind changed
    assert (item["kind"], item["model"], item["first_seen_today"]) == ("scanner", "Lexmark S800 Series Scanner",
                                                                       int(clock[0] - 10))  # fmt: skip


# ---- real broker, collector, InfluxDB and agent ----


def peripherals_reports(port: int, host: str) -> tuple[mqtt.Client, queue.Queue[dict[str, Any]]]:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"other-devices-{time.monotonic_ns()}")
    client.on_message = lambda _c, _u, message: received.put(json.loads(message.payload))
    client.connect("127.0.0.1", port)
    client.subscribe(report_topic("08", COMMUNE, host, "peripherals"), qos=1)
    client.loop_start()
    return client, received


def kinds_until(received: queue.Queue[dict[str, Any]], wanted: str, timeout_s: float = 30.0) -> list[str]:
    """The kinds of the first device in each report, until one is ``wanted``."""
    kinds: list[str] = []
    deadline = time.monotonic() + timeout_s
    while wanted not in kinds:
        payload = received.get(timeout=max(0.1, deadline - time.monotonic()))
        kinds += [item["kind"] for item in payload["peripherals"]]
    return kinds


def test_an_unplaced_device_is_listed_then_a_row_imported_makes_the_agent_report_a_scanner(
    stack: Stack, tmp_path: Path
) -> None:
    bus = tmp_path / "devices"
    write_device(bus, "1-4", *LEXMARK, "S800 Series")
    collector = stack.started_collector()
    agent = stack.agent(host="pc-scan", peripherals={"sysfs_root": str(bus)})
    client, received = peripherals_reports(stack.broker.port, "pc-scan")
    try:
        agent.start()
        assert kinds_until(received, "other") == ["other"]

        def listed() -> list[dict[str, Any]]:
            return list(collector.get_json(f"/api/v1/other-devices?commune={COMMUNE}"))

        wait_until(lambda: listed(), 30, "the device in /api/v1/other-devices")
        (item,) = listed()
        assert (item["usb_id"], item["model"], item["host"], item["commune_name"]) == (
            "043d:01bd", "S800 Series", "pc-scan", "Xã Yên Sơn")  # fmt: skip
        status, page = http_get(f"{collector.url}/status")
        row = re.search(r'<tr data-usb-id="043d:01bd" data-communes="02473">(.*?)</tr>', page.decode(), re.S)
        assert status == 200 and row is not None and "S800 Series" in row.group(1) and "Xã Yên Sơn" in row.group(1)

        bad = tmp_path / "bad.csv"
        bad.write_text(HEADER + "043d,01bd,scanner,Lexmark S800,usb.ids\n043d,01bd,camera,x,\n")
        done = collector.cli("registry", "import-known-ids", str(bad))
        assert done.returncode == 2 and done.stderr.count("\n") == 1 and "line 3" in done.stderr, done.stderr
        good = tmp_path / "known.csv"
        good.write_text(HEADER + "043d,01bd,scanner,Lexmark S800 Series Scanner,usb.ids\n")
        done = collector.cli("registry", "import-known-ids", str(good))
        assert done.returncode == 0 and "1 known USB ids imported" in done.stdout, done.stderr

        time.sleep(2.5)  # the collector reads the imported rows at most every 2 s
        assert agent.stop() == 0
        agent.start()  # its next hello
        kinds = kinds_until(received, "scanner")
        assert kinds[-1] == "scanner"
        wait_until(lambda: not listed(), 30, "the device no longer listed as other")
        where = f"WHERE commune = '{COMMUNE}' AND host = 'pc-scan' AND kind = 'scanner'"
        wait_until(lambda: stack.query(f'SELECT last(model) FROM "peripheral" {where}'), 30, "a scanner point")
        (point,) = stack.query(f'SELECT last(model) FROM "peripheral" {where}')
        assert point["last"] == "Lexmark S800 Series Scanner"
        assert "known ids from the collector applied" in agent.log_path.read_text()
    finally:
        client.loop_stop()
        client.disconnect()
