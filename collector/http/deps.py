"""What the HTTP layer is given, and how a route asks for it: narrow FastAPI dependencies.

The service builds one ``HttpParts`` and passes it to ``build_app``. A route names the one
object it uses (``registry: RegistryDep``), never the whole service, so nothing under
``collector/http/`` imports the service module, and the app can be built from any parts that
fit (a test's, a tool's) without starting MQTT or InfluxDB.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Protocol

from fastapi import Depends, HTTPException, Request

from collector.actions import ActionDesk
from collector.alerting.lifecycle import AlertManager
from collector.audit import Actor, AuditBook
from collector.config import EnrollSettings
from collector.diskhealth import DiskHealth
from collector.fleet.history import History
from collector.fleet.state import Snapshot
from collector.http.auth import TokenStore
from collector.http.sessions import Sessions
from collector.http.throttle import FailureLimiter, Throttle
from collector.http.uploads import UploadGate
from collector.registry.enroll import Enroller
from collector.registry.enroll_keys import EnrollKeys
from collector.registry.equipment import Equipment
from collector.registry.exclusions import Exclusions
from collector.registry.registry import Registry
from collector.reports.revisions import RevisionBook
from collector.selfmetrics import SelfMetrics

HealthCheck = Callable[[], dict[str, bool]]
"""Each named part the collector needs (``mqtt``, ``influxdb``...) and whether it works now."""

SnapshotSource = Callable[[], Snapshot]
"""The fleet's latest evaluated snapshot (hosts, communes, their states and reasons)."""


OutageSource = Callable[[float, str | None], list[dict[str, Any]]]
"""Outage records (as JSON) that started at or after a time, of one commune or all, newest first."""


HistorySource = Callable[[str], History]
"""A commune's last days from InfluxDB (PCs online, speed, round trip, loss) for the console's charts."""


# month, format, area, who asks (a month frozen now is theirs), evidence appendix (None: the format's default)
ReportMaker = Callable[[str, str, str, Actor, bool | None], bytes]
"""The monthly report of a month (YYYY-MM) in a format (pdf, xlsx, html) for an area ("" for all)."""


ReplacementSource = Callable[[str, str, str], list[dict[str, Any]]]
"""The replacement list of a month (YYYY-MM, "" for this one), a province and an area ("" for all)."""


ScorecardSource = Callable[[str, str], dict[str, Any]]
"""One commune's scorecard of a month (YYYY-MM): figures raw and adjusted, and their evidence rows."""


class CommandPublisher(Protocol):
    """Sends a command to an agent; False when the broker cannot take it now."""

    def publish_command(self, topic: str, payload: bytes) -> bool: ...


@dataclass(frozen=True)
class EnrollDesk:
    """What self-enrolment uses: the keys, the enroller (which reaches the broker), the registry's
    areas, the failure limiter, and what an enrolled agent is told (broker address, CA)."""

    keys: EnrollKeys
    enroller: Enroller
    registry: Registry
    limiter: FailureLimiter
    settings: EnrollSettings
    ca_pem: str


@dataclass(frozen=True)
class HttpParts:
    """Everything a route may use; the service builds it once."""

    registry: Registry
    snapshots: SnapshotSource
    alerts: AlertManager
    tokens: TokenStore
    metrics: SelfMetrics
    health: HealthCheck
    disk: DiskHealth  # which of the collector's files cannot be written now
    commands: CommandPublisher
    throttle: Throttle
    public_status_page: bool = True
    reports: ReportMaker | None = None
    replacement: ReplacementSource | None = None
    scorecard: ScorecardSource | None = None
    outages: OutageSource | None = None
    uploads: UploadGate = field(default_factory=UploadGate)
    enroll: EnrollDesk | None = None
    audit: AuditBook | None = None  # None: admin changes are not recorded (an app built without a state file)
    exclusions: Exclusions | None = None
    revisions: RevisionBook | None = None  # the frozen months' revisions (collector/reports/revisions.py)
    sessions: Sessions = field(default_factory=Sessions)  # the web console's signed-in people
    sign_in_failures: FailureLimiter = field(default_factory=lambda: FailureLimiter(10, 30.0))  # per address
    history: HistorySource | None = None  # None: the console's charts say there is no history
    enroll_keys: EnrollKeys | None = None  # None: the console cannot make enrolment keys here
    equipment: Equipment | None = None  # None: the console cannot import equipment lists here
    actions: ActionDesk | None = None  # None: an app built without a state file or a broker asks no agent
    action_wait_s: float = 3.0  # how long POST .../actions/{name} waits for the agent's first answer


