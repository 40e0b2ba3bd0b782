"""Grafana file provisioning: the InfluxDB datasource, the dashboard provider, and alert rules with
a contact point for the two alerts that matter most (commune line down, host offline).

Copy ``dashboards/provisioning/*`` to Grafana's provisioning folder and ``dashboards/vi`` (or
``en``) to the provider's path. Grafana expands ``${VAR}`` from its environment in these files.
Alert rules cannot use dashboard variables, so their queries cover the whole fleet and let the
``GROUP BY`` tags become the alert's labels.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from collector.grafana import DATASOURCE_UID, FOLDER_UID
from collector.vocabulary import GRAFANA_ALERTS
from common.logfmt import shown_url

DASHBOARD_PATH = "/var/lib/grafana/dashboards/commune-monitor"
FOLDER_TITLE = "Commune Monitor"
CONTACT_POINT = "commune-monitor"
RULE_GROUP = "commune-monitor"

Yaml = dict[str, Any]


def datasource(url: str = "http://127.0.0.1:8086", database: str = "commune") -> Yaml:
    """The InfluxDB datasource (InfluxQL). A ``user:password@`` in ``url`` never stays in the URL
    Grafana stores and shows: it becomes the datasource's basic auth (``basicAuth``,
    ``basicAuthUser``, and ``basicAuthPassword`` in ``secureJsonData``, which Grafana keeps encrypted
    and never shows), as Grafana's datasource provisioning format has it."""
    bare, user, password = split_credentials(url)
    source: Yaml = {
        "name": "commune-monitor InfluxDB",
        "uid": DATASOURCE_UID,
        "type": "influxdb",
        "access": "proxy",
        "url": bare,
        "isDefault": False,
        "editable": False,
        "jsonData": {"dbName": database, "httpMode": "GET", "version": "InfluxQL", "timeInterval": "30s"},
        "secureJsonData": {"password": "${COMMUNE_INFLUXDB_PASSWORD}"},
        "user": "${COMMUNE_INFLUXDB_USER}",
    }
    if user:
        source.update(basicAuth=True, basicAuthUser=user)
        source["secureJsonData"] = {**source["secureJsonData"], "basicAuthPassword": password}
    return {"apiVersion": 1, "datasources": [source]}


def split_credentials(url: str) -> tuple[str, str, str]:
    """``url`` without its ``user:password@``, and that user and password (URL-decoded; "" if none)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, "", ""
    return shown_url(url), unquote(parts.username), unquote(parts.password or "")


def dashboard_provider(path: str = DASHBOARD_PATH) -> Yaml:
    return {
        "apiVersion": 1,
        "providers": [
            {
                "name": "commune-monitor",
                "orgId": 1,
                "folder": FOLDER_TITLE,
                "folderUid": FOLDER_UID,
                "type": "file",
                "disableDeletion": True,
                "allowUiUpdates": False,
                "updateIntervalSeconds": 60,
                "options": {"path": path, "foldersFromFilesStructure": False},
            }
        ],
    }


def rule(uid: str, query: str, fire_when: str, for_: str) -> Yaml:
    """A Grafana-managed rule: InfluxQL query A, reduce B (last), threshold C (``fire_when`` 0); its
    words (``vocabulary.GRAFANA_ALERTS``) in Vietnamese, then English where Grafana shows both."""
    said = GRAFANA_ALERTS[uid]
    title = f"{said['title'].vi} / {said['title'].en}"
    summary, description = said["summary"].vi, f"{said['description'].vi} {said['description'].en}"
    return {
        "uid": uid,
        "title": title,
        "condition": "C",
        "data": [
            {
                "refId": "A",
                "relativeTimeRange": {"from": 600, "to": 0},
                "datasourceUid": DATASOURCE_UID,
                "model": {
                    "refId": "A",
                    "query": query,
                    "rawQuery": True,
                    "resultFormat": "time_series",
                    "intervalMs": 30000,
                    "maxDataPoints": 43200,
                },
            },
            {
                "refId": "B",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "B", "type": "reduce", "expression": "A", "reducer": "last",
                          "settings": {"mode": "dropNN"}},
            },
            {
                "refId": "C",
                "relativeTimeRange": {"from": 0, "to": 0},
                "datasourceUid": "__expr__",
                "model": {"refId": "C", "type": "threshold", "expression": "B",
                          "conditions": [{"evaluator": {"type": fire_when, "params": [0]}}]},
            },
        ],
        "noDataState": "OK",
        "execErrState": "Error",
        "for": for_,
        "labels": {"severity": "critical", "source": "commune-monitor"},
        "annotations": {"summary": summary, "description": description},
        "isPaused": False,
    }  # fmt: skip


LINE_DOWN_QUERY = 'SELECT last("line_down") FROM "commune" WHERE $timeFilter GROUP BY "province", "area", "commune"'
HOST_OFFLINE_QUERY = (
    'SELECT 1 - last("online") FROM "agent" WHERE $timeFilter GROUP BY "province", "area", "commune", "host"'
)


def alerting(webhook_url: str = "${COMMUNE_ALERT_WEBHOOK_URL}") -> Yaml:
    return {
        "apiVersion": 1,
        "groups": [
            {
                "orgId": 1,
                "name": RULE_GROUP,
                "folder": FOLDER_TITLE,
                "interval": "1m",
                "rules": [
                    rule("cm-line-down", LINE_DOWN_QUERY, "gt", "2m"),
                    rule("cm-host-offline", HOST_OFFLINE_QUERY, "gt", "5m"),
                ],
            }
        ],
        "contactPoints": [
            {
                "orgId": 1,
                "name": CONTACT_POINT,
                "receivers": [
                    {
                        "uid": "cm-webhook",
                        "type": "webhook",
                        "settings": {"url": webhook_url, "httpMethod": "POST"},
                        "disableResolveMessage": False,
                    }
                ],
            }
        ],
        "policies": [
            {
                "orgId": 1,
                "receiver": CONTACT_POINT,
                "group_by": ["grafana_folder", "alertname", "area"],
                "group_wait": "30s",
                "group_interval": "5m",
                "repeat_interval": "4h",
            }
        ],
    }


def all_files() -> dict[str, Yaml]:
    """Relative path under ``dashboards/provisioning`` to file content."""
    return {
        "datasources/commune-monitor.yaml": datasource(),
        "dashboards/commune-monitor.yaml": dashboard_provider(),
        "alerting/commune-monitor.yaml": alerting(),
    }
