"""The report as one HTML page (the PDF is printed from it): the status page's Jinja2 environment
and base template, charts embedded as PNG data, styles for A4 landscape print.

The page is a list of items (the heading, each table, the charts). A long table is cut into
parts of ``PART_ROWS`` rows, each with its header row and from the second on starting a new page,
so the PDF can be printed part by part (bounded memory for a whole nation) and still say exactly
what the HTML says. The font is DejaVu Sans from matplotlib's own files, so the PDF has every
Vietnamese diacritic whatever fonts the machine has; a browser falls back to its own sans-serif.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

from collector import vocabulary as vocab
from collector.http.templating import render
from collector.reports import appendix, charts
from collector.reports.build import MonthlyReport
from collector.reports.tables import Table, fmt, heading, outages_table, replacement, revision_table, tables

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SIGNED_HEADERS = {"±"}
PART_ROWS = 250

Item = dict[str, Any]


# Sections shown after the tables: each gives its table, or None to say there is no data.
EXTRA_SECTIONS: tuple[tuple[str, Callable[[MonthlyReport], Table | None]], ...] = (("outages", outages_table),)


def _cells(table: Table, rows: list[list[Any]], lang: str) -> list[list[dict[str, str | bool]]]:
    signed = [h in SIGNED_HEADERS for h in table.headers]
    return [
        [{"text": fmt(c, lang, signed[i]), "num": not isinstance(c, str), "short": isinstance(c, str) and len(c) <= 24}
         for i, c in enumerate(row)]
        for row in rows
    ]  # fmt: skip


def chart_images(report: MonthlyReport) -> list[str]:
    w = vocab.report_words(report.language)
    f = report.figures
    images = [
        charts.line_by_area(w["chart_line_by_area"], [(a.name, a.line_availability) for a in f.areas]),
        charts.daily_down(w["chart_daily_down"], f.daily_down),
        charts.speed_by_area(w["chart_speed_by_area"], [(a.name, a.speed_percent) for a in f.areas]),
    ]
    return ["data:image/png;base64," + base64.b64encode(png).decode() for png in images]


def items(report: MonthlyReport, evidence: bool = True) -> list[Item]:
    """What the page shows, in order; an item with ``new_page`` may start a separately printed part.
    ``evidence``: with the evidence appendix at the end (``appendix.py``)."""
    lang = report.language
    w = vocab.report_words(lang)
    head = heading(report)
    out: list[Item] = [{"kind": "head", "new_page": False}]
    changed = revision_table(report)  # a revision says what changed first
    if changed is not None:
        cells = _cells(changed, changed.rows, lang)
        out.append({"kind": "table", "new_page": False, "title": changed.title, "headers": changed.headers,
                    "rows": cells, "empty": changed.empty, "note": changed.note})  # fmt: skip
    for table in tables(report):
        parts = [table.rows[i : i + PART_ROWS] for i in range(0, len(table.rows), PART_ROWS)] or [[]]
        communes = table.key == "sheet_communes"
        if communes:  # leaders look at the charts first; then every commune, from a new page
            out.append({"kind": "charts", "new_page": True})
        for number, rows in enumerate(parts):
            note = head["formula"] if communes and number == len(parts) - 1 else ""
            title = table.title if number == 0 else ""
            out.append({"kind": "table", "new_page": communes or number > 0, "title": title,
                        "headers": table.headers, "rows": _cells(table, rows, lang), "empty": table.empty,
                        "note": note})  # fmt: skip
    for key, provider in EXTRA_SECTIONS:
        section = provider(report)
        out.append({"kind": "table", "new_page": False, "title": w[key], "note": "",
                    "headers": section.headers if section else [], "empty": w["section_no_data"],
                    "rows": _cells(section, section.rows, lang) if section else []})  # fmt: skip
    pcs = replacement(report)  # a page of its own, cut in parts as the communes are
    for number in range(0, max(1, len(pcs.rows)), PART_ROWS):
        rows = pcs.rows[number : number + PART_ROWS]
        last = number + PART_ROWS >= len(pcs.rows)
        out.append({"kind": "table", "new_page": True, "title": pcs.title if number == 0 else "",
                    "headers": pcs.headers, "rows": _cells(pcs, rows, lang), "empty": pcs.empty,
                    "note": pcs.note if last else ""})  # fmt: skip
    if evidence:
        for table in appendix.tables(report):
            out += _parted(table, lang, True)
    return out


def _parted(table: Table, lang: str, new_page: bool) -> list[Item]:
    """A table as items of at most ``PART_ROWS`` rows, its title on the first, its note on the last."""
    parts = [table.rows[i : i + PART_ROWS] for i in range(0, len(table.rows), PART_ROWS)] or [[]]
    return [{"kind": "table", "new_page": new_page or number > 0, "title": table.title if number == 0 else "",
             "headers": table.headers, "rows": _cells(table, rows, lang), "empty": table.empty,
             "note": table.note if number == len(parts) - 1 else ""} for number, rows in enumerate(parts)]  # fmt: skip


def html(
    report: MonthlyReport, only: list[Item] | None = None, images: list[str] | None = None, evidence: bool = True
) -> str:
    """The page, or the page with ``only`` some of its items (one printed part)."""
    shown = items(report, evidence) if only is None else only
    wants_charts = any(item["kind"] == "charts" for item in shown)
    return render(
        "report.html",
        lang=report.language,
        w=vocab.report_words(report.language),
        head=heading(report),
        items=shown,
        charts=(images if images is not None else chart_images(report)) if wants_charts else [],
        font_regular=(FONTS / "DejaVuSans.ttf").as_uri(),
        font_bold=(FONTS / "DejaVuSans-Bold.ttf").as_uri(),
    )
