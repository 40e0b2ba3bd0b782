"""``GET /api/v1/reports/monthly``: the leaders' monthly scorecard as PDF, XLSX or HTML (viewer
token), the same document as ``commune-collector report``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response

from collector.http import paging
from collector.http.contract import AreaFilter, answers
from collector.http.deps import ReplacementSource, ReportsDep, replacement
from collector.ingest.influx import InfluxError
from collector.reports.build import ReportError
from collector.reports.make import FORMATS
from common.wire import PROVINCE_RE

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


ReplacementDep = Annotated[ReplacementSource, Depends(replacement)]


def ranked(row: dict[str, Any]) -> tuple[Any, ...]:
    """The list's order: highest score first, then by commune and host."""
    return (-row["score"], row["commune"], row["host"])


@router.get(
    "/api/v1/replacement",
    responses={**answers(503), **paging.listed("PCs by replacement score, highest first, with their evidence.")},
)
def replacement_list(
    source: ReplacementDep,
    request: Request,
    response: Response,
    province: Annotated[str | None, Query(pattern=PROVINCE_RE.pattern, description="only this province's")] = None,
    area: AreaFilter = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default this month")] = None,
    limit: paging.Limit = paging.DEFAULT_LIMIT,
    cursor: paging.Cursor = None,
) -> list[dict[str, Any]]:
    """Every PC with office-hours data in the month, highest replacement score first: its score
    (0 to 100), the evidence it is made of (``disk_failing``, ``hang_minutes_per_day``,
    ``memory_short``, ``cpu_saturated``, ``reboots_per_day``, ``age_years``) and the office days
    it covers. The rule is in the README (Replacement list) and ``collector/reports/replacement.py``.
    Paged like every list route. 404 for a month in the future or before 2000 (or a cursor not
    given), 503 when InfluxDB cannot answer."""
    try:
        rows = source(month or "", province or "", area or "")
    except ReportError as exc:
        raise HTTPException(404, str(exc)) from None
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB could not answer: {exc}") from None
    return paging.page(paging.after(rows, ranked, cursor), ranked, limit, request, response)
