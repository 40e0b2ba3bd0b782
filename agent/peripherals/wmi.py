"""USB devices on Windows, from WMI ``Win32_PnPEntity`` (Windows only; Linux reads sysfs).

Unverified: this has not run on a Windows PC. The query goes through pywin32's COM client, so no
child process; ``usb_devices`` turns the entities' properties into the same ``UsbDevice`` the
sysfs source gives, and is tested on ``Win32_PnPEntity`` output recorded on real Windows PCs.

A USB device's ``DeviceID`` is ``USB\\VID_xxxx&PID_xxxx\\<instance>``, where the instance is the
device's serial number when it has one, and an id Windows makes up (holding ``&``) otherwise.
Each interface of a composite device is an entity of its own, ``USB\\VID_xxxx&PID_xxxx&MI_nn\\...``,
whose ``CompatibleID`` names its class (``USB\\Class_02&SubClass_02&Prot_01``). The names are the
drivers' (``Name``, ``Manufacturer``), not the device's string descriptors, which WMI does not give.
A device with no class in its ``CompatibleID`` whose ``ClassGuid`` is Windows' SmartCardReader setup
class counts as a smart-card device (USB class 0b), as a CCID reader does on Linux. The ``ClassGuid``
of the device and of each of its interfaces that is one of the setup classes ``classify`` judges by
(Image, SmartCardReader, SmartCard) is kept in ``setup_classes``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

from agent.peripherals.classify import SETUP_CLASS_IMAGE, SMART_CARD, TOKEN_SETUP_CLASSES
from agent.peripherals.source import UsbDevice

log = logging.getLogger("commune_agent.peripherals")

DEVICE_ID_RE = re.compile(r"^USB\\VID_([0-9A-F]{4})&PID_([0-9A-F]{4})(?:&MI_([0-9A-F]{2}))?\\(.+)$", re.IGNORECASE)
CLASS_RE = re.compile(r"^USB\\Class_([0-9A-F]{2})", re.IGNORECASE)
PROPERTIES = ("DeviceID", "Name", "Manufacturer", "CompatibleID", "ClassGuid")
QUERY = f"SELECT {', '.join(PROPERTIES)} FROM Win32_PnPEntity WHERE DeviceID LIKE 'USB\\\\VID[_]%'"
SMART_CARD_READER_CLASS_GUID = "{50dd5230-ba8a-11d1-bf5d-0000f805f530}"  # Windows' SmartCardReader setup class
JUDGED_SETUP_CLASSES = TOKEN_SETUP_CLASSES | {SETUP_CLASS_IMAGE}
MAX_TEXT = 128


def _text(value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return "".join(ch for ch in text if ch.isprintable())[:MAX_TEXT]


def _usb_class(compatible: Any) -> str:
    """The class in the first ``USB\\Class_xx`` compatible id, two lower-case hex digits, or ""."""
    ids = [compatible] if isinstance(compatible, str) else list(compatible or ())
    for item in ids:
        match = CLASS_RE.match(str(item))
        if match:
            return match.group(1).lower()
    return ""


def _setup_class(entity: Mapping[str, Any]) -> str:
    """The entity's ``ClassGuid`` in lower case when it is a setup class ``classify`` judges by, else ""."""
    guid = _text(entity.get("ClassGuid")).lower()
    return guid if guid in JUDGED_SETUP_CLASSES else ""


def usb_devices(entities: Iterable[Mapping[str, Any]]) -> list[UsbDevice]:
    """USB devices from ``Win32_PnPEntity`` properties; interfaces are folded into their device."""
    devices: dict[tuple[str, str, str], dict[str, Any]] = {}
    interfaces: list[tuple[str, str, str, Mapping[str, Any]]] = []
    for entity in entities:
        match = DEVICE_ID_RE.match(_text(entity.get("DeviceID")))
        if match is None:
            continue
        vendor, product, interface, instance = (
            match.group(1).lower(),
            match.group(2).lower(),
            match.group(3),
            match.group(4),
        )
        if interface is not None:
            interfaces.append((vendor, product, instance, entity))
            continue
        devices[(vendor, product, instance)] = {"entity": entity, "interfaces": [], "setup": []}
    for vendor, product, instance, entity in interfaces:
        parents = [key for key in devices if key[:2] == (vendor, product)]
        if len(parents) == 1:
            devices[parents[0]]["interfaces"].append(_usb_class(entity.get("CompatibleID")))
            devices[parents[0]]["setup"].append(_setup_class(entity))
        else:  # no parent listed (or several alike): the interface stands for its device
            devices[(vendor, product, instance)] = {
                "entity": entity,
                "interfaces": [_usb_class(entity.get("CompatibleID"))],
                "setup": [],
            }
    return sorted((_device(key, value) for key, value in devices.items()), key=lambda d: d.port)


def _device(key: tuple[str, str, str], value: dict[str, Any]) -> UsbDevice:
    vendor, product, instance = key
    entity = value["entity"]
    device_class = _usb_class(entity.get("CompatibleID")) if not value["interfaces"] else ""
    if (
        not device_class
        and not value["interfaces"]
        and _text(entity.get("ClassGuid")).lower() == SMART_CARD_READER_CLASS_GUID
    ):
        device_class = SMART_CARD
    return UsbDevice(
        port=instance[:MAX_TEXT],
        vendor_id=vendor,
        product_id=product,
        serial="" if "&" in instance else instance[:MAX_TEXT],  # an id with "&" is made up by Windows
        manufacturer=_text(entity.get("Manufacturer")),
        product=_text(entity.get("Name")),
        device_class=device_class,
        interface_classes=tuple(sorted(c for c in value["interfaces"] if c)),
        setup_classes=tuple(sorted({c for c in [_setup_class(entity), *value["setup"]] if c})),
    )


class WmiSource:
    """Lists USB devices through WMI; an error gives no devices and a warning, never an exception."""

    def __init__(self) -> None:
        self._service: Any = None
        self._entities: list[dict[str, Any]] = []
        self._listed: list[UsbDevice] = []

    def devices(self) -> list[UsbDevice]:
        try:
            if self._service is None:
                import win32com.client  # pywin32, Windows only

                self._service = win32com.client.GetObject("winmgmts:")
            rows = self._service.ExecQuery(QUERY)
            entities = [{name: getattr(row, name, None) for name in PROPERTIES} for row in rows]
        except Exception as exc:  # COM errors have no common base class worth naming here
            log.warning("wmi query failed", extra={"error": str(exc)[:200]})
            self._service = None
            return []
        if entities != self._entities:  # the same list while nothing is plugged in or out
            self._entities, self._listed = entities, usb_devices(entities)
        return self._listed
