"""Enrollment on a real Mosquitto with the password file and ACL the collector writes: an enrolled
agent's data arrives; a host cannot publish under another host's topic nor read its commands;
wrong passwords and anonymous clients are refused."""

from __future__ import annotations

import os
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
from realservices import Agent, Collector, Influxd, Mosquitto, enrolled_broker, free_port, wait_until

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
    """A broker that only knows enrolled users, and a collector that logs in to it."""
    port = free_port()
    http_port = free_port()
    while http_port == port:  # neither is bound yet
        http_port = free_port()
    files = {"password_file": tmp_path / "mosq" / "passwd", "acl_file": tmp_path / "mosq" / "acl"}
    collector = make_collector(
        mqtt={"port": port, "username": COLLECTOR_USER, "password": COLLECTOR_PASSWORD},
        enroll={**{k: str(v) for k, v in files.items()}, "broker_port": port},
        http={"port": http_port},
    )
    configs = {}
    for commune, host in (("02473", "pc-a"), ("02536", "pc-b")):
        configs[host] = tmp_path / f"{host}.toml"
        result = enroll(collector, "08", commune, host, configs[host])
        assert result.returncode == 0, result.stderr
        assert "reload Mosquitto" in result.stderr
    broker = enrolled_broker(tmp_path / "broker", port, files["password_file"], files["acl_file"])
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
    passwd_text = (tmp_path / "mosq" / "passwd").read_text()
    assert password_a not in passwd_text and COLLECTOR_PASSWORD not in passwd_text
    assert "08-02473-pc-a:$7$101$" in passwd_text
    assert stat.S_IMODE(os.stat(tmp_path / "mosq" / "passwd").st_mode) == 0o640

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
        # Mosquitto grants any subscription and applies the ACL to each delivery instead.
        intruder.subscribe("commune/v1/08/02536/#")
        intruder.subscribe("commune/v1/08/02473/pc-a/cmd/#")
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
    collector = make_collector(enroll={"password_file": str(tmp_path / "p"), "acl_file": str(tmp_path / "a")})
    result = enroll(collector, "08", "00004", "pc-01", tmp_path / "x.toml")  # 00004 is a Hà Nội ward
    assert result.returncode == 2
    assert "not in province '08'" in result.stderr
    assert not (tmp_path / "p").exists()
