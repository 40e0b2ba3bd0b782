"""What a USB device is (scanner, token, printer, other) and whether it is worth reporting at all.

Hubs (class 09) and keyboards and mice (only HID interfaces, class 03) are not reported: every
PC has them and they say nothing about issued equipment. A device in the known-ids data is what
the data says: scanners are mostly vendor-specific (class ff) and can only be known by id. The
data is ``known_ids.csv``, generated from SANE, libccid and usb.ids (``devtools/known_ids.py``)
and shipped with the agent, then ``[peripherals] extra_ids``, then the rows the collector hands
over (each later one wins). Otherwise a smart-card (CCID, class 0b) interface on the device or any
of its interfaces makes a token, so does Windows' SmartCardReader or SmartCard setup class; Windows'
Image setup class (WIA scanners) makes a scanner unless the device has a video interface (class 0e:
Windows 7 puts webcams in that class too); a printer interface (class 07) a printer; and
anything else is ``other``.
"""

from __future__ import annotations

import csv
import io
import pkgutil
import re
from dataclasses import dataclass
from sys import intern
from typing import Any, Dict, Tuple

from agent.peripherals.source import UsbDevice
from common.wire import PERIPHERAL_KINDS

HUB = "09"
HID = "03"
SMART_CARD = "0b"
PRINTER = "07"
VIDEO = "0e"  # USB Video Class: webcams
# Windows' system-defined device setup classes (Microsoft's list), by the GUID a device's ClassGuid holds
SETUP_CLASS_IMAGE = "{6bdd1fc6-810f-11d0-bec7-08002be2092f}"  # still-image devices: WIA scanners
SETUP_CLASS_SMART_CARD_READER = "{50dd5230-ba8a-11d1-bf5d-0000f805f530}"
SETUP_CLASS_SMART_CARD = "{990a2bd7-e738-46c7-b26f-1cf8fb9f1391}"
TOKEN_SETUP_CLASSES = frozenset({SETUP_CLASS_SMART_CARD_READER, SETUP_CLASS_SMART_CARD})
HEX4_RE = re.compile(r"^[0-9a-f]{4}$")
COLUMNS = ("vendor_id", "product_id", "kind", "model", "source")


class KnownIdsError(ValueError):
    """A known-ids row cannot be used; the message names the row and the field."""


@dataclass(frozen=True)
class Known:
    __slots__ = ("kind", "model")  # some 1,800 of them live as long as the agent
    kind: str
    model: str


KnownIds = Dict[Tuple[str, str], Known]  # typing's names: evaluated at run time on 3.8


def known_id(vendor_id: Any, product_id: Any, kind: Any, model: Any, where: str) -> tuple[tuple[str, str], Known]:
    """One checked entry; raises KnownIdsError saying what is wrong in ``where``."""
    for name, value in (("vendor_id", vendor_id), ("product_id", product_id)):
        if not isinstance(value, str) or not HEX4_RE.match(value.lower()):
            raise KnownIdsError(f"{where}: {name} = {value!r} must be four hex digits, e.g. 04a9")
    if kind not in PERIPHERAL_KINDS:
        raise KnownIdsError(f"{where}: kind = {kind!r} must be one of {', '.join(PERIPHERAL_KINDS)}")
    if not isinstance(model, str) or len(model) > 128:
        raise KnownIdsError(f"{where}: model must be text of at most 128 characters")
    return (intern(vendor_id.lower()), product_id.lower()), Known(intern(kind), model)


def parse_known_ids(text: str, name: str) -> KnownIds:
    """Rows of a known-ids CSV (header vendor_id,product_id,kind,model,source)."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise KnownIdsError(f"{name}: the header must be {','.join(COLUMNS)}")
    known: KnownIds = {}
    for number, row in enumerate(reader, start=2):
        key, entry = known_id(row["vendor_id"], row["product_id"], row["kind"], row["model"], f"{name} line {number}")
        known[key] = entry
    return known


def shipped_known_ids() -> KnownIds:
    """The data file shipped with the agent."""
    data = pkgutil.get_data("agent.peripherals", "known_ids.csv")  # works from 3.8 on, and in a frozen binary
    if data is None:
        raise KnownIdsError("known_ids.csv: the agent's package data cannot be read")
    text = data.decode("utf-8")
    return parse_known_ids(text, "known_ids.csv")


def classify(device: UsbDevice, known: KnownIds) -> Known | None:
    """The device's kind and model text, or None when it is not reported (hub, keyboard, mouse)."""
    entry = known.get((device.vendor_id, device.product_id))
    if entry is not None:
        return Known(entry.kind, entry.model or device.product)
    interfaces = set(device.interface_classes)
    if device.device_class == HUB or interfaces == {HUB}:
        return None
    setup_classes = set(device.setup_classes)
    if device.device_class == SMART_CARD or SMART_CARD in interfaces or setup_classes & TOKEN_SETUP_CLASSES:
        return Known("token", device.product)
    if SETUP_CLASS_IMAGE in setup_classes and VIDEO not in interfaces and device.device_class != VIDEO:
        return Known("scanner", device.product)  # Windows 7 puts a webcam's video interface in Image too
    if device.device_class == PRINTER or PRINTER in interfaces:
        return Known("printer", device.product)
    if interfaces == {HID} or (device.device_class == HID and not interfaces - {HID}):
        return None
    return Known("other", device.product)
