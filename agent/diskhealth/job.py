"""The disk health round: every physical disk's S.M.A.R.T. through ``smartctl --json -a`` and the
kernel's I/O error count, as an ``inventory`` report's ``disk_health`` list.

It runs at start and every ``[disk_health] interval_s`` (6 h) in its own thread (a sleeping disk
can take seconds to answer). A PC without smartctl, an agent not allowed to open the disk, or a
virtual disk give ``smart_available = 0`` and the reason (``common.wire.SMART_UNAVAILABLE``),
never an error: the rest of the report (model from sysfs, I/O errors) is still sent.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from typing import Any, Callable, Dict, Optional, Tuple

from agent.diskhealth import smart, sysfs
from agent.labels import to_label

log = logging.getLogger("commune_agent.diskhealth")

# smartctl's output for a device: its parsed JSON (None when nothing parsed) or why it could not run
SmartOutput = Tuple[Optional[Dict[str, Any]], Optional[str]]


def run_smartctl(smartctl: str, timeout_s: float) -> Callable[[str], SmartOutput]:
    """A reader that runs ``smartctl --json -a /dev/<disk>`` and parses what it prints."""

    def read(disk: str) -> SmartOutput:
        try:
            done = subprocess.run(
                [smartctl, "--json", "-a", f"/dev/{disk}"],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                timeout=timeout_s,
                check=False,
            )
        except FileNotFoundError:
            return None, "no_smartctl"
        except PermissionError:
            return None, "permission"
        except subprocess.TimeoutExpired:
            return None, "timeout"
        except OSError:
            return None, "smartctl_failed"
        try:
            doc = json.loads(done.stdout)
        except ValueError:
            return None, None
        return (doc, None) if isinstance(doc, dict) else (None, None)

    return read


class DiskHealthJob:
    """Builds the ``disk_health`` section; ``read_smart`` and ``sys_block`` are passed in so tests
    feed recorded outputs and sysfs-shaped trees."""

    def __init__(
        self,
        read_smart: Callable[[str], SmartOutput],
        sys_block: str = sysfs.SYS_BLOCK,
        mounts: str = sysfs.MOUNTS,
        dev: str = "/dev",
    ) -> None:
        self._read_smart = read_smart
        self._sys_block = sys_block
        self._mounts = mounts
        self._dev = dev
        self._said: dict[str, str] = {}  # disk -> the reason last logged, to log each change once

    def __call__(self) -> dict[str, Any]:
        system = sysfs.system_disk(self._sys_block, self._mounts)
        items = [self.disk(name, name == system) for name in sysfs.physical_disks(self._sys_block)]
        return {"disk_health": items} if items else {}

    def disk(self, name: str, system: bool) -> dict[str, Any]:
        if os.path.exists(os.path.join(self._dev, name)):
            doc, failed = self._read_smart(name)
            reason = failed or smart.unavailable_reason(doc, name)
        else:  # the disk is in sysfs but its device is hidden from the agent (systemd's PrivateDevices)
            doc, reason = None, "permission"
        item: dict[str, Any] = {"disk": to_label(name), "system": 1.0 if system else 0.0}
        if reason is None and doc is not None:
            item.update(smart.disk_fields(doc))
        else:
            item.update(smart_available=0.0, reason=reason)
            model = sysfs_model(self._sys_block, name)
            if model:
                item["model"] = model
        errors = sysfs.ioerr_count(name, self._sys_block)
        if errors is not None:
            item["ioerr_count"] = errors
        if self._said.get(name) != (reason or ""):
            self._said[name] = reason or ""
            log.info("disk health", extra={"disk": name, "smart_available": reason is None, "reason": reason or ""})
        return item


def sysfs_model(sys_block: str, disk: str) -> str:
    """The model sysfs gives (``device/model``), for a disk whose S.M.A.R.T. is unavailable."""
    try:
        with open(os.path.join(sys_block, disk, "device", "model"), encoding="ascii", errors="replace") as f:
            return f.read().strip()[:256]
    except OSError:
        return ""
