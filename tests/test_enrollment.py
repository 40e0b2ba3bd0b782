"""Enrollment on a real Mosquitto with the dynamic-security plugin, administered live by the
collector (no reload): an enrolled agent's data arrives; a host cannot publish under another host's
topic nor read its commands; wrong passwords and anonymous clients are refused; a host name is not
taken over, and only an admin's ``--rotate`` gives it a new password."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from realservices import DYNSEC_ADMIN, Agent, Collector, Influxd, Mosquitto, dynsec_broker, free_port, wait_until

from common.wire import encode, report_topic

COLLECTOR_USER = "commune-collector"
COLLECTOR_PASSWORD = "collector-secret-for-tests"


class Client:
    """A paho MQTT v5 client that records the broker's reason codes."""

    def __init__(self, port: int, username: str | None, password: str | None) -> None:
        self.connack: ReasonCode | None = None
        self.connected = threading.Event()
        self.acks: dict[int, ReasonCode] = {}
        self.subacks: dict[int, list[ReasonCode]] = {}
        self.received: list[str] = []
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = lambda _c, _u, message: self.received.append(message.topic)
        self.client.on_publish = lambda _c, _u, mid, rc, _p: self.acks.__setitem__(mid, rc)
        self.client.on_subscribe = lambda _c, _u, mid, rcs, _p: self.subacks.__setitem__(mid, list(rcs))
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        wait_until(self.connected.is_set, 20, "CONNACK")

    def _on_connect(self, _c: Any, _u: Any, _f: Any, rc: ReasonCode, _p: Properties | None) -> None:
        self.connack = rc
        self.connected.set()

    def publish(self, topic: str, payload: bytes) -> ReasonCode:
        info = self.client.publish(topic, payload, qos=1)
        wait_until(lambda: info.mid in self.acks, 20, "PUBACK")
        return self.acks[info.mid]

    def subscribe(self, topic: str) -> ReasonCode:
        _result, mid = self.client.subscribe(topic, qos=1)
        assert mid is not None
        wait_until(lambda: mid in self.subacks, 20, "SUBACK")
        return self.subacks[mid][0]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def enroll(collector: Collector, province: str, commune: str, host: str, out: Path) -> subprocess.CompletedProcess[str]:
    return collector.cli("enroll", "--province", province, "--commune", commune, "--host", host, "--out", str(out))


