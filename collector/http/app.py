"""The collector's HTTP API: health, Prometheus self-metrics and the fleet read endpoints.

Each feature adds its routes as an ``APIRouter`` to ``ROUTERS``; every route there needs a token
(viewer for reads, admin for changes). ``PUBLIC_ROUTERS`` are open: health, metrics and the
speed-test endpoint that agents download from. Routes receive what they use (the registry, the
token store, a health check...) through the dependencies in ``collector.http.deps``; ``build_app``
takes the ``HttpParts`` the service builds, and this package never imports the service.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match

from collector import __version__
from collector.audit import Actor
from collector.http import (
    action_routes,
    admin_routes,
    auth,
    body_limits,
    console,
    contract,
    enroll_routes,
    fleet_routes,
    paging,
    report_routes,
    scope,
    speedtest_endpoint,
    status_page,
)
from collector.http.contract import CommuneCode, CommuneFilter, HostName, ProvinceCode, answers
from collector.http.deps import CommandsDep, DiskDep, HealthDep, HttpParts, MetricsDep, RegistryDep, TokensDep, parts
from collector.http.scope import ScopeDep, Where
from collector.registry import units
from collector.registry.registry import HostKey, HostRecord, Line
from common.wire import SCHEMA_VERSION, command_topic, encode

log = logging.getLogger("commune_collector.http")
PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

public = APIRouter()
core = APIRouter()


@public.get(
    "/healthz",
    responses={
        503: {
            "description": "A part the collector needs is down, or a file it writes cannot be written.",
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    },
)
def healthz(response: Response, health: HealthDep, disk: DiskDep) -> dict[str, Any]:
    """Broker and InfluxDB reachability (each check by name) and whether the collector's files can
    be written (``disk``: each file's state); 503 when any of them fails."""
    checks = health()
    ok = all(checks.values()) and disk.ok()
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", **checks, "disk": disk.report(), "version": __version__}


@public.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Prometheus text."}},
)
def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)


@core.get("/api/v1/hosts", responses=paging.listed("Known hosts, by province, commune and host."))
def hosts(registry: RegistryDep, pager: paging.PagerDep) -> list[dict[str, Any]]:
    """Every known host with its place in the hierarchy and when it was last heard from."""
    out = []
    for record in pager.page(registry.hosts(), host_key, host_place):
        out.append(
            {
                "province": record.key.province,
                "area": registry.area_of(record.key.commune),
                "commune": record.key.commune,
                "commune_name": units.commune_name(record.key.commune),
                "host": record.key.host,
                "status": record.status,
                "status_since": record.status_since,
                "first_seen": record.first_seen,
                "last_seen": record.last_seen,
                "agent_version": record.agent_version,
            }
        )
    return out


@core.get("/api/v1/lines", responses=paging.listed("Registered lines, by commune and circuit id."))
def lines(registry: RegistryDep, pager: paging.PagerDep, commune: CommuneFilter = None) -> list[dict[str, Any]]:
    """Registered lines (optionally one commune's) with the contracted speeds."""
    out = []
    for line in pager.page(registry.lines(commune), line_key, lambda line: Where(line.commune)):
        out.append(
            {
                "circuit_id": line.circuit_id,
                "province": line.province,
                "commune": line.commune,
                "commune_name": units.commune_name(line.commune),
                "area": registry.area_of(line.commune),
                "isp": line.isp,
                "contracted_down_mbps": line.contracted_down_mbps,
                "contracted_up_mbps": line.contracted_up_mbps,
                "install_date": line.install_date,
            }
        )
    return out


@core.get("/api/v1/areas", responses=paging.listed("Areas, by code."))
def areas(registry: RegistryDep, pager: paging.PagerDep, scope: ScopeDep) -> list[dict[str, Any]]:
    """Areas (the IT teams' groups of communes) with their communes (a scoped token: those it sees)."""
    grouped = registry.communes_by_area()
    found = [
        {"code": code, "name": name, "communes": [c for c in grouped.get(code, []) if scope.sees_commune(c)]}
        for code, name in registry.areas().items()
    ]
    return pager.page(found, area_key, lambda area: Where(area=area["code"]))


def host_key(record: HostRecord) -> paging.Key:
    return (record.key.province, record.key.commune, record.key.host)


def host_place(record: HostRecord) -> Where:
    return Where(record.key.commune)


def line_key(line: Line) -> paging.Key:
    return (line.commune, line.circuit_id)


def area_key(area: dict[str, Any]) -> paging.Key:
    return (area["code"],)


@core.delete("/api/v1/hosts/{province}/{commune}/{host}", responses=answers(404))
def forget_host(province: ProvinceCode, commune: CommuneCode, host: HostName, registry: RegistryDep) -> dict[str, Any]:
    """Forget a decommissioned host (admin): it stops counting as offline until it reports again."""
    if not registry.forget(HostKey(province, commune, host)):
        raise HTTPException(404, f"no host {province}/{commune}/{host} is known")
    return {"forgotten": f"{province}/{commune}/{host}"}


class SpeedtestRequest(BaseModel):
    mode: Literal["", "wan", "internet"] = ""


