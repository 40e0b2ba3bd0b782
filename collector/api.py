"""The collector's HTTP API: health, Prometheus self-metrics and the fleet read endpoints.

Each feature adds its routes as an ``APIRouter`` registered in ``build_app``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request, Response

from collector import __version__, units

if TYPE_CHECKING:
    from collector.service import CollectorService

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

core = APIRouter()


def service_of(request: Request) -> CollectorService:
    service: CollectorService = request.app.state.service
    return service


@core.get("/healthz")
def healthz(request: Request, response: Response) -> dict[str, Any]:
    """Broker and InfluxDB reachability; 503 when either is down."""
    service = service_of(request)
    mqtt_ok = service.consumer.connected.is_set()
    influx_ok = service.influx.ping()
    ok = mqtt_ok and influx_ok
    response.status_code = 200 if ok else 503
    return {"status": "ok" if ok else "degraded", "mqtt": mqtt_ok, "influxdb": influx_ok, "version": __version__}


@core.get("/metrics")
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


ROUTERS: list[APIRouter] = [core]


def build_app(service: CollectorService) -> FastAPI:
    app = FastAPI(title="commune-collector", version=__version__)
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    return app
