"""USB devices listed at the kernel's device events (agent/peripherals/uevents.py), not polled.

This machine has no USB bus, so the kernel path is proven with the events it can be made to send
(``change`` written to ``/sys/class/net/lo/uevent``, as root): a listener of ``net`` hears them and
the agent's USB filter does not. The USB filter itself is checked on messages in the kernel's format.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from realservices import wait_until

from agent.config import config_from_dict
from agent.peripherals.uevents import DeviceEvents, is_usb_device_change, parse_uevent, subsystem_changes
from agent.runner import AgentRunner
from devtools.localstack import free_port

FIXTURE = Path(__file__).resolve().parent / "data" / "usb_sysfs"
LO_UEVENT = Path("/sys/class/net/lo/uevent")
# as this machine's kernel sent it for the write below
LO_CHANGE = (
    b"change@/devices/virtual/net/lo\x00ACTION=change\x00DEVPATH=/devices/virtual/net/lo\x00SUBSYSTEM=net\x00"
    b"SYNTH_UUID=0\x00INTERFACE=lo\x00IFINDEX=1\x00SEQNUM=4772\x00"
)


def usb_event(action: str, devtype: str = "usb_device") -> bytes:
    path = "/devices/pci0000:00/0000:00:14.0/usb1/1-1/1-1.2"
    fields = [f"ACTION={action}", f"DEVPATH={path}", "SUBSYSTEM=usb", f"DEVTYPE={devtype}", "PRODUCT=4a9/1913/100"]
    return f"{action}@{path}\0".encode() + "\0".join(fields).encode() + b"\0"


def test_a_kernel_uevent_is_read_into_its_fields() -> None:
    assert parse_uevent(LO_CHANGE) == {
        "ACTION": "change",
        "DEVPATH": "/devices/virtual/net/lo",
        "SUBSYSTEM": "net",
        "SYNTH_UUID": "0",
        "INTERFACE": "lo",
        "IFINDEX": "1",
        "SEQNUM": "4772",
    }
    assert parse_uevent(b"libudev\x00\xfe\xed\xca\xfe") == {}  # udev's own re-broadcast: not the kernel's


def test_a_usb_device_is_listed_again_once_bound_or_gone_not_at_its_add_nor_for_an_interface() -> None:
    changes = {
        action: is_usb_device_change(parse_uevent(usb_event(action))) for action in ("add", "bind", "unbind", "remove")
    }
    assert changes == {"add": False, "bind": True, "unbind": True, "remove": True}
    assert not is_usb_device_change(parse_uevent(usb_event("bind", devtype="usb_interface")))
    assert not is_usb_device_change(parse_uevent(LO_CHANGE))


def lo_change() -> None:
    LO_UEVENT.write_text("change")


@pytest.mark.services  # writes to /sys (root)
def test_the_kernel_s_events_reach_a_listener_and_the_usb_filter_lets_a_network_one_pass_by() -> None:
    heard = {"net": 0, "usb": 0}
    net = DeviceEvents.open(lambda: heard.__setitem__("net", heard["net"] + 1), subsystem_changes({"net"}))
    usb = DeviceEvents.open(lambda: heard.__setitem__("usb", heard["usb"] + 1))
    assert net is not None and usb is not None
    net.start()
    usb.start()
    try:
        lo_change()
        wait_until(lambda: heard["net"] >= 1 and usb.received >= 1, 10, "the kernel's event for lo")
        assert heard["usb"] == 0
    finally:
        net.close()
        usb.close()


def test_a_broken_event_socket_ends_its_listener_instead_of_spinning() -> None:
    changes: list[int] = []
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    events = DeviceEvents(sock, lambda: changes.append(1), is_usb_device_change)
    os.close(sock.detach())  # its descriptor gone: every recv fails with EBADF
    events.start()
    wait_until(lambda: not events._thread.is_alive(), 10, "the listener to stop")
    assert changes == []


def peripherals_reports(spool: Path) -> int:
    with sqlite3.connect(spool) as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/peripherals'").fetchone()[0])


@pytest.mark.services  # writes to /sys (root)
def test_an_agent_lists_its_usb_devices_at_an_event_and_otherwise_only_every_rescan_interval(tmp_path: Path) -> None:
    shutil.copytree(FIXTURE / "sys", tmp_path / "sys", symlinks=True)
    bus = tmp_path / "sys" / "bus" / "usb" / "devices"
    link = os.readlink(bus / "1-1.2")  # the scanner, plugged in later
    (bus / "1-1.2").unlink()
    spool = tmp_path / "spool.sqlite"
    config = config_from_dict(
        {
            "identity": {"province": "08", "commune": "02473", "host": "pc-usb-events"},
            "mqtt": {"host": "127.0.0.1", "port": free_port()},  # no broker: every report stays in the spool
            "collect": {"interval_s": 3600, "inventory_interval_s": 86400},
            "probe": {"interval_s": 3600, "gateway": False, "targets": []},
            "spool": {"path": str(spool)},
            "peripherals": {"sysfs_root": str(bus), "rescan_interval_s": 600},
        }
    )
    runner = AgentRunner(config)
    assert runner.usb_events is not None, "this kernel offers device events"
    assert [job.interval_s for job in runner.jobs if job.kind == "peripherals"] == [600]
    runner.usb_events.close()
    runner.usb_events = None
    # the kernel sends no USB event here: a real one of lo stands for the scanner's bind
    events = DeviceEvents.open(runner.kick_peripherals, subsystem_changes({"net"}))
    assert events is not None
    stop = threading.Event()
    loop = threading.Thread(target=runner.run, args=(stop,), daemon=True)
    events.start()
    loop.start()
    try:
        wait_until(lambda: peripherals_reports(spool) == 1, 30, "the listing at start")
        (bus / "1-1.2").symlink_to(link)
        lo_change()
        wait_until(lambda: peripherals_reports(spool) == 2, 30, "a report of the plugged scanner at the event")
    finally:
        stop.set()
        loop.join(30)
        events.close()
    assert not loop.is_alive()


def test_without_events_the_devices_are_polled_every_poll_interval(tmp_path: Path) -> None:
    config = config_from_dict(
        {
            "identity": {"province": "08", "commune": "02473", "host": "pc-usb-poll"},
            "spool": {"path": str(tmp_path / "spool.sqlite")},
            "peripherals": {"events": False, "poll_interval_s": 7},
        }
    )
    runner = AgentRunner(config)
    assert runner.usb_events is None
    assert [job.interval_s for job in runner.jobs if job.kind == "peripherals"] == [7]
    runner.spool.close()
