"""The report as an A4 PDF, printed by WeasyPrint from the report's HTML: the same words and
figures as the HTML, laid out for paper.

A long report is printed part by part (the parts the HTML already starts on a new page) and the
parts' pages joined with pypdf, so memory stays bounded by one part: a whole nation's 3,321
communes would otherwise hold every page's layout at once.
"""

from __future__ import annotations

import io
import logging

from collector.reports.build import MonthlyReport
from collector.reports.render_html import Item, chart_images, html, items

logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)


def parts(all_items: list[Item]) -> list[list[Item]]:
    """The items cut before each one that starts a new page."""
    out: list[list[Item]] = []
    for item in all_items:
        if not out or item.get("new_page"):
            out.append([])
        out[-1].append(item)
    return out


def pdf(report: MonthlyReport) -> bytes:
    from pypdf import PdfWriter
    from weasyprint import HTML  # imported here: it loads Pango, which the rest of the collector never needs

    images = chart_images(report)
    writer = PdfWriter()
    for part in parts(items(report)):
        document = HTML(string=html(report, part, images), base_url=".").write_pdf()
        writer.append(io.BytesIO(document))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
