"""``commune-collector grafana sync`` through grafana-client over real HTTP.

No Grafana can run here. The sync talks to a local HTTP server that keeps what it is sent and
answers in the shapes Grafana's published API specification gives (tests/grafana_spec/); every
request body is checked against the definition that specification gives for it (and may carry no
key it does not document), and every dashboard sent against Grafana's
published dashboard schema. What this proves: the requests are the documented ones, well formed,
authenticated, and a second sync changes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from realservices import REPO, free_port, write_toml

from collector.grafana.dashboards import all_dashboards
from collector.grafana.provisioning import datasource

API = json.loads((REPO / "tests/grafana_spec/http_api.json").read_text())
DASHBOARD_SCHEMA = json.loads((REPO / "tests/grafana_spec/dashboard.jsonschema.json").read_text())
TOKEN = "glsa_test_token_0123456789"


def check(definition: str, body: Any) -> None:
    """Valid against the published definition, and every key one it documents (Grafana's JSON decoding
    would silently drop a misspelt one)."""
    jsonschema.validate(body, {"$ref": f"#/definitions/{definition}", "definitions": API["definitions"]})
    unknown = set(body) - set(API["definitions"][definition]["properties"])
    if unknown:
        raise jsonschema.ValidationError(f"{sorted(unknown)} not in {definition}")


def check_request(operation: str, body: Any) -> None:
    check(API["operations"][operation], body)


class GrafanaApiDouble(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.folders: dict[str, dict[str, Any]] = {}
        self.datasources: dict[str, dict[str, Any]] = {}
        self.dashboards: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str]] = []
        self.problems: list[str] = []
        self.auth: set[str] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: GrafanaApiDouble

    def log_message(self, *_args: object) -> None:
        pass

    def answer(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def body(self) -> Any:
        length = int(self.headers.get("Content-Length", 0))
        return json.loads(self.rfile.read(length)) if length else None

    def route(self, method: str) -> None:
        state, path = self.server, self.path.split("?")[0]
        state.requests.append((method, path))
        state.auth.add(self.headers.get("Authorization", ""))
        body = self.body() if method in ("POST", "PUT") else None
        try:
            self.handle_api(method, path, body)
        except jsonschema.ValidationError as exc:
            state.problems.append(f"{method} {path}: {exc.message}")
            self.answer(400, {"message": exc.message})

    def handle_api(self, method: str, path: str, body: Any) -> None:
        state = self.server
        if match := re.fullmatch(r"/api/folders/([\w-]+)", path):
            uid = match[1]
            if uid not in state.folders:
                return self.answer(404, {"message": "folder not found"})
            if method == "PUT":
                check_request("PUT /api/folders/{folder_uid}", body)
                state.folders[uid].update(title=body["title"], version=state.folders[uid]["version"] + 1)
            return self.answer(200, state.folders[uid])
        if path == "/api/folders" and method == "POST":
            check_request("POST /api/folders", body)
            folder = {"id": len(state.folders) + 1, "uid": body["uid"], "title": body["title"],
                      "url": f"/dashboards/f/{body['uid']}/", "version": 1}  # fmt: skip
            state.folders[body["uid"]] = folder
            return self.answer(200, folder)
        if match := re.fullmatch(r"/api/datasources/uid/([\w-]+)", path):
            uid = match[1]
            if method == "PUT":
                check_request("PUT /api/datasources/uid/{uid}", body)
                state.datasources[uid] = {**state.datasources[uid], **stored(body)}
            if uid not in state.datasources:
                return self.answer(404, {"message": "Data source not found"})
            check("DataSource", state.datasources[uid])
            return self.answer(200, state.datasources[uid])
        if path == "/api/datasources" and method == "POST":
            check_request("POST /api/datasources", body)
            source = {"id": len(state.datasources) + 1, "orgId": 1, "version": 1, **stored(body)}
            state.datasources[body["uid"]] = source
            answer = {"datasource": source, "id": source["id"], "message": "Datasource added", "name": body["name"]}
            jsonschema.validate(
                answer, {**API["responses"]["createOrUpdateDatasourceResponse"], "definitions": API["definitions"]}
            )
            return self.answer(200, answer)
        if match := re.fullmatch(r"/api/dashboards/uid/([\w-]+)", path):
            saved = state.dashboards.get(match[1])
            if saved is None:
                return self.answer(404, {"message": "Dashboard not found"})
            check("DashboardFullWithMeta", saved)
            return self.answer(200, saved)
        if path == "/api/dashboards/db" and method == "POST":
            check_request("POST /api/dashboards/db", body)
            jsonschema.validate(body["dashboard"], DASHBOARD_SCHEMA)
            uid = body["dashboard"]["uid"]
            version = state.dashboards.get(uid, {}).get("meta", {}).get("version", 0) + 1
            board = {**body["dashboard"], "id": len(state.dashboards) + 1, "version": version}
            state.dashboards[uid] = {"dashboard": board, "meta": {"folderUid": body["folderUid"], "version": version,
                                                                  "slug": uid, "url": f"/d/{uid}/{uid}"}}  # fmt: skip
            return self.answer(200, {"id": board["id"], "uid": uid, "url": f"/d/{uid}/{uid}", "status": "success",
                                     "version": version, "slug": uid})  # fmt: skip
        return self.answer(404, {"message": "Not found"})

    def do_GET(self) -> None:
        self.route("GET")

    def do_POST(self) -> None:
        self.route("POST")

    def do_PUT(self) -> None:
        self.route("PUT")


def stored(body: dict[str, Any]) -> dict[str, Any]:
    """What Grafana keeps and shows of a datasource: secrets become secureJsonFields."""
    kept = {k: v for k, v in body.items() if k != "secureJsonData"}
    kept["secureJsonFields"] = dict.fromkeys(body.get("secureJsonData", {}), True)
    return kept


@pytest.fixture
def grafana() -> Iterator[GrafanaApiDouble]:
    server = GrafanaApiDouble()
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def sync(config: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", "grafana", "sync", "-c", str(config), *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)  # fmt: skip


def config_for(tmp_path: Path, url: str, influx_password: str = "", **grafana: Any) -> Path:
    return write_toml(
        tmp_path / "collector.toml",
        {
            "influxdb": {"url": "http://127.0.0.1:8086", "database": "commune", "password": influx_password},
            "grafana": {"url": url, "token": TOKEN, "influxdb_url": "http://influxdb.internal:8086", **grafana},
        },
    )


@pytest.mark.services  # runs commune-collector grafana sync
def test_sync_creates_folder_datasource_and_dashboards_then_changes_nothing(
    grafana: GrafanaApiDouble, tmp_path: Path
) -> None:
    config = config_for(tmp_path, grafana.url)
    first = sync(config)
    assert first.returncode == 0, first.stderr
    assert grafana.problems == []
    assert grafana.auth == {f"Bearer {TOKEN}"}
    assert "folder commune-monitor: created" in first.stdout
    assert "datasource commune-influxdb: created" in first.stdout
    vi = sorted(board["uid"] for name, board in all_dashboards().items() if name.startswith("vi/"))
    assert sorted(grafana.dashboards) == vi
    assert all(d["meta"]["folderUid"] == "commune-monitor" for d in grafana.dashboards.values())
    source = grafana.datasources["commune-influxdb"]
    assert source["url"] == "http://influxdb.internal:8086" and source["jsonData"]["dbName"] == "commune"
    assert source["type"] == "influxdb" and source["jsonData"]["version"] == "InfluxQL"

    grafana.requests.clear()
    second = sync(config)
    assert second.returncode == 0, second.stderr
    assert second.stdout.count("unchanged") == 2 + len(vi)
    assert {method for method, _path in grafana.requests} == {"GET"}  # idempotent: nothing written

    grafana.dashboards["cm-host-vi"]["dashboard"]["title"] = "edited by hand in the UI"
    grafana.folders["commune-monitor"]["title"] = "renamed in the UI"
    grafana.requests.clear()
    third = sync(config)
    assert "dashboard cm-host-vi: updated" in third.stdout and "folder commune-monitor: renamed" in third.stdout
    assert [r for r in grafana.requests if r[0] != "GET"] == [
        ("PUT", "/api/folders/commune-monitor"),
        ("POST", "/api/dashboards/db"),
    ]
    assert grafana.problems == [] and grafana.folders["commune-monitor"]["title"] == "Commune Monitor"
    assert grafana.dashboards["cm-host-vi"]["dashboard"]["title"] == "Chi tiết máy"


def test_the_published_definitions_reject_a_misspelt_or_mistyped_body() -> None:
    check_request("POST /api/folders", {"uid": "commune-monitor", "title": "Commune Monitor"})
    with pytest.raises(jsonschema.ValidationError):
        check_request("POST /api/folders", {"uid": "commune-monitor", "titel": "Commune Monitor"})
    with pytest.raises(jsonschema.ValidationError):
        check_request("POST /api/dashboards/db", {"dashboard": {}, "overwrite": "yes"})


@pytest.mark.services  # runs commune-collector grafana sync
def test_an_influxdb_password_is_sent_once_never_shown_and_resent_only_when_asked(
    grafana: GrafanaApiDouble, tmp_path: Path
) -> None:
    secret = "influx-secret-4711"
    config = config_for(tmp_path, grafana.url, influx_password=secret)
    first = sync(config)
    assert first.returncode == 0 and "datasource commune-influxdb: created" in first.stdout
    assert grafana.datasources["commune-influxdb"]["secureJsonFields"] == {"password": True}
    grafana.requests.clear()
    second = sync(config)
    assert "datasource commune-influxdb: unchanged" in second.stdout
    assert {method for method, _path in grafana.requests} == {"GET"}
    rotated = sync(config, "--update-secrets")
    assert "datasource commune-influxdb: updated" in rotated.stdout
    assert ("PUT", "/api/datasources/uid/commune-influxdb") in grafana.requests
    for done in (first, second, rotated):
        assert secret not in done.stdout + done.stderr


@pytest.mark.services  # runs commune-collector grafana sync
def test_sync_pushes_the_english_dashboards_when_asked(grafana: GrafanaApiDouble, tmp_path: Path) -> None:
    assert sync(config_for(tmp_path, grafana.url, language="en")).returncode == 0
    assert all(uid.endswith("-en") for uid in grafana.dashboards) and len(grafana.dashboards) == 6
    assert grafana.dashboards["cm-overview-en"]["dashboard"]["title"] == "Province overview"


@pytest.mark.services  # runs commune-collector grafana sync
def test_an_unreachable_grafana_is_a_clear_error_not_a_traceback(tmp_path: Path) -> None:
    done = sync(config_for(tmp_path, f"http://admin:hunter2@127.0.0.1:{free_port()}", timeout_s=2))
    assert done.returncode == 1
    assert "Grafana at http://127.0.0.1:" in done.stderr and "Traceback" not in done.stderr
    assert TOKEN not in done.stderr + done.stdout and "hunter2" not in done.stderr + done.stdout


@pytest.mark.services  # runs commune-collector grafana sync
def test_credentials_in_the_influxdb_url_go_to_basic_auth_and_secure_json_data_never_to_the_url(
    grafana: GrafanaApiDouble, tmp_path: Path
) -> None:
    secret = "url-secret/4711"
    config = config_for(tmp_path, grafana.url, influxdb_url="http://reader:url-secret%2F4711@influxdb.internal:8086/")
    first = sync(config)
    assert first.returncode == 0, first.stderr
    assert grafana.problems == []  # the body is one Grafana's published definition takes
    source = grafana.datasources["commune-influxdb"]
    assert source["url"] == "http://influxdb.internal:8086/"
    assert (source["basicAuth"], source["basicAuthUser"]) == (True, "reader")
    assert source["secureJsonFields"] == {"basicAuthPassword": True}
    assert "secret" not in json.dumps(source)
    second = sync(config)
    assert "datasource commune-influxdb: unchanged" in second.stdout
    for done in (first, second):
        assert secret not in done.stdout + done.stderr and "url-secret" not in done.stdout + done.stderr


def test_the_provisioned_datasource_takes_url_credentials_as_basic_auth() -> None:
    (source,) = datasource("https://reader:pw%40x@influx.example:8086", "commune")["datasources"]
    assert source["url"] == "https://influx.example:8086"
    assert (source["basicAuth"], source["basicAuthUser"]) == (True, "reader")
    assert source["secureJsonData"]["basicAuthPassword"] == "pw@x"
    (plain,) = datasource("http://127.0.0.1:8086", "commune")["datasources"]
    assert "basicAuth" not in plain and "basicAuthPassword" not in plain["secureJsonData"]
