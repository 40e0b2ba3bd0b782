"""The collector's HTTP API: health, Prometheus self-metrics and the fleet read endpoints.

Each feature adds its routes as an ``APIRouter`` to ``ROUTERS``; every route there needs a token
(viewer for reads, admin for changes). ``PUBLIC_ROUTERS`` are open: health, metrics and the
speed-test endpoint that agents download from.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

from collector import __version__
from collector.http import auth, fleet_routes, speedtest_endpoint, status_page
from collector.registry import units
from collector.registry.registry import HostKey
from common.wire import SCHEMA_VERSION, command_topic, encode

if TYPE_CHECKING:
    from collector.service import CollectorService

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

public = APIRouter()
core = APIRouter()


def service_of(request: Request) -> CollectorService:
    service: CollectorService = request.app.state.service
    return service


@public.get("/healthz")
def healthz(request: Request, response: Response) -> dict[str, Any]:
    """Broker and InfluxDB reachability; 503 when either is down."""
    service = service_of(request)
    mqtt_ok = service.consumer.connected.is_set()
    influx_ok = service.influx.ping()
    ok = mqtt_ok and influx_ok
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "mqtt": mqtt_ok, "influxdb": influx_ok, "version": __version__}


@public.get("/metrics")
def metrics(request: Request) -> Response:
    return Response(service_of(request).metrics.render(), media_type=PROMETHEUS_CONTENT_TYPE)


@core.get("/api/v1/hosts")
def hosts(request: Request) -> list[dict[str, Any]]:
    """Every known host with its place in the hierarchy and when it was last heard from."""
    registry = service_of(request).registry
    out = []
    for record in registry.hosts():
        commune = units.commune(record.key.commune)
        out.append(
            {
                "province": record.key.province,
                "area": registry.area_of(record.key.commune),
                "commune": record.key.commune,
                "commune_name": commune.name if commune else None,
                "host": record.key.host,
                "status": record.status,
                "status_since": record.status_since,
                "first_seen": record.first_seen,
                "last_seen": record.last_seen,
                "agent_version": record.agent_version,
            }
        )
    return out


@core.get("/api/v1/lines")
def lines(request: Request, commune: str | None = None) -> list[dict[str, Any]]:
    """Registered lines (optionally one commune's) with the contracted speeds."""
    registry = service_of(request).registry
    out = []
    for line in registry.lines(commune):
        known = units.commune(line.commune)
        out.append(
            {
                "circuit_id": line.circuit_id,
                "province": line.province,
                "commune": line.commune,
                "commune_name": known.name if known else None,
                "area": registry.area_of(line.commune),
                "isp": line.isp,
                "contracted_down_mbps": line.contracted_down_mbps,
                "contracted_up_mbps": line.contracted_up_mbps,
                "install_date": line.install_date,
            }
        )
    return out


@core.get("/api/v1/areas")
def areas(request: Request) -> list[dict[str, Any]]:
    """Areas (the IT teams' groups of communes) with their communes."""
    registry = service_of(request).registry
    grouped = registry.communes_by_area()
    return [{"code": code, "name": name, "communes": grouped.get(code, [])} for code, name in registry.areas().items()]


@core.delete("/api/v1/hosts/{province}/{commune}/{host}")
def forget_host(province: str, commune: str, host: str, request: Request) -> dict[str, Any]:
    """Forget a decommissioned host (admin): it stops counting as offline until it reports again."""
    if not service_of(request).registry.forget(HostKey(province, commune, host)):
        raise HTTPException(404, f"no host {province}/{commune}/{host} is known")
    return {"forgotten": f"{province}/{commune}/{host}"}


class SpeedtestRequest(BaseModel):
    mode: Literal["", "wan", "internet"] = ""


@core.post("/api/v1/hosts/{province}/{commune}/{host}/speedtest", status_code=202)
def request_speedtest(
    province: str, commune: str, host: str, request: Request, body: SpeedtestRequest | None = None
) -> dict[str, Any]:
    """Ask a host's agent (admin) to run a speed test now; it reports like a scheduled one."""
    service = service_of(request)
    if service.registry.host(HostKey(province, commune, host)) is None:
        raise HTTPException(404, f"no host {province}/{commune}/{host} is known")
    request_id = uuid.uuid4().hex[:12]
    payload = encode(
        {"v": SCHEMA_VERSION, "ts": int(time.time()), "id": request_id, "mode": (body or SpeedtestRequest()).mode}
    )
    info = service.consumer.client.publish(command_topic(province, commune, host, "speedtest"), payload, qos=1)
    if info.rc != 0:
        raise HTTPException(503, "the MQTT broker cannot be reached; try again")
    return {
        "id": request_id,
        "host": f"{province}/{commune}/{host}",
        "mode": (body or SpeedtestRequest()).mode or "configured",
    }


def require_token(request: Request) -> auth.Token:
    """401 without a bearer token, 403 with an unknown one or one whose role may not do this."""
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not presented.strip():
        raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
    service = service_of(request)
    token = service.tokens.lookup(presented.strip())
    if token is None:
        service.metrics.inc("api_refused_unknown_token_total")
        raise HTTPException(403, "this token is not known")
    if not auth.role_allows(token.role, request.method):
        service.metrics.inc("api_refused_role_total")
        raise HTTPException(403, f"a {token.role} token may not {request.method} here; an admin token is needed")
    return token


ROUTERS: list[APIRouter] = [core, fleet_routes.router]
PUBLIC_ROUTERS: list[APIRouter] = [public, speedtest_endpoint.router]


def build_app(service: CollectorService) -> FastAPI:
    app = FastAPI(title="commune-collector", version=__version__)
    app.state.service = service
    app.state.speedtest_throttle = speedtest_endpoint.Throttle(service.config.speedtest.endpoint_rate_mbps)
    for router in PUBLIC_ROUTERS:
        app.include_router(router)
    for router in ROUTERS:
        app.include_router(router, dependencies=[Depends(require_token)])
    guard = [] if service.config.http.public_status_page else [Depends(require_token)]
    app.include_router(status_page.router, dependencies=guard)
    return app
