"""Collector set-up and self-checks against real InfluxDB and Mosquitto."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from realservices import REPO, Influxd, http_get, wait_until, write_toml
from stack import Stack

from collector.ingest.setup_influx import ROLLUP_MEASUREMENTS

pytestmark = pytest.mark.services  # every test runs the collector's CLI or services


def test_setup_influx_creates_retention_policies_and_rollups(influxd: Influxd, tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", {"influxdb": {"url": influxd.url, "database": "setup_test"}})
    for _ in range(2):  # idempotent
        subprocess.run(
            [sys.executable, "-m", "collector.cli", "setup-influx", "-c", str(config)],
            cwd=REPO,
            check=True,
            capture_output=True,
        )
    policies = {r["name"]: r for r in influxd.query('SHOW RETENTION POLICIES ON "setup_test"', "setup_test")}
    assert policies["raw"]["duration"] == "720h0m0s" and policies["raw"]["default"] is True
    assert policies["rollup_5m"]["duration"] == "9600h0m0s"
    queries = {r["name"] for r in influxd.query("SHOW CONTINUOUS QUERIES", "setup_test") if "name" in r}
    assert {f"cq_{m}_5m" for m in ROLLUP_MEASUREMENTS} <= queries


def test_setup_influx_failure_is_a_clear_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", {"influxdb": {"url": "http://127.0.0.1:9", "timeout_s": 1}})
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "setup-influx", "-c", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 1
    assert "http://127.0.0.1:9" in result.stderr and "failed" in result.stderr


def test_healthz_reports_influxdb_down(stack: Stack) -> None:
    collector = stack.collector(influxdb={"url": "http://127.0.0.1:9"})
    collector.start(healthy=False)
    wait_until(lambda: http_get(f"{collector.url}/healthz")[0] == 503, 30, f"503 from healthz\n{collector.log()}")
    status, body = http_get(f"{collector.url}/healthz")
    assert status == 503
    assert b'"influxdb":false' in body and b'"mqtt":true' in body


def test_bad_collector_config_is_a_clear_error(tmp_path: Path) -> None:
    config = write_toml(tmp_path / "c.toml", {"http": {"port": 70000}})
    result = subprocess.run(
        [sys.executable, "-m", "collector.cli", "serve", "-c", str(config)], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 2 and "http.port" in result.stderr


def test_agent_reconnects_after_the_broker_restarts_and_loses_nothing(own_stack: Stack) -> None:
    broker = own_stack.broker
    own_stack.started_collector()
    [agent] = own_stack.start_agents("02473", ["pc-reconnect"])
    where = "WHERE host='pc-reconnect'"

    wait_until(lambda: own_stack.stored_reports("pc-reconnect") >= 2, 20, "first points")
    broker.stop()
    outage_started = time.time()
    time.sleep(4)
    broker.start()
    wait_until(lambda: "connected" in agent.log().split("disconnected")[-1], 60, f"reconnect\n{agent.log()}")
    wait_until(
        lambda: own_stack.stored_reports("pc-reconnect") >= int(time.time() - outage_started) + 2,
        60,
        "points measured during the outage",
    )
    during = own_stack.query(
        f'SELECT count(cpu_percent) FROM "system" {where} AND time > {int(outage_started) + 1}s '
        f"AND time < {int(outage_started) + 4}s"
    )
    assert during and during[0]["count"] >= 2, "reports measured while the broker was down must arrive later"
