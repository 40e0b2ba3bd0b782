"""``GET /api/v1/reports/monthly``: the leaders' monthly scorecard as PDF, XLSX or HTML (viewer
token), the same document as ``commune-collector report``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from collector.http.contract import AreaFilter, answers
from collector.http.deps import ReportsDep
from collector.ingest.influx import InfluxError
from collector.reports.build import ReportError
from collector.reports.make import FORMATS

router = APIRouter()
MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
DOCUMENTS: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report: PDF, XLSX or HTML as asked.",
        "content": {FORMATS[f][0].split(";")[0]: {"schema": {"type": "string", "format": "binary"}} for f in FORMATS},
    },
    **answers(404, 503),
}
DOCUMENTS[404]["description"] = "No such report: the month has no data or has not come yet, or the area is unknown."


@router.get("/api/v1/reports/monthly", response_class=Response, responses=DOCUMENTS)
def monthly_report(
    reports: ReportsDep,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM; this month counts up to now")],
    area: AreaFilter = None,
    format: Literal["pdf", "xlsx", "html"] = "pdf",
) -> Response:
    """404 with the reason when there is no such report (a month with no data, before 2000 or in the
    future, an unknown area), 422 for a malformed month, 503 when InfluxDB cannot answer."""
    try:
        document = reports(month, format, area or "")
    except ReportError as exc:  # the request has the right shape: the report it names does not exist
        raise HTTPException(404, str(exc)) from None
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB could not answer: {exc}") from None
    media, extension = FORMATS[format]
    disposition = "inline" if format == "html" else "attachment"
    return Response(
        document,
        media_type=media,
        headers={"Content-Disposition": f'{disposition}; filename="bao-cao-{month}.{extension}"'},
    )