@core.post(
    "/api/v1/hosts/{province}/{commune}/{host}/speedtest",
    status_code=202,
    responses=answers(400, 404, 503),
    openapi_extra=body_limits.stated(body_limits.JSON_MAX),
)
def request_speedtest(
    province: ProvinceCode,
    commune: CommuneCode,
    host: HostName,
    registry: RegistryDep,
    commands: CommandsDep,
    body: SpeedtestRequest | None = None,
) -> dict[str, Any]:
    """Ask a host's agent (admin) to run a speed test now; it reports like a scheduled one."""
    if registry.host(HostKey(province, commune, host)) is None:
        raise HTTPException(404, f"no host {province}/{commune}/{host} is known")
    request_id = uuid.uuid4().hex[:12]
    payload = encode(
        {"v": SCHEMA_VERSION, "ts": int(time.time()), "id": request_id, "mode": (body or SpeedtestRequest()).mode}
    )
    if not commands.publish_command(command_topic(province, commune, host, "speedtest"), payload):
        raise HTTPException(503, "the MQTT broker cannot be reached; try again")
    return {
        "id": request_id,
        "host": f"{province}/{commune}/{host}",
        "mode": (body or SpeedtestRequest()).mode or "configured",
    }


async def require_token(
    request: Request,
    tokens: TokensDep,
    metrics: MetricsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(contract.bearer)],
) -> auth.Token:
    """401 without a bearer token, 403 with an unknown one or one whose role may not do this.
    ``async``: the token check reads the state file beside its writers (``Store.read``), so it takes
    no thread-pool hop (``collector.http.deps``)."""
    if credentials is None or not credentials.credentials.strip():
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    token = tokens.lookup(credentials.credentials.strip())
    if token is None:
        metrics.api_refused_unknown_token.inc()
        raise HTTPException(403, "this token is not known")
    if not auth.role_allows(token.role, request.method):
        metrics.api_refused_role.inc()
        raise HTTPException(403, f"a {token.role} token may not {request.method} here; an admin token is needed")
    request.state.token_name, request.state.token_role = token.name, token.role  # for the audit log
    request.state.token = token  # for its scope (collector.http.scope)
    return token


ROUTERS: list[APIRouter] = [
    core,
    fleet_routes.router,
    report_routes.router,
    admin_routes.router,
    action_routes.router,
]
PUBLIC_ROUTERS: list[APIRouter] = [
    public,
    speedtest_endpoint.router,
    enroll_routes.router,
]  # enroll: its key is its bearer


GUARDED = [Depends(require_token), Depends(scope.guard)]
"""What every token-protected route runs first: the token's check, then its scope's (404 outside it)."""


def build_app(parts: HttpParts) -> FastAPI:
    """The app over ``parts``: routes receive their objects through ``collector.http.deps``."""
    app = FastAPI(title="commune-collector", version=__version__)
    app.state.parts = parts
    every = [
        route for router in [*PUBLIC_ROUTERS, *ROUTERS, status_page.router, *console.ROUTERS] for route in router.routes
    ]
    limits = body_limits.route_limits(every, answers(413)[413])  # before the routers are included
    app.add_exception_handler(405, contract.method_not_allowed)
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, dependencies=GUARDED, responses=answers(401, 403, 503))
    if parts.public_status_page:
        app.include_router(status_page.router)
    else:
        app.include_router(status_page.router, dependencies=GUARDED, responses=answers(401, 403))
    console.install(app)  # its own sign-in (a session cookie); its changes are audited like the API's
    app.add_exception_handler(sqlite3.OperationalError, state_not_written)
    app.add_middleware(body_limits.BodyLimits, routes=limits, refused=parts.metrics.api_refused_body_too_large.inc)
    app.middleware("http")(
        audit_changes([route for router in [*ROUTERS, *console.CHANGING] for route in router.routes])
    )
    return app


Next = Callable[[Request], Awaitable[Response]]


def audit_changes(protected: list[BaseRoute]) -> Callable[[Request, Next], Awaitable[Response]]:
    """The one place the API's administrative changes go to the audit log: every call that may
    change something on a token-protected route runs alone (one at a time), between a snapshot of
    the watched rows and the entries for what differs after it (by the token's name, from the
    client's address). A refused call (401, 403) records nothing."""
    lock = asyncio.Lock()

    def changes_state(request: Request) -> bool:
        if request.method in auth.READ_METHODS:
            return False
        return any(route.matches(request.scope)[0] == Match.FULL for route in protected)

    async def audited(request: Request, call_next: Next) -> Response:
        book = parts(request).audit
        if book is None or not changes_state(request):
            return await call_next(request)
        async with lock:
            before = await run_in_threadpool(book.snapshot)
            response = await call_next(request)
            name = getattr(request.state, "token_name", None)
            if name is not None:
                actor = Actor(name, request.client.host if request.client else "unknown")
                action = f"{request.method} {request.url.path}"
                try:
                    await run_in_threadpool(book.record, actor, action, before, time.time(), response.status_code < 400)
                except sqlite3.OperationalError as exc:  # the change could be made, its entry not: said loudly
                    error = parts(request).disk.failed("state", exc, "audit log")
                    log.error("an admin change is not in the audit log", extra={"action": action, "error": error})
            return response

    return audited


def state_not_written(request: Request, exc: Exception) -> JSONResponse:
    """A change the state file could not take (full disk, read-only): 503, counted, said plainly."""
    error = parts(request).disk.failed("state", exc, f"{request.method} {request.url.path}")
    return JSONResponse(
        status_code=503,
        content={"detail": f"the collector's state file cannot be written ({error}); nothing was changed, try again"},
    )
