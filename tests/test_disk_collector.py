"""The disk collector: real filesystems only, once each, and the read/write rates of the device under them."""

from __future__ import annotations

from psutil._ntuples import sdiskpart, sdiskusage
from psutil_fixtures import Clock, RecordedPsutil, disk_counters

from agent.collectors.disk import DiskCollector

ROOT = {"total_bytes": 250_375_106_560.0, "used_bytes": 61_254_324_224.0, "free_bytes": 176_317_136_896.0,
        "used_percent": 25.8}  # fmt: skip
EFI = {"total_bytes": 535_805_952.0, "used_bytes": 6_160_384.0, "free_bytes": 529_645_568.0, "used_percent": 1.1}
USB = {"total_bytes": 31_000_166_400.0, "used_bytes": 9_300_049_920.0, "free_bytes": 21_700_116_480.0,
       "used_percent": 30.0}  # fmt: skip


def test_each_real_filesystem_is_reported_once_and_pseudo_unreadable_and_repeated_mounts_are_left_out(
    office_pc: RecordedPsutil,
) -> None:
    # left out: the snap's squashfs, tmpfs, the CD-ROM's udf, "/" bound twice, and a mount that cannot be read
    assert DiskCollector(ps=office_pc, clock=Clock(100.0)).collect() == [
        {"mount": "/", **ROOT},
        {"mount": "/boot/efi", **EFI},
        {"mount": "/media/ketoan/USB_DATA", **USB},
    ]


def test_the_second_report_adds_per_second_rates_of_the_device_under_each_mount(office_pc: RecordedPsutil) -> None:
    clock = Clock(100.0)
    collector = DiskCollector(ps=office_pc, clock=clock)
    collector.collect()
    clock.now += 30
    office_pc.disk_io["nvme0n1p2"] = disk_counters(
        reads=201_500, writes=143_000, read_bytes=6_003_072_000, written_bytes=9_015_360_000
    )

    assert collector.collect() == [
        {"mount": "/", **ROOT, "read_bytes_per_s": 102_400.0, "write_bytes_per_s": 512_000.0,
         "read_ops_per_s": 50.0, "write_ops_per_s": 100.0},
        {"mount": "/boot/efi", **EFI, "read_bytes_per_s": 0.0, "write_bytes_per_s": 0.0,
         "read_ops_per_s": 0.0, "write_ops_per_s": 0.0},
        {"mount": "/media/ketoan/USB_DATA", **USB},  # no counters for sdb1: usage only
    ]  # fmt: skip


def test_a_counter_that_went_backwards_gives_no_rate_that_time(office_pc: RecordedPsutil) -> None:
    clock = Clock(100.0)
    collector = DiskCollector(ps=office_pc, clock=clock)
    collector.collect()
    clock.now += 10
    office_pc.disk_io["nvme0n1p1"] = disk_counters(reads=310, writes=2, read_bytes=0, written_bytes=1_024)

    efi = collector.collect()[1]

    assert efi == {"mount": "/boot/efi", **EFI, "write_bytes_per_s": 0.0, "read_ops_per_s": 1.0, "write_ops_per_s": 0.0}


def test_windows_drive_letters_become_labels_without_the_backslash(office_pc: RecordedPsutil) -> None:
    office_pc.partitions = [
        sdiskpart("C:\\", "C:\\", "NTFS", "rw,fixed"),
        sdiskpart("D:\\", "D:\\", "NTFS", "rw,fixed"),
    ]
    office_pc.usage = {
        "C:\\": sdiskusage(total=254_721_126_400, used=101_888_450_560, free=152_832_675_840, percent=40.0),
        "D:\\": sdiskusage(total=500_105_736_192, used=50_010_573_619, free=450_095_162_573, percent=10.0),
    }
    office_pc.disk_io = {"PhysicalDrive0": disk_counters(reads=1, writes=1, read_bytes=512, written_bytes=512)}
    collector = DiskCollector(ps=office_pc, clock=Clock(100.0))
    collector.collect()

    assert collector.collect() == [
        {"mount": "C:", "total_bytes": 254_721_126_400.0, "used_bytes": 101_888_450_560.0,
         "free_bytes": 152_832_675_840.0, "used_percent": 40.0},
        {"mount": "D:", "total_bytes": 500_105_736_192.0, "used_bytes": 50_010_573_619.0,
         "free_bytes": 450_095_162_573.0, "used_percent": 10.0},
    ]  # fmt: skip


def test_the_filesystem_holding_the_spool_is_reported_whatever_its_type(office_pc: RecordedPsutil) -> None:
    collector = DiskCollector(("/run/commune-agent/spool.sqlite",), ps=office_pc, clock=Clock(100.0))

    assert collector.collect()[-1] == {
        "mount": "/run",  # a tmpfs, left out but for the spool on it
        "total_bytes": 820_854_784.0,
        "used_bytes": 2_310_144.0,
        "free_bytes": 818_544_640.0,
        "used_percent": 0.3,
    }
    assert [item["mount"] for item in collector.collect()] == ["/", "/boot/efi", "/media/ketoan/USB_DATA", "/run"]
