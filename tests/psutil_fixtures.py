"""psutil-like objects for the agent's collectors, built from psutil's own named tuples.

The collectors receive psutil (``agent/collectors/psutil_api.py``); these objects answer the same
calls with known values in psutil's own types (``psutil._ntuples``, where psutil 7.2 keeps
``sdiskusage``, ``sdiskpart``, ``sdiskio``, ``snetio``, ``snicstats``, ``shwtemp``, ``sbattery``,
``svmem``, ``sswap``...), so a test pins a collector's exact output without reading the machine.
``make_office_pc()`` (fixture ``office_pc``) is a Debian desktop with an NVMe disk, a USB stick,
and wired and wireless NICs. Loaded as a plugin by ``tests/conftest.py``; needs no service.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest
from psutil._ntuples import (
    sbattery,
    sdiskio,
    sdiskpart,
    sdiskusage,
    shwtemp,
    snetio,
    snicaddr,
    snicstats,
    sswap,
    svmem,
)

RECORDED = Path(__file__).resolve().parent / "recorded"
CPUINFO = RECORDED / "proc" / "cpuinfo"  # /proc/cpuinfo of the development VM, its two processors
BOOT_TIME = 1_764_460_800.0  # 2025-11-30 00:00:00 UTC
GiB = 1024**3


@dataclass
class RecordedPsutil:
    """Answers the calls of ``PsutilLike`` (and the sensor calls) from its fields.

    ``cpu_percents`` are returned one per call; a ``disk_usage`` entry that is an ``OSError`` is
    raised, as psutil does for a mount that vanished or cannot be read.
    """

    cpu_percents: list[float] = field(default_factory=list)
    loadavg: tuple[float, float, float] = (0.0, 0.0, 0.0)
    logical_cpus: int | None = 1
    physical_cpus: int | None = 1
    memory: svmem = field(default_factory=lambda: svmem(*[0] * len(svmem._fields)))
    swap: sswap = field(default_factory=lambda: sswap(0, 0, 0, 0.0, 0, 0))
    booted: float = BOOT_TIME
    pid_list: list[int] = field(default_factory=list)
    partitions: list[sdiskpart] = field(default_factory=list)
    other_mounts: list[sdiskpart] = field(default_factory=list)  # listed only when asked for all
    usage: dict[str, sdiskusage | OSError] = field(default_factory=dict)
    disk_io: dict[str, sdiskio] = field(default_factory=dict)
    nic_addrs: dict[str, list[snicaddr]] = field(default_factory=dict)
    nic_stats: dict[str, snicstats] = field(default_factory=dict)
    nic_io: dict[str, snetio] = field(default_factory=dict)
    AF_LINK: int = psutil.AF_LINK
    calls: list[str] = field(default_factory=list)

    def cpu_percent(self, interval: float | None = None) -> float:
        assert interval is None, "the agent never blocks on cpu_percent"
        self.calls.append("cpu_percent")
        return self.cpu_percents.pop(0)

    def cpu_count(self, logical: bool = True) -> int | None:
        return self.logical_cpus if logical else self.physical_cpus

    def getloadavg(self) -> tuple[float, float, float]:
        return self.loadavg

    def virtual_memory(self) -> svmem:
        return self.memory

    def swap_memory(self) -> sswap:
        return self.swap

    def boot_time(self) -> float:
        return self.booted

    def pids(self) -> list[int]:
        return list(self.pid_list)

    def disk_partitions(self, all: bool = False) -> list[sdiskpart]:
        return self.partitions + self.other_mounts if all else list(self.partitions)

    def disk_usage(self, path: str) -> sdiskusage:
        answer = self.usage[path]
        if isinstance(answer, OSError):
            raise answer
        return answer

    def disk_io_counters(self, perdisk: bool = False) -> dict[str, sdiskio]:
        assert perdisk is True
        return dict(self.disk_io)

    def net_if_addrs(self) -> dict[str, list[snicaddr]]:
        return dict(self.nic_addrs)

    def net_if_stats(self) -> dict[str, snicstats]:
        return dict(self.nic_stats)

    def net_io_counters(self, pernic: bool = False) -> dict[str, snetio]:
        assert pernic is True
        return dict(self.nic_io)


@dataclass
class RecordedSensors:
    """psutil's two sensor calls, on a platform that has them."""

    temperatures: dict[str, list[shwtemp]] = field(default_factory=dict)
    battery: sbattery | None = None

    def sensors_temperatures(self) -> dict[str, list[shwtemp]]:
        return self.temperatures

    def sensors_battery(self) -> sbattery | None:
        return self.battery


@dataclass
class RecordedPlatform:
    """The ``platform`` calls the inventory makes."""

    system_name: str = "Linux"
    release_name: str = "6.1.0-27-amd64"
    version_text: str = "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)"
    machine_name: str = "x86_64"
    processor_name: str = ""
    os_release: dict[str, str] | None = field(
        default_factory=lambda: {
            "NAME": "Debian GNU/Linux",
            "ID": "debian",
            "VERSION_ID": "12",
            "VERSION": "12 (bookworm)",
            "VERSION_CODENAME": "bookworm",
        }
    )

    def system(self) -> str:
        return self.system_name

    def release(self) -> str:
        return self.release_name

    def version(self) -> str:
        return self.version_text

    def machine(self) -> str:
        return self.machine_name

    def processor(self) -> str:
        return self.processor_name

    def freedesktop_os_release(self) -> dict[str, str]:
        if self.os_release is None:
            raise OSError("no os-release file")
        return self.os_release


