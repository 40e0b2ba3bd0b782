"""The JSON shapes of a Grafana dashboard (schemaVersion 39), built as plain dicts.

Only what the dashboards use: InfluxQL targets, stat, table and time-series panels, query and
custom variables. Every shape here validates against Grafana's published dashboard JSON schema
(tests/grafana_spec/dashboard.jsonschema.json).
"""

from __future__ import annotations

from typing import Any

from collector.grafana import DATASOURCE
from collector.localtime import LOCAL_ZONE

SCHEMA_VERSION = 39
Json = dict[str, Any]


def target(ref: str, query: str, result_format: str = "time_series", alias: str = "") -> Json:
    out: Json = {
        "refId": ref,
        "datasource": DATASOURCE,
        "query": " ".join(query.split()),
        "rawQuery": True,
        "resultFormat": result_format,
    }
    if alias:
        out["alias"] = alias
    return out


def thresholds(*steps: tuple[float, str]) -> Json:
    """The first step is the base colour; Grafana treats its value as -Infinity."""
    return {"mode": "absolute", "steps": [{"value": value, "color": color} for value, color in steps]}


def value_map(mapping: dict[str, tuple[str, str]]) -> Json:
    return {
        "type": "value",
        "options": {
            key: {"text": text, "color": color, "index": i} for i, (key, (text, color)) in enumerate(mapping.items())
        },
    }


def field_config(
    unit: str = "",
    steps: tuple[tuple[float, str], ...] = ((0, "green"),),
    mappings: tuple[Json, ...] = (),
    links: tuple[Json, ...] = (),
    custom: Json | None = None,
    color_mode: str = "thresholds",
    **extra: Any,
) -> Json:
    defaults: Json = {"thresholds": thresholds(*steps), "color": {"mode": color_mode}, "mappings": list(mappings)}
    if unit:
        defaults["unit"] = unit
    if links:
        defaults["links"] = list(links)
    if custom is not None:
        defaults["custom"] = custom
    defaults.update(extra)
    return {"defaults": defaults, "overrides": []}


def link(title: str, url: str) -> Json:
    return {"title": title, "url": url}


def panel(
    kind: str,
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    config: Json | None = None,
    options: Json | None = None,
    description: str = "",
    transformations: list[Json] | None = None,
    time_from: str = "",
) -> Json:
    """``grid`` is (x, y, w, h). The id is set when the dashboard is assembled."""
    x, y, w, h = grid
    out: Json = {
        "type": kind,
        "title": title,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h},
        "targets": targets,
        "fieldConfig": config or field_config(),
        "options": options or {},
    }
    if description:
        out["description"] = description
    if transformations:
        out["transformations"] = transformations
    if time_from:
        out["timeFrom"] = time_from
    return out


def stat(title: str, grid: tuple[int, int, int, int], targets: list[Json], config: Json, **kw: Any) -> Json:
    options = {
        "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        "colorMode": "background",
        "graphMode": "none",
        "textMode": kw.pop("text_mode", "value"),
        "orientation": "auto",
        "justifyMode": "auto",
    }
    return panel("stat", title, grid, targets, config, options, **kw)


def timeseries(title: str, grid: tuple[int, int, int, int], targets: list[Json], unit: str, **kw: Any) -> Json:
    draw = kw.pop("draw", "line")
    custom = {
        "drawStyle": draw,
        "lineWidth": 1,
        "fillOpacity": 10,
        "pointSize": 5,
        "showPoints": "auto",
        "spanNulls": False,
    }
    config = field_config(unit, color_mode="palette-classic", custom=custom, min=0)
    options = {"legend": {"displayMode": "table", "placement": "bottom", "calcs": ["mean", "max", "lastNotNull"]},
               "tooltip": {"mode": "multi", "sort": "desc"}}  # fmt: skip
    return panel("timeseries", title, grid, targets, config, options, **kw)


def table(
    title: str,
    grid: tuple[int, int, int, int],
    targets: list[Json],
    config: Json,
    transformations: list[Json],
    **kw: Any,
) -> Json:
    options = {"showHeader": True, "cellHeight": "sm", "footer": {"show": False, "reducer": ["sum"], "fields": ""}}
    return panel("table", title, grid, targets, config, options, transformations=transformations, **kw)


def organize(rename: dict[str, str], hide: tuple[str, ...] = ("Time",)) -> Json:
    """Shows the columns in ``rename`` order under their new names and hides ``hide``."""
    return {
        "id": "organize",
        "options": {
            "excludeByName": dict.fromkeys(hide, True),
            "indexByName": {name: i for i, name in enumerate(rename)},
            "renameByName": rename,
        },
    }


def sort_by(field: str, desc: bool = True) -> Json:
    return {"id": "sortBy", "options": {"fields": {}, "sort": [{"field": field, "desc": desc}]}}


def query_variable(name: str, label: str, query: str, multi: bool = True) -> Json:
    return {
        "type": "query",
        "name": name,
        "label": label,
        "datasource": DATASOURCE,
        "query": " ".join(query.split()),
        "refresh": 1,
        "sort": 1,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*",
        "current": {"text": "All", "value": "$__all"} if multi else {"text": "", "value": ""},
        "options": [],
        "hide": 0,
    }


def custom_variable(name: str, label: str, choices: list[tuple[str, str]]) -> Json:
    """``choices`` are (value, text); the first is selected."""
    options = [{"text": text, "value": value, "selected": i == 0} for i, (value, text) in enumerate(choices)]
    return {
        "type": "custom",
        "name": name,
        "label": label,
        "query": ",".join(f"{text} : {value}" for value, text in choices),
        "current": {"text": choices[0][1], "value": choices[0][0]},
        "options": options,
        "multi": False,
        "includeAll": False,
        "hide": 0,
    }


def dashboard(
    uid: str, title: str, tags: list[str], variables: list[Json], panels: list[Json], links: list[Json], refresh: str
) -> Json:
    for number, item in enumerate(panels, start=1):
        item["id"] = number
    return {
        "uid": uid,
        "title": title,
        "tags": tags,
        "timezone": LOCAL_ZONE,  # "today" and "this month" in the time picker are Vietnam's
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "timepicker": {
            "hidden": False,
            "refresh_intervals": ["30s", "1m", "5m", "15m", "1h"],
            "time_options": ["1h", "6h", "24h", "7d", "30d", "90d"],
        },
        "fiscalYearStartMonth": 0,
        "liveNow": False,
        "refresh": refresh,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "weekStart": "monday",
        "templating": {"list": variables},
        "annotations": {
            "list": [
                {
                    "name": "Annotations & Alerts",
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "type": "dashboard",
                    "builtIn": 1,
                }
            ]
        },
        "links": links,
        "panels": panels,
    }


def dashboards_link(title: str, tag: str) -> Json:
    return {
        "title": title,
        "type": "dashboards",
        "icon": "external link",
        "tooltip": "",
        "tags": [tag],
        "asDropdown": True,
        "targetBlank": False,
        "includeVars": True,
        "keepTime": True,
    }
