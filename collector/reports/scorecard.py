"""One commune's scorecard for the API: its figures (raw and adjusted) and the evidence rows each is
made of, computed for that commune alone (its own rows; the fleet's outages for our own silence),
by the same code as the monthly report, without building the report."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

from collector import vocabulary as vocab
from collector.config import ReportSettings
from collector.ingest.influx import InfluxClient
from collector.registry import units
from collector.registry.registry import Registry
from collector.reports import evidence as ev
from collector.reports.build import ReportError, asked_month
from collector.reports.evidence import CommuneEvidence
from collector.reports.figures import CommuneFigures, Place, compute
from collector.reports.gather import fetch
from collector.store import Store


class UnknownCommune(ReportError):
    """The commune asked is not in the registry (no line, no area)."""


def scorecard(
    client: InfluxClient,
    store: Store,
    registry: Registry,
    settings: ReportSettings,
    month_text: str,
    code: str,
    now: float | None = None,
    equipment_days: int = 14,
) -> dict[str, Any]:
    """The scorecard of commune ``code`` for ``month_text`` (YYYY-MM; this month up to now).
    ReportError for a month that cannot be asked, UnknownCommune for a commune not registered."""
    now = time.time() if now is None else now
    month, hours = asked_month(settings, month_text, now)
    by_area = registry.communes_by_area()
    if not registry.lines(code) and not any(code in communes for communes in by_area.values()):
        raise UnknownCommune(f"commune {code} has no registered line and is in no area")
    area = registry.area_of(code)
    place = Place(code, units.display_name(code), area, registry.areas().get(area, area))
    start, end = hours.month_bounds(month)
    until = int(min(end, now))
    windows = hours.windows_of(month, until=now)
    fetched = fetch(
        client,
        store,
        windows,
        start,
        until,
        now,
        registry,
        commune=code,
        zone=hours.zone.key,
        equipment_days=equipment_days,
    )
    fetched.communes = [s for s in fetched.communes if s.commune == code]
    fetched.hosts = [s for s in fetched.hosts if s.commune == code]
    figures = compute(fetched, {code: place}, settings.down_hours_over, settings.degraded_days_over)
    zone = hours.zone
    rule = {"timezone": settings.timezone, "windows": list(settings.office_hours), "workdays": list(settings.workdays),
            "holidays": [d.isoformat() for d in settings.holidays], "office_windows": len(windows)}  # fmt: skip
    base = {"commune": code, "commune_name": place.name, "area": area, "area_name": place.area_name,
            "month": str(month), "from": start, "until": until, "made_at": now, "office_hours": rule}  # fmt: skip
    if figures.no_data:
        found = figures.no_data[0]
        since = found.since
        reason = ({"code": "no_agent_since", "since": since, "date": _date(since, zone)} if since
                  else {"code": "no_agent_ever", "since": None, "date": None})  # fmt: skip
        words = vocab.REPORT["no_agent_since" if since else "no_agent_ever"]
        return {**base, "no_data": True, "ranked": False,
                "reason": {**reason, "vi": words.vi.format(date=reason["date"] or ""),
                           "en": words.en.format(date=reason["date"] or "")},
                "figures": figures_json(found.figures), "evidence": evidence_json(found.figures.evidence)}  # fmt: skip
    if not figures.communes:
        return {**base, "no_data": True, "ranked": False, "reason": None, "figures": None, "evidence": None}
    mine = figures.communes[0]
    return {**base, "no_data": False, "ranked": True, "figures": figures_json(mine),
            "evidence": evidence_json(mine.evidence)}  # fmt: skip


def figures_json(c: CommuneFigures) -> dict[str, Any]:
    return {
        "line_availability": {"raw": c.line_availability, "adjusted": c.line_availability_adjusted},
        "pc_availability": {"raw": c.pc_availability, "adjusted": c.pc_availability_adjusted},
        "score": {"raw": c.score_raw, "adjusted": c.score},
        "down_hours": c.down_hours,
        "speed_percent": c.speed_percent,
        "unused_days": c.unused_days,
        "office_days": c.office_days,
        "pcs_online": c.pcs_online,
        "pcs_total": c.pcs_total,
        "degraded_pcs": len(c.degraded),
        "alerts_fired": c.alerts_fired,
        "alert_hours": c.alert_hours,
        "equipment": [asdict(k) for k in c.equipment],
        # every PC runs an agent too old to report peripherals: in use is unknown (null), not zero
        "equipment_unreported": ev.unreported(c.evidence.pcs, "equipment"),
    }


def evidence_json(e: CommuneEvidence) -> dict[str, Any]:
    """The rows, each with what it adds to its figure (the same properties the figure is summed from)."""
    line = [{**asdict(r), "day": r.day.isoformat(), "counted": r.counted, "charged": r.charged, "up": r.up,
             "counted_adjusted": r.counted_adjusted, "up_adjusted": r.up_adjusted} for r in e.line]  # fmt: skip
    pcs = [{**asdict(p), "spells": [{"first": s.first.isoformat(), "last": s.last.isoformat(), "days": s.days}
                                    for s in p.spells]} for p in e.pcs]  # fmt: skip
    outages = [{**asdict(o), "cause_vi": _word(vocab.OUTAGE_CAUSES, o.cause, "vi"),
                "cause_en": _word(vocab.OUTAGE_CAUSES, o.cause, "en")} for o in e.outages]  # fmt: skip
    exclusions = [{**asdict(x), "reason_vi": _word(vocab.EXCLUSION_REASONS, x.reason, "vi"),
                   "reason_en": _word(vocab.EXCLUSION_REASONS, x.reason, "en")} for x in e.exclusions]  # fmt: skip
    return {
        "line": line,
        "outages": outages,
        "exclusions": exclusions,
        "no_data_spans": [{"start": a, "end": b} for a, b in e.silence],
        "pcs": pcs,
        "speed_tests": [asdict(s) for s in e.speed],
        "items": [
            {
                **asdict(r),
                "days": [d.isoformat() for d in r.days],
                "in_use": r.in_use,
                "state_vi": _word(vocab.EQUIPMENT_STATES, r.state, "vi"),
                "state_en": _word(vocab.EQUIPMENT_STATES, r.state, "en"),
            }
            for r in e.items
        ],
    }


def _word(words: dict[str, vocab.Words], code: str, lang: str) -> str:
    return words[code].in_(lang) if code in words else code


def _date(epoch: float, zone: Any) -> str:
    return datetime.fromtimestamp(epoch, zone).strftime("%d/%m/%Y")