@pytest.fixture
def secured(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> Iterator[tuple[Mosquitto, Collector, dict[str, Path]]]:
    """A broker that only knows the collector, its admin and enrolled users; two hosts enrolled
    while it runs, and a collector that logs in to it."""
    port = free_port()
    http_port = free_port()
    while http_port == port:  # neither is bound yet
        http_port = free_port()
    collector = make_collector(
        mqtt={"port": port, "username": COLLECTOR_USER, "password": COLLECTOR_PASSWORD},
        enroll={**DYNSEC_ADMIN, "broker_port": port},
        http={"port": http_port},
    )
    broker = dynsec_broker(collector, tmp_path / "broker", port)
    configs = {}
    for commune, host in (("02473", "pc-a"), ("02536", "pc-b")):
        configs[host] = tmp_path / f"{host}.toml"
        result = enroll(collector, "08", commune, host, configs[host])
        assert result.returncode == 0, result.stderr
        assert "reload" not in result.stderr
    collector.start()
    yield broker, collector, configs
    collector.stop()
    broker.stop()


def host_points(influxd: Influxd, database: str, host: str) -> int:
    rows = influxd.query(f"SELECT count(cpu_percent) FROM system WHERE host = '{host}'", database)
    return int(rows[0]["count"]) if rows else 0


def test_enrolled_agent_reports_and_cannot_write_as_another_host(
    secured: tuple[Mosquitto, Collector, dict[str, Path]], influxd: Influxd, database: str, tmp_path: Path
) -> None:
    broker, collector, configs = secured
    generated = tomllib.loads(configs["pc-a"].read_text())
    assert generated["identity"] == {"province": "08", "commune": "02473", "host": "pc-a"}
    password_a = generated["mqtt"]["password"]
    assert stat.S_IMODE(os.stat(configs["pc-a"]).st_mode) == 0o600
    with sqlite3.connect(tmp_path / "state.sqlite") as db:
        stored = dict(db.execute("SELECT username, password_hash FROM mqtt_credentials").fetchall())
    assert set(stored) == {"08-02473-pc-a", "08-02536-pc-b"} and stored["08-02473-pc-a"].startswith("$7$101$")
    broker_file = broker.dynsec_file.read_text()  # the plugin rewrote it with the hosts made live
    assert "08-02473-pc-a" in broker_file and "host-08-02473-pc-a" in broker_file
    for secret in (password_a, COLLECTOR_PASSWORD, DYNSEC_ADMIN["admin_password"]):
        assert secret not in broker_file and secret not in json.dumps(stored)

    agent = Agent(
        tmp_path / "agent-a",
        {
            **generated,
            "collect": {"interval_s": 1},
            "probe": {"gateway": False},
            "spool": {"path": str(tmp_path / "agent-a" / "spool.sqlite")},
        },
    )
    agent.start()
    try:
        wait_until(lambda: host_points(influxd, database, "pc-a") >= 2, 60, "pc-a points")

        intruder = Client(broker.port, generated["mqtt"]["username"], password_a)
        forged = encode({"v": 1, "ts": int(time.time()), "system": {"cpu_percent": 99.0}})
        refused = intruder.publish(report_topic("08", "02536", "pc-b", "metrics"), forged)
        assert refused.value == 0x87, refused  # Not authorized
        # The plugin refuses a subscription outside the host's own command topic.
        assert intruder.subscribe("commune/v1/08/02536/#").is_failure
        assert intruder.subscribe("commune/v1/08/02473/#").is_failure
        assert not intruder.subscribe("commune/v1/08/02473/pc-a/cmd/#").is_failure
        generated_b = tomllib.loads(configs["pc-b"].read_text())["mqtt"]
        owner = Client(broker.port, generated_b["username"], generated_b["password"])
        owner.subscribe("commune/v1/08/02536/pc-b/cmd/#")
        province = Client(broker.port, COLLECTOR_USER, COLLECTOR_PASSWORD)
        assert province.publish("commune/v1/08/02536/pc-b/cmd/speedtest", b"{}").value == 0
        assert province.publish("commune/v1/08/02473/pc-a/cmd/speedtest", b"{}").value == 0
        wait_until(lambda: "commune/v1/08/02473/pc-a/cmd/speedtest" in intruder.received, 20, "own command")
        wait_until(lambda: "commune/v1/08/02536/pc-b/cmd/speedtest" in owner.received, 20, "b's command")
        # pc-a's own commands only: the speed test, and the collector's acks of pc-a's reports
        commands = [topic for topic in intruder.received if topic != "commune/v1/08/02473/pc-a/cmd/ack"]
        assert commands == ["commune/v1/08/02473/pc-a/cmd/speedtest"], intruder.received
        assert intruder.publish("commune/v1/08/02536/pc-b/cmd/speedtest", b"{}").value == 0x87
        assert intruder.publish(report_topic("08", "02473", "pc-a", "metrics"), forged).value == 0
        for client in (intruder, owner, province):
            client.close()

        before = host_points(influxd, database, "pc-a")
        wait_until(lambda: host_points(influxd, database, "pc-a") >= before + 2, 60, "more pc-a points")
        assert host_points(influxd, database, "pc-b") == 0
        assert not any(h["host"] == "pc-b" for h in collector.get_json("/api/v1/hosts"))
    finally:
        agent.stop()
    assert password_a not in agent.log() and password_a not in collector.log()


def test_broker_refuses_wrong_password_and_anonymous(
    secured: tuple[Mosquitto, Collector, dict[str, Path]],
) -> None:
    broker, _collector, configs = secured
    username = tomllib.loads(configs["pc-b"].read_text())["mqtt"]["username"]
    for login, password in ((username, "wrong-password"), (None, None)):
        client = Client(broker.port, login, password)
        assert client.connack is not None and client.connack.is_failure, (login, client.connack)
        client.close()


def test_enroll_refuses_a_commune_outside_the_province(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    collector = make_collector()
    result = enroll(collector, "08", "00004", "pc-01", tmp_path / "x.toml")  # 00004 is a Hà Nội ward
    assert result.returncode == 2
    assert "not in province '08'" in result.stderr
    assert not (tmp_path / "x.toml").exists()


def test_a_host_name_is_not_taken_over_and_only_rotate_gives_it_a_new_password(
    secured: tuple[Mosquitto, Collector, dict[str, Path]], tmp_path: Path
) -> None:
    broker, collector, configs = secured
    old = tomllib.loads(configs["pc-a"].read_text())["mqtt"]
    again = enroll(collector, "08", "02473", "pc-a", tmp_path / "again.toml")
    assert again.returncode == 2 and "enrolled already" in again.stderr and "--rotate" in again.stderr
    assert not (tmp_path / "again.toml").exists()
    still = Client(broker.port, old["username"], old["password"])
    assert still.connack is not None and not still.connack.is_failure
    still.close()

    rotated = collector.cli("enroll", "--province", "08", "--commune", "02473", "--host", "pc-a", "--rotate",
                            "--out", str(tmp_path / "rotated.toml"))  # fmt: skip
    assert rotated.returncode == 0, rotated.stderr
    new = tomllib.loads((tmp_path / "rotated.toml").read_text())["mqtt"]
    assert new["username"] == old["username"] and new["password"] != old["password"]
    refused = Client(broker.port, old["username"], old["password"])
    assert refused.connack is not None and refused.connack.is_failure
    refused.close()
    welcome = Client(broker.port, new["username"], new["password"])
    assert welcome.connack is not None and not welcome.connack.is_failure
    welcome.close()
    nothing = collector.cli("enroll", "--province", "08", "--commune", "02473", "--host", "pc-new", "--rotate")
    assert nothing.returncode == 2 and "nothing to rotate" in nothing.stderr
