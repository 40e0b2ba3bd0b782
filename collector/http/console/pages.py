"""The console's pages (GET): sign-in, the fleet by area, a commune, alerts, silences and
maintenance windows, enrolment keys and the upload form. What a page shows is decided here, with
the words from ``vocabulary.CONSOLE``; the markup is ``templates/console/``. Every page needs a
session (viewer or admin); the forms on it are shown to admins only (``changes.py`` takes them).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import unquote, urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.alerting.conditions import RULES
from collector.fleet.equipment import CommuneEquipment, usb_id
from collector.fleet.history import DAYS, History
from collector.fleet.rules import HostStatus
from collector.http import status_page
from collector.http.body_limits import stated
from collector.http.console.actions import card_context
from collector.http.console.charts import Chart, chart
from collector.http.console.guard import (
    CSRF_FIELD,
    SESSION_COOKIE,
    Refused,
    SessionDep,
    lang,
    scope_of,
    session_of,
)
from collector.http.console.view import ago, page, when, words
from collector.http.console.view import page as page_of
from collector.http.contract import LABEL_PATTERN
from collector.http.deps import AlertsDep, PartsDep, RegistryDep, SnapshotDep
from collector.http.scope import Where
from collector.http.sessions import Session, new_secret, same
from collector.registry import units
from collector.registry.csv_import import COLUMNS, KINDS
from collector.vocabulary import (
    CONSOLE,
    DEGRADED_REASONS,
    EQUIPMENT_STATES,
    LINE_STATES,
    OUTAGE_CAUSES,
    PERIPHERAL_KINDS,
    SEVERITIES,
    STATUS_LEVELS,
    STATUS_PAGE,
)
from collector.vocabulary import (
    RULES as RULE_WORDS,
)
from common.wire import COMMUNE_RE

router = APIRouter(include_in_schema=False)
SIGN_IN_COOKIE = "cm_sign_in"  # the sign-in form's CSRF token (double submit: no session exists yet)
SIGN_IN_MAX = 4 * 1024
RECENT_OUTAGES, RECENT_OUTAGES_S = 10, 90 * 86400.0


def safe_next(raw: str | None) -> str:
    """Where to go after signing in: a console path only (never another site)."""
    target = unquote(raw or "")
    return target if target.startswith("/console") and not target.startswith("//") else "/console"


def cookie(response: Response, request: Request, name: str, value: str, max_age: int | None = None) -> None:
    secure = request.url.scheme == "https"
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", secure=secure, path="/console")


@router.get("/console/sign-in", response_class=HTMLResponse)
def sign_in_form(request: Request, p: PartsDep, next: str = "") -> Response:
    if session_of(request, p) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return sign_in_page(request, next, 200, "")


def sign_in_page(request: Request, back_to: str, status: int, error_key: str, **values: object) -> Response:
    nonce = new_secret()
    language = lang(request)
    errors = []
    if error_key:
        said = CONSOLE[error_key]
        errors = [said.in_(language).format(**values), said.in_("en" if language == "vi" else "vi").format(**values)]
    response = page(request, "sign_in.html", None, status=status, nonce=nonce, next=safe_next(back_to),
                    errors=errors)  # fmt: skip
    cookie(response, request, SIGN_IN_COOKIE, nonce, 1800)
    return response


@router.post("/console/sign-in", openapi_extra=stated(SIGN_IN_MAX))
async def sign_in(request: Request, p: PartsDep) -> Response:
    form = await request.form()
    given, token_text, back_to = form.get(CSRF_FIELD), form.get("token"), form.get("next")
    if not same(given if isinstance(given, str) else None, request.cookies.get(SIGN_IN_COOKIE) or "\0"):
        return sign_in_page(request, str(back_to or ""), 403, "err_csrf")
    address = request.client.host if request.client else "unknown"
    wait_s = p.sign_in_failures.wait_s(address)
    if wait_s > 0:  # ten wrong tokens from one address: one more every 30 s (a token cannot be guessed anyway)
        return sign_in_page(request, str(back_to or ""), 429, "err_too_many", seconds=int(wait_s) + 1)
    token = p.tokens.lookup(token_text.strip()) if isinstance(token_text, str) and token_text.strip() else None
    if token is None:
        p.metrics.api_refused_unknown_token.inc()
        p.sign_in_failures.failed(address)
        return sign_in_page(request, str(back_to or ""), 403, "err_token")
    session = p.sessions.open(token)
    response = RedirectResponse(safe_next(str(back_to or "")), status_code=303)
    cookie(response, request, SESSION_COOKIE, session.id, int(p.sessions.lifetime_s))
    response.delete_cookie(SIGN_IN_COOKIE, path="/console")
    return response


@router.get("/console", response_class=HTMLResponse)
def fleet(
    request: Request,
    session: SessionDep,
    snapshot: SnapshotDep,
    registry: RegistryDep,
    q: Annotated[str, Query(max_length=100)] = "",
    level: Annotated[str, Query(pattern="^(|red|amber|green)$")] = "",
    area: Annotated[str, Query(pattern=f"^$|{LABEL_PATTERN[1:-1]}$")] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
) -> HTMLResponse:
    """Communes by area, problems first, filtered by a name or code, an area and a level, 200 a page
    (a nation holds 3,321 communes)."""
    language = lang(request)
    wanted = q.strip().casefold()
    scope = scope_of(request)
    shown = [c for c in snapshot.communes if scope.sees_commune(c.commune) and (not area or c.area == area)]
    names = registry.areas()
    areas = []
    for found in status_page.areas(shown, names, snapshot.equipment, language):
        rows = [r for r in found.rows if (not level or r.level == level) and (
            not wanted or wanted in r.name.casefold() or wanted in r.code)]  # fmt: skip
        if rows:
            areas.append(status_page.Area(found.code, found.name, found.level, rows))
    levels = {key: w.in_(language) for key, w in STATUS_LEVELS.items()}
    counts = {colour: sum(1 for a in areas for r in a.rows if r.level == colour) for colour in levels}
    pages = max(1, -(-sum(counts.values()) // status_page.PAGE_ROWS))
    page = min(page, pages)
    filters = {key: value for key, value in (("q", q), ("level", level), ("area", area)) if value}
    links = {n: "/console?" + urlencode({**filters, "page": n}) for n in (page - 1, page + 1) if 1 <= n <= pages}
    choices = sorted((code, names.get(code, code)) for code in {c.area for c in snapshot.communes}
                     if scope.sees_area(code))  # fmt: skip
    return page_of(request, "fleet.html", session, "fleet", areas=status_page.one_page(areas, page), levels=levels,
                   counts=counts, q=q, level=level, area=area, area_choices=choices, page=page, pages=pages,
                   links=links, s=words(language, STATUS_PAGE),
                   updated=when(time.time()))  # fmt: skip


@dataclass(frozen=True)
class PcRow:
    host: str
    online: bool
    reasons: list[str]
    last_report: str
    since: str


def pc_rows(hosts: list[HostStatus], at: float, language: str) -> list[PcRow]:
    """``at``: when ``hosts`` were evaluated."""
    rows = []
    for h in sorted(hosts, key=lambda h: (h.online, not h.reasons, h.key.host)):
        reasons = [DEGRADED_REASONS[r].in_(language) if r in DEGRADED_REASONS else r for r in h.reasons]
        rows.append(PcRow(h.key.host, h.online, reasons, ago(at - h.last_heard, language), when(h.since)))
    return rows


def charts(history: History, contracted: float, language: str, now: float) -> list[Chart]:
    start = now - DAYS * 86400
    t = words(language)
    return [
        chart(t["chart_online"], history.online, start, now, max((v for _t, v in history.total), default=None)),
        chart(t["chart_speed"], history.download, start, now, contracted or None),
        chart(t["chart_rtt"], history.rtt, start, now),
        chart(t["chart_loss"], history.loss, start, now),
    ]


def equipment_rows(kit: CommuneEquipment | None, language: str) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    if kit is None:
        return [], []
    issued = [
        {"kind": PERIPHERAL_KINDS[v.item.kind].in_(language) if v.item.kind in PERIPHERAL_KINDS else v.item.kind,
         "model": v.item.model, "serial": v.item.serial, "holder": v.item.holder, "state_code": v.state,
         "state": EQUIPMENT_STATES[v.state].in_(language) if v.state in EQUIPMENT_STATES else v.state,
         "last_seen": when(v.last_seen)}
        for v in kit.verdicts
    ]  # fmt: skip
    issued += [
        {"kind": PERIPHERAL_KINDS[d.kind].in_(language) if d.kind in PERIPHERAL_KINDS else d.kind, "model": d.model,
         "serial": d.serial, "holder": d.host, "state_code": "unregistered",
         "state": EQUIPMENT_STATES["unregistered"].in_(language), "last_seen": when(d.last_seen)}
        for d in kit.unregistered
    ]  # fmt: skip
    other = [{"usb_id": usb_id(d.device), "model": d.model, "host": d.host, "last_seen": when(d.last_seen)}
             for d in kit.other]  # fmt: skip
    return issued, other


def alert_rows(alerts: list[Any], language: str) -> list[dict[str, Any]]:
    return [
        {"id": a.id, "rule": RULE_WORDS[a.rule].in_(language) if a.rule in RULE_WORDS else a.rule,
         "severity_code": a.severity,
         "severity": SEVERITIES[a.severity].in_(language) if a.severity in SEVERITIES else a.severity,
         "summary": a.summary_vi if language == "vi" else a.summary_en, "state": a.state, "commune": a.commune,
         "commune_name": units.display_name(a.commune) if a.commune else "", "host": a.host,
         "since": when(a.fired_at or a.started_at), "acked_by": a.acked_by, "acked_at": when(a.acked_at),
         "ack_comment": a.ack_comment}
        for a in sorted(alerts, key=lambda a: -(a.fired_at or a.started_at))
    ]  # fmt: skip


@router.get("/console/communes/{code}", response_class=HTMLResponse)
def commune(
    request: Request,
    code: Annotated[str, Path(pattern=COMMUNE_RE.pattern)],
    session: SessionDep,
    snapshot: SnapshotDep,
    registry: RegistryDep,
    alerts: AlertsDep,
    p: PartsDep,
) -> HTMLResponse:
    """One commune: its PCs, its line, its equipment, its open alerts and its last 7 days."""
    language, now = lang(request), time.time()
    found = [c for c in snapshot.communes if c.commune == code]
    if not found or not scope_of(request).sees_commune(code):  # outside the scope: as if it did not exist
        raise Refused(404, "err_unknown_commune", code=code)
    c = found[0]
    lines = registry.lines(code)
    contracted = lines[0].contracted_down_mbps if lines else c.contracted_down_mbps
    history = p.history(code) if p.history is not None else History()
    measured = [v for _t, v in history.download]
    speed = sum(measured) / len(measured) if measured else None
    outages = [
        {"start": when(o["start"]), "end": when(o["end"]) if o.get("end") else "",
         "cause": OUTAGE_CAUSES[o["cause"]].in_(language) if o.get("cause") in OUTAGE_CAUSES else ""}
        for o in (p.outages(now - RECENT_OUTAGES_S, code) if p.outages else [])[:RECENT_OUTAGES]
    ]  # fmt: skip
    kit = next((k for k in snapshot.equipment if k.commune == code), None)
    issued, other = equipment_rows(kit, language)
    hosts = [h for h in snapshot.hosts if h.key.commune == code]
    return page(
        request, "commune.html", session, "fleet",
        commune=c, name=units.display_name(code), area_name=registry.areas().get(c.area, c.area),
        level=status_page.level(c), levels={k: w.in_(language) for k, w in STATUS_LEVELS.items()},
        line_state=LINE_STATES[c.line_state].words.in_(language), line_why=status_page.reasons_in(c, language),
        lines=lines, contracted=contracted, speed=speed,
        speed_share=round(100 * speed / contracted) if speed is not None and contracted else None,
        pcs=pc_rows(hosts, snapshot.at, language), hosts=hosts, outages=outages, issued=issued, other=other,
        alerts=alert_rows([a for a in list(p.alerts.open.values()) if a.commune == code], language),
        charts=charts(history, contracted, language, now), history_failed=history.failed,
        csrf=session.csrf, **card_context(code, p, language),
    )  # fmt: skip


@router.get("/console/alerts", response_class=HTMLResponse)
def alert_list(request: Request, session: SessionDep, alerts: AlertsDep) -> HTMLResponse:
    """Open alerts (those the session may see), newest first, with their acknowledgement."""
    scope = scope_of(request)
    found = [a for a in list(alerts.open.values()) if scope.sees(Where(a.commune or None, a.area or None))]
    return page(request, "alerts.html", session, "alerts", alerts=alert_rows(found, lang(request)), csrf=session.csrf)


@router.get("/console/silences", response_class=HTMLResponse)
def silence_list(request: Request, session: SessionDep, alerts: AlertsDep, registry: RegistryDep) -> HTMLResponse:
    """Silences in force and scheduled (maintenance windows), the daily windows of the config, the forms."""
    language, now, scope = lang(request), time.time(), scope_of(request)
    rows = [
        {"id": s.id, "matches": ", ".join(f"{k}={v}" for k, v in sorted(s.matchers.items())),
         "start": when(s.starts_at), "end": when(s.ends_at), "in_force": s.starts_at <= now, "author": s.author,
         "comment": s.comment}
        for s in alerts.silences(now)
        if scope.sees(Where(s.matchers.get("commune"), s.matchers.get("area")))
    ]  # fmt: skip
    daily = [{"matches": ", ".join(f"{k}={v}" for k, v in sorted(w.items()) if k != "time"), "time": w.get("time", "")}
             for w in alerts.settings.maintenance]  # fmt: skip
    rules = [(r, RULE_WORDS[r].in_(language) if r in RULE_WORDS else r) for r in RULES]
    return page(request, "silences.html", session, "silences", silences=rows, daily=daily, rules=rules,
                areas=registry.areas(), csrf=session.csrf,
                default_start=time.strftime("%Y-%m-%d %H:%M", time.localtime(now + 86400)),
                default_end=time.strftime("%Y-%m-%d %H:%M", time.localtime(now + 86400 + 4 * 3600)))  # fmt: skip


@router.get("/console/enroll-keys", response_class=HTMLResponse)
def key_list(request: Request, session: SessionDep, p: PartsDep, registry: RegistryDep) -> HTMLResponse:
    return key_page(request, session, p, registry.areas(), "", 200)


def key_page(request: Request, session: Session, p: PartsDep, areas: dict[str, str], made: str,
             status: int) -> HTMLResponse:  # fmt: skip
    """Keys with their area, uses, expiry and state; ``made`` is a key just made (shown this once)."""
    now, t = time.time(), words(lang(request))
    keys = []
    scope = scope_of(request)
    for key in p.enroll_keys.all() if p.enroll_keys else []:
        if not scope.sees_area(key.area):
            continue
        state = "revoked" if key.revoked_at else "expired" if key.expires_at <= now else "valid"
        keys.append({"id": key.id, "area": areas.get(key.area, key.area), "created": when(key.created_at),
                     "expires": when(key.expires_at), "uses": p.enroll_keys.hosts_of(key.id) if p.enroll_keys else 0,
                     "max_hosts": key.max_hosts, "state_code": state, "state": t[state]})  # fmt: skip
    return page(request, "enroll_keys.html", session, "enroll_keys", status=status, keys=keys, areas=areas,
                made=made, csrf=session.csrf, available=p.enroll_keys is not None)  # fmt: skip


@router.get("/console/imports", response_class=HTMLResponse)
def import_form(request: Request, session: SessionDep) -> HTMLResponse:
    return import_page(request, session, None, [], None, 200)


def import_page(request: Request, session: Session, preview: dict[str, Any] | None, problems: list[str],
                done: dict[str, Any] | None, status: int) -> HTMLResponse:  # fmt: skip
    kinds = [(k, CONSOLE[f"kind_{k}"].in_(lang(request)), ", ".join(COLUMNS[k])) for k in KINDS]
    return page(request, "imports.html", session, "imports", status=status, kinds=kinds, preview=preview,
                problems=problems, done=done, csrf=session.csrf)  # fmt: skip
