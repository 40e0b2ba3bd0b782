"""HTTP API for fleet state and alerts: degraded hosts, unused lines, commune summaries, issued
equipment and its states, alerts (list, acknowledge) and silences."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from collector.alerting.conditions import RULES
from collector.alerting.lifecycle import Alert, AlertManager, alert_json
from collector.fleet.equipment import PRESENCE, CommuneEquipment, usb_id
from collector.fleet.equipment import STATES as EQUIPMENT_STATES
from collector.fleet.rules import CommuneStatus
from collector.http import paging
from collector.http.body_limits import JSON_MAX, stated
from collector.http.contract import LABEL_PATTERN, AreaFilter, CommuneFilter, RowId, answers
from collector.http.deps import AlertsDep, OutagesDep, RegistryDep, SnapshotDep
from collector.http.scope import Where
from collector.registry import units
from collector.vocabulary import LINE_STATES, OUTAGE_CAUSES
from common.wire import COMMUNE_RE, HOST_RE

router = APIRouter()


def commune_json(c: CommuneStatus) -> dict[str, Any]:
    return {
        "province": c.province,
        "area": c.area,
        "commune": c.commune,
        "commune_name": units.commune_name(c.commune),
        "hosts_total": c.hosts_total,
        "hosts_online": c.hosts_online,
        "hosts_degraded": c.hosts_degraded,
        "line_state": c.line_state,
        "line_reasons": list(c.reasons),
        "contracted_down_mbps": c.contracted_down_mbps,
        "days_unused": c.days_unused,
    }


@router.get("/api/v1/degraded", responses=paging.listed("Degraded hosts, by province, commune and host."))
def degraded(snapshot: SnapshotDep, pager: paging.PagerDep) -> list[dict[str, Any]]:
    """Hosts with degraded equipment, with the reasons."""
    out = []
    for host in snapshot.degraded_hosts:
        if host.reasons:
            out.append({"province": host.key.province, "area": host.area, "commune": host.key.commune,
                        "commune_name": units.commune_name(host.key.commune), "host": host.key.host,
                        "online": host.online, "reasons": list(host.reasons)})  # fmt: skip
    return pager.page(out, host_key, in_commune)


@router.get("/api/v1/unused-lines", responses=paging.listed("Unused lines, by commune."))
def unused_lines(snapshot: SnapshotDep, registry: RegistryDep, pager: paging.PagerDep) -> list[dict[str, Any]]:
    lines = {line.commune: line for line in registry.lines()}
    out = []
    for c in snapshot.communes:
        if c.line_state == "unused" and c.commune in lines:
            line = lines[c.commune]
            out.append({**commune_json(c), "circuit_id": line.circuit_id, "isp": line.isp,
                        "install_date": line.install_date})  # fmt: skip
    return pager.page(out, commune_key, in_commune)


@router.get("/api/v1/communes", responses=paging.listed("Communes, problems first: line state, degraded PCs, code."))
def communes(snapshot: SnapshotDep, pager: paging.PagerDep, area: AreaFilter = None) -> list[dict[str, Any]]:
    """Every commune with a host, a line or issued equipment: hosts online/total, degraded count,
    line state; problems first. The list is made once per evaluation; the pager cuts it to the
    token's scope and the page."""

    def make() -> list[dict[str, Any]]:
        return [commune_json(c) for c in snapshot.communes if area is None or c.area == area]

    found = snapshot.answer(("communes", area), make)  # in problems-first order by the pager, as every list
    return pager.page(found, problems_first, in_commune)


def in_commune(item: dict[str, Any]) -> Where:
    """Where an item of a list lies: its ``commune``."""
    return Where(str(item["commune"]))


def problems_first(c: dict[str, Any]) -> paging.Key:
    return (-LINE_STATES[c["line_state"]].severity, -c["hosts_degraded"], c["commune"])


def host_key(item: dict[str, Any]) -> paging.Key:
    return (item["province"], item["commune"], item["host"])


def commune_key(item: dict[str, Any]) -> paging.Key:
    return (item["commune"],)


def id_key(item: dict[str, Any]) -> paging.Key:
    return (item["id"],)


def newest_first(item: dict[str, Any]) -> paging.Key:
    return (-item["id"],)


def equipment_json(c: CommuneEquipment) -> list[dict[str, Any]]:
    """Each issued item with its state, then each device seen and not issued (``unregistered``)."""
    where = {"province": c.province, "commune": c.commune, "commune_name": units.commune_name(c.commune)}
    out: list[dict[str, Any]] = [
        {**where, "kind": v.item.kind, "model": v.item.model, "serial": v.item.serial, "holder": v.item.holder,
         "issued_on": v.item.issued_on, "state": v.state, "rule": v.rule, "device": v.device,
         "last_seen": v.last_seen, "opened_at": v.opened_at, "days": round(v.days, 1)}
        for v in c.verdicts
    ]  # fmt: skip
    out += [
        {**where, "kind": d.kind, "model": d.model, "serial": d.serial, "holder": "", "issued_on": "",
         "state": UNREGISTERED, "rule": PRESENCE, "device": d.device, "last_seen": d.last_seen, "host": d.host,
         "opened_at": d.opened_at, "days": 0.0}
        for d in c.unregistered
    ]  # fmt: skip
    return out


