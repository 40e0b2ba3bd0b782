"""Hardware and software inventory: OS, CPU, RAM, disks, NICs and agent version.

psutil, the ``platform`` module and the path of ``/proc/cpuinfo`` are passed in (the real ones by
default), so tests pin the output.
"""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Protocol

import psutil

from agent import __version__
from agent.collectors.disk import PSEUDO_FILESYSTEMS
from agent.collectors.psutil_api import PsutilLike

MAX_TEXT = 256
CPUINFO = Path("/proc/cpuinfo")


class PlatformLike(Protocol):
    """The ``platform`` functions the inventory reads."""

    def system(self) -> str: ...
    def release(self) -> str: ...
    def version(self) -> str: ...
    def machine(self) -> str: ...
    def processor(self) -> str: ...
    def freedesktop_os_release(self) -> dict[str, str]: ...


OS_RELEASE_FILES = (Path("/etc/os-release"), Path("/usr/lib/os-release"))


def read_os_release(files: tuple[Path, ...] = OS_RELEASE_FILES) -> dict[str, str]:
    """What ``platform.freedesktop_os_release`` (Python 3.10+) returns, for older Pythons."""
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            continue
        release = {}
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.strip() and not key.lstrip().startswith("#"):
                release[key.strip()] = value.strip().strip("'\"")
        return release
    raise OSError("no os-release file")


class SystemPlatform:
    """The real ``platform`` module, with ``freedesktop_os_release`` on Python 3.8 and 3.9 too."""

    def system(self) -> str:
        return platform.system()

    def release(self) -> str:
        return platform.release()

    def version(self) -> str:
        return platform.version()

    def machine(self) -> str:
        return platform.machine()

    def processor(self) -> str:
        return platform.processor()

    def freedesktop_os_release(self) -> dict[str, str]:
        if hasattr(platform, "freedesktop_os_release"):
            return platform.freedesktop_os_release()
        return read_os_release()


SYSTEM_PLATFORM = SystemPlatform()


def _os_description(plat: PlatformLike) -> tuple[str, str]:
    system = plat.system()
    if system == "Linux":
        try:
            release = plat.freedesktop_os_release()
            return release.get("NAME", "Linux"), release.get("VERSION", plat.release())
        except OSError:
            pass
    return system, plat.version() or plat.release()


def _cpu_model(plat: PlatformLike, cpuinfo: Path) -> str:
    try:
        with open(cpuinfo, encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return plat.processor() or plat.machine()


def _compact_json(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def collect_inventory(
    ps: PsutilLike = psutil, plat: PlatformLike = SYSTEM_PLATFORM, cpuinfo: Path = CPUINFO
) -> dict[str, float | str]:
    """One inventory section; lists are compact JSON strings cut to fit the wire limit."""
    os_name, os_version = _os_description(plat)
    disks = {}
    for part in ps.disk_partitions(all=False):
        if part.fstype in PSEUDO_FILESYSTEMS or part.device in disks:
            continue
        try:
            disks[part.device] = ps.disk_usage(part.mountpoint).total
        except OSError:
            continue
    nics = {
        nic: addr.address
        for nic, addrs in ps.net_if_addrs().items()
        for addr in addrs
        if addr.family == ps.AF_LINK and nic != "lo"
    }
    return {
        "os": os_name[:MAX_TEXT],
        "os_version": os_version[:MAX_TEXT],
        "architecture": plat.machine()[:MAX_TEXT],
        "cpu_model": _cpu_model(plat, cpuinfo)[:MAX_TEXT],
        "agent_version": __version__,
        "cpu_cores": float(ps.cpu_count(logical=False) or ps.cpu_count() or 1),
        "cpu_threads": float(ps.cpu_count() or 1),
        "ram_bytes": float(ps.virtual_memory().total),
        "disk_total_bytes": float(sum(disks.values())),
        "boot_time": ps.boot_time(),
        "disks": _compact_json(disks),
        "nics": _compact_json(nics),
    }
