"""``GET /status``: a small read-only status page in Vietnamese for when Grafana is not open.

Province > area > commune, each red (line down), amber (line degraded or unused, or PCs offline
or degraded) or green, problems first; plain server-rendered HTML that refreshes itself every
30 seconds and needs no JavaScript. Public unless ``[http] public_status_page = false``, then a
viewer token is needed like the rest of the API, and a token scoped to an area or a commune sees
only its scope here too.

The equipment column gives, per commune, the items issued to it, how many are in use, and how many
lie unused or were never plugged in (``collector/fleet/equipment.py``); a commune with idle
equipment is amber.

PCs over their series bound (sending new mount, NIC, sensor... names without end, see
``collector/ingest/series_bounds.py``) are listed by name under the areas, so someone looks at them.

Devices the agents could not place (kind ``other``) are listed once per USB id, with the model
text and the communes they were seen in, those seen in most communes first (at most
``MAX_OTHER_DEVICES``), so someone adds a known-ids row for them.

A nation holds 3,321 communes: the page shows ``PAGE_ROWS`` communes at a time (``?page=2``), and
can be narrowed to one area (``?area=``) and one level (``?level=red``) with a plain form and
links; the counts at the top are over the chosen area, each a link to its level. The PCs over
their bound and the devices not recognised are narrowed to the area too.

This module decides what the page says (levels, order, words from the vocabulary); the markup is
the template ``templates/status.html``, rendered with autoescaping (``templating.py``).
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse

from collector.fleet.equipment import CommuneEquipment, usb_id
from collector.fleet.rules import CommuneStatus, HostStatus
from collector.http import templating
from collector.http.contract import AreaFilter
from collector.http.deps import RegistryDep, SnapshotDep
from collector.http.scope import ScopeDep
from collector.registry import units
from collector.vocabulary import LINE_REASONS, LINE_STATES, STATUS_LEVELS, STATUS_PAGE

router = APIRouter()

LANG = "vi"  # the page is for commune and area staff
ORDER = {level: rank for rank, level in enumerate(STATUS_LEVELS)}  # red, amber, green
MAX_OTHER_DEVICES = 50
PAGE_ROWS = 200  # communes a page shows
Level = Literal["red", "amber", "green"]


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
    total: int = 0  # its communes the filters keep, on every page (0: as many as rows)


def level(c: CommuneStatus, unused_equipment: int = 0) -> str:
    if c.line_state == "down":
        return "red"
    if c.line_state in ("degraded", "unused", "unknown") or c.hosts_degraded or c.hosts_online < c.hosts_total:
        return "amber"
    return "amber" if unused_equipment else "green"


def reasons_in(c: CommuneStatus, lang: str) -> str:
    """Why the line is in its state, in Vietnamese or English (a measured reason stays as measured)."""
    if lang == "vi":
        return ", ".join(c.reasons_vi)
    return ", ".join(LINE_REASONS[r].en if r in LINE_REASONS else r for r in c.reasons)


def row(c: CommuneStatus, kit: CommuneEquipment | None = None, lang: str = LANG) -> Row:
    counts = kit.counts().values() if kit else []
    issued, in_use, unused = (sum(k.issued for k in counts), sum(k.seen for k in counts),
                              sum(k.unused for k in counts))  # fmt: skip
    return Row(
        c.commune,
        units.display_name(c.commune),
        level(c, unused),
        LINE_STATES[c.line_state].words.in_(lang),
        reasons_in(c, lang),
        c.hosts_online,
        c.hosts_total,
        c.hosts_degraded,
        issued,
        in_use,
        unused,
    )


def areas(
    communes: list[CommuneStatus],
    area_names: dict[str, str],
    equipment: list[CommuneEquipment] | None = None,
    lang: str = LANG,
) -> list[Area]:
    """Areas with problems first, and in each its communes with problems first."""
    kits = {kit.commune: kit for kit in equipment or []}
    by_area: dict[str, list[Row]] = defaultdict(list)
    for c in communes:
        by_area[c.area].append(row(c, kits.get(c.commune), lang))
    out = []
    for code, rows in by_area.items():
        rows.sort(key=lambda r: (ORDER[r.level], r.code))
        out.append(Area(code, area_names.get(code, code), rows[0].level, rows))
    return sorted(out, key=lambda a: (ORDER[a.level], a.code))


def narrowed(shown: list[Area], level: str | None) -> list[Area]:
    """Only the rows of ``level`` (all when None); an area left without rows is dropped, the rest
    keep their order and their level (the worst of all their communes)."""
    out = []
    for area in shown:
        rows = [r for r in area.rows if level is None or r.level == level]
        if rows:
            out.append(Area(area.code, area.name, area.level, rows, len(rows)))
    return out


def one_page(shown: list[Area], page: int, size: int = PAGE_ROWS) -> list[Area]:
    """The rows from ``(page - 1) * size`` on, ``size`` at most, in the same order, each under its
    area's heading (an area split between two pages heads both, with its whole count)."""
    start, out, at = (page - 1) * size, [], 0
    for area in shown:
        rows = area.rows[max(0, start - at) : max(0, start + size - at)]
        at += len(area.rows)
        if rows:
            out.append(Area(area.code, area.name, area.level, rows, area.total or len(area.rows)))
    return out


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


