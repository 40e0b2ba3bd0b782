"""``GET /status``: a small read-only status page in Vietnamese for when Grafana is not open.

Province > area > commune, each red (line down), amber (line degraded or unused, or PCs offline
or degraded) or green, problems first; plain server-rendered HTML that refreshes itself every
30 seconds and needs no JavaScript. Public unless ``[http] public_status_page = false``, then a
viewer token is needed like the rest of the API.
"""

from __future__ import annotations

import time
from collections import defaultdict
from html import escape

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from collector.fleet.rules import CommuneStatus
from collector.http.deps import RegistryDep, SnapshotDep
from collector.registry import units
from collector.vocabulary import LINE_STATES

router = APIRouter()

LEVEL_TEXT = {"red": "Sự cố", "amber": "Cần chú ý", "green": "Bình thường"}
ORDER = {"red": 0, "amber": 1, "green": 2}
STYLE = """
body{font-family:system-ui,sans-serif;margin:1rem;color:#1b1b1b}
h1{font-size:1.4rem;margin:.2rem 0} h2{font-size:1.1rem;margin:1rem 0 .3rem}
.counts span{display:inline-block;margin-right:1rem}
table{border-collapse:collapse;width:100%;table-layout:fixed}
td,th{padding:.25rem .5rem;border-bottom:1px solid #ddd;text-align:left}
th:nth-child(1){width:34%} th:nth-child(2){width:36%}
.level{display:inline-block;width:.9rem;height:.9rem;border-radius:50%;vertical-align:middle;margin-right:.4rem}
.level.red{background:#c62828} .level.amber{background:#f9a825} .level.green{background:#2e7d32}
tr[data-level="red"] td{background:#fdecea} tr[data-level="amber"] td{background:#fff8e1}
small{color:#555}
"""


def level(c: CommuneStatus) -> str:
    if c.line_state == "down":
        return "red"
    if c.line_state in ("degraded", "unused", "unknown") or c.hosts_degraded or c.hosts_online < c.hosts_total:
        return "amber"
    return "green"


def dot(colour: str) -> str:
    return f'<span class="level {colour}" title="{LEVEL_TEXT[colour]}"></span>'


def commune_row(c: CommuneStatus) -> str:
    name = escape(units.display_name(c.commune))
    colour = level(c)
    why = escape(", ".join(c.reasons_vi))
    code = escape(c.commune)
    return (
        f'<tr data-commune="{code}" data-level="{colour}">'
        f"<td>{dot(colour)}{name} <small>{code}</small></td>"
        f"<td>{escape(LINE_STATES[c.line_state].words.vi)} <small>{why}</small></td>"
        f"<td>{c.hosts_online}/{c.hosts_total}</td><td>{c.hosts_degraded}</td></tr>"
    )


def render(communes: list[CommuneStatus], area_names: dict[str, str], now: float) -> str:
    by_area: dict[str, list[CommuneStatus]] = defaultdict(list)
    for c in communes:
        by_area[c.area].append(c)
    provinces = sorted({c.province for c in communes})
    title = ", ".join(escape(units.province_name(p) or p) for p in provinces) or "chưa có dữ liệu"
    counts = {colour: sum(1 for c in communes if level(c) == colour) for colour in ORDER}
    sections = []
    for area, members in sorted(by_area.items(), key=lambda kv: (min(ORDER[level(c)] for c in kv[1]), kv[0])):
        members.sort(key=lambda c: (ORDER[level(c)], c.commune))
        worst = level(members[0])
        rows = "".join(commune_row(c) for c in members)
        sections.append(
            f'<section data-area="{escape(area)}" data-level="{worst}"><h2>{dot(worst)}'
            f"{escape(area_names.get(area, area))} <small>({len(members)} xã)</small></h2>"
            "<table><thead><tr><th>Xã/phường</th><th>Đường truyền</th><th>Máy hoạt động</th>"
            f"<th>Máy xuống cấp</th></tr></thead><tbody>{rows}</tbody></table></section>"
        )
    stamp = time.strftime("%H:%M:%S %d/%m/%Y", time.localtime(now))
    counters = "".join(
        f'<span id="count-{colour}">{dot(colour)}{LEVEL_TEXT[colour]}: {counts[colour]} xã</span>' for colour in ORDER
    )
    return (
        '<!doctype html><html lang="vi"><head><meta charset="utf-8">'
        '<meta http-equiv="refresh" content="30"><meta name="viewport" content="width=device-width">'
        f"<title>Tình trạng hệ thống: {title}</title><style>{STYLE}</style></head><body>"
        f'<h1>Tình trạng hệ thống: {title}</h1><p class="counts">{counters}'
        f"<small>cập nhật {stamp}</small></p>{''.join(sections)}</body></html>"
    )


@router.get("/status", response_class=HTMLResponse)
def status(snapshot: SnapshotDep, registry: RegistryDep) -> HTMLResponse:
    return HTMLResponse(render(snapshot.communes, registry.areas(), time.time()))
