"""The report as one HTML page (the PDF is printed from it): the status page's Jinja2 environment
and base template, charts embedded as PNG data, styles for A4 landscape print.

The font is DejaVu Sans from matplotlib's own files, so the PDF has every Vietnamese diacritic
whatever fonts the machine has; a browser falls back to its own sans-serif.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path

import matplotlib

from collector import vocabulary as vocab
from collector.http.templating import render
from collector.reports import charts
from collector.reports.build import MonthlyReport
from collector.reports.tables import Table, fmt, heading, tables

FONTS = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
SIGNED_HEADERS = {"±"}


def no_data(_report: MonthlyReport) -> Table | None:
    return None


# Sections whose data comes from later features: each gives its table, or None to say "no data yet".
# Outages (issue 18) and peripherals (issue 13) plug in here.
EXTRA_SECTIONS: tuple[tuple[str, Callable[[MonthlyReport], Table | None]], ...] = (
    ("outages", no_data),
    ("peripherals", no_data),
)


def _cells(table: Table, lang: str) -> list[list[dict[str, str | bool]]]:
    signed = [h in SIGNED_HEADERS for h in table.headers]
    return [
        [{"text": fmt(c, lang, signed[i]), "num": not isinstance(c, str)} for i, c in enumerate(row)]
        for row in table.rows
    ]


def chart_images(report: MonthlyReport) -> list[str]:
    w = vocab.report_words(report.language)
    f = report.figures
    images = [
        charts.line_by_area(w["chart_line_by_area"], [(a.name, a.line_availability) for a in f.areas]),
        charts.daily_down(w["chart_daily_down"], f.daily_down),
        charts.speed_by_area(w["chart_speed_by_area"], [(a.name, a.speed_percent) for a in f.areas]),
    ]
    return ["data:image/png;base64," + base64.b64encode(png).decode() for png in images]


def html(report: MonthlyReport) -> str:
    lang = report.language
    w = vocab.report_words(lang)
    all_tables: list[Table] = tables(report)
    extra = [(w[key], provider(report)) for key, provider in EXTRA_SECTIONS]
    return render(
        "report.html",
        lang=lang,
        w=w,
        head=heading(report),
        tables=[(t, _cells(t, lang)) for t in all_tables],
        extra=[(title, (t, _cells(t, lang)) if t else None) for title, t in extra],
        charts=chart_images(report),
        font_regular=(FONTS / "DejaVuSans.ttf").as_uri(),
        font_bold=(FONTS / "DejaVuSans-Bold.ttf").as_uri(),
    )
