"""Grafana delivery, checked without a Grafana server: the committed files are what the builder
makes, every dashboard validates against Grafana's published dashboard JSON schema, the lint
finds nothing, and every panel, variable and alert-rule query, with its variables expanded, runs
on the real InfluxDB against data written by real agents through the real collector."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
import sys
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import paho.mqtt.client as mqtt
import psutil
import pytest
import yaml
from paho.mqtt.enums import CallbackAPIVersion
from realservices import REPO, Influxd, Process, wait_until
from stack import Stack

from collector.grafana import build
from collector.grafana.dashboards import all_dashboards
from collector.grafana.lint import Query, dashboard_queries, expand, lint, rule_queries
from collector.grafana.provisioning import all_files
from collector.ingest.setup_influx import ROLLUP_MEASUREMENTS
from common.wire import report_topic

SCHEMA = json.loads((REPO / "tests/grafana_spec/dashboard.jsonschema.json").read_text())
VALIDATOR = jsonschema.Draft7Validator(SCHEMA)


def grafana_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "collector.cli", "grafana", *args],
                          capture_output=True, text=True, cwd=REPO, timeout=60, check=False)  # fmt: skip


@pytest.mark.services  # runs commune-collector grafana build --check
def test_committed_dashboards_are_exactly_what_the_builder_produces(tmp_path: Path) -> None:
    assert build.differences() == []
    assert grafana_cli("build", "--check").returncode == 0

    copy_dir = tmp_path / "dashboards"
    shutil.copytree(build.DEFAULT_DIR, copy_dir)
    edited = copy_dir / "vi/host-detail.json"
    edited.write_text(edited.read_text().replace("Chi tiết máy", "Máy"))
    (copy_dir / "vi/stale.json").write_text("{}")
    done = grafana_cli("build", "--check", "--out", str(copy_dir))
    assert done.returncode == 1
    assert "vi/host-detail.json: differs" in done.stderr and "vi/stale.json: not produced" in done.stderr


def test_there_are_six_dashboards_in_vietnamese_and_in_english() -> None:
    boards = all_dashboards()
    assert sorted(boards) == sorted(
        f"{lang}/{name}.json"
        for lang in ("vi", "en")
        for name in (
            "province-overview", "degraded-equipment", "unused-lines", "line-quality", "host-detail", "peripherals"
        )
    )  # fmt: skip
    assert boards["vi/peripherals.json"]["title"] == "Thiết bị ngoại vi"
    assert boards["en/peripherals.json"]["title"] == "Peripherals"
    assert boards["vi/province-overview.json"]["title"] == "Tổng quan tỉnh"
    assert boards["en/province-overview.json"]["title"] == "Province overview"
    host_variables = [v["name"] for v in boards["vi/host-detail.json"]["templating"]["list"]]
    assert host_variables == ["province", "area", "commune", "host", "rp"]


@pytest.mark.parametrize("name", sorted(all_dashboards()))
def test_every_dashboard_validates_against_grafanas_published_schema(name: str) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in VALIDATOR.iter_errors(all_dashboards()[name])]
    assert errors == []


def test_the_schema_check_rejects_what_grafana_would_reject() -> None:
    board = all_dashboards()["vi/host-detail.json"]
    for mutate in (
        lambda b: b.pop("schemaVersion"),
        lambda b: b["panels"][0]["gridPos"].update(w=30),
        lambda b: b["panels"][0].update(colour="red"),
        lambda b: b["templating"]["list"][0].update(refresh=7),
    ):
        broken = copy.deepcopy(board)
        mutate(broken)
        assert not VALIDATOR.is_valid(broken)


@pytest.mark.services  # runs commune-collector grafana lint
def test_lint_passes_and_catches_unknown_uids_undefined_variables_and_missing_ids() -> None:
    boards, files = all_dashboards(), all_files()
    assert lint(boards, files) == []
    assert grafana_cli("lint").returncode == 0

    broken = copy.deepcopy(boards)
    overview = broken["en/province-overview.json"]
    overview["panels"][0]["targets"][0]["query"] += ' AND "host" =~ /^$hots$/'
    overview["panels"][1]["datasource"] = {"type": "influxdb", "uid": "nope"}
    overview["panels"][2].pop("id")
    overview["panels"][5]["fieldConfig"]["defaults"]["links"][0]["url"] = "/d/cm-nowhere-en?var-commune=1"
    problems = lint(broken, files)
    assert any("links to dashboard 'cm-nowhere-en', which is not built" in p for p in problems), problems
    assert any("$hots, which is not defined" in p for p in problems), problems
    assert any("'nope', which is not provisioned" in p for p in problems), problems
    assert any("a panel has no id" in p for p in problems), problems


LOCAL_TZ = "tz('Asia/Ho_Chi_Minh')"


def test_every_query_grouped_by_time_counts_local_days_and_lint_catches_one_that_does_not() -> None:
    boards, files = all_dashboards(), all_files()
    queries = [q for name, board in boards.items() for q in dashboard_queries(name, board)]
    timed = [q for q in queries if "GROUP BY time(" in q.text]
    assert len(timed) >= 10
    assert [q.where for q in timed if q.text.count(LOCAL_TZ) != q.text.count("GROUP BY time(")] == []
    token_use = [q for q in timed if '"minutes_today"' in q.text]
    assert token_use and all("GROUP BY time(1d)" in q.text and q.text.endswith(LOCAL_TZ) for q in token_use)
    assert {board["timezone"] for board in boards.values()} == {"Asia/Ho_Chi_Minh"}  # "today" is Vietnam's day

    broken = copy.deepcopy(boards)
    panel = next(p for p in broken["vi/peripherals.json"]["panels"] if '"minutes_today"' in str(p.get("targets")))
    panel["targets"][0]["query"] = panel["targets"][0]["query"].replace(LOCAL_TZ, "").strip()
    problems = lint(broken, files)
    assert any("vi/peripherals.json" in p and "without tz('Asia/Ho_Chi_Minh')" in p for p in problems), problems


@pytest.mark.services  # a real InfluxDB
def test_token_use_per_day_sums_a_local_day_across_utc_midnight(influxd: Influxd, database: str) -> None:
    """A token used at 06:00 and 08:00 in Vietnam (23:00 and 01:00 UTC): one local day, one bar."""
    query = next(q for q in dashboard_queries("vi/peripherals.json", all_dashboards()["vi/peripherals.json"])
                 if '"minutes_today"' in q.text)  # fmt: skip
    midnight = int(datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).replace(hour=0, minute=0, second=0).timestamp())
    local_day = midnight - 3 * 86400
    tags = "province=08,area=a1,commune=02473,host=pc-1,kind=token,device=096e-080a-1"
    lines = [f"peripheral,{tags} minutes_today={m} {local_day + h * 3600}" for h, m in ((6, 20.0), (8, 35.0))]
    request = urllib.request.Request(f"{influxd.url}/write?db={database}&precision=s",
                                     data="\n".join(lines).encode(), headers=influxd.headers)  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as answer:
        assert answer.status == 204
    values = {"province": "08", "area": ".*", "commune": "02473"}
    rows = influxd.query(expand(query.text, values, time_range="10d"), database)
    assert [(r["time"], r["max"]) for r in rows] == [(local_day, 35.0)]
    utc = influxd.query(expand(query.text.replace(LOCAL_TZ, ""), values, time_range="10d"), database)
    assert len(utc) == 2  # grouped by UTC day, the same morning is two days


def test_provisioning_files_point_at_the_provisioned_datasource_and_alert_on_the_two_key_failures() -> None:
    files = {path: yaml.safe_load((build.DEFAULT_DIR / "provisioning" / path).read_text()) for path in all_files()}
    (ds,) = files["datasources/commune-monitor.yaml"]["datasources"]
    assert ds["uid"] == "commune-influxdb" and ds["type"] == "influxdb" and ds["jsonData"]["version"] == "InfluxQL"
    (provider,) = files["dashboards/commune-monitor.yaml"]["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]
    alerting = files["alerting/commune-monitor.yaml"]
    rules = {r["uid"]: r for group in alerting["groups"] for r in group["rules"]}
    assert set(rules) == {"cm-line-down", "cm-host-offline"}
    assert all(r["data"][0]["datasourceUid"] == ds["uid"] for r in rules.values())
    assert alerting["contactPoints"][0]["name"] == alerting["policies"][0]["receiver"]


# ---- every query on the real InfluxDB ----

PROBE_TARGETS = [
    {"name": "province", "method": "ping", "address": "127.0.0.1", "scope": "wan"},
    {"name": "dns", "method": "dns", "address": "localhost", "scope": "internet"},
]


def backfill_rollups(stack: Stack) -> None:
    """What the 5-minute continuous queries write, run now for the last hour instead of waiting."""
    database = stack.database
    for measurement in ROLLUP_MEASUREMENTS:
        stack.query(
            f'SELECT mean(*) INTO "{database}"."rollup_5m"."{measurement}" FROM "{database}"."raw"."{measurement}" '
            "WHERE time > now() - 1h GROUP BY time(5m), *"
        )


def publish_peripherals(port: int, commune: str, host: str, items: list[dict[str, Any]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"peripherals-{host}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = json.dumps({"v": 1, "ts": int(time.time()), "peripherals": items}).encode()
    client.publish(report_topic("08", commune, host, "peripherals"), payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def run_query(stack: Stack, query: Query, values: dict[str, str]) -> list[dict[str, Any]]:
    text = expand(query.text, values)
    try:
        return stack.query(text)
    except RuntimeError as exc:
        raise AssertionError(f"{query.where}: {exc}") from None


def test_every_panel_variable_and_alert_query_returns_rows_from_real_agent_data(own_stack: Stack) -> None:
    stack = own_stack
    collector = stack.collector(fleet={"restart_grace_s": 0, "disk_full_percent": 1, "evaluate_interval_s": 1})
    assert collector.cli("setup-influx").returncode == 0  # raw as default policy, rollup_5m, continuous queries
    collector.start()
    # areas first: a line registered before its commune has an area is written once under area
    # "unassigned" as unused (no agent yet), and that series would stay in the tables' time range
    assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
    assert collector.cli("registry", "import", str(REPO / "config/lines.example.csv")).returncode == 0
    assert collector.cli("registry", "import-equipment", str(REPO / "config/equipment.example.csv")).returncode == 0
    probe = {"gateway": False, "interval_s": 2, "ping_count": 2, "targets": PROBE_TARGETS}
    pc = stack.agent(host="pc-grafana", probe=probe)
    line_probe = stack.agent(
        host="probe-grafana",
        identity={"role": "line-probe"},
        probe=probe,
        speedtest={"modes": ["wan"], "wan_url": collector.url, "check_interval_s": 1, "download_sides": [350],
                   "download_count": 1, "upload_sizes": 2, "upload_count": 1, "threads": 1},
    )  # fmt: skip
    pc.start()
    line_probe.start()
    # a simulated province beside them (Cao Bằng, its own communes) brings what this machine lacks: sensors
    simulator = Process(
        [sys.executable, "-m", "devtools.simulate.cli", "-c", str(collector.config_path), "--province", "04",
         "--hosts-per-commune", "1", "--interval", "2", "--duration", "20", "--no-register"],
        collector.workdir, "simulate",
    )  # fmt: skip
    simulator.start()
    wait_until(lambda: {"pc-grafana", "probe-grafana"} <= {h["host"] for h in collector.get_json("/api/v1/hosts")},
               30, "both hosts known")  # fmt: skip
    assert collector.post_json("/api/v1/hosts/08/02473/probe-grafana/speedtest", {"mode": "wan"})[0] == 202

    def have(measurement: str) -> bool:
        return bool(stack.query(f'SELECT count(*) FROM "{measurement}" WHERE "commune" = \'02473\''))

    # this machine has no USB bus: the token a commune chair plugs in comes from a real MQTT client
    publish_peripherals(stack.broker.port, "02473", "pc-grafana", [{
        "device": "096e-0807-A3F10E2D77", "kind": "token", "serial": "A3F10E2D77", "model": "Feitian ePass2003",
        "present": 1, "minutes_today": 42, "first_seen_today": int(time.time()) - 2520,
        "last_seen_today": int(time.time())}])  # fmt: skip
    measurements = ("system", "disk", "net", "probe", "speedtest", "inventory", "agent", "commune", "peripheral",
                    "equipment")  # fmt: skip
    wait_until(lambda: all(have(m) for m in measurements), 90, "every measurement written")
    wait_until(lambda: any(h["host"] == "pc-grafana" for h in collector.get_json("/api/v1/degraded")), 30, "degraded")
    wait_until(lambda: stack.query('SELECT count("temp_c") FROM "sensors" WHERE "province" = \'04\''),
               30, "simulated sensors")  # fmt: skip
    queries = [q for name, board in all_dashboards().items() for q in dashboard_queries(name, board)]
    values = {"province": "08", "area": ".*", "commune": "02473", "host": "pc-grafana"}

    def find(board: str, title: str) -> Query:
        return next(q for q in queries if q.where.startswith(f"{board}: panel") and repr(title) in q.where)

    degraded = find("en/degraded-equipment.json", "Degraded equipment")

    def degraded_rows() -> list[dict[str, Any]]:
        rows = run_query(stack, degraded, {**values, "commune": ".*", "rp": "raw"})
        return [r for r in rows if r["host"] == "pc-grafana"]

    # the API shows the change before the next agent point reaches InfluxDB
    wait_until(lambda: any("disk_full" in r["reasons"] for r in degraded_rows()), 30, "degraded point stored")
    # a real outage of the commune for the outage table: both PCs killed, then started again (cause unknown)
    for agent in (pc, line_probe):
        agent.kill()
    outage_open = "/api/v1/outages?commune=02473"
    wait_until(lambda: collector.get_json(outage_open), 30, "an outage of the commune")
    for agent in (pc, line_probe):
        agent.start()
    wait_until(lambda: stack.query('SELECT "duration_s" FROM "outage"'), 60, "the outage point")
    time.sleep(2)
    backfill_rollups(stack)

    no_sensors = not getattr(psutil, "sensors_temperatures", dict)()
    empty = []
    for rp in ("raw", "rollup_5m"):
        for query in queries:
            rows = run_query(stack, query, {**values, "rp": rp})
            if not rows:
                empty.append(query.where)
    sensor_queries = [q for q in queries if '"sensors"' in q.text]
    expected_empty = {q.where for q in sensor_queries} if no_sensors else set()
    assert set(empty) == expected_empty, f"queries with no rows: {empty}"
    assert len(queries) >= 60 and sensor_queries
    simulated = {"province": "04", "area": ".*", "commune": ".*", "host": "pc-01"}
    for rp in ("raw", "rollup_5m"):
        for query in sensor_queries:
            assert run_query(stack, query, {**simulated, "rp": rp}), query.where
    simulator.stop()
    assert "Traceback" not in simulator.log()

    rules = list(rule_queries(all_files()))
    assert len(rules) == 2
    answers = {q.where: run_query(stack, q, {}) for q in rules}
    line_down = answers["alert rule cm-line-down A"]
    assert {row["commune"] for row in line_down} >= {"02473", "00691"}  # our commune and lines with no agent
    assert all(row["last"] == 0 for row in line_down if row["commune"] == "02473")
    offline = answers["alert rule cm-host-offline A"]
    assert any(row["host"] == "pc-grafana" and row["area"] for row in offline)

    # what the tables show: our degraded host, and the lines nobody uses
    ours = degraded_rows()
    assert ours and "disk_full" in ours[0]["reasons"] and ours[0]["since"] > 0
    unused = find("en/unused-lines.json", "Unused connections")
    rows = run_query(stack, unused, {**values, "rp": "raw"})
    with_hosts = {h["commune"] for h in collector.get_json("/api/v1/hosts")}
    assert {"00691", "00721", "02215", "02473", "02536"} - with_hosts <= {r["commune"] for r in rows}
    assert {"00691", "00721"} <= {r["commune"] for r in rows}  # no agent reports from these
    assert "02473" not in {r["commune"] for r in rows}
    assert all(r["name"] and r["contracted"] > 0 for r in rows)
    outages = find("vi/line-quality.json", "Mất kết nối và nguyên nhân")
    outage = run_query(stack, outages, {**values, "rp": "raw"})
    assert [(r["commune"], r["cause"]) for r in outage] == [("02473", "unknown")] and outage[0]["duration_s"] > 0
    assert run_query(stack, outages, {**values, "rp": "rollup_5m"}) == outage  # the collector keeps both
    # the peripherals dashboard: the chair's token is in use, the vice-chair's and the scanner were never plugged in
    idle = run_query(
        stack,
        find("en/peripherals.json", "Plugged-idle, unused and never-seen items (holder, days)"),
        {**values, "rp": "raw"},
    )
    ours = {r["kind"]: r for r in idle if r["commune"] == "02473"}
    assert set(ours) == {"token", "scanner"} and ours["token"]["unused"] == 1
    assert ours["token"]["items_en"].startswith("Phó Chủ tịch UBND xã (Feitian ePass2003 (VNPT-CA)): Never seen, ")
    per_commune = run_query(stack, find("vi/peripherals.json", "Thiết bị cấp và đang dùng theo xã"),
                            {**values, "rp": "raw"})  # fmt: skip
    token = next(r for r in per_commune if r["commune"] == "02473" and r["kind"] == "token")
    assert (token["issued"], token["seen"], token["unused"], token["kind_name"]) == (2, 1, 1, "chữ ký số")
    use = run_query(
        stack,
        find("en/peripherals.json", "Digital-signature tokens: minutes plugged in per day"),
        {**values, "rp": "raw"},
    )
    assert [r["max"] for r in use] == [42]
    pc.stop()
    line_probe.stop()
