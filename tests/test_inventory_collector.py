"""The inventory: OS, CPU, RAM, disks, NICs and agent version, from psutil's own tuples, ``platform``
answers and a recorded ``/proc/cpuinfo``."""

from __future__ import annotations

import json
import platform
from pathlib import Path

import pytest
from psutil._ntuples import sdiskpart, sdiskusage
from psutil_fixtures import CPUINFO, RecordedPlatform, RecordedPsutil

from agent import __version__
from agent.collectors.inventory import SYSTEM_PLATFORM, collect_inventory, read_os_release

WINDOWS = RecordedPlatform(
    system_name="Windows",
    release_name="10",
    version_text="10.0.19045",
    machine_name="AMD64",
    processor_name="Intel64 Family 6 Model 165 Stepping 3, GenuineIntel",
    os_release=None,
)


def test_a_debian_office_pc_gives_exactly_its_inventory(office_pc: RecordedPsutil) -> None:
    assert collect_inventory(office_pc, RecordedPlatform(), CPUINFO) == {
        "os": "Debian GNU/Linux",
        "os_version": "12 (bookworm)",
        "architecture": "x86_64",
        "cpu_model": "AMD EPYC",
        "agent_version": __version__,
        "cpu_cores": 2.0,
        "cpu_threads": 4.0,
        "ram_bytes": 8_254_304_256.0,
        # each device once; the snap, tmpfs, the CD-ROM and the unreadable stick are left out
        "disk_total_bytes": 281_911_078_912.0,
        "boot_time": 1_764_460_800.0,
        "disks": '{"/dev/nvme0n1p2":250375106560,"/dev/nvme0n1p1":535805952,"/dev/sdb1":31000166400}',
        "nics": '{"enp2s0":"3c:7c:3f:1e:2a:9b","wlp3s0":"a4:c3:f0:85:11:02"}',  # hardware addresses, no loopback
    }


def test_windows_without_cpuinfo_names_the_processor_platform_gives(office_pc: RecordedPsutil, tmp_path: Path) -> None:
    office_pc.physical_cpus = None  # psutil cannot always tell cores on Windows: threads stand in

    inventory = collect_inventory(office_pc, WINDOWS, tmp_path / "no-cpuinfo")

    assert (inventory["os"], inventory["os_version"], inventory["architecture"]) == ("Windows", "10.0.19045", "AMD64")
    assert inventory["cpu_model"] == "Intel64 Family 6 Model 165 Stepping 3, GenuineIntel"
    assert (inventory["cpu_cores"], inventory["cpu_threads"]) == (4.0, 4.0)


def test_a_linux_without_os_release_reports_the_kernel_version(office_pc: RecordedPsutil) -> None:
    inventory = collect_inventory(office_pc, RecordedPlatform(os_release=None), CPUINFO)

    assert (inventory["os"], inventory["os_version"]) == (
        "Linux",
        "#1 SMP PREEMPT_DYNAMIC Debian 6.1.115-1 (2024-11-01)",
    )


def test_a_long_disk_list_is_cut_to_256_characters_ending_in_an_ellipsis(office_pc: RecordedPsutil) -> None:
    devices = [f"/dev/sd{chr(ord('a') + n)}1" for n in range(20)]
    office_pc.partitions = [sdiskpart(device, f"/srv/{n}", "ext4", "rw") for n, device in enumerate(devices)]
    office_pc.usage = {f"/srv/{n}": sdiskusage(1_000_000_000_000, 0, 1_000_000_000_000, 0.0) for n in range(20)}

    inventory = collect_inventory(office_pc, RecordedPlatform(), CPUINFO)

    listed = json.dumps(dict.fromkeys(devices, 1_000_000_000_000), separators=(",", ":"))
    assert len(listed) > 256
    assert inventory["disks"] == listed[:253] + "..."
    assert inventory["disk_total_bytes"] == 20_000_000_000_000.0


UBUNTU_2004_OS_RELEASE = """NAME="Ubuntu"
VERSION="20.04.6 LTS (Focal Fossa)"
ID=ubuntu
# a comment
ID_LIKE=debian
PRETTY_NAME='Ubuntu 20.04.6 LTS'
VERSION_ID="20.04"
"""


def test_os_release_is_read_by_hand_on_pythons_without_freedesktop_os_release(tmp_path: Path) -> None:
    recorded = tmp_path / "os-release"
    recorded.write_text(UBUNTU_2004_OS_RELEASE)
    release = read_os_release((tmp_path / "missing", recorded))
    assert release == {
        "NAME": "Ubuntu",
        "VERSION": "20.04.6 LTS (Focal Fossa)",
        "ID": "ubuntu",
        "ID_LIKE": "debian",
        "PRETTY_NAME": "Ubuntu 20.04.6 LTS",
        "VERSION_ID": "20.04",
    }
    with pytest.raises(OSError):
        read_os_release((tmp_path / "missing",))


def test_the_real_platform_names_this_machines_os_on_every_python() -> None:
    by_hand = read_os_release()
    assert SYSTEM_PLATFORM.freedesktop_os_release()["NAME"] == by_hand["NAME"]
    standard = getattr(platform, "freedesktop_os_release", None)  # Python 3.10+
    if standard is not None:  # the same answer as the standard library's own reader
        assert {k: by_hand[k] for k in ("NAME", "VERSION_ID", "ID")} == {
            k: standard()[k] for k in ("NAME", "VERSION_ID", "ID")
        }
