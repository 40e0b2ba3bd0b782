"""No password or token reaches a log or a URL.

Everything runs for real with every credential set: InfluxDB with ``auth-enabled = true``, an
admin user and its HTTP access log on (which records every request URL); a Mosquitto that only
knows the users of its dynamic-security plugin; ``dynsec-init``, ``enroll``, an enrolment key and
``commune-agent enroll``, ``setup-influx``, ``serve`` with two real agents, ``grafana sync``
against the Grafana API stand-in, and a notification by webhook, e-mail (SMTP login) and Telegram.
Then every log the programs wrote, and InfluxDB's and Mosquitto's logs, are searched for every
secret. The stand-ins' own access logs are off: they are ours, not the programs'."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from realservices import (
    API_TOKEN,
    DYNSEC_ADMIN,
    REPO,
    Agent,
    Collector,
    Influxd,
    Mosquitto,
    dynsec_broker,
    free_port,
    wait_until,
)
from test_fleet_alerts import Receivers, receivers  # noqa: F401 - the receivers fixture
from test_grafana_sync import GrafanaApiDouble, grafana  # noqa: F401 - a fixture

from collector.alerting.conditions import HOST_OFFLINE
from collector.http.auth import digest

pytestmark = pytest.mark.services  # starts its own authenticated broker, InfluxDB, collector and agent

INFLUX_PASSWORD = "influx-Pw-9c1e5f"
MQTT_PASSWORD = "mqtt-Pw-2b7d40"
GRAFANA_TOKEN = "glsa_secret_5e0c7a91"
TELEGRAM_TOKEN = "987654:tg-Secret-a41f"
WEBHOOK_SECRET = "hook-Secret-77d2"
SMTP_PASSWORD = "smtp-Pw-03be6c"


@pytest.fixture
def smtp_logins() -> Iterator[tuple[int, list[tuple[str, str]]]]:
    """A real SMTP server that requires a login (AUTH PLAIN/LOGIN) and records who logged in."""
    logins: list[tuple[str, str]] = []
    mails: list[bytes] = []

    def authenticate(_server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any) -> AuthResult:
        assert isinstance(data, LoginPassword)
        logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password.decode() == SMTP_PASSWORD)

    class Mailbox:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            mails.append(envelope.content)
            return "250 OK"

    port = free_port()
    smtp = Controller(
        Mailbox(),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticate,
        auth_require_tls=False,
        auth_required=True,
    )
    smtp.start()
    yield port, logins
    smtp.stop()


def test_no_password_or_token_appears_in_any_log_or_url(
    tmp_path: Path,
    receivers: Receivers,  # noqa: F811 - the fixture imported above
    grafana: GrafanaApiDouble,  # noqa: F811 - the fixture imported above
    smtp_logins: tuple[int, list[tuple[str, str]]],
) -> None:
    influxd = Influxd(tmp_path / "influxd", admin=("admin", INFLUX_PASSWORD), http_log=True)
    influxd.start()
    broker: Mosquitto | None = None
    collector: Collector | None = None
    agents: list[Agent] = []
    outputs: dict[str, str] = {}
    try:
        mqtt_port = free_port()
        smtp_port, logins = smtp_logins
        collector = Collector(
            tmp_path / "collector",
            {
                "mqtt": {
                    "host": "127.0.0.1",
                    "port": mqtt_port,
                    "username": "collector",
                    "password": MQTT_PASSWORD,
                    "client_id": "collector-secrets",
                },
                "influxdb": {
                    "url": influxd.url,
                    "database": "commune",
                    "username": "admin",
                    "password": INFLUX_PASSWORD,
                    "flush_interval_s": 0.2,
                },
                "http": {
                    "host": "127.0.0.1",
                    "port": free_port(),
                    "tokens": [{"name": "tests", "role": "admin", "sha256": digest(API_TOKEN)}],
                },
                "state": {"path": str(tmp_path / "state" / "state.sqlite")},
                "ingest": {"status_interval_s": 1},
                "enroll": {**DYNSEC_ADMIN, "broker_port": mqtt_port},
                "fleet": {"evaluate_interval_s": 0.5, "restart_grace_s": 0},
                "alerts": {"for_s": {"host_offline": 1}},
                "notify": {
                    "group_wait_s": 1,
                    "webhook_urls": [f"http://127.0.0.1:{receivers.http_port}/hook/{WEBHOOK_SECRET}"],
                    "smtp_host": "127.0.0.1",
                    "smtp_port": smtp_port,
                    "smtp_username": "monitor",
                    "smtp_password": SMTP_PASSWORD,
                    "email_to": ["it@tuyenquang.example"],
                    "telegram_api_url": f"http://127.0.0.1:{receivers.http_port}",
                    "telegram_bot_token": TELEGRAM_TOKEN,
                    "telegram_chat_ids": ["-100200"],
                },
                "grafana": {"url": grafana.url, "token": GRAFANA_TOKEN, "influxdb_url": influxd.url},
            },
        )
        (tmp_path / "state").mkdir()
        cli = collector.cli
        broker = dynsec_broker(collector, tmp_path / "broker", mqtt_port)
        done = cli("enroll", "--province", "08", "--commune", "02473", "--host", "pc-keep",
                   "--out", str(tmp_path / "pc-keep.toml"))  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs["enroll pc-keep"] = done.stdout + done.stderr
        agent_passwords = [agent_config(tmp_path / "pc-keep.toml")["mqtt"]["password"]]
        done = cli("registry", "import-areas", str(REPO / "config" / "areas.example.csv"))
        assert done.returncode == 0, done.stderr
        done = cli("enroll-key", "add", "--area", "yen-son", "--expires", "1d")
        assert done.returncode == 0, done.stderr
        enrolment_key = done.stdout.strip()
        outputs["enroll-key add (stderr)"] = done.stderr

        done = cli("setup-influx")
        assert done.returncode == 0, done.stderr
        outputs["setup-influx"] = done.stdout + done.stderr

        collector.start()
        done = subprocess.run(
            [sys.executable, "-m", "agent.cli", "enroll", "--url", collector.url, "--key", enrolment_key,
             "--province", "08", "--commune", "02473", "--host", "pc-kill", "--out", str(tmp_path / "pc-kill.toml"),
             "--insecure-http"],
            capture_output=True, text=True, cwd=REPO, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        outputs["commune-agent enroll pc-kill"] = done.stdout + done.stderr
        agent_passwords.append(agent_config(tmp_path / "pc-kill.toml")["mqtt"]["password"])
        for host, password in zip(("pc-keep", "pc-kill"), agent_passwords, strict=True):
            agent = Agent(
                tmp_path / host,
                {
                    **agent_config(tmp_path / f"{host}.toml"),
                    "collect": {"interval_s": 1},
                    "probe": {"gateway": False},
                    "spool": {"path": str(tmp_path / host / "spool.sqlite")},
                },
            )
            assert password in agent.config_path.read_text()
            agent.start()
            agents.append(agent)
        wait_until(
            lambda: len(influxd.query("SHOW TAG VALUES FROM system WITH KEY = host", "commune")) == 2,
            60,
            "both agents' points, written with the InfluxDB login",
        )

        agents[1].kill()
        wait_until(lambda: receivers.events(HOST_OFFLINE, "firing", "pc-kill"), 60, "webhook notification")
        wait_until(lambda: any("pc-kill" in m["text"] for m in receivers.telegram), 30, "telegram message")
        wait_until(lambda: logins, 30, "an SMTP login")
        assert logins[0] == ("monitor", SMTP_PASSWORD)
        assert receivers.telegram[0]["path"] == f"/bot{TELEGRAM_TOKEN}/sendMessage"

        done = cli("grafana", "sync")
        assert done.returncode == 0, done.stderr
        outputs["grafana sync"] = done.stdout + done.stderr
        assert grafana.auth == {f"Bearer {GRAFANA_TOKEN}"}
        assert grafana.datasources["commune-influxdb"]["secureJsonFields"] == {"password": True}
    finally:
        for agent in agents:
            agent.stop()
        if collector is not None:
            collector.stop()
        if broker is not None:
            broker.stop()
        influxd.stop()

    logs = {
        **outputs,
        "collector": collector.log() if collector else "",
        **{f"agent {i}": agent.log() for i, agent in enumerate(agents)},
        "influxd": influxd.log(),
        "mosquitto": broker.log() if broker else "",
    }
    secrets = [
        INFLUX_PASSWORD,
        MQTT_PASSWORD,
        GRAFANA_TOKEN,
        TELEGRAM_TOKEN,
        WEBHOOK_SECRET,
        SMTP_PASSWORD,
        API_TOKEN,
        DYNSEC_ADMIN["admin_password"],
        enrolment_key,
        *agent_passwords,
    ]
    found = [(secret, name) for name, text in logs.items() for secret in secrets if secret in text]
    assert found == []
    # The access log is on and records the requests the collector made, logged in as admin.
    assert '"POST /write?db=commune&precision=s HTTP/1.1" 204' in logs["influxd"]
    assert " admin [" in logs["influxd"]
    assert "level=info" in logs["collector"] and "level=info" in logs["agent 0"]


def agent_config(path: Path) -> dict[str, dict[str, Any]]:
    return tomllib.loads(path.read_text())
