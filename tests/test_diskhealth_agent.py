"""The agent's disk health: recorded real ``smartctl --json`` outputs (tests/recorded/smartctl/,
each source in its SOURCES.md) parsed into exactly the ``disk_health`` fields, the ways
S.M.A.R.T. is unavailable, the block devices and counters read from sysfs-shaped trees, and the
slow-I/O figures; then the real agent on this VM (a virtio disk)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from realservices import REPO, Agent, Collector, Influxd, wait_until

from agent.collectors.io import IoCollector, pressure_some_avg60, slow_io
from agent.diskhealth import smart, sysfs
from agent.diskhealth.job import DiskHealthJob, SmartOutput, run_smartctl
from common.wire import decode_report, encode

RECORDED = Path(__file__).parent / "recorded" / "smartctl"


def recorded(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((RECORDED / name).read_text())
    return doc


# ---- the parser on recorded outputs of real disks ----

PINNED = {
    "hdd-hitachi-hds721050dle630-failing.json": {
        "smart_available": 1.0, "model": "Hitachi HDS721050DLE630", "serial": "MSK423Y20S3HBC", "type": "hdd",
        "health_passed": 0.0, "power_on_hours": 65592.0, "reallocated_sectors": 1975.0, "pending_sectors": 8.0,
        "offline_uncorrectable": 0.0, "temp_c": 25.0,
    },
    "hdd-wdc-wd140edfz-healthy.json": {
        "smart_available": 1.0, "model": "WDC WD140EDFZ-11A0VA0", "serial": "9RK1XXXX", "type": "hdd",
        "health_passed": 1.0, "power_on_hours": 1730.0, "reallocated_sectors": 0.0, "pending_sectors": 0.0,
        "offline_uncorrectable": 0.0, "temp_c": 32.0,
    },
    "ssd-samsung-860-evo-healthy.json": {  # Samsung's SSDs have no attributes 197 and 198
        "smart_available": 1.0, "model": "Samsung SSD 860 EVO 500GB", "serial": "S3YZNB0KB00864E", "type": "ssd",
        "health_passed": 1.0, "power_on_hours": 14551.0, "reallocated_sectors": 0.0, "temp_c": 36.0,
    },
    "nvme-intel-ssdpeknw010t8-healthy.json": {
        "smart_available": 1.0, "model": "INTEL SSDPEKNW010T8", "serial": "BTNH93710FS91P0B", "type": "nvme",
        "health_passed": 1.0, "power_on_hours": 2401.0, "media_errors": 0.0, "percentage_used": 0.0, "temp_c": 36.0,
    },
    "nvme-samsung-970-evo-media-errors.json": {
        "smart_available": 1.0, "model": "Samsung SSD 970 EVO 500GB", "serial": "S466NX0M776250H", "type": "nvme",
        "health_passed": 1.0, "power_on_hours": 12798.0, "media_errors": 7.0, "percentage_used": 3.0, "temp_c": 35.0,
    },
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(PINNED))
def test_a_recorded_smartctl_output_gives_exactly_its_disk_health_fields(name: str) -> None:
    doc = recorded(name)
    assert smart.unavailable_reason(doc, "sda") is None
    assert smart.disk_fields(doc) == PINNED[name]


def test_every_recorded_output_is_named_in_the_sources_note() -> None:
    sources = (RECORDED / "SOURCES.md").read_text()
    unnamed = [p.name for p in RECORDED.glob("*.json") if f"`{p.name}`" not in sources]
    assert len(list(RECORDED.glob("*.json"))) == 7 and unnamed == []


def test_the_failing_hdds_trouble_bits_do_not_make_its_data_unavailable() -> None:
    doc = recorded("hdd-hitachi-hds721050dle630-failing.json")
    assert doc["smartctl"]["exit_status"] == 216  # bits 3, 4, 6 and 7: failing, with data
    assert smart.unavailable_reason(doc, "sdc") is None


def test_a_virtio_disk_and_a_disk_the_agent_may_not_open_are_unavailable_with_their_reason() -> None:
    virtio = recorded("virtio-vda-this-vm.json")
    assert smart.unavailable_reason(virtio, "vda") == "virtual_disk"
    assert smart.unavailable_reason(virtio, "sda") == "no_smart"  # "Unable to detect device type"
    denied = recorded("sat-open-permission-denied-this-vm.json")
    assert smart.unavailable_reason(denied, "sda") == "permission"
    assert smart.unavailable_reason(None, "sda") == "smartctl_failed"


def test_an_emulated_disk_is_virtual_by_its_model() -> None:
    doc = {"smartctl": {"exit_status": 4}, "model_name": "QEMU HARDDISK", "smart_support": {"available": False}}
    assert smart.unavailable_reason(doc, "sda") == "virtual_disk"
    assert smart.unavailable_reason({**doc, "model_name": "ST500DM002"}, "sda") == "no_smart"


def test_a_packed_raw_value_is_read_from_smartctls_printed_count() -> None:
    assert smart.raw_count({"raw": {"value": 4295032833, "string": "1 (65537 0)"}}) == 1.0
    assert smart.raw_count({"raw": {"value": 12, "string": "oops"}}) == 12.0
    assert smart.raw_count({"raw": "12"}) is None


def test_the_type_is_nvme_by_protocol_ssd_without_rotation_hdd_with_and_else_unknown() -> None:
    assert smart.disk_type({"device": {"protocol": "NVMe"}}) == "nvme"
    assert smart.disk_type({"rotation_rate": 0}) == "ssd"
    assert smart.disk_type({"rotation_rate": 5400}) == "hdd"
    assert smart.disk_type({}) == "unknown"


# ---- sysfs: disks, the system disk, counters ----


def block_tree(root: Path) -> Path:
    """A /sys/block-shaped tree: sda (SATA, partitions, 0x1f I/O errors), nvme0n1, an LVM volume on
    sda2, a removable USB stick, a DVD drive, a loop device and zram."""
    block = root / "block"
    for disk in ("sda", "nvme0n1", "sdb", "sr0"):
        (block / disk / "device").mkdir(parents=True)
        (block / disk / "removable").write_text("1\n" if disk == "sdb" else "0\n")
    (block / "sda" / "device" / "ioerr_cnt").write_text("0x1f\n")
    (block / "sda" / "device" / "model").write_text("ST500DM002-1BD14 \n")
    for part in ("sda1", "sda2"):
        (block / "sda" / part).mkdir()
    (block / "nvme0n1" / "nvme0n1p1").mkdir()
    (block / "dm-0" / "slaves" / "sda2").mkdir(parents=True)
    (block / "loop0").mkdir()
    (block / "zram0").mkdir()
    # reads, merged, sectors, read ms, writes, merged, sectors, write ms, in flight, busy ms, queue ms
    (block / "sda" / "stat").write_text("  1000 0 8000 4000 500 0 4000 2000 0 9000 6000 0 0 0 0\n")
    return block


def test_the_physical_disks_leave_out_virtual_devices_removable_and_optical_drives(tmp_path: Path) -> None:
    assert sysfs.physical_disks(str(block_tree(tmp_path))) == ["nvme0n1", "sda"]
    assert sysfs.physical_disks(str(tmp_path / "absent")) == []


def test_the_disk_under_a_partition_or_an_lvm_volume_is_found(tmp_path: Path) -> None:
    block = str(block_tree(tmp_path))
    assert sysfs.disk_of("/dev/sda2", block) == "sda"
    assert sysfs.disk_of("nvme0n1p1", block) == "nvme0n1"
    assert sysfs.disk_of("dm-0", block) == "sda"
    assert sysfs.disk_of("loop0", block) is None
    mounts = tmp_path / "mounts"
    mounts.write_text("proc /proc proc rw 0 0\n/dev/nvme0n1p1 / ext4 rw 0 0\n/dev/sda1 /home ext4 rw 0 0\n")
    assert sysfs.system_disk(block, str(mounts)) == "nvme0n1"


def test_the_io_error_count_is_read_in_hex_and_absent_where_sysfs_has_none(tmp_path: Path) -> None:
    block = str(block_tree(tmp_path))
    assert sysfs.ioerr_count("sda", block) == 31.0
    assert sysfs.ioerr_count("nvme0n1", block) is None
    assert sysfs.disk_stat("sda", block) == sysfs.DiskStat(1500, 6000, 9000)
    assert sysfs.disk_stat("nvme0n1", block) is None


def test_a_round_reports_each_disk_from_its_smartctl_output_with_the_system_disk_and_io_errors(
    tmp_path: Path,
) -> None:
    block = block_tree(tmp_path)
    outputs: dict[str, SmartOutput] = {
        "sda": (recorded("hdd-hitachi-hds721050dle630-failing.json"), None),
        "nvme0n1": (None, "permission"),
    }
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/sda1 / ext4 rw 0 0\n")
    dev = devices(tmp_path, "sda", "nvme0n1")
    items = DiskHealthJob(outputs.__getitem__, str(block), str(mounts), dev)()["disk_health"]
    assert items == [
        {"disk": "nvme0n1", "system": 0.0, "smart_available": 0.0, "reason": "permission"},
        {"disk": "sda", "system": 1.0, **PINNED["hdd-hitachi-hds721050dle630-failing.json"], "ioerr_count": 31.0},
    ]
    report = decode_report("inventory", encode({"v": 1, "ts": 1, "disk_health": items}))
    assert report.sections["disk_health"][1]["reallocated_sectors"] == 1975.0


def test_a_disk_whose_device_the_agent_cannot_see_is_unavailable_for_permission(tmp_path: Path) -> None:
    """systemd's PrivateDevices hides /dev/sda from the agent while sysfs still lists it."""
    asked = []
    job = DiskHealthJob(lambda disk: asked.append(disk) or (None, None), str(block_tree(tmp_path)), dev=str(tmp_path))
    assert job.disk("nvme0n1", True) == {
        "disk": "nvme0n1",
        "system": 1.0,
        "smart_available": 0.0,
        "reason": "permission",
    }
    assert asked == []


