"""``POST /api/v1/enroll``: an agent enrols itself with an area's enrolment key.

The key is the bearer credential of this one route (not an API token), so it travels in the
``Authorization`` header and never in a URL or a logged body. The answer is the host's own MQTT
user and password, the broker's address and the CA. Every refusal is counted by its one reason
(``commune_collector_enroll_refused_total``) and logged without the key; an address that keeps
failing is refused (429, ``Retry-After``) until its failure budget refills.
"""

from __future__ import annotations

import logging
import math
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, Field

from collector.http import contract
from collector.http.body_limits import ENROLL_MAX, stated
from collector.http.contract import answers
from collector.http.deps import EnrollDep, MetricsDep
from collector.registry.dynsec import DynsecError
from collector.registry.enroll import EnrollError, checked_place
from collector.registry.enroll_keys import Refused
from collector.selfmetrics import SelfMetrics
from common.wire import COMMUNE_RE, HOST_RE, PROVINCE_RE

log = logging.getLogger("commune_collector.enroll")
router = APIRouter()
STATUS_OF = {"host_taken": 409, "bad_request": 400, "throttled": 429}  # every other refusal is 403


class EnrollRequest(BaseModel):
    province: str = Field(pattern=PROVINCE_RE.pattern, description="official province code, e.g. 08")
    commune: str = Field(pattern=COMMUNE_RE.pattern, description="official commune code, e.g. 02473")
    host: str = Field(pattern=HOST_RE.pattern, description="the PC's name, e.g. pc-01")


class EnrollAnswer(BaseModel):
    province: str
    commune: str
    host: str
    username: str = Field(description="the host's own MQTT user")
    password: str = Field(description="its password, shown this once")
    broker_host: str
    broker_port: int
    tls: bool
    ca_pem: str = Field(description="the CA certificate the agent trusts (PEM), or empty")


def refuse(
    metrics: SelfMetrics, reason: str, message: str, address: str, retry_after_s: float = 0, status: int = 0
) -> HTTPException:
    """Count and log a refusal (never the key) and make its HTTP answer (``status`` if given)."""
    metrics.enroll_refused.labels(reason=reason).inc()
    log.warning("enrolment refused", extra={"reason": reason, "address": address, "detail": message[:200]})
    headers = {"Retry-After": str(math.ceil(retry_after_s))} if retry_after_s else None
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer"}
    return HTTPException(status or STATUS_OF.get(reason, 403), message, headers=headers)


@router.post(
    "/api/v1/enroll",
    responses=answers(400, 401, 403, 404, 409, 429, 503),
    openapi_extra=stated(ENROLL_MAX),
)
def enroll(
    body: EnrollRequest,
    request: Request,
    desk: EnrollDep,
    metrics: MetricsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(contract.bearer)],
) -> EnrollAnswer:
    """Enrol this PC (bearer: an enrolment key of the commune's area): its own MQTT user and
    password, the broker's address and the CA. A host name that exists is not taken over. 404
    when this collector enrols no hosts (no ``[enroll] admin_username``)."""
    address = request.client.host if request.client else "unknown"
    if credentials is None or not credentials.credentials.strip():
        raise refuse(metrics, "unknown_key", "an enrolment key is required as the bearer token", address, status=401)
    if desk is None:
        raise HTTPException(404, "this collector enrols no hosts: [enroll] admin_username is not set")
    wait_s = desk.limiter.wait_s(address)
    if wait_s > 0:
        raise refuse(metrics, "throttled", "too many failed enrolments from this address; try later", address, wait_s)
    try:
        place = checked_place(body.province, body.commune, body.host)
        enrollment = desk.keys.enroll(desk.enroller, desk.registry, credentials.credentials, place)
    except (Refused, EnrollError) as exc:
        desk.limiter.failed(address)
        raise refuse(metrics, exc.reason, str(exc), address) from None
    except DynsecError as exc:
        log.error("enrolment failed at the broker", extra={"detail": str(exc)[:300]})
        raise HTTPException(503, "the broker could not take the new host now; try again") from None
    metrics.hosts_enrolled.inc()
    log.info("host enrolled by key", extra={"username": enrollment.username, "address": address})
    return EnrollAnswer(
        username=enrollment.username,
        password=enrollment.password,
        ca_pem=desk.ca_pem,
        **asdict(place),
        **desk.settings.model_dump(include={"broker_host", "broker_port", "tls"}),
    )
