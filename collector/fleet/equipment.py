"""Issued equipment against the peripherals a commune's PCs were seen with: which item is in use,
which lies unused, which was never plugged in, and what was seen without being issued.

Pure functions over the registry's issued items (``collector/registry/equipment.py``) and the
devices seen per commune (gathered by ``facts.gather_peripherals``): no SQLite, no clock, nothing
changed in place; ``tests/test_equipment_rules.py`` calls them directly.

Matching, per commune: an issued item with a serial matches the seen device of the same kind with
that serial (case and spaces aside); the items without a serial then take the seen devices of their
kind that no serial claimed, most recently seen first, oldest issue first. Seen devices left over
are ``unregistered``. Unplugging a token is how it is used, so "seen" means seen at any moment in
the window, not present now.

Devices the agents could not place (kind ``other``: not a known id, and no class that says scanner,
token or printer) are listed per commune as well (``CommuneEquipment.other``), with their USB id
(``usb_id``) and model text, so the area team can add a known-ids row for them.

Two rules judge an item seen in the window, and each verdict says which (``rule``):
- ``pcsc`` (observed use): a token whose PC watched it through PC/SC (the agent's ``pcsc`` mark) is
  ``in_use`` when an application was seen opening it within the window, and ``plugged_idle`` when
  it was plugged in but never opened, provided the watch covered the whole window (watched since at
  least the window ago, and still at its last sighting, give or take a day);
- ``presence`` otherwise: seen is in use (the only rule for scanners and printers, for a PC
  without PC/SC, and for a token in its first window of being watched unless an opening was seen).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from collector import vocabulary as words
from collector.alerting.conditions import Condition
from collector.registry import units
from collector.registry.equipment import IssuedItem

DAY_S = 86400.0
IN_USE = "in_use"
PLUGGED_IDLE = "plugged_idle"  # a token plugged in but never opened by an application in the window (PC/SC)
UNUSED = "unused"
NEVER_SEEN = "never_seen"
NOT_YET_SEEN = "not_yet_seen"  # issued less than the window ago and not seen yet: not a problem yet
STATES = (IN_USE, PLUGGED_IDLE, UNUSED, NEVER_SEEN, NOT_YET_SEEN)
IDLE_STATES = (PLUGGED_IDLE, UNUSED, NEVER_SEEN)  # what the equipment_unused alert counts
PRESENCE = "presence"  # the rule: seen plugged in within the window is in use
PCSC = "pcsc"  # the rule: opened by an application within the window, as PC/SC showed it
RULES = (PRESENCE, PCSC)
OTHER = "other"  # the kind of a device the agent could not place
DEVICE_ID_RE = re.compile(r"^([0-9a-f]{4})-([0-9a-f]{4})-")  # the agent's device id: vendor-product-serial/port


@dataclass(frozen=True)
class SeenDevice:
    """A peripheral some PC of the commune reported, and when it was last there."""

    device: str  # the wire's stable id, ``<vendor>-<product>-<serial or port>``
    kind: str
    serial: str
    model: str
    host: str
    first_seen: float
    last_seen: float
    watched_since: float = 0.0  # first report that had its use watched through PC/SC; 0 never
    watched_last: float = 0.0  # the last such report
    opened_at: float = 0.0  # the last moment an application was seen with it open (PC/SC); 0 never


@dataclass(frozen=True)
class Verdict:
    """One issued item's state; ``days`` counts since it was last seen, or since it was issued
    when it never was."""

    item: IssuedItem
    state: str
    device: str  # the seen device it matched, "" when none
    last_seen: float  # 0 when never
    days: float
    rule: str = PRESENCE  # which rule judged it: PRESENCE or PCSC
    opened_at: float = 0.0  # when PC/SC last saw it opened, 0 when never (or not watched)


@dataclass(frozen=True)
class KindCount:
    issued: int
    seen: int  # issued items in use (seen within the window, and opened where PC/SC judged)
    unused: int  # plugged in but never opened, unused, or never seen


@dataclass(frozen=True)
class CommuneEquipment:
    province: str
    commune: str
    verdicts: tuple[Verdict, ...] = ()
    unregistered: tuple[SeenDevice, ...] = field(default=())
    other: tuple[SeenDevice, ...] = field(default=())  # seen devices of kind other, most recently seen first

    def counts(self) -> dict[str, KindCount]:
        """Per kind issued: how many, how many in use, how many unused or never seen."""
        out: dict[str, KindCount] = {}
        for kind in sorted({v.item.kind for v in self.verdicts}):
            mine = [v for v in self.verdicts if v.item.kind == kind]
            out[kind] = KindCount(
                len(mine), sum(v.state == IN_USE for v in mine), sum(v.state in IDLE_STATES for v in mine)
            )
        return out


def usb_id(device: str) -> str:
    """``vendor:product`` from a device id (``04a9-1913-1-1.2`` gives ``04a9:1913``), "" when it has none."""
    match = DEVICE_ID_RE.match(device)
    return f"{match.group(1)}:{match.group(2)}" if match else ""


def serial_key(serial: str) -> str:
    return "".join(serial.split()).casefold()


def issued_at(item: IssuedItem) -> float:
    """Midnight UTC of the issue date, in UTC seconds."""
    day = dt.date.fromisoformat(item.issued_on)
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def match(items: list[IssuedItem], seen: list[SeenDevice]) -> tuple[list[SeenDevice | None], list[SeenDevice]]:
    """For each item (in order) the seen device it matches or None, and the devices nobody matched."""
    matched: list[SeenDevice | None] = [None] * len(items)
    left = sorted(seen, key=lambda d: (-d.last_seen, d.device))
    by_serial = {(d.kind, serial_key(d.serial)): d for d in reversed(left) if d.serial}
    for index, item in enumerate(items):
        device = by_serial.get((item.kind, serial_key(item.serial))) if item.serial else None
        if device is not None and device in left:
            matched[index] = device
            left.remove(device)
    claimed_serials = {(i.kind, serial_key(i.serial)) for i in items if i.serial}
    order = sorted(range(len(items)), key=lambda i: (items[i].issued_on, i))
    for index in order:
        item = items[index]
        if item.serial:
            continue
        for device in left:
            if device.kind == item.kind and (device.kind, serial_key(device.serial)) not in claimed_serials:
                matched[index] = device
                left.remove(device)
                break
    return matched, left


def watched(device: SeenDevice, window: float, now: float) -> bool:
    """PC/SC watched the token over the whole window and still at its last sighting (within a day)."""
    return 0 < device.watched_since <= now - window and device.watched_last >= device.last_seen - DAY_S


def verdict(item: IssuedItem, device: SeenDevice | None, window_days: int, now: float) -> Verdict:
    window = window_days * DAY_S
    if device is not None and now - device.last_seen <= window:
        days = max(0.0, (now - device.last_seen) / DAY_S)
        if device.opened_at and now - device.opened_at <= window:
            return Verdict(item, IN_USE, device.device, device.last_seen, days, PCSC, device.opened_at)
        if watched(device, window, now):
            return Verdict(item, PLUGGED_IDLE, device.device, device.last_seen, days, PCSC, device.opened_at)
        return Verdict(item, IN_USE, device.device, device.last_seen, days)
    if device is not None:
        return Verdict(item, UNUSED, device.device, device.last_seen, (now - device.last_seen) / DAY_S)
    since_issue = max(0.0, now - issued_at(item))
    state = NEVER_SEEN if since_issue > window else NOT_YET_SEEN
    return Verdict(item, state, "", 0.0, since_issue / DAY_S)


def commune_equipment(
    province: str, commune: str, items: list[IssuedItem], seen: list[SeenDevice], window_days: int, now: float
) -> CommuneEquipment:
    """The verdict on each of one commune's issued items, and what was seen without being issued."""
    matched, left = match(items, seen)
    verdicts = tuple(verdict(item, device, window_days, now) for item, device in zip(items, matched, strict=True))
    other = tuple(sorted((d for d in seen if d.kind == OTHER), key=lambda d: (-d.last_seen, d.device)))
    return CommuneEquipment(province, commune, verdicts, tuple(sorted(left, key=lambda d: d.device)), other)


