"""USB devices from Linux sysfs, laid out as the kernel's ABI describes (Documentation/ABI/stable/sysfs-bus-usb).

``/sys/bus/usb/devices`` holds one entry per device, named by its port path (``1-1.2``) or
``usbN`` for a root hub, and one per interface (``1-1.2:1.0``). A device directory has
``idVendor``, ``idProduct``, ``bDeviceClass`` and, when the device has them, ``serial``,
``manufacturer`` and ``product``; each interface directory ``<dev>:<cfg>.<if>`` inside it has
``bInterfaceClass``. Reading a string descriptor can fail (EIO, EPROTO, a timeout on a sick
device): such a string is left empty. Descriptors are read once per plugged device: a poll
lists the directory and re-reads only entries it has not seen (a replug is a new entry).
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from agent.peripherals.source import UsbDevice

log = logging.getLogger("commune_agent.peripherals")

DEFAULT_ROOT = "/sys/bus/usb/devices"
HEX4_RE = re.compile(r"^[0-9a-f]{4}$")
HEX2_RE = re.compile(r"^[0-9a-f]{2}$")
MAX_TEXT = 128


class SysfsSource:
    """Reads USB devices under ``root``; a missing root (no USB bus, a container) gives no devices."""

    def __init__(self, root: str | Path = DEFAULT_ROOT) -> None:
        self.root = Path(root)
        self.unreadable = 0  # devices skipped because their ids could not be read
        self._cache: dict[tuple[str, int], UsbDevice | None] = {}
        self._listed: list[UsbDevice] = []

    def devices(self) -> list[UsbDevice]:
        try:
            with os.scandir(self.root) as listing:
                entries = [e for e in listing if ":" not in e.name and not e.name.startswith("usb")]
        except OSError:  # no USB bus here
            self._cache, self._listed = {}, []
            return []
        keys = [(entry.name, entry.inode()) for entry in entries]
        if len(keys) == len(self._cache) and all(key in self._cache for key in keys):
            return self._listed  # nothing plugged in or out: the same list, nothing read
        seen: dict[tuple[str, int], UsbDevice | None] = {}
        for key, entry in zip(keys, entries):
            seen[key] = self._cache[key] if key in self._cache else self._read(Path(entry.path), entry.name)
        self._cache = seen
        self._listed = sorted((device for device in seen.values() if device is not None), key=lambda d: d.port)
        return self._listed

    def _read(self, path: Path, port: str) -> UsbDevice | None:
        vendor, product_id = _text(path / "idVendor").lower(), _text(path / "idProduct").lower()
        if not HEX4_RE.match(vendor) or not HEX4_RE.match(product_id):
            self.unreadable += 1
            log.warning("usb device ids unreadable", extra={"port": port[:64], "unreadable": self.unreadable})
            return None
        interfaces: list[str] = []
        try:
            children = sorted(os.scandir(path), key=lambda e: e.name)
        except OSError:
            children = []
        for child in children:
            if child.name.startswith(f"{port}:"):
                value = _text(Path(child.path) / "bInterfaceClass").lower()
                if HEX2_RE.match(value):
                    interfaces.append(value)
        device_class = _text(path / "bDeviceClass").lower()
        return UsbDevice(
            port=port,
            vendor_id=vendor,
            product_id=product_id,
            serial=_text(path / "serial"),
            manufacturer=_text(path / "manufacturer"),
            product=_text(path / "product"),
            device_class=device_class if HEX2_RE.match(device_class) else "",
            interface_classes=tuple(interfaces),
        )


def _text(path: Path) -> str:
    """A sysfs attribute as text; "" when absent or unreadable, control characters dropped."""
    try:
        raw = path.read_bytes()[: MAX_TEXT * 4]
    except OSError:
        return ""
    text = raw.decode("utf-8", errors="replace").strip()
    return "".join(ch for ch in text if ch.isprintable())[:MAX_TEXT]
