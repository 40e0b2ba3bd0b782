"""The nation through Mosquitto bridges: two province brokers bridge their reports to a national
broker with the shipped bridge config (config/mosquitto-bridge.example.conf); a collector per
province takes only its own (``[mqtt] provinces``), a national collector takes both. Nothing is
lost while the national broker is away, and commands to agents never travel upward."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import REPO, Agent, Collector, Influxd, Mosquitto, free_port, wait_until

from collector.config import IngestSettings, MqttSettings
from collector.ingest.checks import Ingestor
from collector.ingest.consumer import subscriptions
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import encode, report_topic

BRIDGE_EXAMPLE = REPO / "config" / "mosquitto-bridge.example.conf"
# The 30 s: longer than the bridge's restart_timeout ceiling (10 s), so the province broker
# retries several times and queues for the bridge's persistent session meanwhile.
NATIONAL_DOWN_S = 30.0
Collectors = Callable[..., Collector]
Agents = Callable[..., Agent]
HOSTS = {"08": [("02473", "pc-tq-1"), ("02536", "pc-tq-2")], "01": [("00004", "pc-hn-1")]}


def test_a_collector_takes_only_its_provinces_and_counts_any_other_as_foreign() -> None:
    metrics = SelfMetrics()
    ingestor = Ingestor(Registry(Store(":memory:"), "unassigned"), metrics, IngestSettings(), provinces=["08"])
    report = encode({"v": 1, "ts": int(time.time()), "system": {"cpu_percent": 5.0}})

    assert ingestor.handle(report_topic("08", "02473", "pc-1", "metrics"), report, time.time())
    assert ingestor.handle(report_topic("01", "00004", "pc-2", "metrics"), report, time.time()) == []
    assert metrics.messages_rejected.labels(reason="foreign_province")._value.get() == 1
    assert subscriptions(MqttSettings(provinces=["08", "01", "08"]).provinces) == [
        "commune/v1/01/+/+/+",
        "commune/v1/08/+/+/+",
    ]
    assert subscriptions([]) == ["commune/v1/+/+/+/+"]
    with pytest.raises(ValueError, match="two digits"):
        MqttSettings(provinces=["8"])


def bridge_config(province: str, national_port: int) -> str:
    """The shipped bridge config, filled in as a province administrator would."""
    text = BRIDGE_EXAMPLE.read_text()
    return text.replace("<province>", province).replace("<national-host:port>", f"127.0.0.1:{national_port}")


class Watcher:
    """An MQTT client on the national broker noting every topic it sees (it reconnects by itself)."""

    def __init__(self, port: int) -> None:
        self.topics: list[str] = []
        self._lock = threading.Lock()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"watch-{uuid.uuid4().hex[:6]}")
        client.on_connect = lambda c, *_: c.subscribe("commune/#", qos=1)
        client.on_message = self._on_message
        client.reconnect_delay_set(1, 2)
        client.connect_async("127.0.0.1", port)
        client.loop_start()
        self.client = client

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.topics.append(message.topic)

    def seen(self) -> list[str]:
        with self._lock:
            return list(self.topics)

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def counts(influxd: Influxd, database: str) -> dict[str, int]:
    rows = influxd.query("SELECT count(cpu_percent) FROM system GROUP BY host", database)
    return {str(row["host"]): int(row["count"]) for row in rows}


def test_provinces_bridged_to_a_national_broker_lose_nothing_while_it_is_away(
    make_collector: Collectors, make_agent: Agents, influxd: Influxd, database: str, tmp_path: Path
) -> None:
    national_port = free_port()
    national = Mosquitto(tmp_path / "national", port=national_port)
    national.start()
    brokers = {
        code: Mosquitto(tmp_path / f"p{code}", extra_config=bridge_config(code, national_port)) for code in HOSTS
    }
    for broker in brokers.values():
        broker.start()
    databases = {"national": database}
    for code in HOSTS:
        databases[code] = f"{database}_p{code}"
        influxd.create_database(databases[code])
    collectors = {
        code: make_collector(mqtt={"port": broker.port, "provinces": [code]}, influxdb={"database": databases[code]})
        for code, broker in brokers.items()
    }
    collectors["national"] = make_collector(
        mqtt={"port": national_port, "provinces": sorted(HOSTS), "acks": False}, influxdb={"database": database}
    )
    for collector in collectors.values():
        collector.start()
    watcher = Watcher(national_port)
    agents = [
        make_agent(commune=commune, host=host, province=code, mqtt={"port": brokers[code].port})
        for code, hosts in HOSTS.items()
        for commune, host in hosts
    ]
    try:
        for agent in agents:
            agent.start()
        wait_until(lambda: len(counts(influxd, database)) == 3, 30, "every host's reports at the national collector")

        national.stop()
        down_from = time.time()
        time.sleep(NATIONAL_DOWN_S)  # the outage itself: agents keep reporting to their provinces
        down_until = time.time()
        national = Mosquitto(tmp_path / "national", port=national_port)  # same port, same persistence
        national.start()
        time.sleep(2)  # reports after the outage, too
        for agent in agents:
            agent.stop()

        def caught_up() -> bool:
            provinces = {**counts(influxd, databases["08"]), **counts(influxd, databases["01"])}
            return counts(influxd, database) == provinces

        wait_until(caught_up, 60, "the national database holding every province's reports")
        national_counts = counts(influxd, database)
        for code, hosts in HOSTS.items():
            assert set(counts(influxd, databases[code])) == {host for _, host in hosts}  # exactly its own
        assert all(count > 0 for count in national_counts.values()), national_counts
        during = influxd.query(
            "SELECT count(cpu_percent) FROM system"
            f" WHERE time > {int(down_from) + 1}s AND time < {int(down_until)}s GROUP BY host",
            database,
        )
        assert {row["host"] for row in during if row["count"] > 0} == set(national_counts), during  # queued, bridged
        for agent in agents:  # each agent's acknowledgements came from its province's collector, to it alone
            assert "msg=acknowledged" in agent.log(), agent.log()[-2000:]
            assert "for another spool" not in agent.log()
        acks = sum(collectors[code].metric("commune_collector_acks_sent_total") for code in HOSTS)
        assert acks > 0
        seen = watcher.seen()
        assert any(topic.endswith("/metrics") for topic in seen)
        # Commands never go upward: a command and then a report-shaped marker published on each
        # province broker; once the markers are through the bridges, no probe command may have been.
        for code, hosts in HOSTS.items():
            commune, host = hosts[0]
            base = f"commune/v1/{code}/{commune}/{host}"
            publisher = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{uuid.uuid4().hex[:6]}")
            publisher.connect("127.0.0.1", brokers[code].port)
            publisher.loop_start()
            publisher.publish(f"{base}/cmd/bridge-probe", b"{}", qos=1).wait_for_publish(10)
            publisher.publish(f"{base}/bridge-marker", b"{}", qos=1).wait_for_publish(10)
            publisher.disconnect()
            publisher.loop_stop()
        wait_until(lambda: sum(t.endswith("/bridge-marker") for t in watcher.seen()) == 2, 30, "both markers bridged")
        seen = watcher.seen()
        assert [topic for topic in seen if topic.endswith("/cmd/bridge-probe")] == []
        # The only commands on the national broker are the national collector's own answers to the
        # bridged hellos and its known-ids hand-over, which reach no agent from there.
        assert {topic.rsplit("/", 1)[1] for topic in seen if "/cmd/" in topic} <= {"ack", "known_ids"}
        for code in HOSTS:
            rejected = collectors[code].metric('commune_collector_messages_rejected_total{reason="foreign_province"}')
            assert rejected == 0  # each province broker carries only its own
    finally:
        watcher.stop()
        for broker in (*brokers.values(), national):
            broker.stop()
