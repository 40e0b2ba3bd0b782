"""The Windows-only modules: Linux never imports them, and what can be checked here is checked on
outputs recorded on real Windows PCs (each file cites where it comes from). The service wrapper
and the WMI query themselves have not run on Windows (see docs/en/windows.md)."""

from __future__ import annotations

import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path, PureWindowsPath
from typing import Any

import pytest

from agent.cli import main, started_by_service_manager
from agent.peripherals.classify import classify, shipped_known_ids
from agent.peripherals.source import UsbDevice
from agent.peripherals.wmi import QUERY, usb_devices
from agent.probes.ping import system_fallback, system_ping, windows_system_ping
from agent.windows.diskhealth import disk_health_items
from agent.windows.diskperf import DiskSample, WmiDiskPerf, disk_sample, io_section, slow_io, system_instance
from agent.windows.paths import config_path, program_data, spool_path
from agent.windows.ping import outcome

REPO = Path(__file__).resolve().parent.parent
WMI = Path(__file__).resolve().parent / "recorded" / "windows" / "wmi"
PING = Path(__file__).resolve().parent / "recorded" / "windows" / "ping"
DISKS = Path(__file__).resolve().parent / "recorded" / "windows" / "diskhealth"
DISKPERF = Path(__file__).resolve().parent / "recorded" / "windows" / "diskperf"
WINDOWS_ONLY = ("agent.windows", "agent.peripherals.wmi", "win32serviceutil", "win32service", "servicemanager")

RUN_THE_AGENT_ONCE = """
import json, sys
from agent.config import load_config
from agent.probes import ProbeBuilder
from agent.runner import collect_once, default_jobs
config = load_config(sys.argv[1])
collect_once(config)
default_jobs(config, None)
ProbeBuilder(config.probe).targets()  # looks the gateway up
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.services  # a fresh interpreter runs the agent
def test_running_the_agent_on_linux_imports_no_windows_module(tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[identity]\nprovince = "08"\ncommune = "02473"\n[spool]\npath = "{tmp_path}/s.sqlite"\n'
        '[probe]\nping_count = 1\ntargets = [{ name = "lo", method = "ping", address = "127.0.0.1", scope = "wan" }]\n'
    )
    argv = [sys.executable, "-c", RUN_THE_AGENT_ONCE, str(config)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=True)
    modules = json.loads(done.stdout.strip().splitlines()[-1])
    assert "agent.runner" in modules and "agent.peripherals.sysfs" in modules and "agent.probes.gateway" in modules
    assert [m for m in modules if m.startswith(WINDOWS_ONLY)] == []


def format_list(text: str) -> list[dict[str, Any]]:
    """PowerShell's ``Format-List`` output as one dict per object; ``{a, b}`` lists become lists."""
    objects: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    key = ""
    for line in text.splitlines():
        if not line.strip():
            if current:
                objects.append(current)
            current, key = {}, ""
        elif line.startswith(" ") and key:  # a long value wrapped onto the next line
            current[key] += line.strip()
        else:
            key, _, value = line.partition(" : ") if " : " in line else line.partition(" :")
            key, value = key.strip(), value.strip()
            current[key] = [v.strip() for v in value[1:-1].split(",")] if value.startswith("{") else value
    if current:
        objects.append(current)
    return objects