def parts(request: Request) -> HttpParts:
    found: HttpParts = request.app.state.parts
    return found


async def parts_dependency(request: Request) -> HttpParts:
    """``parts`` as a dependency. The dependencies here that only hand over a part are ``async``:
    FastAPI runs a plain ``def`` one in its thread pool, and under load each of those hops waits for
    the interpreter behind the ingest's threads (nation scale: ``docs/en/nation-scale.md``)."""
    return parts(request)


PartsDep = Annotated[HttpParts, Depends(parts_dependency)]


def part(name: str) -> Callable[[HttpParts], Awaitable[Any]]:
    """The dependency that hands a route the one part named ``name`` (a field of ``HttpParts``)."""

    async def dependency(p: PartsDep) -> Any:
        return getattr(p, name)

    return dependency


async def snapshot(p: PartsDep) -> Snapshot:
    """The snapshot as it is when the request arrives; one request sees one snapshot."""
    return p.snapshots()


async def reports(p: PartsDep) -> ReportMaker:
    if p.reports is None:
        raise HTTPException(503, "reports are not available in this collector")
    return p.reports


async def replacement(p: PartsDep) -> ReplacementSource:
    if p.replacement is None:
        raise HTTPException(503, "the replacement list is not available in this collector")
    return p.replacement


async def scorecard(p: PartsDep) -> ScorecardSource:
    if p.scorecard is None:
        raise HTTPException(503, "scorecards are not available in this collector")
    return p.scorecard


async def audit_book(p: PartsDep) -> AuditBook:
    if p.audit is None:
        raise HTTPException(503, "the audit log is not available in this collector")
    return p.audit


async def exclusions(p: PartsDep) -> Exclusions:
    if p.exclusions is None:
        raise HTTPException(503, "exclusions are not available in this collector")
    return p.exclusions


async def revisions(p: PartsDep) -> RevisionBook:
    if p.revisions is None:
        raise HTTPException(503, "report revisions are not available in this collector")
    return p.revisions


async def outages(p: PartsDep) -> OutageSource:
    return p.outages or (lambda _since, _commune: [])


async def action_desk(p: PartsDep) -> ActionDesk:
    if p.actions is None:
        raise HTTPException(503, "this collector sends no actions (no state file or broker)")
    return p.actions


RegistryDep = Annotated[Registry, Depends(part("registry"))]
SnapshotDep = Annotated[Snapshot, Depends(snapshot)]
AlertsDep = Annotated[AlertManager, Depends(part("alerts"))]
TokensDep = Annotated[TokenStore, Depends(part("tokens"))]
MetricsDep = Annotated[SelfMetrics, Depends(part("metrics"))]
HealthDep = Annotated[HealthCheck, Depends(part("health"))]
DiskDep = Annotated[DiskHealth, Depends(part("disk"))]
CommandsDep = Annotated[CommandPublisher, Depends(part("commands"))]
ThrottleDep = Annotated[Throttle, Depends(part("throttle"))]
UploadsDep = Annotated[UploadGate, Depends(part("uploads"))]
ReportsDep = Annotated[ReportMaker, Depends(reports)]
ScorecardDep = Annotated[ScorecardSource, Depends(scorecard)]
OutagesDep = Annotated[OutageSource, Depends(outages)]
AuditDep = Annotated[AuditBook, Depends(audit_book)]
ExclusionsDep = Annotated[Exclusions, Depends(exclusions)]
RevisionsDep = Annotated[RevisionBook, Depends(revisions)]
ActionsDep = Annotated[ActionDesk, Depends(action_desk)]
EnrollDep = Annotated[EnrollDesk | None, Depends(part("enroll"))]
"""None when this collector enrols no hosts (no ``[enroll] admin_username``)."""
