"""Turns cheap, frequent polls of the USB devices into the ``peripherals`` report.

Per device and local day it keeps whether the device is present now, the minutes it was present
and the first and last time it was seen. A report is due on every plug or unplug and once per
``report_interval_s``; between them a poll returns nothing, so polling every few seconds costs
no bytes. Unplugging and plugging back (the normal use of a signature token) is not a fault: the
device keeps its day's figures. Known ids handed over later (``use_known``, from the collector) are
applied at the next poll: the devices are classified again, and a device whose kind or model
changed makes a report due.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.peripherals.classify import Known, KnownIds, classify
from agent.peripherals.source import UsbDevice, UsbSource
from common.wire import MAX_LIST_ITEMS

LABEL_BAD_RE = re.compile(r"[^A-Za-z0-9_.:/-]")
MAX_GAP_S = 300.0  # a longer gap between polls (suspend, a stalled loop) does not count as present


def device_label(device: UsbDevice) -> str:
    """A stable id in the label alphabet: vendor-product-serial, or vendor-product-port without a serial."""
    tail = device.serial or device.port
    return LABEL_BAD_RE.sub("_", f"{device.vendor_id}-{device.product_id}-{tail}")[:64]


@dataclass
class Seen:
    device: UsbDevice
    known: Known
    first: float
    last: float
    seconds: float = 0.0
    present: bool = True
    texts: dict[str, str] = field(default_factory=dict)


class PeripheralsTracker:
    """A report job: ``__call__`` polls and returns the report's sections when one is due, else {}."""

    def __init__(
        self,
        source: UsbSource,
        known: KnownIds,
        report_interval_s: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._source = source
        self._known = known
        self._report_interval_s = report_interval_s
        self._clock = clock
        self._day: tuple[int, int, int] | None = None
        self._seen: dict[str, Seen] = {}
        self._last_poll: float | None = None
        self._last_report: float | None = None
        self._devices: list[UsbDevice] | None = None
        self._attached: dict[str, tuple[UsbDevice, Known]] = {}
        self._lock = threading.Lock()
        self._next_known: KnownIds | None = None  # handed over from another thread, taken at the next poll
        self._unreported = False  # a change an on-demand report saw first: the next call still reports it

    @property
    def known(self) -> KnownIds:
        return self._known

    def use_known(self, known: KnownIds) -> None:
        """Classify with ``known`` from the next poll on (any thread)."""
        with self._lock:
            self._next_known = known

    def __call__(self) -> dict[str, Any]:
        now = self._clock()
        changed = self.poll(now) or self._unreported
        self._unreported = False
        if changed or self._last_report is None or now - self._last_report >= self._report_interval_s:
            self._last_report = now
            return {"peripherals": self.items()}
        return {}

    def report_now(self) -> dict[str, Any]:
        """The report as a poll now finds the devices (the ``peripherals_now`` action), whatever
        changed; a change it sees is still reported by the next call, as if it had not looked."""
        if self.poll(self._clock()):
            self._unreported = True
        return {"peripherals": self.items()}

    def poll(self, now: float) -> bool:
        """Read the devices once; True when one was plugged in or unplugged since the last poll."""
        self._new_day(now)
        with self._lock:
            handed, self._next_known = self._next_known, None
        if handed is not None:
            self._known, self._devices = handed, None  # classify every device again
        devices = self._source.devices()
        if devices is not self._devices:  # a source returns the same list while nothing changed
            self._devices, self._attached = devices, {}
            for device in devices:
                known = classify(device, self._known)
                if known is not None:
                    self._attached[device_label(device)] = (device, known)
        attached = self._attached
        gap = 0.0 if self._last_poll is None else now - self._last_poll
        counted = gap if 0 <= gap <= MAX_GAP_S else 0.0
        self._last_poll = now
        changed = False
        for label, seen in self._seen.items():
            if seen.present and label in attached:
                seen.seconds += counted
                seen.last = now
            elif seen.present:
                seen.present, changed = False, True
        for label, (device, known) in attached.items():
            before = self._seen.get(label)
            if before is None:
                self._seen[label] = Seen(device, known, first=now, last=now)
                changed = True
            elif not before.present:
                before.present, before.last, before.device, before.known = True, now, device, known
                changed = True
            elif before.known != known:  # newly known ids said what it is
                before.known, changed = known, True
        self._bound()
        return changed

    def items(self) -> list[dict[str, Any]]:
        """Today's devices, those present first; at most the wire's list limit."""
        ordered = sorted(self._seen.items(), key=lambda pair: (not pair[1].present, pair[0]))
        return [_item(label, seen) for label, seen in ordered[:MAX_LIST_ITEMS]]

    def present(self, kind: str) -> dict[str, UsbDevice]:
        """The devices of ``kind`` attached at the last poll, by label."""
        return {label: seen.device for label, seen in self._seen.items() if seen.present and seen.known.kind == kind}

    def _new_day(self, now: float) -> None:
        day = time.localtime(now)[:3]
        if day == self._day:
            return
        if self._day is not None:  # yesterday's unplugged devices go; plugged ones start the day afresh
            self._seen = {label: seen for label, seen in self._seen.items() if seen.present}
            for seen in self._seen.values():
                seen.first, seen.last, seen.seconds = now, now, 0.0
        self._day = day

    def _bound(self) -> None:
        while len(self._seen) > MAX_LIST_ITEMS:
            absent = [(seen.last, label) for label, seen in self._seen.items() if not seen.present]
            if not absent:
                return
            del self._seen[min(absent)[1]]


def _item(label: str, seen: Seen) -> dict[str, Any]:
    device = seen.device
    texts = {
        "vendor_id": device.vendor_id,
        "product_id": device.product_id,
        "serial": device.serial,
        "manufacturer": device.manufacturer,
        "product": device.product,
        "model": seen.known.model,
        "device_class": device.device_class,
        "interface_classes": ",".join(device.interface_classes),
    }
    return {
        "device": label,
        "kind": seen.known.kind,
        **{key: value for key, value in texts.items() if value},
        "present": 1 if seen.present else 0,
        "minutes_today": round(seen.seconds / 60.0, 1),
        "first_seen_today": int(seen.first),
        "last_seen_today": int(seen.last),
    }
