"""The console's "test now": on a commune's page, each PC's buttons ask its agent for one action of the
fixed catalogue (``collector/actions.py``), and a page shows what became of the request.

The buttons are a form per PC, shown to admins only; the POST needs an admin session and the form's
CSRF token (``guard.acting``), so the request is audited under the token's name as through the API.
It waits up to ``[actions] answer_wait_s`` for the agent's first answer, then goes to the request's
page, which reloads itself every 2 s (a meta refresh: no JavaScript) while the request is pending or
accepted, and then shows the result (the speed figure, the probes...), the agent's refusal and its
reason, or "no answer in N s".
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData

from collector.actions import ActionRecord
from collector.http.body_limits import KB, stated
from collector.http.console.guard import AdminDep, Refused, SessionDep, lang, scope_of
from collector.http.console.view import page, when, words
from collector.http.deps import PartsDep, RegistryDep
from collector.registry import units
from collector.registry.registry import HostKey
from collector.vocabulary import ACTION_CONSOLE, ACTION_NAMES, ACTION_STATES, action_reason
from common.wire import ACTIONS, COMMUNE_RE, REQUEST_ID_RE

router = APIRouter(include_in_schema=False)
Code = Annotated[str, Path(pattern=COMMUNE_RE.pattern)]
RequestId = Annotated[str, Path(pattern=REQUEST_ID_RE.pattern)]
RECENT = 5
FORM_MAX = 4 * KB


def text(form: FormData, name: str, limit: int) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def host_of(code: str, host: str, registry: RegistryDep) -> HostKey:
    commune = units.commune(code)
    key = HostKey(commune.province_code if commune else "", code, host)
    if commune is None or not host or len(host) > 64 or registry.host(key) is None:
        raise Refused(404, "err_unknown_pc", host=host[:64], code=code)
    return key


def request_row(record: ActionRecord, language: str, now: float) -> dict[str, Any]:
    """A request as the console shows it: its words, and its result's figures when done."""
    state = record.state(now)
    seconds = round(record.timeout_s)
    out: dict[str, Any] = {
        "id": record.id,
        "host": record.host.host,
        "action": ACTION_NAMES[record.action].in_(language) if record.action in ACTION_NAMES else record.action,
        "state_code": state,
        "state": ACTION_STATES[state].in_(language).format(seconds=seconds),
        "reason": action_reason(record.reason).in_(language) if record.reason else "",
        "asked_at": when(record.asked_at),
        "asked_by": record.asked_by,
        "speedtests": [],
        "probes": [],
        "facts": [],
    }
    result = record.result or {}
    for item in result.get("speedtest", []):
        out["speedtests"].append(
            {"mode": item.get("mode", ""), "download": item.get("download_mbps"), "upload": item.get("upload_mbps"),
             "ping": item.get("ping_ms"), "note": item.get("skipped") or item.get("error") or ""}
        )  # fmt: skip
    for item in result.get("probe", []):
        out["probes"].append(
            {"target": item.get("target", ""), "method": item.get("method", ""), "ok": bool(item.get("ok")),
             "error": item.get("error") or "", "rtt": item.get("rtt_avg_ms")}
        )  # fmt: skip
    for name in ("inventory", "peripherals"):
        for item in result.get(name, []):
            out["facts"] += [(key, value) for key, value in item.items()]
    return out


@router.post("/console/communes/{code}/actions", openapi_extra=stated(FORM_MAX))
async def ask(request: Request, code: Code, session: AdminDep, registry: RegistryDep, p: PartsDep) -> Response:
    """One PC's button: ask its agent now, wait briefly for its first answer, then show the request."""
    form = await request.form()
    if not scope_of(request).sees_commune(code):
        raise Refused(404, "err_unknown_commune", code=code)
    name = text(form, "action", 40)
    if name not in ACTIONS:
        raise Refused(400, "err_unknown_action", name=name)
    key = host_of(code, text(form, "host", 65), registry)
    if p.actions is None:
        raise Refused(503, "err_broker_down")
    record = await run_in_threadpool(p.actions.ask, key, name, "", session.token_name)
    if record is None:
        raise Refused(503, "err_broker_down")
    await run_in_threadpool(p.actions.wait_answer, key, record.id, p.action_wait_s)  # not on the event loop
    return RedirectResponse(f"/console/communes/{code}/actions/{record.id}", status_code=303)


@router.get("/console/communes/{code}/actions/{request_id}", response_class=HTMLResponse)
def shown(request: Request, code: Code, request_id: RequestId, session: SessionDep, p: PartsDep) -> HTMLResponse:
    """What became of a request; reloads itself while the agent has not answered."""
    found = None
    if p.actions is not None and scope_of(request).sees_commune(code):
        found = p.actions.find(code, request_id)
    if found is None:
        raise Refused(404, "err_unknown_request", id=request_id)
    language, now = lang(request), time.time()
    row = request_row(found, language, now)
    return page(
        request, "action.html", session, "fleet",
        code=code, name=units.display_name(code), req=row, a=words(language, ACTION_CONSOLE),
        waiting=row["state_code"] in ("pending", "accepted"),
    )  # fmt: skip


def card_context(code: str, p: PartsDep, language: str) -> dict[str, Any]:
    """What the commune page's "test now" card needs: the catalogue's words and the latest requests."""
    now = time.time()
    recent = p.actions.recent(code, RECENT) if p.actions is not None else []
    return {
        "a": words(language, ACTION_CONSOLE),
        "catalogue": [(action, ACTION_NAMES[action].in_(language)) for action in ACTIONS],
        "recent_actions": [request_row(r, language, now) for r in recent],
    }