def fleet_equipment(
    items: list[IssuedItem], seen: dict[str, list[SeenDevice]], provinces: dict[str, str], window_days: int, now: float
) -> list[CommuneEquipment]:
    """Every commune with issued items or seen devices; ``provinces`` maps a commune that has no
    issued item to its province (else the official list says which)."""
    by_commune: dict[str, list[IssuedItem]] = {}
    for item in items:
        by_commune.setdefault(item.commune, []).append(item)
    out = []
    for commune in sorted(set(by_commune) | {c for c, devices in seen.items() if devices}):
        mine = by_commune.get(commune, [])
        official = units.commune(commune)
        province = mine[0].province if mine else provinces.get(commune) or (official.province_code if official else "")
        out.append(commune_equipment(province, commune, mine, seen.get(commune, []), window_days, now))
    return out


def alert_subject(kind: str) -> str:
    """The ``host`` of an equipment_unused alert: one alert per commune and kind."""
    return f"equipment:{kind}"


def conditions(communes: list[CommuneEquipment], areas: dict[str, str], window_days: int) -> list[Condition]:
    """One ``equipment_unused`` condition per commune and kind with items unused or never seen;
    ``areas`` maps each commune to its area."""
    out = []
    said = words.SUMMARIES[words.EQUIPMENT_UNUSED]
    for c in communes:
        name = units.display_name(c.commune)
        for kind, count in c.counts().items():
            if not count.unused:
                continue
            kind_words = words.PERIPHERAL_KINDS[kind]
            vi = said.vi.format(name=name, count=count.unused, kind=kind_words.vi, days=window_days)
            en = said.en.format(name=name, count=count.unused, kind=kind_words.en, days=window_days)
            details = (("kind", kind), ("unused", str(count.unused)), ("issued", str(count.issued)))
            out.append(Condition(words.EQUIPMENT_UNUSED, c.province, areas.get(c.commune, ""), c.commune,
                                 alert_subject(kind), words.RULE_SEVERITY[words.EQUIPMENT_UNUSED], vi, en,
                                 details))  # fmt: skip
    return out
