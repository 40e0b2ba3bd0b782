"""One small interface for listing USB devices, so the rest of the agent does not care where they come from.

Linux reads sysfs (``agent.peripherals.sysfs``). Windows implements the same
``UsbSource`` protocol from WMI ``Win32_PnPEntity`` (``agent.peripherals.wmi``, unverified until it
has run on a real Windows PC); only it fills ``setup_classes``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class UsbDevice:
    """One USB device as its descriptors describe it; text fields are "" when the device gives none."""

    port: str  # where it is plugged in: the kernel's port path, e.g. "1-1.2"
    vendor_id: str  # four lower-case hex digits
    product_id: str
    serial: str = ""
    manufacturer: str = ""
    product: str = ""
    device_class: str = ""  # bDeviceClass, two hex digits
    interface_classes: tuple[str, ...] = ()  # bInterfaceClass of each interface, two hex digits each
    setup_classes: tuple[str, ...] = ()  # Windows only: the device setup classes of it and its interfaces


class UsbSource(Protocol):
    """Lists the USB devices attached now; never raises for a missing bus (an empty list).

    While nothing is plugged in or out a source may return the very same list, and the tracker
    then skips classifying it again.
    """

    def devices(self) -> list[UsbDevice]: ...
