"""The report as an A4 PDF, printed by WeasyPrint from the report's HTML: the same words and
figures as the HTML, laid out for paper.

A long report is printed part by part (the parts the HTML already starts on a new page) and the
parts' pages joined with pypdf, so memory stays bounded by a part: a whole nation's 3,321
communes would otherwise hold every page's layout at once. With more parts than ``PARALLEL_FROM``,
parts are printed by up to ``WORKERS`` processes (spawned, so safe beside the collector's threads).
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

from collector.reports.build import MonthlyReport
from collector.reports.render_html import Item, chart_images, html, items

logging.getLogger("weasyprint").setLevel(logging.ERROR)
logging.getLogger("fontTools").setLevel(logging.ERROR)
PARALLEL_FROM = 4
WORKERS = 2


def parts(all_items: list[Item]) -> list[list[Item]]:
    """The items cut before each one that starts a new page."""
    out: list[list[Item]] = []
    for item in all_items:
        if not out or item.get("new_page"):
            out.append([])
        out[-1].append(item)
    return out


def print_part(page_html: str) -> bytes:
    from weasyprint import HTML  # imported here: it loads Pango, which the rest of the collector never needs

    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document: bytes = HTML(string=page_html, base_url=".").write_pdf()
    return document


def pdf(report: MonthlyReport) -> bytes:
    from pypdf import PdfWriter

    images = chart_images(report)
    pages = [html(report, part, images) for part in parts(items(report))]
    workers = min(WORKERS, os.cpu_count() or 1)
    if len(pages) < PARALLEL_FROM or workers < 2:
        printed = [print_part(page) for page in pages]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            printed = list(pool.map(print_part, pages))
    writer = PdfWriter()
    for document in printed:
        writer.append(io.BytesIO(document))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
