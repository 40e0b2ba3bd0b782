"""One call from a month to a file's bytes, for the command line, the API and the monthly e-mail:
build the figures once, render them in the asked format."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from collector.audit import Actor
from collector.config import CollectorConfig
from collector.ingest.influx import InfluxClient
from collector.localtime import Month, PeriodError
from collector.registry.registry import Registry
from collector.reports.build import MonthlyReport, ReportError, build, hours_of, keep_windows
from collector.reports.replacement import replacement_list
from collector.reports.revisions import COLLECTOR
from collector.store import Store

FORMATS: dict[str, tuple[str, str]] = {  # format -> (media type, file extension)
    "pdf": ("application/pdf", "pdf"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
    "html": ("text/html; charset=utf-8", "html"),
}


def renderer(fmt: str, evidence: bool | None = None) -> Callable[[MonthlyReport], bytes]:
    """The format's renderer; ``evidence``: with the evidence appendix (None: in the HTML and the
    XLSX, not in the PDF, so the province's printed report stays short)."""
    if fmt == "pdf":
        from collector.reports.render_pdf import pdf

        return lambda report: pdf(report, evidence=bool(evidence))
    if fmt == "xlsx":
        from collector.reports.render_xlsx import xlsx

        return lambda report: xlsx(report, evidence=evidence is not False)
    if fmt == "html":
        from collector.reports.render_html import html

        return lambda report: html(report, evidence=evidence is not False).encode("utf-8")
    raise ReportError(f"format {fmt[:20]!r} is unknown; use one of {', '.join(FORMATS)}")


def make(
    config: CollectorConfig,
    store: Store,
    registry: Registry,
    month: str,
    formats: list[str],
    area: str = "",
    now: float | None = None,
    actor: Actor = COLLECTOR,
    evidence: bool | None = None,
) -> dict[str, bytes]:
    """The report of ``month`` in each of ``formats``, asked by ``actor`` (who made the revision, if
    the month is frozen now); raises ReportError (the asker's mistake) or InfluxError (InfluxDB
    could not answer). ``evidence``: the evidence appendix in every format (True), in none (False),
    or in the HTML and XLSX only (None)."""
    renders = {fmt: renderer(fmt, evidence) for fmt in formats}  # a bad format fails before any query
    client = InfluxClient(config.influxdb.model_copy(update={"timeout_s": config.report.query_timeout_s}))
    try:
        report = build(
            client,
            store,
            registry,
            config.report,
            month,
            area,
            now,
            equipment_days=config.fleet.equipment_unused_after_days,
            fleet=config.fleet,
            actor=actor,
        )
    finally:
        client.close()
    return {fmt: render(report) for fmt, render in renders.items()}


def keep(config: CollectorConfig, store: Store, now: float) -> int:
    """Sum the office windows that have settled since the last call (the collector's hourly job)."""
    client = InfluxClient(config.influxdb.model_copy(update={"timeout_s": config.report.query_timeout_s}))
    try:
        return keep_windows(client, store, config.report, now)
    finally:
        client.close()


def scorecard(
    config: CollectorConfig, store: Store, registry: Registry, code: str, month: str, now: float | None = None
) -> dict[str, Any]:
    """One commune's scorecard of ``month`` (``reports/scorecard.py``); raises ReportError (a month
    that cannot be asked, UnknownCommune) and InfluxError."""
    from collector.reports.scorecard import scorecard as one

    client = InfluxClient(config.influxdb.model_copy(update={"timeout_s": config.report.query_timeout_s}))
    try:
        return one(client, store, registry, config.report, month, code, now, config.fleet.equipment_unused_after_days)
    finally:
        client.close()


def replacement(
    config: CollectorConfig,
    registry: Registry,
    month: str,
    province: str = "",
    area: str = "",
    now: float | None = None,
) -> list[dict[str, Any]]:
    """The replacement list of ``month`` (YYYY-MM, "" for this one) up to ``now``; raises
    ReportError for a month that cannot be asked (malformed, in the future) and InfluxError."""
    now = time.time() if now is None else now
    hours = hours_of(config.report)
    try:
        asked = Month.parse(month) if month else hours.month_of(now)
    except PeriodError as exc:
        raise ReportError(str(exc)) from None
    this_month = hours.month_of(now)
    if (asked.year, asked.month) > (this_month.year, this_month.month):
        raise ReportError(f"month {asked} is in the future (it is {this_month} now)")
    start, end = hours.month_bounds(asked)
    client = InfluxClient(config.influxdb.model_copy(update={"timeout_s": config.report.query_timeout_s}))
    try:
        windows = hours.windows_of(asked, until=now)
        return replacement_list(
            client, registry, config.fleet, windows, (start, min(end, int(now))), province, area, now
        )
    finally:
        client.close()
