"""The agent reports real filesystems only: pseudo-filesystems and container mounts would each be a
new InfluxDB series, with names that change every time."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from agent.collectors.disk import DiskCollector, is_reported

# /proc/mounts of a Ubuntu office PC running Docker and snaps (device, mount point, type, options).
PROC_MOUNTS = """\
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
proc /proc proc rw,nosuid,nodev,noexec,relatime 0 0
udev /dev devtmpfs rw,nosuid,relatime,size=3977500k,nr_inodes=994375,mode=755 0 0
devpts /dev/pts devpts rw,nosuid,noexec,relatime,gid=5,mode=620,ptmxmode=000 0 0
tmpfs /run tmpfs rw,nosuid,nodev,noexec,relatime,size=801616k,mode=755 0 0
/dev/sda2 / ext4 rw,relatime,errors=remount-ro 0 0
securityfs /sys/kernel/security securityfs rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /dev/shm tmpfs rw,nosuid,nodev 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
pstore /sys/fs/pstore pstore rw,nosuid,nodev,noexec,relatime 0 0
efivarfs /sys/firmware/efi/efivars efivarfs rw,nosuid,nodev,noexec,relatime 0 0
bpf /sys/fs/bpf bpf rw,nosuid,nodev,noexec,relatime,mode=700 0 0
systemd-1 /proc/sys/fs/binfmt_misc autofs rw,relatime,fd=29,pgrp=1,timeout=0,minproto=5,maxproto=5,direct 0 0
hugetlbfs /dev/hugepages hugetlbfs rw,relatime,pagesize=2M 0 0
mqueue /dev/mqueue mqueue rw,nosuid,nodev,noexec,relatime 0 0
debugfs /sys/kernel/debug debugfs rw,nosuid,nodev,noexec,relatime 0 0
tracefs /sys/kernel/tracing tracefs rw,nosuid,nodev,noexec,relatime 0 0
fusectl /sys/fs/fuse/connections fusectl rw,nosuid,nodev,noexec,relatime 0 0
configfs /sys/kernel/config configfs rw,nosuid,nodev,noexec,relatime 0 0
/dev/loop0 /snap/core20/2318 squashfs ro,nodev,relatime,errors=continue 0 0
/dev/loop1 /snap/firefox/4336 squashfs ro,nodev,relatime,errors=continue 0 0
/dev/sda1 /boot/efi vfat rw,relatime,fmask=0077,dmask=0077,codepage=437,iocharset=iso8859-1 0 0
/dev/sdb1 /home ext4 rw,relatime 0 0
binfmt_misc /proc/sys/fs/binfmt_misc binfmt_misc rw,nosuid,nodev,noexec,relatime 0 0
tmpfs /run/user/1000 tmpfs rw,nosuid,nodev,relatime,size=801612k,nr_inodes=200403,mode=700,uid=1000,gid=1000 0 0
gvfsd-fuse /run/user/1000/gvfs fuse.gvfsd-fuse rw,nosuid,nodev,relatime,user_id=1000,group_id=1000 0 0
portal /run/user/1000/doc fuse.portal rw,nosuid,nodev,relatime,user_id=1000,group_id=1000 0 0
/dev/sdc1 /media/motcua/USB-KHO vfat rw,nosuid,nodev,relatime,uid=1000,gid=1000,shortname=mixed 0 0
/dev/sr0 /media/motcua/Ubuntu-22.04 iso9660 ro,nosuid,nodev,relatime,nojoliet,check=relaxed 0 0
nsfs /run/docker/netns/8f0c2a1b3c4d nsfs rw 0 0
overlay /var/lib/docker/overlay2/4c1f0e9a7b/merged overlay rw,relatime,lowerdir=/var/lib/docker/overlay2/l/A 0 0
/dev/sda2 /var/lib/docker/containers/9e3d/mounts/shm ext4 rw,relatime 0 0
shm /var/lib/docker/containers/9e3d/mounts/shm tmpfs rw,nosuid,nodev,noexec,relatime,size=65536k 0 0
overlay /var/lib/containers/storage/overlay/77aa/merged overlay rw,relatime 0 0
/dev/sda2 /var/lib/kubelet/pods/1234/volumes/kubernetes.io~empty-dir/data ext4 rw,relatime 0 0
lxcfs /var/lib/lxcfs fuse.lxcfs rw,nosuid,nodev,relatime,user_id=0,group_id=0,allow_other 0 0
/dev/sdd1 /mnt/data ntfs3 rw,relatime 0 0
"""


def test_pseudo_filesystems_and_container_mounts_are_left_out() -> None:
    rows = [line.split()[:3] for line in PROC_MOUNTS.splitlines()]
    reported = [mount for _device, mount, fstype in rows if is_reported(mount, fstype)]
    assert reported == ["/", "/boot/efi", "/home", "/media/motcua/USB-KHO", "/mnt/data"]


def test_windows_drives_are_reported() -> None:
    assert is_reported("C:\\", "NTFS") and is_reported("D:\\", "FAT32") and not is_reported("E:\\", "CDFS")


@pytest.fixture
def extra_mounts(tmp_path: Path) -> Iterator[list[Path]]:
    """A tmpfs and an overlay really mounted on this machine (the tests run as root)."""
    for name in ("lower", "upper", "work", "merged", "tmp"):
        (tmp_path / name).mkdir()
    tmp, merged = tmp_path / "tmp", tmp_path / "merged"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "commune-test", str(tmp)], check=True)
    options = f"lowerdir={tmp_path / 'lower'},upperdir={tmp_path / 'upper'},workdir={tmp_path / 'work'}"
    subprocess.run(["mount", "-t", "overlay", "-o", options, "overlay", str(merged)], check=True)
    yield [tmp, merged]
    for mount in (merged, tmp):
        subprocess.run(["umount", str(mount)], check=False)


@pytest.mark.services  # runs mount and umount
def test_the_agent_on_this_machine_reports_its_root_and_not_a_tmpfs_or_an_overlay(extra_mounts: list[Path]) -> None:
    mounted = Path("/proc/mounts").read_text()
    assert all(f" {path} " in mounted for path in extra_mounts)
    reported = [item["mount"] for item in DiskCollector().collect()]
    assert "/" in reported
    assert not any(str(path) in mount for path in extra_mounts for mount in reported), reported


class CountingPsutil:
    """The real psutil, counting how often every mount is listed (``disk_partitions(all=True)``)."""

    def __init__(self) -> None:
        self.full_listings = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(psutil, name)

    def disk_partitions(self, all: bool = False) -> list[Any]:
        self.full_listings += all
        return psutil.disk_partitions(all=all)


@pytest.mark.services  # runs mount and umount
def test_a_watched_folder_s_mount_is_listed_again_only_when_its_device_changes() -> None:
    with tempfile.TemporaryDirectory(prefix="cm-") as folder:  # short: a mount label is cut at 64 characters
        watched_mount_is_listed_again_only_when_its_device_changes(Path(folder))


def watched_mount_is_listed_again_only_when_its_device_changes(folder: Path) -> None:
    watched = folder / "spool"
    watched.mkdir()
    ps = CountingPsutil()
    collector = DiskCollector(watch_paths=(str(watched),), ps=ps)  # type: ignore[arg-type]
    collector.collect()
    collector.collect()
    assert ps.full_listings == 1, "an unchanged device needs no second listing"
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "commune-watched", str(watched)], check=True)
    try:
        mounts = [item["mount"] for item in collector.collect()]
        assert ps.full_listings == 2 and str(watched) in mounts, mounts  # a filesystem mounted over it
        collector.collect()
        assert ps.full_listings == 2
    finally:
        subprocess.run(["umount", str(watched)], check=False)
    mounts = [item["mount"] for item in collector.collect()]
    assert ps.full_listings == 3 and str(watched) not in mounts, mounts  # taken away again
