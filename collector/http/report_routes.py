"""``GET /api/v1/reports/monthly``: the leaders' monthly scorecard as PDF, XLSX or HTML (viewer
token), the same document as ``commune-collector report``."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, HTTPException, Query, Response

from collector.http.deps import ReportsDep
from collector.ingest.influx import InfluxError
from collector.reports.build import ReportError
from collector.reports.make import FORMATS

router = APIRouter()


@router.get("/api/v1/reports/monthly")
def monthly_report(
    reports: ReportsDep,
    month: str = Query(..., description="YYYY-MM; this month counts up to now", max_length=7),
    format: Literal["pdf", "xlsx", "html"] = "pdf",
    area: str = Query("", description="one area's code; empty for every area", max_length=64),
) -> Response:
    """400 for a malformed or future month or an unknown area, 404 for a month with no data,
    503 when InfluxDB cannot answer."""
    try:
        document = reports(month, format, area)
    except ReportError as exc:
        raise HTTPException(404 if exc.missing else 400, str(exc)) from None
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB could not answer: {exc}") from None
    media, extension = FORMATS[format]
    disposition = "inline" if format == "html" else "attachment"
    return Response(
        document,
        media_type=media,
        headers={"Content-Disposition": f'{disposition}; filename="bao-cao-{month}.{extension}"'},
    )