class NoSuchPage(ValueError):
    """A page past the last one of the chosen communes."""


def link(area: str | None, level: str | None, page: int = 1) -> str:
    """The page's own address with these filters (the ones left out are not in it)."""
    query = {key: value for key, value in (("area", area), ("level", level)) if value}
    if page > 1:
        query["page"] = str(page)
    return "/status" + ("?" + urlencode(query) if query else "")


def render(
    communes: list[CommuneStatus],
    area_names: dict[str, str],
    now: float,
    hosts: list[HostStatus] | None = None,
    equipment: list[CommuneEquipment] | None = None,
    area: str | None = None,
    level: str | None = None,
    page: int = 1,
) -> str:
    """The page of ``area``'s communes (all when None) at ``level`` (all when None); ``NoSuchPage``
    past the last page (the first page always exists, if empty)."""
    provinces = sorted({c.province for c in communes})
    text = {key: words.in_(LANG) for key, words in STATUS_PAGE.items()}
    known_areas = sorted({c.area for c in communes})
    if area is not None:
        communes = [c for c in communes if c.area == area]
        in_area = {c.commune for c in communes}
        hosts = [h for h in hosts or [] if h.area == area]
        equipment = [kit for kit in equipment or [] if kit.commune in in_area]
    everything = areas(communes, area_names, equipment)
    chosen = narrowed(everything, level)
    matching = sum(len(a.rows) for a in chosen)
    pages = max(1, -(-matching // PAGE_ROWS))
    if not 1 <= page <= pages:
        raise NoSuchPage(page)
    first = (page - 1) * PAGE_ROWS
    others, others_left = other_devices(equipment or [])
    return templating.render(
        "status.html",
        lang=LANG,
        text=text,
        levels={key: words.in_(LANG) for key, words in STATUS_LEVELS.items()},
        title=", ".join(units.province_name(p) or p for p in provinces) or text["no_data"],
        counts={colour: sum(1 for a in everything for r in a.rows if r.level == colour) for colour in ORDER},
        level_links={colour: link(area, colour) for colour in ORDER},
        all_link=link(area, None),
        updated=time.strftime("%H:%M:%S %d/%m/%Y", time.localtime(now)),
        areas=one_page(chosen, page),
        area_choices=[(code, area_names.get(code, code)) for code in known_areas],
        area=area or "",
        level=level or "",
        page=page,
        pages=pages,
        shown_from=first + 1 if matching else 0,
        shown_to=min(first + PAGE_ROWS, matching),
        matching=matching,
        previous_link=link(area, level, page - 1) if page > 1 else "",
        next_link=link(area, level, page + 1) if page < pages else "",
        misbehaving=misbehaving(hosts or []),
        others=others,
        others_left=others_left,
    )


Page = Annotated[int, Query(ge=1, le=10_000, description=f"which page of {PAGE_ROWS} communes (from 1)")]
LevelFilter = Annotated[Level | None, Query(description="only communes at this level (red, amber, green)")]


NOT_FOUND = {404: {"description": "No such page: the communes chosen fill fewer pages.", "content": {"text/html": {}}}}


@router.get("/status", response_class=HTMLResponse, responses=NOT_FOUND)  # type: ignore[arg-type]
def status(
    snapshot: SnapshotDep,
    registry: RegistryDep,
    scope: ScopeDep,
    area: AreaFilter = None,
    level: LevelFilter = None,
    page: Page = 1,
) -> HTMLResponse:
    """The status page: ``area`` and ``level`` narrow it, ``page`` pages it (``PAGE_ROWS`` communes a page).
    With a token scoped to an area or a commune (``public_status_page = false``), only its scope.
    Each page is made once per evaluation (``Snapshot.answer``) and says when that evaluation was."""

    def make() -> str:
        communes = [c for c in snapshot.communes if scope.sees_commune(c.commune)]
        hosts = [h for h in snapshot.degraded_hosts if scope.sees_commune(h.key.commune)]  # the page lists only those
        equipment = [kit for kit in snapshot.equipment if scope.sees_commune(kit.commune)]
        evaluated = snapshot.at or time.time()
        return render(communes, registry.areas(), evaluated, hosts, equipment, area, level, page)

    try:
        html = snapshot.answer(("status", scope, area, level, page), make)
    except NoSuchPage:
        text = {key: words.in_(LANG) for key, words in STATUS_PAGE.items()}
        page_one = templating.render("status_missing.html", lang=LANG, text=text, page=page, first=link(area, level))
        return HTMLResponse(page_one, status_code=404)
    return HTMLResponse(html)
