"""The console's forms (POST): sign out, acknowledge an alert, make and end silences and maintenance
windows, make and revoke enrolment keys, upload a list (preview) and confirm it.

Each change needs an admin session and the form's CSRF token (``guard.acting``), and goes through
the same objects as the API's admin routes (the alert manager, the enrolment keys, the registry),
so ``audit_changes`` writes its entries by the token's name. Bad input is refused whole with one
sentence in both languages; nothing is half-done. An upload is read and checked by
``registry.csv_import.check`` (as the CLI's ``registry import`` is) and kept in the session; the
confirmation stores it with ``csv_import.store`` in one transaction.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.datastructures import FormData, UploadFile

from collector.http.body_limits import KB, stated
from collector.http.console.guard import SESSION_COOKIE, AdminDep, Refused, SentDep, lang
from collector.http.console.pages import import_page, key_page, safe_next
from collector.http.deps import AlertsDep, PartsDep, RegistryDep
from collector.http.fleet_routes import Matchers
from collector.registry.csv_import import COLUMNS, KINDS, Problem, RegistryImportError, Source, check, store
from collector.registry.enroll_keys import duration_s

router = APIRouter(include_in_schema=False)
FORM_MAX = 16 * KB
UPLOAD_MAX = 8 * KB * KB  # a province's equipment list as XLSX is well under 1 MB
MAX_SILENCE_S = 90 * 86400.0
PREVIEW_ROWS = 50  # the first rows a preview shows (all are checked and imported)
RowId = Annotated[int, Path(ge=1, le=2**62)]


def text(form: FormData, name: str, limit: int = 200) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def back(form: FormData, default: str) -> RedirectResponse:
    return RedirectResponse(safe_next(text(form, "back", 300) or default), status_code=303)


@router.post("/console/sign-out", openapi_extra=stated(FORM_MAX))
async def sign_out(request: Request, session: SentDep, p: PartsDep) -> Response:
    p.sessions.close(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/console/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/console")
    return response


@router.post("/console/alerts/{alert_id}/ack", openapi_extra=stated(FORM_MAX))
async def ack(request: Request, alert_id: RowId, session: AdminDep, alerts: AlertsDep) -> Response:
    form = await request.form()
    comment = form.get("comment")
    if isinstance(comment, str) and len(comment) > 500:
        raise Refused(400, "err_comment")
    if alerts.ack(alert_id, session.token_name, text(form, "comment", 500), time.time()) is None:
        raise Refused(404, "err_unknown_alert", id=alert_id)
    return back(form, "/console/alerts")


def local_moment(raw: str) -> float:
    """``2026-12-24 08:00`` (or with a T) in the collector's local time, as UTC seconds."""
    return dt.datetime.fromisoformat(raw.replace("T", " ")).timestamp()


@router.post("/console/silences", openapi_extra=stated(FORM_MAX))
async def add_silence(request: Request, session: AdminDep, alerts: AlertsDep) -> Response:
    """A silence from now for some hours, or (``kind=window``) a maintenance window from a start to an end."""
    form = await request.form()
    scope = {key: text(form, key, 100) for key in ("area", "commune", "host", "rule") if text(form, key, 100)}
    try:
        matchers = Matchers.model_validate(scope).scope()
    except (ValidationError, TypeError):
        raise Refused(400, "err_silence_scope") from None
    now = time.time()
    if text(form, "kind") == "window":
        try:
            start, end = local_moment(text(form, "start")), local_moment(text(form, "end"))
        except ValueError:
            raise Refused(400, "err_window") from None
        if not now - 60 <= start < end <= start + MAX_SILENCE_S:
            raise Refused(400, "err_window")
    else:
        try:
            hours = float(text(form, "hours"))
        except ValueError:
            hours = -1.0
        if not 0 < hours * 3600 <= MAX_SILENCE_S:
            raise Refused(400, "err_hours")
        start, end = now, now + hours * 3600
    comment = text(form, "comment", 600)
    if len(comment) > 500:
        raise Refused(400, "err_comment")
    alerts.add_silence(matchers, start, end, session.token_name, comment)
    return back(form, "/console/silences")


@router.post("/console/silences/{silence_id}/end", openapi_extra=stated(FORM_MAX))
async def end_silence(request: Request, silence_id: RowId, session: AdminDep, alerts: AlertsDep) -> Response:
    if alerts.end_silence(silence_id, time.time()) is None:
        raise Refused(404, "err_unknown_silence", id=silence_id)
    return back(await request.form(), "/console/silences")


@router.post("/console/enroll-keys", openapi_extra=stated(FORM_MAX))
async def add_key(request: Request, session: AdminDep, p: PartsDep, registry: RegistryDep) -> Response:
    """Make a key for an area; the page shows it this once."""
    form = await request.form()
    areas = registry.areas()
    area, expiry, most = text(form, "area", 64), text(form, "expiry", 20), text(form, "max_hosts", 10)
    if p.enroll_keys is None or area not in areas:
        raise Refused(400, "err_unknown_area", area=area)
    try:
        lifetime = duration_s(expiry)
    except ValueError:
        raise Refused(400, "err_expiry", value=expiry) from None
    if most and (not most.isdigit() or int(most) < 1):
        raise Refused(400, "err_max_hosts")
    _key_id, key = p.enroll_keys.add(area, lifetime, int(most) if most else None)
    return key_page(request, session, p, areas, key, 201)


@router.post("/console/enroll-keys/{key_id}/revoke", openapi_extra=stated(FORM_MAX))
async def revoke_key(request: Request, key_id: RowId, session: AdminDep, p: PartsDep) -> Response:
    if p.enroll_keys is None or not p.enroll_keys.revoke(key_id):
        raise Refused(404, "err_unknown_key", id=key_id)
    return back(await request.form(), "/console/enroll-keys")


@router.post("/console/imports", openapi_extra=stated(UPLOAD_MAX))
async def preview(request: Request, session: AdminDep) -> Response:
    """Read and check an uploaded list; every bad row with its reason, or the rows ready and a confirm button."""
    form = await request.form()
    kind, upload = text(form, "kind", 20), form.get("file")
    if kind not in KINDS:
        raise Refused(400, "err_kind")
    if not isinstance(upload, UploadFile):
        raise Refused(400, "err_no_file")
    data = await upload.read()
    if not data:
        raise Refused(400, "err_no_file")
    name = (upload.filename or "upload")[-120:]
    try:
        checked = check(kind, Source(name, data))
    except RegistryImportError as exc:
        language = lang(request)
        problems = [p.in_(language) if isinstance(p, Problem) else p for p in exc.problems]
        return import_page(request, session, None, problems, None, 422)
    held = session.hold(checked, time.time())
    rows = checked.rows()
    shown = {"id": held.id, "name": name, "kind": kind, "count": checked.count, "columns": COLUMNS[kind],
             "rows": rows[:PREVIEW_ROWS], "more": max(0, len(rows) - PREVIEW_ROWS)}  # fmt: skip
    return import_page(request, session, shown, [], None, 200)


@router.post("/console/imports/{pending_id}/confirm", openapi_extra=stated(FORM_MAX))
async def confirm(
    request: Request,
    pending_id: Annotated[str, Path(max_length=64)],
    session: AdminDep,
    p: PartsDep,
    registry: RegistryDep,
) -> Response:
    """Store a previewed list, all of it in one transaction."""
    held = session.take(pending_id, time.time())
    if held is None:
        raise Refused(404, "err_pending")
    count = store(held.checked, registry, p.equipment)
    return import_page(request, session, None, [], {"n": count, "name": held.checked.name}, 201)