def test_an_unavailable_disk_keeps_the_model_sysfs_gives(tmp_path: Path) -> None:
    read = lambda _disk: (recorded("virtio-vda-this-vm.json"), None)  # noqa: E731
    job = DiskHealthJob(read, str(block_tree(tmp_path)), dev=devices(tmp_path, "sda"))
    assert job.disk("sda", False) == {
        "disk": "sda", "system": 0.0, "smart_available": 0.0, "reason": "no_smart", "model": "ST500DM002-1BD14",
        "ioerr_count": 31.0,
    }  # fmt: skip


def devices(root: Path, *names: str) -> str:
    """A /dev folder holding ``names``."""
    dev = root / "dev"
    dev.mkdir(exist_ok=True)
    for name in names:
        (dev / name).touch()
    return str(dev)


# ---- slow I/O ----


def test_busy_share_and_mean_wait_come_from_two_readings_and_never_from_one_or_a_reset() -> None:
    before = (100.0, sysfs.DiskStat(1000, 6000, 9000))
    after = (130.0, sysfs.DiskStat(1300, 7500, 36000))  # 300 I/Os in 30 s, busy 27 s of it
    assert slow_io(before, after) == {"busy_percent": 90.0, "await_ms": 5.0}
    assert slow_io(None, after) == {}
    assert slow_io(after, before) == {}  # counters went back
    idle = (160.0, sysfs.DiskStat(1300, 7500, 36000))
    assert slow_io(after, idle) == {"busy_percent": 0.0, "await_ms": 0.0}
    assert slow_io(before, (101.0, sysfs.DiskStat(1001, 6001, 99000)))["busy_percent"] == 100.0  # capped


