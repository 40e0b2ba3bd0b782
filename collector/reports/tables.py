"""The report's tables in one language: titles, headers and cells, shared by every format.

The HTML (and so the PDF) shows each cell through ``fmt``; the XLSX writes the same cells with
numbers as numbers. One source for both is what makes their figures equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from collector import vocabulary as vocab
from collector.registry import units
from collector.reports.build import MonthlyReport
from collector.reports.figures import GroupFigures, Kit
from collector.reports.replacement import SCORE_PARTS
from collector.reports.score import WEIGHTS

Cell = float | int | str | None


@dataclass(frozen=True)
class Table:
    key: str  # sheet name's key in the vocabulary
    title: str
    headers: list[str]
    rows: list[list[Cell]]
    empty: str = ""  # said instead of an empty table
    note: str = ""  # said under the table


def fmt(value: Cell, lang: str, signed: bool = False) -> str:
    """A cell as people read it: one decimal, a decimal comma in Vietnamese, "–" for no figure."""
    if value is None:
        return "–"
    if isinstance(value, str):
        return value
    text = f"{value:+.1f}" if signed and isinstance(value, float) else f"{value:+d}" if signed else (
        f"{value:.1f}" if isinstance(value, float) else str(value))  # fmt: skip
    text = text.replace("-", "−")
    return text.replace(".", ",") if lang == "vi" else text


def tables(report: MonthlyReport) -> list[Table]:
    w = vocab.report_words(report.language)
    f = report.figures
    return [summary(report, w), areas(f.areas, w), communes(report, w), equipment(report, w), *lists(report, w)]


def summary(report: MonthlyReport, w: dict[str, str]) -> Table:
    total = report.figures.total
    rows: list[list[Cell]] = [
        [w[key], getattr(total, key), total.changes.get(key)]
        for key in ("communes", "pcs", "line_availability", "pc_availability", "unused_communes", "degraded_pcs")
    ]
    if total.equipment_issued or total.equipment_in_use is not None:
        rows += [[w[k], getattr(total, k), total.changes.get(k)] for k in ("equipment_issued", "equipment_in_use")]
    else:
        rows.append([w["equipment_issued"], w["no_data_yet"], None])
    return Table("sheet_summary", w["summary"], [w["figure"], w["value"], w["change"]], rows)


def areas(groups: list[GroupFigures], w: dict[str, str]) -> Table:
    headers = [w["area"], w["communes"], w["pcs"], w["line_availability"], "±", w["pc_availability"], "±",
               w["unused_communes"], w["degraded_pcs"], w["speed_percent"], w["equipment_issued"],
               w["equipment_in_use"], "±"]  # fmt: skip
    rows: list[list[Cell]] = [
        [g.name, g.communes, g.pcs, g.line_availability, g.changes.get("line_availability"), g.pc_availability,
         g.changes.get("pc_availability"), g.unused_communes, g.degraded_pcs, g.speed_percent, g.equipment_issued,
         g.equipment_in_use, g.changes.get("equipment_in_use")]
        for g in groups
    ]  # fmt: skip
    return Table("sheet_areas", w["per_area"], headers, rows)


def communes(report: MonthlyReport, w: dict[str, str]) -> Table:
    lang = report.language
    keys = ("rank", "±", "commune", "area", "line_availability", "down_hours", "speed_percent", "unused_days",
            "pcs_online", "pcs_total", "pc_availability", "degraded_reasons", "alerts", "alert_hours", "score",
            "±", "line_availability_adjusted", "pc_availability_adjusted", "score_raw")  # fmt: skip
    headers = [w.get(k, k) for k in keys]
    rows: list[list[Cell]] = []
    for c in report.figures.communes:
        degraded = "; ".join(f"{d.host}: {vocab.degraded_reasons(d.reasons, lang)}" for d in c.degraded)
        rows.append([c.rank, c.rank_change, c.place.name, c.place.area_name, c.line_availability, c.down_hours,
                     c.speed_percent, c.unused_days, c.pcs_online, c.pcs_total, c.pc_availability,
                     degraded, c.alerts_fired, c.alert_hours, c.score, c.score_change,
                     c.line_availability_adjusted, c.pc_availability_adjusted, c.score_raw])  # fmt: skip
    return Table("sheet_communes", w["per_commune"], headers, rows)


def equipment(report: MonthlyReport, w: dict[str, str]) -> Table:
    """Per commune (worst first): items issued, in use, not in use, the change in use, and each kind
    as "in use/issued"."""
    lang = report.language
    headers = [w["commune"], w["area"], w["equipment_issued"], w["equipment_in_use"], w["equipment_idle"], "±",
               w["equipment_kinds"]]  # fmt: skip
    rows: list[list[Cell]] = []
    for c in report.figures.communes:
        if not c.equipment:
            continue
        issued = sum(k.issued for k in c.equipment)
        said = [k.in_use for k in c.equipment if k.in_use is not None]
        in_use = sum(said) if said else None
        kinds = "; ".join(kit_words(k, w, lang) for k in c.equipment)
        idle = max(0, issued - in_use) if in_use is not None else None
        rows.append([c.place.name, c.place.area_name, issued, in_use, idle, c.equipment_change, kinds])
    title = w["per_commune_equipment"].format(days=report.equipment_days)
    return Table("sheet_equipment", title, headers, rows, w["section_no_data"])


def kit_words(k: Kit, w: dict[str, str], lang: str) -> str:
    """``token 1/2``, and where PC/SC judged: ``(plugged in, never opened: 1; judged by PC/SC: 2)``."""
    said = f"{kind_word(k.kind, lang)} {'–' if k.in_use is None else k.in_use}/{k.issued}"
    if not k.pcsc:
        return said
    return f"{said} ({w['plugged_idle']}: {k.plugged_idle}; {w['judged_pcsc']}: {k.pcsc})"


def kind_word(kind: str, lang: str) -> str:
    return vocab.PERIPHERAL_KINDS[kind].in_(lang) if kind in vocab.PERIPHERAL_KINDS else kind


def lists(report: MonthlyReport, w: dict[str, str]) -> list[Table]:
    f, s = report.figures, report
    lang = report.language
    down = Table("sheet_down_long", w["down_long"].format(hours=s.down_hours_over),
                 [w["commune"], w["area"], w["down_hours"], w["line_availability"]],
                 [[c.place.name, c.place.area_name, c.down_hours, c.line_availability] for c in f.down_long],
                 w["none"])  # fmt: skip
    unused_rows: list[list[Cell]] = [[c.place.name, c.place.area_name, c.unused_days] for c in f.unused_all_month]
    unused = Table("sheet_unused", w["unused_all_month"], [w["commune"], w["area"], w["unused_days"]], unused_rows,
                   w["none"])  # fmt: skip
    names = {c.place.commune: c.place.name for c in f.communes}
    degraded = Table("sheet_degraded", w["degraded_long"].format(days=s.degraded_days_over),
                     [w["commune"], w["host"], w["days"], w["reasons"]],
                     [[names.get(d.commune, d.commune), d.host, d.days, vocab.degraded_reasons(d.reasons, lang)]
                      for d in f.degraded_long], w["none"])  # fmt: skip
    return [down, unused, degraded, no_data(report, w), exclusions(report, w)]


def no_data(report: MonthlyReport, w: dict[str, str]) -> Table:
    """The communes with no reporting agent all month, with why: listed apart, not ranked."""
    rows: list[list[Cell]] = []
    for n in report.figures.no_data:
        when = datetime.fromtimestamp(n.since, report.hours.zone).strftime("%d/%m/%Y") if n.since else ""
        reason = w["no_agent_since"].format(date=when) if n.since else w["no_agent_ever"]
        rows.append([n.place.name, n.place.area_name, reason])
    return Table("sheet_no_data", w["no_data_list"], [w["commune"], w["area"], w["no_data_reason"]], rows, w["none"])


def exclusions(report: MonthlyReport, w: dict[str, str]) -> Table:
    """Every exclusion applied to the month's adjusted figures, with who recorded it."""
    lang, zone = report.language, report.hours.zone
    rows: list[list[Cell]] = []
    for c in [*report.figures.communes, *(n.figures for n in report.figures.no_data)]:
        for e in c.evidence.exclusions:
            scope = vocab.EXCLUSION_SCOPES[e.scope].in_(lang) if e.scope in vocab.EXCLUSION_SCOPES else e.scope
            reason = vocab.EXCLUSION_REASONS[e.reason].in_(lang) if e.reason in vocab.EXCLUSION_REASONS else e.reason
            rows.append([e.id, c.place.name, f"{scope} {e.target}".strip(),
                         datetime.fromtimestamp(e.start, zone).strftime("%Y-%m-%d %H:%M"),
                         datetime.fromtimestamp(e.end, zone).strftime("%Y-%m-%d %H:%M"), reason, e.note, e.by_name,
                         round(e.office_s / 3600, 1)])  # fmt: skip
    headers = [w["exclusion_id"], w["commune"], w["exclusion_scope"], w["exclusion_from"], w["exclusion_to"],
               w["exclusion_reason"], w["exclusion_note"], w["exclusion_by"], w["exclusion_hours"]]  # fmt: skip
    return Table("sheet_exclusions", w["exclusions_applied"], headers, rows, w["none"])


