"""``GET /api/v1/reports/monthly``: the leaders' monthly scorecard as PDF, XLSX or HTML (viewer
token), the same document as ``commune-collector report``; ``GET /api/v1/communes/{code}/scorecard``:
one commune's figures and the evidence rows they are made of."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response

from collector.audit import Actor
from collector.http import paging
from collector.http.contract import LABEL_PATTERN, AreaFilter, answers
from collector.http.deps import ReplacementSource, ReportsDep, RevisionsDep, ScorecardDep, replacement
from collector.http.scope import ScopeDep, Where
from collector.ingest.influx import InfluxError
from collector.reports.build import ReportError
from collector.reports.make import FORMATS
from collector.reports.revisions import RevisionError
from common.wire import COMMUNE_RE, PROVINCE_RE

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
    request: Request,
    scope: ScopeDep,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM; this month counts up to now")],
    area: AreaFilter = None,
    format: Literal["pdf", "xlsx", "html"] = "pdf",
    evidence: Annotated[
        bool | None,
        Query(description="the evidence appendix, each commune's rows (default: in HTML and XLSX, not in the PDF)"),
    ] = None,
) -> Response:
    """404 with the reason when there is no such report (a month with no data, before 2000 or in the
    future, an unknown area), 422 for a malformed month, 503 when InfluxDB cannot answer. A month
    that is over is frozen the first time its report is made, and a later change of its inputs
    makes its next revision (``/api/v1/reports/{month}/revisions``), made by this token. A token
    scoped to an area gets its area's report (the province's is not its to read); one scoped to a
    commune gets 404 (an area's report ranks the other communes)."""
    area = scope.area() or area
    try:
        document = reports(month, format, area or "", asker(request), evidence)
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


def asker(request: Request) -> Actor:
    """The token's name and the client's address (``require_token`` has named the token)."""
    return Actor(str(getattr(request.state, "token_name", "unknown")), request.client.host if request.client else "")


SCORECARD_ANSWERS = answers(404, 503)
SCORECARD_ANSWERS[404] = {
    **SCORECARD_ANSWERS[404],
    "description": "No such scorecard: the commune has no registered line and no area, or the month is in the "
    "future or before 2000 (the message says which).",
}


@router.get("/api/v1/communes/{code}/scorecard", responses=SCORECARD_ANSWERS)
def commune_scorecard(
    code: Annotated[str, Path(pattern=COMMUNE_RE.pattern)],
    source: ScorecardDep,
    month: Annotated[str, Query(pattern=MONTH_PATTERN, description="YYYY-MM; this month counts up to now")],
) -> dict[str, Any]:
    """One commune's scorecard of a month: each figure raw and adjusted (the exclusions in force now
    taken out), and the evidence rows it is summed from (``evidence.line``: one row per office window;
    ``outages``, ``exclusions``, ``no_data_spans``, ``pcs``, ``speed_tests``), computed by the monthly
    report's own code for this commune alone. A commune with no reporting agent all month has
    ``no_data`` true and a reason, and is not ranked. 404 with the reason for a commune not
    registered or a month in the future or before 2000 (as the monthly report), 422 for a malformed
    month, 503 when InfluxDB cannot answer."""
    try:
        return source(code, month)
    except ReportError as exc:  # the request has the right shape: the scorecard it names does not exist
        raise HTTPException(404, str(exc)) from None
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB could not answer: {exc}") from None


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
    pager: paging.PagerDep,
    province: Annotated[str | None, Query(pattern=PROVINCE_RE.pattern, description="only this province's")] = None,
    area: AreaFilter = None,
    month: Annotated[str | None, Query(pattern=MONTH_PATTERN, description="YYYY-MM; default this month")] = None,
) -> list[dict[str, Any]]:
    """Every PC with office-hours data in the month, highest replacement score first: its score
    (0 to 100), the evidence it is made of (``disk_failing``, ``hang_minutes_per_day``,
    ``memory_short``, ``cpu_saturated``, ``reboots_per_day``, ``age_years``) and the office days
    it covers. The rule is in docs/en/monthly-report.md (Replacement list) and ``collector/reports/replacement.py``.
    Paged like every list route. 404 for a month in the future or before 2000 (or a cursor not
    given), 503 when InfluxDB cannot answer."""
    try:
        rows = source(month or "", province or "", area or "")
    except ReportError as exc:
        raise HTTPException(404, str(exc)) from None
    except InfluxError as exc:
        raise HTTPException(503, f"InfluxDB could not answer: {exc}") from None
    return pager.page(rows, ranked, lambda row: Where(str(row["commune"])))


MonthPath = Annotated[str, Path(pattern=MONTH_PATTERN, description="YYYY-MM")]
AreaOfReport = Annotated[str | None, Query(pattern=LABEL_PATTERN, description="the area's report")]


def numbered(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["revision"],)


@router.get(
    "/api/v1/reports/{month}/revisions",
    responses=paging.listed(
        "The month's revisions, oldest first, without their figures; 404 too when no report of the month is frozen."
    ),
)
def report_revisions(
    book: RevisionsDep, pager: paging.PagerDep, month: MonthPath, area: AreaOfReport = None
) -> list[dict[str, Any]]:
    """Every revision of the month's report (of every area, or of ``area``): its number, the hash
    of its inputs and of its figures, when and by whom it was made, how many communes' figures
    changed and why (exclusions added or withdrawn, late data, the registry). Paged like every
    list route. 404 when no report of the month is frozen (made after the month was over). A
    token scoped to an area reads its area's revisions, one scoped to a commune none (404)."""
    area = pager.scope.area() or area
    try:
        found = book.revisions(month, area or "")
    except RevisionError as exc:
        raise HTTPException(404, str(exc)) from None
    rows = [r.summary() for r in found]
    return pager.page(rows, numbered, lambda _row: Where(area=area or None))


@router.get("/api/v1/reports/{month}/revisions/{number}", responses=answers(404))
def report_revision(
    book: RevisionsDep,
    scope: ScopeDep,
    month: MonthPath,
    number: Annotated[int, Path(ge=1, le=1_000_000, description="the revision, from 1")],
    area: AreaOfReport = None,
) -> dict[str, Any]:
    """One revision as it was frozen: each commune's figures, the hashes of its inputs, the
    exclusions in force, and what changed from the revision before (each commune's figure, old
    and new) and why. 404 when the month has no frozen report or not that revision. A token scoped
    to an area reads its area's, one scoped to a commune none (404)."""
    area = scope.area() or area
    try:
        return book.revision(month, number, area or "").as_json()
    except RevisionError as exc:
        raise HTTPException(404, str(exc)) from None
