"""HTTP API of "test now": ask a host's agent for one action of the fixed catalogue, and read the answer.

``POST /api/v1/hosts/{province}/{commune}/{host}/actions/{name}`` (admin; ``{key}`` in the OpenAPI
document) sends the request on the host's ``cmd/action`` topic and waits up to ``[actions]
answer_wait_s`` for the agent's first answer. It answers 202 with the request (its id, and
``pending`` or ``accepted``); 409 when the agent refused (its reason in Vietnamese and English, with
the request); 404 for a host not known; 400 for a name not in the catalogue, or a mode for an action
that takes none; 503 when the broker cannot take it. The audit log records each request with the
token that asked (``collector.audit``: the ``action_request`` rows).

``GET .../actions/{request_id}`` (viewer) reads it: pending, accepted, done (with the result: the
report's sections, e.g. the speed figure), refused, failed, or no_answer after ``[actions]
answer_timeout_s`` ("no answer in N s").
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict

from collector.actions import ActionRecord
from collector.http import body_limits
from collector.http.contract import CommuneCode, HostName, Problem, ProvinceCode, answers
from collector.http.deps import ActionsDep, RegistryDep, parts
from collector.registry.registry import HostKey
from collector.vocabulary import ACTION_ERRORS, ACTION_NAMES, ACTION_STATES, action_reason, both
from common.wire import ACTION_NAME_RE, ACTIONS, REQUEST_ID_RE

router = APIRouter()

# One path for both (POST names the action, GET the request): two templates of one shape would each
# be served the other's method. The catalogue is the schema's enum; another name is a 400.
ActionName = Annotated[
    str,
    Path(
        alias="key",
        pattern=ACTION_NAME_RE.pattern,
        description="the action: speedtest_now, probe_now, inventory_now or peripherals_now",
        json_schema_extra={"enum": list(ACTIONS)},
    ),
]
RequestId = Annotated[str, Path(alias="key", pattern=REQUEST_ID_RE.pattern, description="the id POST answered with")]
PATH = "/api/v1/hosts/{province}/{commune}/{host}/actions/{key}"
REFUSED: dict[int | str, dict[str, Any]] = {
    409: {"model": Problem, "description": "The agent refused the action; detail says why."}
}


class ActionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    mode: Literal["", "wan", "internet"] = ""  # speedtest_now only: "" = the agent's configured modes


def record_json(record: ActionRecord, now: float) -> dict[str, Any]:
    """A request as the API shows it, with its state's words (and the reason's, when refused or failed)."""
    state = record.state(now)
    words = ACTION_STATES[state]
    seconds = round(record.timeout_s)
    out: dict[str, Any] = {
        "id": record.id,
        "host": f"{record.host.province}/{record.host.commune}/{record.host.host}",
        "action": record.action,
        "action_words": ACTION_NAMES[record.action]._asdict() if record.action in ACTION_NAMES else None,
        "mode": record.mode,
        "state": state,
        "state_words": {"vi": words.vi.format(seconds=seconds), "en": words.en.format(seconds=seconds)},
        "asked_by": record.asked_by,
        "asked_at": record.asked_at,
        "answered_at": record.answered_at,
        "timeout_s": record.timeout_s,
        "result": record.result,
    }
    if record.reason:
        out["reason"] = record.reason
        out["reason_words"] = action_reason(record.reason)._asdict()
    return out


def known_host(registry: RegistryDep, province: str, commune: str, host: str) -> HostKey:
    key = HostKey(province, commune, host)
    if registry.host(key) is None:
        raise HTTPException(404, both(ACTION_ERRORS["unknown_host"], host=f"{province}/{commune}/{host}"))
    return key


@router.post(
    PATH,
    status_code=202,
    responses={**answers(400, 404, 503), **REFUSED},
    openapi_extra=body_limits.stated(body_limits.JSON_MAX),
)
def ask_action(
    province: ProvinceCode,
    commune: CommuneCode,
    host: HostName,
    name: ActionName,
    request: Request,
    registry: RegistryDep,
    desk: ActionsDep,
    body: ActionBody | None = None,
) -> Any:
    """Ask the host's agent (admin) for an action now: speedtest_now, probe_now, inventory_now or
    peripherals_now. The result comes back as a normal report, tagged on_demand (never counted in
    the monthly figures); read it with GET .../actions/{request_id}."""
    if name not in ACTIONS:
        raise HTTPException(400, both(ACTION_ERRORS["unknown_action"], name=name, names=", ".join(ACTIONS)))
    key = known_host(registry, province, commune, host)
    mode = (body or ActionBody()).mode
    if mode and name != "speedtest_now":
        raise HTTPException(400, both(ACTION_ERRORS["mode_not_taken"], name=name))
    asked_by = str(getattr(request.state, "token_name", "") or "unknown")
    record = desk.ask(key, name, mode, asked_by)
    if record is None:
        raise HTTPException(503, both(ACTION_ERRORS["broker_down"]))
    record = desk.wait_answer(key, record.id, parts(request).action_wait_s) or record
    now = time.time()
    if record.stored_state == "refused":
        refused, words = ACTION_ERRORS["refused"], action_reason(record.reason)
        detail = f"{refused.vi.format(name=name, reason=words.vi)} / {refused.en.format(name=name, reason=words.en)}"
        return JSONResponse(status_code=409, content={"detail": detail, **record_json(record, now)})
    return record_json(record, now)


@router.get(
    PATH,
    responses=answers(404, 503),
)
def read_action(
    province: ProvinceCode,
    commune: CommuneCode,
    host: HostName,
    request_id: RequestId,
    desk: ActionsDep,
) -> dict[str, Any]:
    """What became of a request: pending, accepted, done (with its result), refused or failed (with the
    agent's reason), or no_answer once [actions] answer_timeout_s passed without one."""
    record = desk.get(HostKey(province, commune, host), request_id)
    if record is None:
        raise HTTPException(
            404, both(ACTION_ERRORS["unknown_request"], request=request_id, host=f"{province}/{commune}/{host}")
        )
    return record_json(record, time.time())