def test_pressure_files_give_some_avg60_and_nothing_where_the_kernel_has_none(tmp_path: Path) -> None:
    io = tmp_path / "io"
    io.write_text("some avg10=0.92 avg60=0.40 avg300=0.34 total=2573047\nfull avg10=0.00 avg60=0.14 avg300=0.26\n")
    assert pressure_some_avg60(sysfs.KeptFile(str(io)).read()) == 0.40
    assert pressure_some_avg60(sysfs.KeptFile(str(tmp_path / "absent")).read()) is None
    assert pressure_some_avg60("full avg10=0.00 avg60=0.14\n") is None


def test_a_kept_file_reads_afresh_and_opens_again_after_a_failure(tmp_path: Path) -> None:
    path = tmp_path / "stat"
    path.write_text("1 2 3\n")
    kept = sysfs.KeptFile(str(path))
    assert kept.read() == "1 2 3\n"
    path.write_text("4 5 6\n")  # the same file, new content
    assert kept.read() == "4 5 6\n"
    path.unlink()
    path.write_text("7\n")  # a new file under the same name: the kept descriptor still reads the old one
    assert kept.read() == "4 5 6\n"
    kept.close()
    assert kept.read() == "7\n"
    kept.close()
    path.unlink()
    assert kept.read() is None


