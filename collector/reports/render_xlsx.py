"""The report as an XLSX workbook (openpyxl): the same tables as the PDF, one sheet each, with
numbers as numbers so people can sort and sum them."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.styles import Font

from collector import vocabulary as vocab
from collector.reports.build import MonthlyReport
from collector.reports.tables import heading, replacement, revision_table, tables


def xlsx(report: MonthlyReport) -> bytes:
    w = vocab.report_words(report.language)
    head = heading(report)
    book = Workbook()
    book.remove(book.active)
    for table in [*tables(report), replacement(report)]:
        sheet = book.create_sheet(w[table.key][:31])
        sheet.append([head["title"]])
        sheet.append([table.title])
        sheet.append(table.headers)
        for cell in sheet[3]:
            cell.font = Font(bold=True)
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
        sheet.freeze_panes = "A4"
    revision_sheet(book, report, w, head)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


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
    sheet.append(changed.headers)
    for cell in sheet[4]:
        cell.font = Font(bold=True)
    for row in changed.rows:
        sheet.append(list(row))
    if not changed.rows:
        sheet.append([changed.empty])
    if changed.note:
        sheet.append([])
        sheet.append([changed.note])