PERCENT_PARTS = {"memory_short", "cpu_saturated"}  # shares of time, shown as percent


def replacement(report: MonthlyReport) -> Table:
    """The PCs to replace first: each area's top rows of the replacement list (its own ranking, as
    ``GET /api/v1/replacement``), with their evidence; the rule and how many PCs each area ranked
    under it."""
    lang = report.language
    w = vocab.report_words(lang)
    headers = [w["area"], w["replacement_rank"], w["commune"], w["host"], w["replacement_score"],
               w["replacement_days"], *(w[f"replacement_{name}"] for name in SCORE_PARTS)]  # fmt: skip
    rows: list[list[Cell]] = []
    for group in report.replacement:
        for rank, r in enumerate(group.top, 1):
            shown: list[Cell] = []
            for name in SCORE_PARTS:
                value = float(r["evidence"][name])
                if name == "disk_failing":
                    shown.append(w["replacement_yes"] if value else w["replacement_no"])
                else:
                    shown.append(round(value * 100, 1) if name in PERCENT_PARTS else value)
            rows.append([group.area, rank, units.display_name(r["commune"]), r["host"], r["score"], r["days"], *shown])
    counts = ", ".join(f"{g.area or '–'}: {g.ranked}" for g in report.replacement) or "0"
    note = f"{vocab.REPLACEMENT_RULE.in_(lang)} {w['replacement_counts'].format(counts=counts)}"
    return Table("sheet_replacement", w["replacement"].format(top=report.replacement_top), headers, rows,
                 w["none"], note)  # fmt: skip