UNREGISTERED = "unregistered"
EquipmentState = Literal[(*EQUIPMENT_STATES, UNREGISTERED)]  # type: ignore[valid-type]


@router.get("/api/v1/equipment", responses=paging.listed("Equipment, by commune, issued items first."))
def equipment(
    snapshot: SnapshotDep,
    pager: paging.PagerDep,
    commune: CommuneFilter = None,
    state: EquipmentState | None = None,
) -> list[dict[str, Any]]:
    """Issued equipment with its state (in_use, plugged_idle, unused, never_seen, not_yet_seen) and the
    rule that judged it (``presence``, or ``pcsc``: opened by an application, as PC/SC showed), and
    devices seen but not issued (unregistered); by commune."""
    out: list[tuple[int, dict[str, Any]]] = []
    for c in snapshot.equipment:
        if commune is None or c.commune == commune:
            out += [(n, item) for n, item in enumerate(equipment_json(c)) if state is None or item["state"] == state]
    return [item for _n, item in pager.page(out, place_in_commune, numbered_in_commune)]


def place_in_commune(entry: tuple[int, dict[str, Any]]) -> paging.Key:
    """A commune's items keep the order of its list: issued items as imported, then devices seen."""
    return (entry[1]["commune"], entry[0])


def numbered_in_commune(entry: tuple[int, dict[str, Any]]) -> Where:
    return in_commune(entry[1])


@router.get("/api/v1/communes/{code}", responses=answers(404))
def commune(
    code: Annotated[str, Path(pattern=COMMUNE_RE.pattern)],
    snapshot: SnapshotDep,
    registry: RegistryDep,
    alerts: AlertsDep,
    outages: OutagesDep,
) -> dict[str, Any]:
    match = snapshot.commune_of(code)
    if match is None:
        raise HTTPException(404, f"commune {code} has no host and no registered line")
    hosts = [{"host": h.key.host, "online": h.online, "seconds_since_report": round(snapshot.at - h.last_heard, 1),
              "degraded_reasons": list(h.reasons)} for h in snapshot.hosts_of(code)]  # fmt: skip
    active = [alert_json(a) for a in alerts.open.values() if a.commune == code]
    lines = [vars(line) for line in registry.lines(code)]
    kit = [item for c in snapshot.equipment if c.commune == code for item in equipment_json(c)]
    recent = [outage_json(o) for o in outages(time.time() - RECENT_OUTAGES_S, code)[:RECENT_OUTAGES]]
    return {**commune_json(match), "hosts": hosts, "lines": lines, "alerts": active, "equipment": kit,
            "outages": recent}  # fmt: skip


Cause = Literal["line", "power", "office_closed", "unknown"]  # collector.fleet.outages.CAUSES
RECENT_OUTAGES, RECENT_OUTAGES_S = 20, 90 * 86400.0  # what a commune's page lists


def outage_json(record: dict[str, Any]) -> dict[str, Any]:
    cause = record.get("cause")
    words = OUTAGE_CAUSES.get(cause) if isinstance(cause, str) else None
    return {**record, "commune_name": units.commune_name(str(record["commune"])),
            "cause_vi": words.vi if words else None, "cause_en": words.en if words else None}  # fmt: skip


@router.get("/api/v1/outages", responses=paging.listed("Outages, newest first."))
def outage_list(
    outages: OutagesDep,
    pager: paging.PagerDep,
    commune: CommuneFilter = None,
    area: AreaFilter = None,
    since: Annotated[float, Query(ge=0, le=1e11, description="started at or after (UTC epoch seconds)")] = 0.0,
    cause: Annotated[Cause | None, Query(description="only outages decided with this cause")] = None,
) -> list[dict[str, Any]]:
    """Outages of communes (every PC dark at once), newest first: start, end, the cause once decided
    (line, power, office_closed, unknown), its confidence and each PC's evidence."""
    found = [outage_json(o) for o in outages(since, commune)]
    found = [o for o in found if (area is None or o["area"] == area) and (cause is None or o["cause"] == cause)]
    return pager.page(found, outage_key, in_commune)


def outage_key(item: dict[str, Any]) -> paging.Key:
    return (-item["start"], -item["id"])


@router.get("/api/v1/alerts", responses=paging.listed("Alerts, newest first."))
def alerts(
    alerts: AlertsDep,
    pager: paging.PagerDep,
    state: Literal["pending", "firing", "resolved"] | None = None,
    area: AreaFilter = None,
    commune: CommuneFilter = None,
) -> list[dict[str, Any]]:
    """Alerts, newest first (read from the state file a batch at a time from the cursor on)."""
    start = None if pager.cursor is None else paging.decode(pager.cursor)
    if start is not None and (len(start) != 1 or not isinstance(start[0], int) or start[0] >= 0):
        raise paging.refused()
    found = (
        alert_json(a)
        for a in stored_alerts(alerts, state, None if start is None else -start[0])
        if (area is None or a.area == area) and (commune is None or a.commune == commune)
    )
    return pager.take(found, newest_first, in_commune)


