"""The collector's own ``agent``, ``commune`` and ``equipment`` points: one per known PC, per
commune, and per commune and kind of issued or seen equipment each evaluation, so Grafana sees
silence (a PC that stopped reporting still has a point saying so) and can show states, reasons and
names without a second data source. Field names are a contract with the dashboards
(``collector/grafana/dashboards.py``) and docs/en/reference/influxdb.md."""

from __future__ import annotations

from collector import vocabulary as words
from collector.fleet.equipment import IDLE_STATES, CommuneEquipment, Verdict
from collector.fleet.rules import CommuneStatus, HostStatus, Snapshot
from collector.ingest.lineprotocol import Point
from collector.localtime import LOCAL_DAYS
from collector.registry import units


def agent_point(host: HostStatus, at: float, ts: int) -> Point:
    """``at`` is the moment the host was evaluated, ``ts`` the point's timestamp."""
    tags = {"province": host.key.province, "area": host.area, "commune": host.key.commune, "host": host.key.host}
    fields: dict[str, float | str] = {
        "online": 1.0 if host.online else 0.0,
        "seconds_since_report": round(at - host.last_heard, 1),
        "degraded": 1.0 if host.reasons else 0.0,
        "degraded_reasons": ",".join(host.reasons),
        "degraded_since_ms": host.degraded_since * 1000.0,
        "degraded_reasons_vi": words.degraded_reasons(host.reasons, "vi"),
        "degraded_reasons_en": words.degraded_reasons_en_with_codes(host.reasons),
        "commune_name": units.display_name(host.key.commune),
    }
    return Point("agent", tags, fields, ts)


def commune_point(c: CommuneStatus, area_names: dict[str, str], ts: int) -> Point:
    state = words.LINE_STATES[c.line_state]
    tags = {"province": c.province, "area": c.area, "commune": c.commune}
    fields: dict[str, float | str] = {
        "hosts_total": float(c.hosts_total),
        "hosts_online": float(c.hosts_online),
        "hosts_degraded": float(c.hosts_degraded),
        "line_state": c.line_state,
        "line_state_code": float(state.code),
        "line_severity": float(state.severity),
        "line_down": 1.0 if c.line_state == "down" else 0.0,
        "line_degraded": 1.0 if c.line_state == "degraded" else 0.0,
        "line_unused": 1.0 if c.line_state == "unused" else 0.0,
        "contracted_down_mbps": c.contracted_down_mbps,
        "days_unused": c.days_unused,
        "commune_name": units.display_name(c.commune),
        "area_name": area_names.get(c.area, c.area),
        "traffic_mb_per_day": c.traffic_mb_per_day,
        "last_traffic_day": LOCAL_DAYS.day(c.last_traffic_at) if c.last_traffic_at else "",
    }
    return Point("commune", tags, fields, ts)


def points(snapshot: Snapshot, area_names: dict[str, str], now: float) -> list[Point]:
    """Every PC's ``agent`` point, then every commune's ``commune`` point, stamped ``now``."""
    ts = int(now)
    return [agent_point(h, snapshot.at, ts) for h in snapshot.hosts] + [
        commune_point(c, area_names, ts) for c in snapshot.communes
    ]


def idle_item(v: Verdict, lang: str) -> str:
    """``holder (model): state, N days`` for the dashboard's table of idle items."""
    state = words.EQUIPMENT_STATES[v.state].in_(lang)
    unit = "ngày" if lang == "vi" else "days"
    return f"{v.item.holder} ({v.item.model}): {state}, {v.days:.0f} {unit}"


def equipment_points(communes: list[CommuneEquipment], areas: dict[str, str], now: float) -> list[Point]:
    """Per commune and kind: issued, in use (``seen``), idle (``unused``: plugged in but never opened,
    unused or never seen), of which plugged idle and never seen, the items judged by PC/SC rather than
    presence, unregistered, and the idle items in
    words (holder, model, state, days)."""
    ts = int(now)
    out = []
    for c in communes:
        counts = c.counts()
        for kind in sorted(set(counts) | {d.kind for d in c.unregistered}):
            count = counts.get(kind)
            idle = [v for v in c.verdicts if v.item.kind == kind and v.state in IDLE_STATES]
            tags = {"province": c.province, "area": areas.get(c.commune, ""), "commune": c.commune, "kind": kind}
            fields: dict[str, float | str] = {
                "issued": float(count.issued if count else 0),
                "seen": float(count.seen if count else 0),
                "unused": float(count.unused if count else 0),
                "never_seen": float(sum(v.state == "never_seen" for v in idle)),
                "plugged_idle": float(sum(v.state == "plugged_idle" for v in idle)),
                "judged_pcsc": float(sum(v.rule == "pcsc" for v in c.verdicts if v.item.kind == kind)),
                "unregistered": float(sum(d.kind == kind for d in c.unregistered)),
                "idle_items_vi": "; ".join(idle_item(v, "vi") for v in idle),
                "idle_items_en": "; ".join(idle_item(v, "en") for v in idle),
                "kind_vi": words.PERIPHERAL_KINDS[kind].vi,
                "commune_name": units.display_name(c.commune),
            }
            out.append(Point("equipment", tags, fields, ts))
    return out
