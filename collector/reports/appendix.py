"""The evidence appendix of the monthly report: each commune's evidence rows as tables, in the HTML
and XLSX reports (the PDF on request, ``report --evidence``, so the province's PDF stays short).

Four tables, each grouped by commune (by area, then name), each commune's rows followed by its
total row, whose figure is the one the report prints, computed from the same rows
(``reports/evidence.py``):

- the line, per office window: slots with data, unused, down, excused (power cut, office closed),
  no data (nobody in the fleet heard), counted, up, the share excluded, and the adjusted counts.
  Windows alike from end to end (every slot up, or unused, or down and charged, nothing excused,
  excluded or missing) are one row per commune and kind ("N windows, all up") so a nation's
  appendix stays readable; their slots add up the same;
- the outages, with their cause, whether the line is charged, and the evidence of the cause;
- the PCs: slots, online, degraded, with and without exclusions, degraded spells and reasons;
- the speed tests the median is taken of;
- the issued items: the device each matched, the days it was seen, its state at the month's end and
  the rule that judged it; each commune's total is the equipment figure (raw and adjusted).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from collector import vocabulary as vocab
from collector.reports import evidence as ev
from collector.reports.build import MonthlyReport
from collector.reports.evidence import CommuneEvidence, LineRow
from collector.reports.figures import Place
from collector.reports.tables import Cell, Table

DAY = "%d/%m %H:%M"


def communes(report: MonthlyReport) -> Iterator[tuple[Place, CommuneEvidence]]:
    """Every commune of the report with its evidence, ranked or not, by area and name."""
    every = [(c.place, c.evidence) for c in report.figures.communes]
    every += [(n.place, n.figures.evidence) for n in report.figures.no_data]
    yield from sorted(every, key=lambda pe: (pe[0].area_name, pe[0].name, pe[0].commune))


def tables(report: MonthlyReport) -> list[Table]:
    w = vocab.report_words(report.language)
    return [line(report, w), outages(report, w), pcs(report, w), speed(report, w), items(report, w)]


def _plain(r: LineRow) -> str:
    """A window told in one summary row with its like: every slot up, every slot unused, or every
    slot down and charged to the line, with nothing excused, excluded or missing; "" otherwise."""
    if r.slots <= 0 or r.excused or r.no_data or r.excluded:
        return ""
    if not r.unused and not r.down:
        return "ev_windows_up"
    if r.unused >= r.slots and not r.down:
        return "ev_windows_unused"
    if not r.unused and r.down >= r.slots:
        return "ev_windows_down"
    return ""


def line(report: MonthlyReport, w: dict[str, str]) -> Table:
    zone = report.hours.zone
    rows: list[list[Cell]] = []
    for place, found in communes(report):
        alike: dict[str, list[LineRow]] = {}
        for r in found.line:
            kind = _plain(r)
            if kind:
                alike.setdefault(kind, []).append(r)
                continue
            when = f"{datetime.fromtimestamp(r.start, zone).strftime(DAY)}–{datetime.fromtimestamp(r.end, zone):%H:%M}"
            rows.append([place.name, when, *_sums([r]), round(100 * r.excluded, 1), r.counted_adjusted, r.up_adjusted,
                         None, None])  # fmt: skip
        for kind in ("ev_windows_up", "ev_windows_unused", "ev_windows_down"):
            if kind in alike:
                same = alike[kind]
                rows.append([place.name, w[kind].format(n=len(same)), *_sums(same), 0.0, *_sums(same)[5:], None, None])
        total = found.line
        rows.append([place.name, w["ev_total"], *_sums(total), None, sum(r.counted_adjusted for r in total),
                     sum(r.up_adjusted for r in total), ev.line_availability(total),
                     ev.line_availability_adjusted(total)])  # fmt: skip
    headers = [w["commune"], w["ev_window"], w["ev_slots"], w["ev_unused"], w["ev_down"], w["ev_excused"],
               w["ev_no_data"], w["ev_counted"], w["ev_up"], w["ev_excluded"], w["ev_counted_adjusted"],
               w["ev_up_adjusted"], w["line_availability"], w["line_availability_adjusted"]]  # fmt: skip
    return Table("sheet_ev_line", w["ev_line"], headers, rows, w["none"], w["ev_line_note"])


def _sums(rows: list[LineRow]) -> list[Cell]:
    """Slots, unused, down, excused, no data, counted, up: summed over ``rows``."""
    return [sum(r.slots for r in rows), sum(r.unused for r in rows), sum(r.down for r in rows),
            sum(r.excused for r in rows), sum(r.no_data for r in rows), sum(r.counted for r in rows),
            sum(r.up for r in rows)]  # fmt: skip


def outages(report: MonthlyReport, w: dict[str, str]) -> Table:
    lang, zone = report.language, report.hours.zone
    rows: list[list[Cell]] = []
    for place, found in communes(report):
        for o in found.outages:
            cause = vocab.OUTAGE_CAUSES[o.cause].in_(lang) if o.cause in vocab.OUTAGE_CAUSES else o.cause
            said = "; ".join([*o.reasons, *o.hosts])
            rows.append([place.name, datetime.fromtimestamp(o.start, zone).strftime("%Y-%m-%d %H:%M"),
                         datetime.fromtimestamp(o.end, zone).strftime("%Y-%m-%d %H:%M"), cause,
                         w["charged_yes"] if o.charged else w["charged_no"], round(o.office_s / 3600, 2),
                         round(o.confidence, 2) if o.reasons or o.hosts else None, said])  # fmt: skip
    headers = [w["commune"], w["outage_start"], w["ev_end"], w["outage_cause"], w["outage_charged"],
               w["ev_office_hours"], w["ev_confidence"], w["ev_cause_evidence"]]  # fmt: skip
    return Table("sheet_ev_outages", w["ev_outages"], headers, rows, w["none"])


def pcs(report: MonthlyReport, w: dict[str, str]) -> Table:
    lang = report.language
    rows: list[list[Cell]] = []
    for place, found in communes(report):
        for p in found.pcs:
            spells = ", ".join(f"{s.first:%d/%m}–{s.last:%d/%m} ({s.days})" for s in p.spells)
            rows.append([place.name, p.host, p.slots, p.online, p.degraded, p.slots_adjusted, p.online_adjusted,
                         p.degraded_days, spells, vocab.degraded_reasons(p.reasons, lang), None, None])  # fmt: skip
        if found.pcs:
            every = found.pcs
            rows.append([place.name, w["ev_total"], sum(p.slots for p in every), sum(p.online for p in every),
                         sum(p.degraded for p in every), sum(p.slots_adjusted for p in every),
                         sum(p.online_adjusted for p in every), sum(p.degraded_days for p in every), "", "",
                         ev.pc_availability(every), ev.pc_availability_adjusted(every)])  # fmt: skip
    headers = [w["commune"], w["host"], w["ev_slots"], w["ev_online"], w["ev_degraded"], w["ev_slots_adjusted"],
               w["ev_online_adjusted"], w["ev_degraded_days"], w["ev_spells"], w["reasons"], w["pc_availability"],
               w["pc_availability_adjusted"]]  # fmt: skip
    return Table("sheet_ev_pcs", w["ev_pcs"], headers, rows, w["none"], w["ev_pcs_note"])


def speed(report: MonthlyReport, w: dict[str, str]) -> Table:
    zone = report.hours.zone
    rows: list[list[Cell]] = []
    for place, found in communes(report):
        if not found.speed:
            continue
        values = [s.percent for s in found.speed]
        tests = "; ".join(f"{datetime.fromtimestamp(s.time, zone):%d/%m %H:%M} {_number(s.percent, report.language)}"
                          for s in sorted(found.speed, key=lambda s: s.time))  # fmt: skip
        rows.append([place.name, len(values), ev.speed_percent(found.speed), round(min(values), 1),
                     round(max(values), 1), tests])  # fmt: skip
    headers = [w["commune"], w["ev_tests"], w["speed_percent"], w["ev_lowest"], w["ev_highest"], w["ev_each_test"]]
    return Table("sheet_ev_speed", w["ev_speed"], headers, rows, w["none"])


def items(report: MonthlyReport, w: dict[str, str]) -> Table:
    """Per commune its issued items (the model is the registry's: not repeated here, so each cell
    stays short enough not to be cut in the PDF), then a total per kind, raw and adjusted."""
    lang = report.language
    rows: list[list[Cell]] = []
    for place, found in communes(report):
        for r in found.items:
            state = vocab.EQUIPMENT_STATES[r.state].in_(lang) if r.state in vocab.EQUIPMENT_STATES else r.state
            rule = vocab.EQUIPMENT_RULES[r.rule].in_(lang) if r.rule in vocab.EQUIPMENT_RULES else r.rule
            rows.append([place.name, _kind(r.kind, lang), r.serial, r.device or w["ev_none_seen"], r.host, len(r.days),
                         ", ".join(f"{d:%d/%m}" for d in r.days), state, rule,
                         w["charged_yes"] if r.excluded else ""])  # fmt: skip
        for c in ev.item_counts(found.items):
            rows.append([place.name, f"{w['ev_total']}: {_kind(c.kind, lang)}", None,
                         w["ev_issued_in_use"].format(in_use=c.in_use, issued=c.issued), None, None, None, None, None,
                         w["ev_issued_in_use"].format(in_use=c.in_use_adjusted, issued=c.issued_adjusted)])  # fmt: skip
    headers = [w["commune"], w["ev_kind"], w["ev_serial"], w["ev_device"], w["host"], w["ev_days_seen"],
               w["ev_which_days"], w["ev_state"], w["ev_rule"], w["ev_item_excluded"]]  # fmt: skip
    return Table("sheet_ev_items", w["ev_items"], headers, rows, w["none"],
                 w["ev_items_note"].format(days=report.equipment_days))  # fmt: skip


def _kind(kind: str, lang: str) -> str:
    return vocab.PERIPHERAL_KINDS[kind].in_(lang) if kind in vocab.PERIPHERAL_KINDS else kind


def _number(value: float, lang: str) -> str:
    text = f"{value:.1f}"
    return text.replace(".", ",") if lang == "vi" else text