def disk_counters(reads: int, writes: int, read_bytes: int, written_bytes: int) -> sdiskio:
    """A disk's counters (the Linux fields; times in ms)."""
    return sdiskio(reads, writes, read_bytes, written_bytes, read_time=reads // 4, write_time=writes // 2,
                   read_merged_count=0, write_merged_count=0, busy_time=reads // 3)  # fmt: skip


def make_office_pc() -> RecordedPsutil:
    """A Debian desktop in a commune office: 4 threads on 2 cores, 8 GB RAM, an NVMe disk."""
    return RecordedPsutil(
        cpu_percents=[0.0, 23.4],  # the first call only primes psutil's counter
        loadavg=(0.42, 0.57, 0.61),
        logical_cpus=4,
        physical_cpus=2,
        memory=svmem(
            total=8_254_304_256,
            available=5_106_851_840,
            percent=38.1,
            used=2_689_150_976,
            free=3_101_097_984,
            active=2_905_423_872,
            inactive=1_618_350_080,
            buffers=96_841_728,
            cached=2_367_213_568,
            shared=331_350_016,
            slab=212_795_392,
        ),
        swap=sswap(total=2 * GiB, used=268_435_456, free=2 * GiB - 268_435_456, percent=12.5, sin=0, sout=4096),
        pid_list=list(range(1, 188)),
        partitions=[
            sdiskpart("/dev/nvme0n1p2", "/", "ext4", "rw,relatime,errors=remount-ro"),
            sdiskpart("/dev/nvme0n1p1", "/boot/efi", "vfat", "rw,relatime,fmask=0077,dmask=0077"),
            sdiskpart("/dev/loop3", "/snap/core22/1722", "squashfs", "ro,nodev,relatime"),
            sdiskpart("tmpfs", "/run/user/1000", "tmpfs", "rw,nosuid,nodev,relatime"),
            sdiskpart("/dev/nvme0n1p2", "/", "ext4", "rw,relatime,errors=remount-ro"),  # a bind mount, listed twice
            sdiskpart("/dev/sdb1", "/media/ketoan/USB DATA", "exfat", "rw,nosuid,nodev,relatime"),
            sdiskpart("/dev/sr0", "/media/ketoan/CDROM", "udf", "ro,nosuid,nodev,relatime"),
            sdiskpart("/dev/sdc1", "/media/ketoan/OLD", "vfat", "rw,nosuid,nodev,relatime"),
        ],
        other_mounts=[
            sdiskpart("proc", "/proc", "proc", "rw,nosuid,nodev,noexec,relatime"),
            sdiskpart("tmpfs", "/run", "tmpfs", "rw,nosuid,nodev,noexec,relatime,size=801616k,mode=755"),
        ],
        usage={
            "/": sdiskusage(total=250_375_106_560, used=61_254_324_224, free=176_317_136_896, percent=25.8),
            "/run": sdiskusage(total=820_854_784, used=2_310_144, free=818_544_640, percent=0.3),
            "/boot/efi": sdiskusage(total=535_805_952, used=6_160_384, free=529_645_568, percent=1.1),
            "/media/ketoan/USB DATA": sdiskusage(
                total=31_000_166_400, used=9_300_049_920, free=21_700_116_480, percent=30.0
            ),
            "/media/ketoan/OLD": PermissionError(13, "Permission denied", "/media/ketoan/OLD"),
        },
        disk_io={
            "nvme0n1": disk_counters(
                reads=210_000, writes=150_000, read_bytes=6_400_000_000, written_bytes=9_100_000_000
            ),
            "nvme0n1p1": disk_counters(reads=300, writes=2, read_bytes=5_000_000, written_bytes=1_024),
            "nvme0n1p2": disk_counters(
                reads=200_000, writes=140_000, read_bytes=6_000_000_000, written_bytes=9_000_000_000
            ),
        },
        nic_addrs={
            "lo": [
                snicaddr(socket.AF_INET, "127.0.0.1", "255.0.0.0", None, None),
                snicaddr(psutil.AF_LINK, "00:00:00:00:00:00", None, None, None),
            ],
            "enp2s0": [
                snicaddr(socket.AF_INET, "192.168.1.23", "255.255.255.0", "192.168.1.255", None),
                snicaddr(psutil.AF_LINK, "3c:7c:3f:1e:2a:9b", None, "ff:ff:ff:ff:ff:ff", None),
            ],
            "wlp3s0": [snicaddr(psutil.AF_LINK, "a4:c3:f0:85:11:02", None, "ff:ff:ff:ff:ff:ff", None)],
        },
    )


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def office_pc() -> Iterator[RecordedPsutil]:
    """A fresh ``make_office_pc()``: a test may change its answers."""
    yield make_office_pc()
