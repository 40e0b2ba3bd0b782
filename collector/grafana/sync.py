"""``commune-collector grafana sync``: pushes the folder, the InfluxDB datasource and the dashboards
of one language to a running Grafana through its HTTP API (grafana-client), idempotently: what is
already as it should be is left alone, so a second run changes nothing."""

from __future__ import annotations

import logging
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException

from collector.config import CollectorConfig
from collector.grafana import DATASOURCE_UID, FOLDER_UID
from collector.grafana.dashboards import all_dashboards
from collector.grafana.provisioning import FOLDER_TITLE, datasource
from common.logfmt import shown_url

log = logging.getLogger("collector.grafana.sync")
VOLATILE = ("id", "version")


class SyncError(RuntimeError):
    """Grafana refused or could not be reached; the message says which step and why."""


def connect(config: CollectorConfig) -> Any:
    """grafana-client's API object; its methods are untyped, so it is held as Any."""
    settings = config.grafana
    credential: str | tuple[str, str] | None = None
    if settings.token.get_secret_value():
        credential = settings.token.get_secret_value()
    elif settings.username:
        credential = (settings.username, settings.password.get_secret_value())
    api: Any = GrafanaApi
    return api.from_url(settings.url, credential=credential, timeout=settings.timeout_s)


def missing(call: Any, *args: Any) -> Any | None:
    """The answer of a GET, or None when Grafana answers 404."""
    try:
        return call(*args)
    except GrafanaClientError as exc:
        if exc.status_code == 404:
            return None
        raise


def datasource_body(config: CollectorConfig) -> dict[str, Any]:
    body = dict(
        datasource(config.grafana.influxdb_url or config.influxdb.url, config.influxdb.database)["datasources"][0]
    )
    body.pop("editable")
    body["jsonData"] = dict(body["jsonData"])
    body["user"] = config.influxdb.username
    password = config.influxdb.password.get_secret_value()
    secrets = {k: v for k, v in body["secureJsonData"].items() if k == "basicAuthPassword"}  # from the URL
    body["secureJsonData"] = {**secrets, "password": password} if password else secrets
    return body


def sync_folder(api: Any) -> str:
    folder = missing(api.folder.get_folder, FOLDER_UID)
    if folder is None:
        api.folder.create_folder(FOLDER_TITLE, uid=FOLDER_UID)
        return f"folder {FOLDER_UID}: created"
    if folder.get("title") != FOLDER_TITLE:
        api.folder.update_folder(FOLDER_UID, title=FOLDER_TITLE, overwrite=True)
        return f"folder {FOLDER_UID}: renamed"
    return f"folder {FOLDER_UID}: unchanged"


def sync_datasource(api: Any, config: CollectorConfig, update_secrets: bool) -> str:
    """Grafana never shows a stored password, only that one is set (``secureJsonFields``): a
    password (InfluxDB's, or the basic-auth one from the URL) missing in Grafana is sent, a changed
    one only with ``update_secrets``. Without a password in the config the stored one is left as it is."""
    wanted = datasource_body(config)
    current = missing(api.datasource.get_datasource_by_uid, DATASOURCE_UID)
    if current is None:
        api.datasource.create_datasource(wanted)
        return f"datasource {DATASOURCE_UID}: created"
    same = all(current.get(key) == value for key, value in wanted.items() if key != "secureJsonData")
    stored = current.get("secureJsonFields") or {}
    missing_secret = any(not stored.get(key) for key in wanted["secureJsonData"])
    send_secret = bool(wanted["secureJsonData"]) and (update_secrets or missing_secret)
    if same and not send_secret:
        return f"datasource {DATASOURCE_UID}: unchanged"
    api.datasource.update_datasource_by_uid(DATASOURCE_UID, wanted)
    return f"datasource {DATASOURCE_UID}: updated"


def sync_dashboard(api: Any, board: dict[str, Any]) -> str:
    current = missing(api.dashboard.get_dashboard, board["uid"])
    if current is not None:
        existing = {k: v for k, v in current["dashboard"].items() if k not in VOLATILE}
        ours = {k: v for k, v in board.items() if k not in VOLATILE}
        if existing == ours and current.get("meta", {}).get("folderUid") == FOLDER_UID:
            return f"dashboard {board['uid']}: unchanged"
    body = {"dashboard": {k: v for k, v in board.items() if k != "id"}, "folderUid": FOLDER_UID, "overwrite": True,
            "message": "commune-collector grafana sync"}  # fmt: skip
    api.dashboard.update_dashboard(body)
    return f"dashboard {board['uid']}: {'created' if current is None else 'updated'}"


def sync(config: CollectorConfig, update_secrets: bool = False) -> list[str]:
    """Returns one line per object: created, updated or unchanged."""
    api = connect(config)
    language = config.grafana.language
    step = "connecting"
    try:
        step = "folder"
        actions = [sync_folder(api)]
        step = "datasource"
        actions.append(sync_datasource(api, config, update_secrets))
        for name, board in all_dashboards().items():
            if name.startswith(f"{language}/"):
                step = f"dashboard {board['uid']}"
                actions.append(sync_dashboard(api, board))
    except GrafanaException as exc:
        raise SyncError(f"Grafana at {shown_url(config.grafana.url)}, {step}: {exc}") from None
    except OSError as exc:  # connection refused, DNS, TLS
        raise SyncError(f"Grafana at {shown_url(config.grafana.url)} is unreachable ({step}): {exc}") from None
    for action in actions:
        log.info("grafana sync", extra={"action": action})
    return actions
