"""The ``smartcard`` section of the peripherals report: each PC/SC reader's use since the last
report, tied to the USB token it is when that can be told.

Which USB device a reader is (``reader_devices``, pure): pcsc-lite names a USB reader
``<name> [<interface>] (<serial>) 00 00``, so a token's USB serial in a reader's name ties them;
else a reader whose name holds the token's product string (Windows names readers after the
device); else, with one token left and one reader left, those two. A reader tied to no token
(a built-in reader, a virtual one) is still reported, without ``device``.

A token item carries ``pcsc`` = 1 when PC/SC answered in the window and the token has been tied to
a reader since the agent started (so also while it is unplugged, or in the moment after it is
plugged in, before pcscd lists its reader): its use is observed. Only then does the collector judge
it by observed use (docs/en/equipment.md); a token PC/SC cannot see (no driver for it in
pcscd, say) stays judged by presence.
"""

from __future__ import annotations

import re
from typing import Any

from agent.peripherals.pcsc import PcscWatch, ReaderUse
from agent.peripherals.source import UsbDevice
from agent.peripherals.tracker import PeripheralsTracker
from common.wire import MAX_LIST_ITEMS, MAX_STRING_CHARS

LABEL_BAD_RE = re.compile(r"[^A-Za-z0-9_.:/-]")


def reader_label(name: str) -> str:
    """A reader's name in the label alphabet: ``Virtual PCD 00 00`` is ``Virtual_PCD_00_00``."""
    return LABEL_BAD_RE.sub("_", name.strip())[:64] or "reader"


def reader_devices(readers: list[str], tokens: dict[str, UsbDevice]) -> dict[str, str]:
    """Reader name -> the label of the USB token it is, for those that can be told (see the docstring)."""
    out: dict[str, str] = {}
    left = dict(tokens)
    for rule in (_by_serial, _by_product):
        for name in readers:
            if name in out:
                continue
            found = [label for label, device in left.items() if rule(name, device)]
            if len(found) == 1:
                out[name] = found[0]
                del left[found[0]]
    unmatched = [name for name in readers if name not in out]
    if len(unmatched) == 1 and len(left) == 1:
        out[unmatched[0]] = next(iter(left))
    return out


def _by_serial(name: str, device: UsbDevice) -> bool:
    return len(device.serial) >= 4 and f"({device.serial})".casefold() in name.casefold()


def _by_product(name: str, device: UsbDevice) -> bool:
    return len(device.product) >= 4 and device.product.casefold() in name.casefold()


def reader_item(use: ReaderUse, device: str) -> dict[str, Any]:
    item: dict[str, Any] = {
        "reader": reader_label(use.name),
        "name": use.name[:MAX_STRING_CHARS],
        "card_now": 1 if use.card_now else 0,
        "card_present": 1 if use.card_present else 0,
        "in_use_now": 1 if use.in_use_now else 0,
        "in_use": 1 if use.in_use else 0,
        "opened": use.opened,
        "last_in_use": int(use.last_in_use),
    }
    if device:
        item["device"] = device
    return item


class WithSmartcards:
    """Wraps the peripherals job: when it reports, the readers' figures since its last report go with it."""

    def __init__(self, tracker: PeripheralsTracker, watch: PcscWatch) -> None:
        self.tracker = tracker
        self.watch = watch
        self._tied: set[str] = set()  # tokens tied to a reader since the agent started

    def __call__(self) -> dict[str, Any]:
        sections = self.tracker()
        if not sections:
            return sections
        available, readers = self.watch.take()
        if not available:
            return sections
        devices = reader_devices([r.name for r in readers], self.tracker.present("token"))
        if len(self._tied) < MAX_LIST_ITEMS:
            self._tied.update(devices.values())
        for item in sections.get("peripherals", []):
            if item.get("device") in self._tied:
                item["pcsc"] = 1
        items = [reader_item(r, devices.get(r.name, "")) for r in readers][:MAX_LIST_ITEMS]
        if items:
            sections["smartcard"] = items
        return sections
