"""The report as an A4 PDF, printed by WeasyPrint from the report's HTML: the same words and
figures as the HTML, laid out for paper.

A long report is printed part by part (the parts the HTML already starts on a new page) and the
parts' pages joined with pypdf, so memory stays bounded by a part: a whole nation's 3,321
communes would otherwise hold every page's layout at once. With more parts than ``PARALLEL_FROM``,
parts are printed by up to ``WORKERS`` processes (spawned, so safe beside the collector's threads).

Most of a part's time is WeasyPrint's work per table cell; CSS of our own (borders, fixed layout,
no wrapping) changes little of it. A sixth of it, though, is styling six pseudo-elements of every
element (``::marker`` and the footnote and note markers), which the browser stylesheet declares for
every element and which the report never shows (no lists, no footnotes): parts are printed with
that stylesheet less those rules (see ``lean_html``), the same pages for a sixth less time.
"""

from __future__ import annotations

import functools
import io
import logging
import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from typing import Any

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


@functools.cache
def lean_html() -> Any:
    """WeasyPrint's ``HTML`` with its browser stylesheet less the rules for pseudo-elements of every
    element (lines starting ``::``: markers of list items, footnotes and notes, none in the report).
    A WeasyPrint without these internals (``html.UA``, ``HTML._ua_stylesheets``) gets its own
    ``HTML``: the same pages, only slower."""
    from weasyprint import CSS, HTML  # imported here: it loads Pango, which the rest of the collector never needs
    from weasyprint import html as browser

    if not isinstance(getattr(browser, "UA", None), str) or not hasattr(HTML, "_ua_stylesheets"):
        return HTML
    kept = "\n".join(line for line in browser.UA.splitlines() if not line.lstrip().startswith("::"))
    sheet = CSS(string=kept, counter_style=browser.UA_COUNTER_STYLE)

    class LeanHTML(HTML):  # type: ignore[misc]
        def _ua_stylesheets(self, forms: bool = False) -> list[Any]:
            return [sheet, browser.UA_FORM_STYLESHEET] if forms else [sheet]

    return LeanHTML


def print_part(page_html: str) -> bytes:
    logging.getLogger("weasyprint").setLevel(logging.ERROR)
    logging.getLogger("fontTools").setLevel(logging.ERROR)
    document: bytes = lean_html()(string=page_html, base_url=".").write_pdf()
    return document


def pages(report: MonthlyReport, cut: list[list[Item]]) -> Iterator[str]:
    """Each part's HTML in turn, the charts drawn when their part comes: the workers print the first
    parts meanwhile."""
    images: list[str] | None = None
    for part in cut:
        if images is None and any(item["kind"] == "charts" for item in part):
            images = chart_images(report)
        yield html(report, part, images or [])


def pdf(report: MonthlyReport, evidence: bool = False) -> bytes:
    """The report printed, part by part; ``evidence``: with the evidence appendix (on request only)."""
    from pypdf import PdfWriter

    cut = parts(items(report, evidence))
    workers = min(WORKERS, os.cpu_count() or 1)
    if len(cut) < PARALLEL_FROM or workers < 2:
        printed = [print_part(page) for page in pages(report, cut)]
    else:
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            printed = list(pool.map(print_part, pages(report, cut)))  # each part sent as soon as made
    writer = PdfWriter()
    for document in printed:
        writer.append(io.BytesIO(document))
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()
