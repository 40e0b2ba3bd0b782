"""Hardware and software inventory: OS, CPU, RAM, disks, NICs and agent version."""

from __future__ import annotations

import json
import platform

import psutil

from agent import __version__
from agent.collectors.disk import PSEUDO_FILESYSTEMS

MAX_TEXT = 256


def _os_description() -> tuple[str, str]:
    system = platform.system()
    if system == "Linux":
        try:
            release = platform.freedesktop_os_release()
            return release.get("NAME", "Linux"), release.get("VERSION", platform.release())
        except OSError:
            pass
    return system, platform.version() or platform.release()


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _compact_json(value: object) -> str:
    text = json.dumps(value, separators=(",", ":"))
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def collect_inventory() -> dict[str, float | str]:
    """One inventory section; lists are compact JSON strings cut to fit the wire limit."""
    os_name, os_version = _os_description()
    disks = {}
    for part in psutil.disk_partitions(all=False):
        if part.fstype in PSEUDO_FILESYSTEMS or part.device in disks:
            continue
        try:
            disks[part.device] = psutil.disk_usage(part.mountpoint).total
        except OSError:
            continue
    nics = {
        nic: addr.address
        for nic, addrs in psutil.net_if_addrs().items()
        for addr in addrs
        if addr.family == psutil.AF_LINK and nic != "lo"
    }
    return {
        "os": os_name[:MAX_TEXT],
        "os_version": os_version[:MAX_TEXT],
        "architecture": platform.machine()[:MAX_TEXT],
        "cpu_model": _cpu_model()[:MAX_TEXT],
        "agent_version": __version__,
        "cpu_cores": float(psutil.cpu_count(logical=False) or psutil.cpu_count() or 1),
        "cpu_threads": float(psutil.cpu_count() or 1),
        "ram_bytes": float(psutil.virtual_memory().total),
        "disk_total_bytes": float(sum(disks.values())),
        "boot_time": psutil.boot_time(),
        "disks": _compact_json(disks),
        "nics": _compact_json(nics),
    }
