"""Linux block devices from sysfs: the physical disks, the one holding the system, and the
kernel's own counters of each (I/O errors, busy time).

Every function takes the sysfs folder (``/sys/block``), so tests hand it a sysfs-shaped tree.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import NamedTuple

SYS_BLOCK = "/sys/block"
MOUNTS = "/proc/self/mounts"
# Block devices that are not a physical disk: CD/DVD and floppy drives, network block devices.
NOT_DISKS = ("sr", "fd", "nbd")


class DiskStat(NamedTuple):
    """The counters of ``/sys/block/<disk>/stat`` (the kernel's Documentation/block/stat.rst)
    that slow I/O is judged by; times in milliseconds."""

    ios: int  # reads and writes completed
    io_ms: int  # time spent on those reads and writes, queue included
    busy_ms: int  # time with at least one I/O in flight (psutil's busy_time)


def physical_disks(sys_block: str = SYS_BLOCK) -> list[str]:
    """Names of the disks backed by a device (not loop, zram, device-mapper or md, which have no
    ``device`` link), leaving out optical and removable drives (a USB stick is no PC's disk)."""
    try:
        names = sorted(os.listdir(sys_block))
    except OSError:
        return []
    out = []
    for name in names:
        if name.startswith(NOT_DISKS) or not os.path.exists(os.path.join(sys_block, name, "device")):
            continue
        if _read(os.path.join(sys_block, name, "removable")).strip() == "1":
            continue
        out.append(name)
    return out


def disk_of(device: str, sys_block: str = SYS_BLOCK) -> str | None:
    """The physical disk under a block device (``/dev/sda2`` -> ``sda``; LVM or dm-crypt through
    their ``slaves``), or None when there is none (a network or memory filesystem)."""
    name = os.path.basename(os.path.realpath(device)) if device.startswith("/dev/") else os.path.basename(device)
    for _ in range(8):  # device-mapper stacks (LVM over dm-crypt over a partition) are shallow
        whole = os.path.join(sys_block, name)
        if os.path.isdir(whole):
            slaves = _list(os.path.join(whole, "slaves"))
            if not slaves:
                return name if os.path.exists(os.path.join(whole, "device")) else None
            name = slaves[0]
            continue
        parent = _parent_of_partition(name, sys_block)
        if parent is None:
            return None
        name = parent
    return None


def system_disk(sys_block: str = SYS_BLOCK, mounts: str = MOUNTS) -> str | None:
    """The physical disk holding ``/``."""
    for line in _read(mounts).splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1] == "/" and parts[0].startswith("/dev/"):
            return disk_of(parts[0], sys_block)
    return None


def ioerr_count(disk: str, sys_block: str = SYS_BLOCK) -> float | None:
    """The SCSI layer's count of I/O requests that failed since boot (``device/ioerr_cnt``, hex,
    SATA and SAS disks only), or None where sysfs has none (NVMe, virtio)."""
    text = _read(os.path.join(sys_block, disk, "device", "ioerr_cnt")).strip()
    try:
        return float(int(text, 0))
    except ValueError:
        return None


def disk_stat(disk: str, sys_block: str = SYS_BLOCK) -> DiskStat | None:
    """The disk's counters now, or None when it has no readable ``stat``."""
    return parse_stat(_read(os.path.join(sys_block, disk, "stat")))


def parse_stat(text: str) -> DiskStat | None:
    """A ``stat`` file's counters, or None when it is not one."""
    fields = text.split()
    if len(fields) < 11:
        return None
    try:
        reads, read_ms, writes, write_ms, busy_ms = (int(fields[i]) for i in (0, 3, 4, 7, 9))
    except ValueError:
        return None
    return DiskStat(reads + writes, read_ms + write_ms, busy_ms)


def _parent_of_partition(name: str, sys_block: str) -> str | None:
    """The disk a partition belongs to: the folder in ``sys_block`` that holds it."""
    for disk in _list(sys_block):
        if os.path.isdir(os.path.join(sys_block, disk, name)):
            return disk
    return None


def _list(folder: str) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


class KeptFile:
    """A kernel file read every cycle through one descriptor kept open: ``pread`` at offset 0
    gives sysfs and procfs content afresh, at a seventh of the cost of opening it each time. A
    failed read closes it, and the next read opens it again."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def read(self) -> str | None:
        if sys.platform == "win32":  # no sysfs, procfs or pread there
            return None
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_RDONLY)
            return os.pread(self._fd, 4096, 0).decode("ascii", "replace")
        except OSError:
            self.close()
            return None

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            with contextlib.suppress(OSError):
                os.close(fd)
