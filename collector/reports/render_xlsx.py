"""The report as an XLSX workbook (openpyxl): the same tables as the PDF, one sheet each, with
numbers as numbers so people can sort and sum them."""

from __future__ import annotations

import io
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font

from collector import vocabulary as vocab
from collector.reports import appendix
from collector.reports.build import MonthlyReport
from collector.reports.tables import Table, heading, replacement, revision_table, tables


def xlsx(report: MonthlyReport, evidence: bool = True) -> bytes:
    """The workbook; ``evidence``: with the evidence appendix's sheets after the report's."""
    w = vocab.report_words(report.language)
    head = heading(report)
    book = Workbook(write_only=True)  # rows streamed out: a nation's evidence appendix in bounded memory
    for table in [*tables(report), replacement(report)]:
        _sheet(book, table, w, head)
    revision_sheet(book, report, w, head)
    for table in appendix.tables(report) if evidence else []:
        _sheet(book, table, w, head)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _sheet(book: Workbook, table: Table, w: dict[str, str], head: dict[str, str]) -> None:
    sheet = book.create_sheet(w[table.key][:31])
    sheet.freeze_panes = "A4"
    sheet.append([head["title"]])
    sheet.append([table.title])
    sheet.append(_bold(sheet, table.headers))
    for row in table.rows:
        sheet.append(list(row))
    if not table.rows:
        sheet.append([table.empty])
    if table.key == "sheet_communes":
        sheet.append([])
        sheet.append([head["formula"]])
    if table.note:
        sheet.append([])
        sheet.append([table.note])


def _bold(sheet: Any, texts: list[str]) -> list[WriteOnlyCell]:
    cells = []
    for text in texts:
        cell = WriteOnlyCell(sheet, value=text)
        cell.font = Font(bold=True)
        cells.append(cell)
    return cells


def revision_sheet(book: Workbook, report: MonthlyReport, w: dict[str, str], head: dict[str, str]) -> None:
    """The revision of the month these figures are (or why they are provisional), and what changed
    from the revision before, with why."""
    sheet = book.create_sheet(w["sheet_revision"][:31])
    sheet.append([head["title"]])
    sheet.append([head["revision"]])
    changed = revision_table(report)
    if changed is None:
        return
    sheet.append([changed.title])
    sheet.append(_bold(sheet, changed.headers))
    for row in changed.rows:
        sheet.append(list(row))
    if not changed.rows:
        sheet.append([changed.empty])
    if changed.note:
        sheet.append([])
        sheet.append([changed.note])