def heading(report: MonthlyReport) -> dict[str, str]:
    """The title lines: what, where, which hours were counted, when it was made."""
    w = vocab.report_words(report.language)
    lang = report.language
    hours = report.hours
    windows = ", ".join(f"{a // 60:02d}:{a % 60:02d}–{b // 60:02d}:{b % 60:02d}" for a, b in hours.windows)
    days = vocab.report_weekdays(sorted(hours.workdays), lang)
    _start, end = hours.month_bounds(report.month)
    until = ""
    if report.until < end:
        until = w["until"].format(date=datetime.fromtimestamp(report.until, hours.zone).strftime("%d/%m/%Y %H:%M"))
    return {
        "title": w["title"].format(month=f"{report.month.month:02d}/{report.month.year}"),
        "scope": w["scope_area"].format(area=report.area_name) if report.area else w["scope_all"],
        "hours": w["office_hours"].format(windows=windows, days=days, office_days=report.office_days, until=until),
        "generated": w["generated"].format(
            time=datetime.fromtimestamp(report.generated_at, hours.zone).strftime("%d/%m/%Y %H:%M")
        ),
        "formula": w["score_formula"].format(**{k: fmt(v, lang) for k, v in WEIGHTS.items()}),
        "revision": revision_line(report, w),
    }


def revision_line(report: MonthlyReport, w: dict[str, str]) -> str:
    """Which revision of the month this is, or why it is provisional."""
    r = report.revision
    if r is None:
        return w.get(f"provisional_{report.provisional}", "")
    made = datetime.fromtimestamp(r.made_at, report.hours.zone).strftime("%d/%m/%Y %H:%M")
    return w["revision"].format(number=r.number, time=made, by=r.made_by)