def test_the_io_collector_reports_the_system_disk_from_its_second_cycle(tmp_path: Path) -> None:
    block = block_tree(tmp_path)
    mounts = tmp_path / "mounts"
    mounts.write_text("/dev/dm-0 / ext4 rw 0 0\n")  # LVM over sda2
    (tmp_path / "pressure").mkdir()
    (tmp_path / "pressure" / "memory").write_text("some avg10=1.00 avg60=2.50 avg300=0.10 total=5\n")
    times = iter([10.0, 40.0])
    collector = IoCollector(str(block), str(tmp_path / "pressure"), lambda: next(times), str(mounts))
    assert collector.collect() == {"system_disk": "sda", "psi_memory_some_avg60": 2.5}
    (block / "sda" / "stat").write_text("1300 0 0 4500 500 0 0 3000 0 36000 0\n")
    assert collector.collect() == {
        "system_disk": "sda", "busy_percent": 90.0, "await_ms": 5.0, "psi_memory_some_avg60": 2.5,
    }  # fmt: skip


# ---- the real thing on this VM ----


@pytest.mark.services  # runs smartctl and commune-agent once
def test_the_real_agent_on_this_virtual_disk_reports_smart_unavailable_with_its_reason(tmp_path: Path) -> None:
    output, reason = run_smartctl("smartctl", 30)("vda")
    assert reason is None and output is not None and smart.unavailable_reason(output, "vda") == "virtual_disk"
    assert run_smartctl(str(tmp_path / "no-smartctl"), 30)("vda") == (None, "no_smartctl")
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[identity]\nprovince = "08"\ncommune = "02473"\n[spool]\npath = "{tmp_path}/s.sqlite"\n'
        "[probe]\ngateway = false\n[peripherals]\nenabled = false\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "once", "-c", str(config)], cwd=REPO, capture_output=True, check=True
    )
    inventory = decode_report("inventory", encode(json.loads(out.stdout)["inventory"]))
    (vda,) = inventory.sections["disk_health"]
    assert vda == {"disk": "vda", "system": 1.0, "smart_available": 0.0, "reason": "virtual_disk"}
    assert inventory.sections["inventory"][0]["ram_bytes"] > 0


def test_a_real_agent_on_this_vm_sends_its_virtual_disk_as_unavailable_and_its_slow_io_and_keeps_running(
    make_agent: Callable[..., Agent], make_collector: Callable[..., Collector], influxd: Influxd, database: str
) -> None:
    collector = make_collector()
    collector.start()
    agent = make_agent(commune="02473", host="pc-disk")
    agent.start()
    where = "WHERE host='pc-disk'"

    def health() -> list[dict[str, Any]]:
        query = f'SELECT last(smart_available), last(reason), last("system") FROM "disk_health" {where} GROUP BY disk'
        return influxd.query(query, database)

    wait_until(lambda: bool(health()), 30, "a disk_health point")
    (vda,) = health()
    assert (vda["last"], vda["last_1"], vda["last_2"]) == (0.0, "virtual_disk", 1.0)
    io = f'SELECT count(busy_percent), last(system_disk) FROM "io" {where}'

    def busy_points() -> int:
        rows = influxd.query(io, database)
        return int(rows[0]["count"] or 0) if rows else 0  # null until the second cycle measured one

    wait_until(lambda: busy_points() >= 3, 30, "io points with busy_percent")
    assert influxd.query(io, database)[0]["last"] == "vda"
    assert agent.running()
    hosts = [h for h in collector.get_json("/api/v1/hosts") if h["host"] == "pc-disk"]
    assert hosts and hosts[0]["status"] == "online"
