"""``GET /status``: a small read-only status page in Vietnamese for when Grafana is not open.

Province > area > commune, each red (line down), amber (line degraded or unused, or PCs offline
or degraded) or green, problems first; plain server-rendered HTML that refreshes itself every
30 seconds and needs no JavaScript. Public unless ``[http] public_status_page = false``, then a
viewer token is needed like the rest of the API.

The equipment column gives, per commune, the items issued to it, how many are in use, and how many
lie unused or were never plugged in (``collector/fleet/equipment.py``); a commune with idle
equipment is amber.

PCs over their series bound (sending new mount, NIC, sensor... names without end, see
``collector/ingest/series_bounds.py``) are listed by name under the areas, so someone looks at them.

Devices the agents could not place (kind ``other``) are listed once per USB id, with the model
text and the communes they were seen in, those seen in most communes first (at most
``MAX_OTHER_DEVICES``), so someone adds a known-ids row for them.

This module decides what the page says (levels, order, words from the vocabulary); the markup is
the template ``templates/status.html``, rendered with autoescaping (``templating.py``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from collector.fleet.equipment import CommuneEquipment, usb_id
from collector.fleet.rules import CommuneStatus, HostStatus
from collector.http import templating
from collector.http.deps import RegistryDep, SnapshotDep
from collector.registry import units
from collector.vocabulary import LINE_STATES, STATUS_LEVELS, STATUS_PAGE

router = APIRouter()

LANG = "vi"  # the page is for commune and area staff
ORDER = {level: rank for rank, level in enumerate(STATUS_LEVELS)}  # red, amber, green
MAX_OTHER_DEVICES = 50


@dataclass(frozen=True)
class Row:
    code: str
    name: str
    level: str
    line_state: str
    why: str
    hosts_online: int
    hosts_total: int
    hosts_degraded: int
    issued: int = 0
    in_use: int = 0
    unused: int = 0


@dataclass(frozen=True)
class Area:
    code: str
    name: str
    level: str  # its worst commune's
    rows: list[Row]


def level(c: CommuneStatus, unused_equipment: int = 0) -> str:
    if c.line_state == "down":
        return "red"
    if c.line_state in ("degraded", "unused", "unknown") or c.hosts_degraded or c.hosts_online < c.hosts_total:
        return "amber"
    return "amber" if unused_equipment else "green"


def row(c: CommuneStatus, kit: CommuneEquipment | None = None) -> Row:
    counts = kit.counts().values() if kit else []
    issued, in_use, unused = (sum(k.issued for k in counts), sum(k.seen for k in counts),
                              sum(k.unused for k in counts))  # fmt: skip
    return Row(
        c.commune,
        units.display_name(c.commune),
        level(c, unused),
        LINE_STATES[c.line_state].words.in_(LANG),
        ", ".join(c.reasons_vi),
        c.hosts_online,
        c.hosts_total,
        c.hosts_degraded,
        issued,
        in_use,
        unused,
    )


def areas(
    communes: list[CommuneStatus], area_names: dict[str, str], equipment: list[CommuneEquipment] | None = None
) -> list[Area]:
    """Areas with problems first, and in each its communes with problems first."""
    kits = {kit.commune: kit for kit in equipment or []}
    by_area: dict[str, list[Row]] = defaultdict(list)
    for c in communes:
        by_area[c.area].append(row(c, kits.get(c.commune)))
    out = []
    for code, rows in by_area.items():
        rows.sort(key=lambda r: (ORDER[r.level], r.code))
        out.append(Area(code, area_names.get(code, code), rows[0].level, rows))
    return sorted(out, key=lambda a: (ORDER[a.level], a.code))


@dataclass(frozen=True)
class Misbehaving:
    commune: str
    name: str
    host: str


def misbehaving(hosts: list[HostStatus]) -> list[Misbehaving]:
    """PCs whose new series the collector drops (degraded reason ``too_many_series``)."""
    found = [h for h in hosts if "too_many_series" in h.reasons]
    return [
        Misbehaving(h.key.commune, units.display_name(h.key.commune), h.key.host)
        for h in sorted(found, key=lambda h: (h.key.commune, h.key.host))
    ]


@dataclass(frozen=True)
class OtherDevice:
    usb_id: str
    model: str
    communes: list[str]  # display names
    codes: str  # the communes' codes, space-separated


def other_devices(equipment: list[CommuneEquipment]) -> tuple[list[OtherDevice], int]:
    """Devices of kind other, one per USB id (its most recently seen model text), seen in most
    communes first; and how many are left out."""
    latest: dict[str, tuple[float, str]] = {}
    seen_in: dict[str, set[str]] = defaultdict(set)
    for kit in equipment:
        for device in kit.other:
            key = usb_id(device.device)
            if not key:
                continue
            seen_in[key].add(kit.commune)
            if key not in latest or device.last_seen > latest[key][0]:
                latest[key] = (device.last_seen, device.model)
    ordered = sorted(seen_in, key=lambda key: (-len(seen_in[key]), key))
    shown = []
    for key in ordered[:MAX_OTHER_DEVICES]:
        codes = sorted(seen_in[key])
        shown.append(OtherDevice(key, latest[key][1], [units.display_name(c) for c in codes], " ".join(codes)))
    return shown, max(0, len(ordered) - MAX_OTHER_DEVICES)


def render(
    communes: list[CommuneStatus],
    area_names: dict[str, str],
    now: float,
    hosts: list[HostStatus] | None = None,
    equipment: list[CommuneEquipment] | None = None,
) -> str:
    provinces = sorted({c.province for c in communes})
    text = {key: words.in_(LANG) for key, words in STATUS_PAGE.items()}
    shown = areas(communes, area_names, equipment)
    others, others_left = other_devices(equipment or [])
    return templating.render(
        "status.html",
        lang=LANG,
        text=text,
        levels={key: words.in_(LANG) for key, words in STATUS_LEVELS.items()},
        title=", ".join(units.province_name(p) or p for p in provinces) or text["no_data"],
        counts={colour: sum(1 for a in shown for r in a.rows if r.level == colour) for colour in ORDER},
        updated=time.strftime("%H:%M:%S %d/%m/%Y", time.localtime(now)),
        areas=shown,
        misbehaving=misbehaving(hosts or []),
        others=others,
        others_left=others_left,
    )


@router.get("/status", response_class=HTMLResponse)
def status(snapshot: SnapshotDep, registry: RegistryDep) -> HTMLResponse:
    return HTMLResponse(render(snapshot.communes, registry.areas(), time.time(), snapshot.hosts, snapshot.equipment))