# A frozen figure's word where its name is not a word of the report's own
FIGURE_WORDS = {"alerts_fired": "alerts", "degraded": "degraded_reasons", "equipment": "equipment_in_use"}


def revision_table(report: MonthlyReport) -> Table | None:
    """What changed from the revision before (each commune's figure, before and after) and why;
    None for a first revision or a provisional report."""
    r = report.revision
    if r is None or r.number < 2:
        return None
    lang = report.language
    w = vocab.report_words(lang)
    rows: list[list[Cell]] = [
        [c["name"], w.get(FIGURE_WORDS.get(c["figure"], c["figure"]), c["figure"]), shown(c["old"], w),
         shown(c["new"], w)]
        for c in r.changes
    ]  # fmt: skip
    note = w["revision_why"].format(causes="; ".join(cause(c, report) for c in r.why)) if r.why else ""
    headers = [w["commune"], w["figure"], w["revision_old"], w["revision_new"]]
    return Table("sheet_revision", w["revision_changes"].format(number=r.number - 1), headers, rows,
                 w["revision_no_change"], note)  # fmt: skip


def shown(value: Any, w: dict[str, str]) -> Cell:
    """A frozen figure as a cell: numbers stay numbers; a list (degraded PCs, equipment) in words."""
    if value is None or isinstance(value, int | float):
        return value
    if value == "listed":
        return w["revision_listed"]
    if isinstance(value, list):
        return "; ".join(_item(v) for v in value) or "–"
    return str(value)


def _item(value: Any) -> str:
    if isinstance(value, dict) and "host" in value:  # a degraded PC
        return f"{value['host']}: {value.get('days')} ({', '.join(value.get('reasons') or [])})"
    if isinstance(value, dict) and "kind" in value:  # a kind of equipment: in use / issued
        used = value.get("in_use")
        return f"{value['kind']} {'–' if used is None else used}/{value.get('issued')}"
    return str(value)


def cause(c: dict[str, Any], report: MonthlyReport) -> str:
    """One reason for a revision in the report's language."""
    lang = report.language
    words = vocab.REVISION_CAUSES.get(str(c.get("cause")))
    if words is None:
        return str(c.get("cause"))
    if "exclusion" in c:
        e, taken = c["exclusion"], c.get("withdrawal") or {}
        reason = (
            vocab.EXCLUSION_REASONS[e["reason"]].in_(lang) if e["reason"] in vocab.EXCLUSION_REASONS else e["reason"]
        )
        day = "%d/%m/%Y %H:%M"
        return words.in_(lang).format(
            id=e["id"], commune=units.display_name(e["commune"]), reason=reason,
            start=datetime.fromtimestamp(e["start"], report.hours.zone).strftime(day),
            end=datetime.fromtimestamp(e["end"], report.hours.zone).strftime(day),
            by=taken.get("by", e["by"]), note=taken.get("note", e["note"]),
        )  # fmt: skip
    parts = ", ".join(vocab.REVISION_PARTS[p].in_(lang) if p in vocab.REVISION_PARTS else p for p in c.get("parts", []))
    return words.in_(lang).format(parts=parts)


def outages_table(report: MonthlyReport) -> Table | None:
    """The month's outages, power cuts and office closings too (they are listed, not charged to the
    line); None when the month has none."""
    w = vocab.report_words(report.language)
    found = report.figures.outages
    if not found:
        return None
    names = {c.place.commune: c.place.name for c in report.figures.communes}
    rows: list[list[Cell]] = [
        [names.get(o.commune, o.commune), datetime.fromtimestamp(o.start, report.hours.zone).strftime("%Y-%m-%d %H:%M"),
         round((o.end - o.start) / 3600, 1), vocab.OUTAGE_CAUSES[o.cause].in_(report.language)
         if o.cause in vocab.OUTAGE_CAUSES else o.cause,
         w["charged_yes"] if o.cause in ("line", "unknown") else w["charged_no"]]
        for o in found
    ]  # fmt: skip
    return Table("outages", w["outages"], [w["commune"], w["outage_start"], w["outage_hours"], w["outage_cause"],
                                           w["outage_charged"]], rows)  # fmt: skip