ALERT_BATCH = 500


def stored_alerts(alerts: AlertManager, state: str | None, before_id: int | None) -> Iterator[Alert]:
    """Every stored alert older than ``before_id`` (all when None), newest first, read a batch at a time."""
    while True:
        batch = alerts.alerts(state, ALERT_BATCH, before_id)
        yield from batch
        if len(batch) < ALERT_BATCH:
            return
        before_id = batch[-1].id


class Ack(BaseModel):
    by: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=500)


@router.post("/api/v1/alerts/{alert_id}/ack", responses=answers(400, 404), openapi_extra=stated(JSON_MAX))
def ack(alert_id: RowId, body: Ack, alerts: AlertsDep) -> dict[str, Any]:
    alert = alerts.ack(alert_id, body.by, body.comment, time.time())
    if alert is None:
        raise HTTPException(404, f"no open alert {alert_id}")
    return alert_json(alert)


Area = Annotated[str, StringConstraints(pattern=LABEL_PATTERN)]
Commune = Annotated[str, StringConstraints(pattern=COMMUNE_RE.pattern)]
Host = Annotated[str, StringConstraints(pattern=HOST_RE.pattern)]
Rule = Literal[RULES]  # type: ignore[valid-type]  # Literal of the tuple: the same values, one list


class Matchers(BaseModel):
    """What a silence applies to: any of area, commune, host and rule, at least one (null is not a value)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})
    area: Area | SkipJsonSchema[None] = None
    commune: Commune | SkipJsonSchema[None] = None
    host: Host | SkipJsonSchema[None] = None
    rule: Rule | SkipJsonSchema[None] = None

    @field_validator("area", "commune", "host", "rule", mode="before")
    @classmethod
    def given_means_not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("leave the key out instead of null")
        return value

    @model_validator(mode="after")
    def at_least_one(self) -> Matchers:
        if not self.model_fields_set:
            raise ValueError("a silence needs at least one of area, commune, host, rule")
        return self

    def scope(self) -> dict[str, str]:
        scope: dict[str, str] = self.model_dump(exclude_none=True)
        return scope


class NewSilence(BaseModel):
    matchers: Matchers
    duration_s: float = Field(gt=0, le=90 * 86400)
    author: str = Field(min_length=1, max_length=100)
    comment: str = Field("", max_length=500)


@router.get("/api/v1/silences", responses=paging.listed("Silences in force, by id."))
def silences(alerts: AlertsDep, pager: paging.PagerDep) -> list[dict[str, Any]]:
    """Silences in force; a scoped token sees those of its communes and of the area holding them."""
    found = [vars(s) for s in alerts.silences(time.time())]
    return pager.page(found, id_key, silenced_place)


def silenced_place(silence: dict[str, Any]) -> Where:
    matchers = silence["matchers"]
    return Where(matchers.get("commune"), matchers.get("area"))


@router.post("/api/v1/silences", status_code=201, responses=answers(400), openapi_extra=stated(JSON_MAX))
def add_silence(body: NewSilence, alerts: AlertsDep) -> dict[str, Any]:
    now = time.time()
    return vars(alerts.add_silence(body.matchers.scope(), now, now + body.duration_s, body.author, body.comment))


@router.delete("/api/v1/silences/{silence_id}", responses=answers(404))
def delete_silence(silence_id: RowId, alerts: AlertsDep) -> dict[str, Any]:
    if not alerts.delete_silence(silence_id):
        raise HTTPException(404, f"no silence {silence_id}")
    return {"deleted": silence_id}


def other_devices_json(c: CommuneEquipment) -> list[dict[str, Any]]:
    """The devices of kind ``other`` seen in a commune, most recently seen first."""
    where = {"province": c.province, "commune": c.commune, "commune_name": units.commune_name(c.commune)}
    return [
        {**where, "usb_id": usb_id(d.device), "model": d.model, "device": d.device, "serial": d.serial,
         "host": d.host, "first_seen": d.first_seen, "last_seen": d.last_seen}
        for d in c.other
    ]  # fmt: skip


@router.get("/api/v1/other-devices", responses=paging.listed("Devices of kind other, by commune, most recent first."))
def other_devices(
    snapshot: SnapshotDep,
    pager: paging.PagerDep,
    commune: CommuneFilter = None,
) -> list[dict[str, Any]]:
    """Devices the agents could not place (kind other), by commune: vendor:product (``usb_id``) and
    model text, so a known-ids row can be added for them (``registry import-known-ids``)."""
    found = [c for c in snapshot.equipment if commune is None or c.commune == commune]
    items = [(n, item) for c in found for n, item in enumerate(other_devices_json(c))]
    return [item for _n, item in pager.page(items, place_in_commune, numbered_in_commune)]
