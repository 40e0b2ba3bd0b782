"""The report as an A4 PDF, printed by WeasyPrint from the report's HTML: the same words and
figures as the HTML, laid out for paper."""

from __future__ import annotations

import logging

from collector.reports.build import MonthlyReport
from collector.reports.render_html import html

logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)


def pdf(report: MonthlyReport, page_html: str | None = None) -> bytes:
    from weasyprint import HTML  # imported here: it loads Pango, which the rest of the collector never needs

    document: bytes = HTML(string=page_html or html(report), base_url=".").write_pdf()
    return document