def test_a_real_usb_serial_interface_from_wmi_becomes_its_device() -> None:
    text = (WMI / "tinyg-cdc-interface.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    entities = format_list(text)
    assert len(entities) == 1 and entities[0]["DeviceID"] == "USB\\VID_1D50&PID_606D&MI_02\\6&2F09EA14&0&0002"
    assert usb_devices(entities) == [
        UsbDevice(
            port="6&2F09EA14&0&0002",
            vendor_id="1d50",
            product_id="606d",
            serial="",  # an instance id Windows made up, not a serial number
            manufacturer="Synthetos (www.synthetos.com)",
            product="TinyG v2 (Data Channel) (COM12)",
            device_class="",
            interface_classes=("02",),  # USB\Class_02: communications (CDC)
        )
    ]


def property_dump(text: str) -> dict[str, str]:
    """One WMI object dumped as ``['Name'] ('Type') = 'value'`` lines, as a dict of the values."""
    found = (re.match(r"^\['(\w+)'\] \('\w+'\) = '(.*)'$", line) for line in text.splitlines())
    return {match[1]: match[2] for match in found if match}


def test_a_real_smart_card_reader_from_wmi_keeps_its_serial_and_driver_names() -> None:
    text = (WMI / "identiv-smart-card-reader.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    entity = property_dump(text)
    assert len(entity) == 24 and entity["CompatibleID"] == "System.String[]"  # the poster's script left arrays out
    (reader,) = usb_devices([entity])
    assert reader == UsbDevice(
        port="55021722283075",
        vendor_id="04e6",
        product_id="5790",
        serial="55021722283075",  # a real serial number: the instance id holds no "&"
        manufacturer="Identiv",
        product="uTrust 3700 F CL Reader",
        device_class="0b",  # no USB\Class_xx in 'System.String[]': its ClassGuid is the SmartCardReader class
        interface_classes=(),
        setup_classes=("{50dd5230-ba8a-11d1-bf5d-0000f805f530}",),
    )
    known = classify(reader, shipped_known_ids())  # libccid lists 04e6:5790, under its own name
    assert known is not None and (known.kind, known.model) == ("token", "Identiv uTrust 3700 F CL Reader")
    by_class = classify(reader, {})  # without the id: its setup class alone makes it a token
    assert by_class is not None and (by_class.kind, by_class.model) == ("token", "uTrust 3700 F CL Reader")
    ports = usb_devices([{**entity, "ClassGuid": "{4d36e978-e325-11ce-bfc1-08002be10318}"}])  # the Ports class
    assert ports[0].device_class == ""


def wmic_list(text: str) -> list[dict[str, Any]]:
    """``wmic ... get /Format:list`` output as one dict per object: ``Key=Value`` lines, objects apart by blank
    lines, ``{"a","b"}`` arrays as lists, and the ``&amp;`` wmic writes for ``&`` read back."""
    objects: list[dict[str, Any]] = []
    for block in re.split(r"\n\s*\n", text.strip()):
        entity: dict[str, Any] = {}
        for line in block.splitlines():
            key, _, value = line.partition("=")
            value = html.unescape(value)
            entity[key] = [v.strip('"') for v in value[1:-1].split('","')] if value.startswith('{"') else value
        objects.append(entity)
    return objects


def test_a_real_xp_smart_card_reader_from_wmic_is_a_token_by_its_setup_class() -> None:
    text = (WMI / "xp-omnikey-smart-card-reader.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    (entity,) = wmic_list(text)
    assert "CompatibleID" not in entity  # XP's Win32_PnPEntity has no CompatibleID
    (reader,) = usb_devices([entity])
    assert reader == UsbDevice(
        port="6&370D6D8&0&2",
        vendor_id="046a",
        product_id="002d",
        serial="",  # an instance id Windows made up
        manufacturer="OMNIKEY AG",
        product="SmartTerminal XX44",
        device_class="0b",  # from its ClassGuid, upper case on XP: SmartCardReader
        interface_classes=(),
        setup_classes=("{50dd5230-ba8a-11d1-bf5d-0000f805f530}",),
    )
    known = classify(reader, shipped_known_ids())  # libccid lists 046a:002d, under Cherry's name
    assert known is not None and (known.kind, known.model) == ("token", "CHERRY SmartTerminal XX44")
    by_class = classify(reader, {})
    assert by_class is not None and (by_class.kind, by_class.model) == ("token", "SmartTerminal XX44")


def test_a_real_webcam_in_the_image_setup_class_is_not_a_scanner() -> None:
    # Windows 7 puts a USB Video Class interface in the Image setup class, as it does WIA scanners
    text = (WMI / "win7-logitech-webcam-image-class.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    entities = wmic_list(text)
    assert [e["DeviceID"] for e in entities] == [
        "USB\\VID_046D&PID_08C9\\6BE882AB",
        "USB\\VID_046D&PID_08C9&MI_00\\7&E16BD72&0&0000",
        "USB\\VID_046D&PID_08C9&MI_02\\7&E16BD72&0&0002",
    ]
    (webcam,) = usb_devices(entities)
    assert webcam == UsbDevice(
        port="6BE882AB",
        vendor_id="046d",
        product_id="08c9",
        serial="6BE882AB",
        manufacturer="(Contrôleur hôte USB standard)",  # the composite driver's, in French
        product="Périphérique USB composite",
        device_class="",
        interface_classes=("01", "0e"),  # audio (the microphone) and video
        setup_classes=("{6bdd1fc6-810f-11d0-bec7-08002be2092f}",),  # MI_00, the video interface: Image
    )
    found = classify(webcam, shipped_known_ids())
    assert found is not None and (found.kind, found.model) == ("other", "Périphérique USB composite")


def yaml_properties(lines: list[str]) -> dict[str, Any]:
    """The ``  Key: value`` lines of one object in ``yq -y`` output; ``null`` is None, quotes dropped."""
    found = (re.match(r"^  (\w+): (.*)$", line) for line in lines)
    return {m[1]: None if m[2] == "null" else m[2].strip("'") for m in found if m}


def test_a_real_smart_card_class_entity_is_no_usb_device_so_wmi_never_judges_it() -> None:
    text = (WMI / "win11-yubikey-smart-card-entity.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    listed, _, diff = text.partition("---diff---\n")
    before = yaml_properties(listed.splitlines())
    after = {**before, **yaml_properties([line[2:] for line in diff.splitlines() if line.startswith("> ")])}
    assert before["ClassGuid"] is None and after["ClassGuid"] == "{990a2bd7-e738-46c7-b26f-1cf8fb9f1391}"
    assert after["PNPClass"] == "SmartCard" and after["Name"] == "Smart Card"
    # the card is a child of the reader (SCFILTER\...), not a USB\VID_ entity: the query leaves it out, and so
    # would usb_devices; the YubiKey (1050:0407) is seen through its USB entities, whose ids the shipped data has
    assert after["DeviceID"].startswith("SCFILTER\\CID_") and "DeviceID LIKE 'USB" in QUERY
    assert usb_devices([before]) == [] and usb_devices([after]) == []
    yubikey = shipped_known_ids()[("1050", "0407")]
    assert yubikey.kind == "token"


def test_wmi_folds_the_interfaces_of_a_composite_device_into_it() -> None:
    # the parent entity of a composite smart-card token and its two interfaces, shaped as WMI lists them
    entities = [
        {
            "DeviceID": "USB\\VID_096E&PID_0006\\7&1A2B3C4D&0&2",
            "Name": "USB Composite Device",
            "CompatibleID": ["USB\\COMPOSITE"],
        },
        {
            "DeviceID": "USB\\VID_096E&PID_0006&MI_00\\8&2B&0&0000",
            "CompatibleID": ["USB\\Class_0b&SubClass_00", "USB\\Class_0b"],
        },
        {"DeviceID": "USB\\VID_096E&PID_0006&MI_01\\8&2B&0&0001", "CompatibleID": ["USB\\Class_03&SubClass_00"]},
        {
            "DeviceID": "USB\\VID_03F0&PID_2B17\\CN0A3BC123",
            "Manufacturer": "HP",
            "Name": "HP LaserJet",
            "CompatibleID": ["USB\\Class_07&SubClass_01"],
        },
        {"DeviceID": "HID\\VID_046D&PID_C31C&MI_00\\7&1&0&0000", "Name": "HID Keyboard Device"},  # not a USB entity
        {"DeviceID": None, "Name": "broken"},
    ]
    devices = usb_devices(entities)
    assert [(d.vendor_id, d.product_id, d.serial, d.interface_classes, d.device_class) for d in devices] == [
        ("096e", "0006", "", ("03", "0b"), ""),
        ("03f0", "2b17", "CN0A3BC123", (), "07"),
    ]
    known = shipped_known_ids()
    kinds = [known_kind.kind if (known_kind := classify(d, known)) else None for d in devices]
    assert kinds == ["token", "printer"]


@pytest.mark.parametrize(
    ("guid", "kind"),
    [
        ("{6bdd1fc6-810f-11d0-bec7-08002be2092f}", "scanner"),  # Image: WIA scanners
        ("{6BDD1FC6-810F-11D0-BEC7-08002BE2092F}", "scanner"),
        ("{990a2bd7-e738-46c7-b26f-1cf8fb9f1391}", "token"),  # SmartCard
        ("{50dd5230-ba8a-11d1-bf5d-0000f805f530}", "token"),  # SmartCardReader
        ("{4d36e978-e325-11ce-bfc1-08002be10318}", "other"),  # Ports: no verdict from the setup class
    ],
)
def test_windows_setup_classes_of_a_device_or_its_interface_make_a_scanner_or_a_token(guid: str, kind: str) -> None:
    # typed by hand in WMI's shape: no real Win32_PnPEntity of a scanner in the Image class was found (see
    # recorded/windows/wmi/SOURCES.md), and the real SmartCard-class entity found is no USB entity (test above):
    # a vendor-specific device unknown by id, alone, and as the parent of an interface of that class
    alone = [{"DeviceID": "USB\\VID_F00D&PID_0001\\SN1", "Name": "Device", "ClassGuid": guid,
              "CompatibleID": ["USB\\Class_ff&SubClass_ff", "USB\\Class_ff"]}]  # fmt: skip
    composite = [
        {"DeviceID": "USB\\VID_F00D&PID_0002\\SN2", "Name": "USB Composite Device", "CompatibleID": ["USB\\COMPOSITE"],
         "ClassGuid": "{36fc9e60-c465-11cf-8056-444553540000}"},
        {"DeviceID": "USB\\VID_F00D&PID_0002&MI_00\\8&1&0&0000", "ClassGuid": guid,
         "CompatibleID": ["USB\\Class_ff&SubClass_00", "USB\\Class_ff"]},
    ]  # fmt: skip
    for entities in (alone, composite):
        (device,) = usb_devices(entities)
        found = classify(device, shipped_known_ids())
        assert found is not None and found.kind == kind, (entities, device)


def recorded_objects(name: str) -> list[dict[str, Any]]:
    """The objects of a recorded ``Format-List`` output, its header left out."""
    return format_list((DISKS / name).read_text(encoding="utf-8").partition("\n\n")[2])


def test_real_physical_disks_without_reliability_counters_are_unavailable_for_permission() -> None:
    disks = recorded_objects("physicaldisk-sata-ssd.txt") + recorded_objects("physicaldisk-nvme-ssd.txt")
    disks[1]["DeviceId"] = "1"  # two PCs' disk 0 as one PC's disks 0 and 1
    assert disk_health_items(disks, [], [], "permission") == [
        {"disk": "disk0", "type": "ssd", "model": "SAMSUNG MZHPV512HDGL-000H1", "serial": "S1X0NYAGC03193",
         "smart_available": 0.0, "reason": "permission"},
        {"disk": "disk1", "type": "nvme", "model": "SAMSUNG MZFLV256HCHP-000MV", "serial": "0025_3841_61B6_798A",
         "smart_available": 0.0, "reason": "permission"},
    ]  # fmt: skip
    assert disk_health_items(disks[:1], [], [])[0]["reason"] == "no_smart"


def test_the_documented_reliability_counter_gives_hours_and_temperature_and_no_empty_wear() -> None:
    (counter,) = recorded_objects("reliabilitycounter-docs-example.txt")
    disk = {"DeviceId": "8", "FriendlyName": "PhysicalDisk8", "HealthStatus": "Healthy"}  # as its command names it
    assert disk_health_items([disk], [counter], []) == [
        {"disk": "disk8", "type": "unknown", "model": "PhysicalDisk8", "smart_available": 1.0, "health_passed": 1.0,
         "power_on_hours": 0.0, "temp_c": 28.0},
    ]  # fmt: skip


def test_a_real_failure_prediction_fails_the_disk_whose_model_it_names() -> None:
    predictions = recorded_objects("failurepredictstatus-four-disks.txt")
    assert [p["PredictFailure"] for p in predictions] == ["False", "False", "True", "False"]
    # the PC's disks as MSFT_PhysicalDisk would give them through WMI (numbers): not recorded, built
    # from the models the predictions name (Seagate ST3160310CS, ST3500418AS, ST12000DM0007-2GR116)
    disks = [{"DeviceId": 1, "FriendlyName": "ST3160310CS", "MediaType": 3, "BusType": 11, "HealthStatus": 0},
             {"DeviceId": 2, "FriendlyName": "ST3500418AS", "MediaType": 3, "BusType": 11, "HealthStatus": 0},
             {"DeviceId": 3, "FriendlyName": "ST12000DM0007-2GR116", "MediaType": 3, "BusType": 11,
              "HealthStatus": 0}]  # fmt: skip
    items = disk_health_items(disks, [], predictions)
    assert [(i["disk"], i["type"], i["health_passed"]) for i in items] == [
        ("disk1", "hdd", 1.0),
        ("disk2", "hdd", 0.0),
        ("disk3", "hdd", 1.0),
    ]
    unhealthy = {"DeviceId": 0, "FriendlyName": "X", "BusType": 17, "HealthStatus": 2}
    assert disk_health_items([unhealthy], [{"DeviceId": 0, "Wear": 7}], []) == [
        {"disk": "disk0", "type": "nvme", "model": "X", "smart_available": 1.0, "health_passed": 0.0,
         "percentage_used": 7.0},
    ]  # fmt: skip


def test_the_system_disk_is_the_real_physical_disk_instance_holding_the_system_drive() -> None:
    rows = format_list(
        (DISKPERF / "physicaldisk-formatted-one-disk.txt").read_text(encoding="utf-8").partition("\n\n")[2]
    )
    assert [row["Name"] for row in rows] == ["_Total", "0 C:"]
    assert system_instance(rows, "C:") == ("disk0", rows[1])
    assert system_instance(rows, "c:") == ("disk0", rows[1])  # %SystemDrive% as typed
    assert system_instance(rows, "D:") is None
    # the formatted class has no raw counters (its timestamps are empty): no section, not a wrong one
    assert disk_sample(rows[1]) is None
    assert io_section(rows, "C:", None) == ({}, None)
    assert system_instance([{"Name": "0 C: D:"}, {"Name": "1 E:"}], "E:") == ("disk1", {"Name": "1 E:"})
    assert system_instance([{"Name": None}, {"Name": " "}, {}], "C:") is None  # rows without a name are skipped


# Not recorded: two raw samples built from Microsoft's formulas (see agent/windows/diskperf.py), 30 s
# apart on a 10 MHz performance clock; WMI gives the 64-bit values as strings.
BEFORE = {"Name": "0 C:", "PercentIdleTime": "5000000000", "PercentIdleTime_Base": "130000000000000000",
          "Timestamp_Sys100NS": "130000000000000500", "AvgDisksecPerTransfer": 4000000,
          "AvgDisksecPerTransfer_Base": 7000, "Frequency_PerfTime": "10000000"}  # fmt: skip


def test_two_samples_are_cooked_as_microsofts_counter_types_define() -> None:
    after = dict(BEFORE, PercentIdleTime="5030000000", PercentIdleTime_Base="130000000300000000",
                 Timestamp_Sys100NS="130000000300000500", AvgDisksecPerTransfer=34000000,
                 AvgDisksecPerTransfer_Base=7600)  # fmt: skip
    first, kept = io_section([BEFORE], "C:", None)
    assert first == {"system_disk": "disk0"} and kept is not None  # one sample: nothing to compare yet
    # % Idle Time: 30e6 of 300e6 100-ns units idle -> 90 % busy; Avg. Disk sec/Transfer: 30e6 ticks
    # / 1e7 per s / 600 transfers = 5 ms
    assert io_section([after], "C:", kept) == ({"system_disk": "disk0", "busy_percent": 90.0, "await_ms": 5.0},
                                               disk_sample(after))  # fmt: skip
    # the private timer, not the sample's clock, is the denominator where it moves
    faster = disk_sample(dict(after, PercentIdleTime_Base="130000000200000000"))
    assert faster is not None and slow_io(kept, faster)["busy_percent"] == 85.0
    # where Windows gives no private timer, the sample's 100-ns clock is the denominator
    untimed_before, untimed = (disk_sample(dict(row, PercentIdleTime_Base="0")) for row in (BEFORE, after))
    assert untimed is not None and slow_io(untimed_before, untimed) == {"busy_percent": 90.0, "await_ms": 5.0}


def test_32_bit_counters_that_wrap_and_clocks_that_go_back_are_read_without_a_wrong_figure() -> None:
    before = DiskSample(0, 1_000, 1_000, 2**32 - 10_000_000, 2**32 - 100, 10_000_000)
    wrapped = DiskSample(0, 301_000, 301_000, 20_000_000, 500, 10_000_000)  # 30e6 ticks over 600 transfers
    assert slow_io(before, wrapped) == {"busy_percent": 100.0, "await_ms": 5.0}
    idle = DiskSample(301_000, 301_000, 301_000, 2**32 - 10_000_000, 2**32 - 100, 10_000_000)
    assert slow_io(before, idle) == {"busy_percent": 0.0, "await_ms": 0.0}  # no transfer: no wait
    rebooted = DiskSample(0, 500, 500, 0, 0, 10_000_000)
    assert slow_io(before, rebooted) == {}
    assert slow_io(None, wrapped) == {}
    assert disk_sample({"Name": "0 C:", "PercentIdleTime": "12"}) is None


def test_the_wmi_collector_without_pywin32_leaves_the_section_out_and_raises_nothing() -> None:
    collector = WmiDiskPerf("C:")
    assert collector() == {} and collector() == {}


def test_windows_paths_are_under_program_data() -> None:
    env = {"ProgramData": "D:\\ProgramData"}
    assert program_data(env) == PureWindowsPath("D:/ProgramData/commune-agent")
    assert config_path(env) == PureWindowsPath("D:/ProgramData/commune-agent/agent.toml")
    assert spool_path(env) == PureWindowsPath("D:/ProgramData/commune-agent/spool.sqlite")
    assert program_data({}) == PureWindowsPath("C:/ProgramData/commune-agent")  # a service without the variable


def test_the_service_command_on_linux_is_a_one_line_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["service", "install"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Windows" in err and "install-agent.sh" in err
    with pytest.raises(SystemExit) as exc:
        main(["service", "reboot"])
    assert exc.value.code == 2


def test_only_the_frozen_windows_exe_started_with_no_arguments_is_handed_to_the_service_manager() -> None:
    assert started_by_service_manager([], "win32", frozen=True)  # what `service install` registers, as SCM starts it
    assert not started_by_service_manager(["run", "-c", "agent.toml"], "win32", frozen=True)
    assert not started_by_service_manager(["service", "install"], "win32", frozen=True)
    assert not started_by_service_manager([], "win32", frozen=False)  # a Python install: pythonservice.exe hosts it
    assert not started_by_service_manager([], "linux", frozen=True)  # the Linux single-file agent


def test_the_agent_started_with_no_arguments_on_linux_is_a_usage_error_not_a_service(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "frozen", True, raising=False)  # as the single-file agent is
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2 and "required" in capsys.readouterr().err


def recorded_ping(name: str) -> str:
    """A recorded ``ping.exe`` output without its citing header (the ``#`` lines up to the first blank line)."""
    header, _, body = (PING / name).read_text(encoding="utf-8").partition("\n\n")
    assert header.startswith("# ") and "commit" in header, f"{name} has no citing header"
    return body


def test_ping_exe_in_english_gives_every_reply_and_the_statistics_it_printed() -> None:
    raw = recorded_ping("windows7-english-google.txt").encode("ascii")
    rtts = [87.0, 97.0, 56.0, 95.0, 194.0, 98.0, 93.0, 96.0, 96.0, 165.0]
    assert outcome(raw, count=4) == (10, rtts, "")  # the echoes it says it sent, not the count asked
    assert (min(rtts), max(rtts)) == (56.0, 194.0)  # what ping.exe printed as Minimum and Maximum


def test_ping_exe_with_no_reply_is_a_timeout_with_all_echoes_lost() -> None:
    assert outcome(recorded_ping("windows-english-timed-out.txt").encode("ascii"), 10) == (4, [], "timeout")


def test_ping_exe_in_chinese_code_page_936_reads_by_layout_and_below_one_ms_is_half_a_ms() -> None:
    text = recorded_ping("windows-chinese-loopback.txt")
    for raw in (text.encode("gbk"), text.encode("utf-8")):  # as ping.exe writes it, and as stored
        assert outcome(raw, count=10) == (3, [0.5, 0.5, 0.5], "")


@pytest.mark.parametrize("raw", [b"", b"\xff\xfe garbage \x00", b"=1 =2 =3 TTL", "Ping 统计信息".encode("gbk")])
def test_output_that_is_not_ping_exe_s_gives_a_failed_probe_not_an_exception(raw: bytes) -> None:
    sent, rtts, error = outcome(raw, 3)
    assert rtts == [] and error == "timeout" and sent >= 0


def test_refused_icmp_sockets_fall_back_to_ping_exe_on_windows_and_to_iputils_on_linux() -> None:
    assert system_fallback("win32") is windows_system_ping
    assert system_fallback("linux") is system_ping
