"""HTTP API of the records people are judged by: the audit log (admin) and exclusions.

``GET /api/v1/audit`` lists audit entries newest first (admin only: the log shows who did what),
filtered by commune, object and time. ``GET /api/v1/exclusions`` lists exclusions with their
withdrawals; ``POST /api/v1/exclusions`` adds one and ``POST /api/v1/exclusions/{id}/withdraw``
withdraws one (admin), refused whole with one sentence and nothing stored: 404 for an unknown
commune, PC, serial or exclusion, 409 for an inverted or overlapping interval, 422 for a body the
schema refuses. Lists page as every list route does (``collector.http.paging``).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from collector.audit import Entry, Filter
from collector.http import paging
from collector.http.body_limits import JSON_MAX, stated
from collector.http.contract import CommuneFilter, Problem, RowId, answers
from collector.http.deps import AuditDep, ExclusionsDep
from collector.http.scope import ScopeDep, Where
from collector.registry.exclusions import MAX_NAME, MAX_NOTE, REASONS, SCOPES, Exclusion, ExclusionError, moment_of
from common.wire import COMMUNE_RE

router = APIRouter()


def newest_first(entry: Entry) -> paging.Key:
    return (-entry.id,)


def by_id(exclusion: Exclusion) -> paging.Key:
    return (exclusion.id,)


def older_than(cursor: str | None) -> int | None:
    """The id a page of the audit log goes on below (the log is paged in SQL, newest first)."""
    if cursor is None:
        return None
    key = paging.decode(cursor)
    if len(key) != 1 or not isinstance(key[0], int) or isinstance(key[0], bool):
        raise paging.refused()
    return -int(key[0])


def require_admin(request: Request, scope: ScopeDep) -> None:
    """Reads of the audit log need an admin token, or a viewer token scoped to an area or a commune,
    which reads its scope's entries only (``require_token`` has checked the token is known)."""
    role = getattr(request.state, "token_role", None)
    if role != "admin" and scope.whole:
        raise HTTPException(403, f"a {role} token may not read the audit log; an admin token is needed")


@router.get(
    "/api/v1/audit",
    responses={**paging.listed("Audit entries, newest first."), **answers(403)},
    dependencies=[Depends(require_admin)],
)
def audit_entries(
    book: AuditDep,
    pager: paging.PagerDep,
    commune: CommuneFilter = None,
    object: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_.:/-]{1,200}$", description="a kind (line) or one object (line:VNPT-1)")
    ] = None,
    since: Annotated[float, Query(ge=0, le=1e11, description="at or after (UTC epoch seconds)")] = 0.0,
    until: Annotated[float, Query(ge=0, le=1e11, description="before (UTC epoch seconds)")] = 1e11,
) -> list[dict[str, Any]]:
    """Audit entries, newest first: who, from where, when, the action, the object, its values before
    and after, and the entry's hash (``commune-collector audit verify`` checks the chain). A viewer
    token scoped to an area or a commune reads the entries of its communes (and of its area)."""
    scope = pager.scope
    communes = frozenset({commune}) if commune else scope.communes()
    area = scope.code if scope.kind == "area" and not commune else ""
    wanted = Filter(communes, object or "", since, until, area)
    found = book.entries(wanted, older_than(pager.cursor), pager.limit + 1)  # one more: whether a next page exists
    return [entry.as_json() for entry in pager.take(iter(found), newest_first, entry_place)]


def entry_place(entry: Entry) -> Where:
    return Where(entry.commune or None, entry.area or None)


@router.get("/api/v1/exclusions", responses=paging.listed("Exclusions, oldest first."))
def exclusion_list(book: ExclusionsDep, pager: paging.PagerDep, commune: CommuneFilter = None) -> list[dict[str, Any]]:
    """Exclusions, oldest first, each with its withdrawal (who, why, when) if it was withdrawn."""
    found = book.all(frozenset({commune}) if commune else pager.scope.communes())
    return [e.as_json() for e in pager.page(found, by_id, lambda e: Where(e.commune))]


Reason = Literal[REASONS]  # type: ignore[valid-type]  # the vocabulary's fixed list
Scope = Literal[SCOPES]  # type: ignore[valid-type]
Said = Annotated[str, StringConstraints(pattern=r"\S", max_length=MAX_NOTE)]  # not blank
Name = Annotated[str, StringConstraints(pattern=r"\S", max_length=MAX_NAME)]
REFUSED: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "No such commune, PC, serial, line or exclusion."},
    409: {"model": Problem, "description": "The interval is inverted or overlaps an exclusion in force for the same "
          "thing; the exclusion is withdrawn already; a target named for a whole commune or line."},
}  # fmt: skip
STATUS = {"unknown": 404, "conflict": 409, "bad": 400}


class NewExclusion(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=False)
    commune: str = Field(pattern=COMMUNE_RE.pattern, description="official commune code, e.g. 02473")
    scope: Scope = "commune"
    target: str = Field("", max_length=200, description="host: the PC's name; item: its serial; else empty")
    start: dt.datetime | dt.date = Field(alias="from", description="a date or date-time; local without an offset")
    end: dt.datetime | dt.date = Field(alias="to", description="a date or date-time, not included")
    reason: Reason
    note: Said
    by: Name


class Withdraw(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: Said = Field(description="why it is withdrawn")
    by: Name


def refused(exc: ExclusionError) -> HTTPException:
    return HTTPException(STATUS.get(exc.kind, 400), str(exc))


@router.post(
    "/api/v1/exclusions", status_code=201, responses={**answers(400), **REFUSED}, openapi_extra=stated(JSON_MAX)
)
def add_exclusion(body: NewExclusion, book: ExclusionsDep) -> dict[str, Any]:
    """Add an exclusion (admin); refused whole with one sentence, nothing stored: 404 for an unknown
    commune, PC or serial (or a commune without a line), 409 for an inverted or overlapping interval."""
    try:
        made = book.add(body.commune, body.scope, body.target, moment_of(body.start, book.zone),
                        moment_of(body.end, book.zone), body.reason, body.note, body.by)  # fmt: skip
    except ExclusionError as exc:
        raise refused(exc) from None
    return made.as_json()


@router.post(
    "/api/v1/exclusions/{exclusion_id}/withdraw",
    status_code=201,
    responses={**answers(400), **REFUSED},
    openapi_extra=stated(JSON_MAX),
)
def withdraw_exclusion(exclusion_id: RowId, body: Withdraw, book: ExclusionsDep) -> dict[str, Any]:
    """Withdraw an exclusion (admin): a new record naming it, with who and why; 404 when there is
    no such exclusion, 409 when it is withdrawn already."""
    try:
        made = book.withdraw(exclusion_id, body.note, body.by)
    except ExclusionError as exc:
        raise refused(exc) from None
    return {"id": made.id, "exclusion": made.exclusion, "by": made.by_name, "note": made.note,
            "created_at": made.created_at}  # fmt: skip
