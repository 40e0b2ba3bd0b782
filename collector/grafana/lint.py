"""Checks the dashboards and provisioning files beyond the JSON schema: every datasource uid is
provisioned, every variable a query uses is defined, every panel has a unique id and a place on
the grid that no other panel takes, and every ``GROUP BY time(...)`` carries ``tz('Asia/Ho_Chi_Minh')``
(else InfluxDB cuts days at UTC midnight, 07:00 in Vietnam). Also lists every query with its variables expanded, so the
tests can run each one on a real InfluxDB."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from collector.grafana.panels import Json
from collector.localtime import LOCAL_ZONE

BUILTIN_UIDS = {"-- Grafana --", "__expr__"}
BUILTIN_VARIABLES = {"timeFilter", "__interval", "__interval_ms", "interval", "__from", "__to", "__url_time_range",
                     "__data", "__all", "__timeFilter"}  # fmt: skip
ALIAS_PATTERN = re.compile(r"^(col|measurement|tag_\w+)$")
GROUP_BY_TIME = re.compile(r"GROUP BY time\(", re.IGNORECASE)
LOCAL_TZ = f"tz('{LOCAL_ZONE}')"
VARIABLE = re.compile(r"\$\{(\w+)(?:[.:][^}]*)?\}|\$(\w+)|\[\[(\w+)\]\]")


@dataclass(frozen=True)
class Query:
    where: str  # "vi/host-detail.json: panel 4 'CPU (%)'"
    text: str


def variables_in(text: str) -> set[str]:
    return {next(g for g in match.groups() if g) for match in VARIABLE.finditer(text)}


def datasource_uids(provisioning: dict[str, Any]) -> set[str]:
    files = provisioning.values()
    return {ds["uid"] for content in files for ds in content.get("datasources", [])}


def dashboard_queries(name: str, board: Json) -> Iterator[Query]:
    for variable in board["templating"]["list"]:
        if variable["type"] == "query":
            yield Query(f"{name}: variable ${variable['name']}", variable["query"])
    for panel in board["panels"]:
        for item in panel.get("targets", []):
            yield Query(f"{name}: panel {panel.get('id')} {panel.get('title')!r} {item['refId']}", item["query"])


def rule_queries(provisioning: dict[str, Any]) -> Iterator[Query]:
    for content in provisioning.values():
        for group in content.get("groups", []):
            for rule in group["rules"]:
                for item in rule["data"]:
                    if "query" in item["model"]:
                        yield Query(f"alert rule {rule['uid']} {item['refId']}", item["model"]["query"])


DASHBOARD_LINK = re.compile(r"^/d/([\w-]+)")


def all_panels(board: Json) -> list[Json]:
    """Top-level panels and those inside rows."""
    return [p for panel in board["panels"] for p in (panel, *panel.get("panels", []))]


def lint_dashboard(name: str, board: Json, uids: set[str], boards: set[str]) -> list[str]:
    problems = []
    defined = {v["name"] for v in board["templating"]["list"]}
    known_uids = uids | BUILTIN_UIDS

    def check_uid(where: str, ref: dict[str, Any] | None) -> None:
        if ref is not None and ref.get("uid") not in known_uids:
            problems.append(f"{name}: {where} uses datasource uid {ref.get('uid')!r}, which is not provisioned")

    def check_zone(where: str, text: str) -> None:
        if len(GROUP_BY_TIME.findall(text)) > text.count(LOCAL_TZ):
            problems.append(f"{name}: {where} groups by time without {LOCAL_TZ}: its days would be UTC days")

    def check_variables(where: str, text: str, alias: bool = False) -> None:
        for used in sorted(variables_in(text)):
            if used in defined or used in BUILTIN_VARIABLES or (alias and ALIAS_PATTERN.match(used)):
                continue
            problems.append(f"{name}: {where} uses ${used}, which is not defined")

    for variable in board["templating"]["list"]:
        check_uid(f"variable {variable['name']}", variable.get("datasource"))
        check_variables(f"variable {variable['name']}", str(variable.get("query", "")))
    for annotation in board["annotations"]["list"]:
        check_uid(f"annotation {annotation['name']!r}", annotation["datasource"])
    ids = [panel.get("id") for panel in all_panels(board)]
    if None in ids:
        problems.append(f"{name}: a panel has no id")
    if len(set(ids)) != len(ids):
        problems.append(f"{name}: panel ids are not unique: {ids}")
    taken: dict[tuple[int, int], Any] = {}
    for panel in board["panels"]:
        where = f"panel {panel.get('id')} {panel.get('title')!r}"
        check_uid(where, panel.get("datasource"))
        check_variables(where + " title", panel.get("title", ""))
        if panel["type"] != "row" and not panel.get("targets"):
            problems.append(f"{name}: {where} has no query")
        for item in panel.get("targets", []):
            check_uid(f"{where} {item['refId']}", item.get("datasource"))
            check_variables(f"{where} {item['refId']}", item["query"])
            check_zone(f"{where} {item['refId']}", item["query"])
            check_variables(f"{where} {item['refId']} alias", item.get("alias", ""), alias=True)
        for data_link in panel.get("fieldConfig", {}).get("defaults", {}).get("links", []):
            check_variables(f"{where} link", data_link["url"])
            target = DASHBOARD_LINK.match(data_link["url"])
            if target and target[1] not in boards:
                problems.append(f"{name}: {where} links to dashboard {target[1]!r}, which is not built")
        grid = panel["gridPos"]
        if grid["x"] < 0 or grid["y"] < 0 or grid["w"] < 1 or grid["h"] < 1:
            problems.append(f"{name}: {where} has an impossible grid position {grid}")
        for cell in (
            (x, y) for x in range(grid["x"], grid["x"] + grid["w"]) for y in range(grid["y"], grid["y"] + grid["h"])
        ):
            if cell in taken:
                problems.append(f"{name}: {where} overlaps panel {taken[cell]} at {cell}")
                break
            taken[cell] = panel.get("id")
        if grid["x"] + grid["w"] > 24:
            problems.append(f"{name}: {where} is wider than the 24-column grid")
    return problems


def lint_rules(provisioning: dict[str, Any], uids: set[str]) -> list[str]:
    problems = []
    for content in provisioning.values():
        for group in content.get("groups", []):
            for rule in group["rules"]:
                refs = {item["refId"] for item in rule["data"]}
                if rule["condition"] not in refs:
                    problems.append(
                        f"alert rule {rule['uid']}: condition {rule['condition']} is not one of {sorted(refs)}"
                    )
                for item in rule["data"]:
                    if item["datasourceUid"] not in uids | BUILTIN_UIDS:
                        problems.append(
                            f"alert rule {rule['uid']}: datasource uid {item['datasourceUid']!r} not provisioned"
                        )
                    expression = item["model"].get("expression")
                    if expression is not None and expression not in refs:
                        problems.append(
                            f"alert rule {rule['uid']}: {item['refId']} reads {expression}, which is missing"
                        )
                    used = variables_in(item["model"].get("query", "")) - {"timeFilter", "__interval", "interval"}
                    if used:
                        problems.append(
                            f"alert rule {rule['uid']}: uses {sorted(used)}; rules cannot use dashboard variables"
                        )
    receivers = {cp["name"] for c in provisioning.values() for cp in c.get("contactPoints", [])}
    for policy in (p for c in provisioning.values() for p in c.get("policies", [])):
        if policy["receiver"] not in receivers:
            problems.append(f"notification policy sends to {policy['receiver']!r}, which is not a contact point")
    return problems


def lint(dashboards: dict[str, Json], provisioning: dict[str, Any]) -> list[str]:
    uids = datasource_uids(provisioning)
    problems = []
    built = {board["uid"] for board in dashboards.values()}
    for name, board in dashboards.items():
        problems += lint_dashboard(name, board, uids, built)
    uids_seen = [board["uid"] for board in dashboards.values()]
    if len(set(uids_seen)) != len(uids_seen):
        problems.append(f"dashboard uids are not unique: {uids_seen}")
    return problems + lint_rules(provisioning, uids)


def expand(text: str, values: dict[str, str], time_range: str = "6h", interval: str = "1m") -> str:
    """The query as Grafana sends it for a single selected value of each variable."""
    builtins = {"timeFilter": f"time > now() - {time_range}", "__interval": interval, "interval": interval}

    def replace(match: re.Match[str]) -> str:
        name = next(g for g in match.groups() if g)
        if name in builtins:
            return builtins[name]
        return values[name]

    return VARIABLE.sub(replace, text)
