"""Benchmark: CPU per QoS 1 publish of the benches' bare MQTT client against paho, in the same run.

Why: the publishers of ``collector_throughput`` stand for remote PCs but share the province
server's cores, so what they spend is taken from the broker, the collector and InfluxDB. This
says what ``devtools.rawmqtt`` saves: the same ``metrics`` reports (built before the clock, as
the throughput bench does) published at QoS 1 to one real Mosquitto with nobody subscribed, with
at most 100 unacknowledged, until every PUBACK is in; first by ``RawMqttClient``, then by paho as
the throughput bench drove it before (its network thread, ``max_inflight_messages_set(100)``, a
publish per report with the window checked by the caller), in turns. CPU is the process's own
(paho's thread included), from the first publish to the last PUBACK. ``BENCH_PUBLISH_REPORTS``
(30,000) reports a turn, ``BENCH_PUBLISH_ROUNDS`` (2) turns each. Run: ``python -m bench.publish_cost``.
"""

from __future__ import annotations

import os
import resource
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from bench.collector_throughput import INFLIGHT, PROVINCE, metrics_report
from common.wire import encode, report_topic
from devtools.localstack import Mosquitto, wait_until
from devtools.rawmqtt import RawMqttClient, prepare

Messages = list[tuple[str, bytes]]


def cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def raw_turn(port: int, messages: Messages) -> tuple[float, float]:
    """(CPU s, wall s) of the bare client publishing every message until every PUBACK is in."""
    client = RawMqttClient("127.0.0.1", port, "bench-publish-raw", inflight=INFLIGHT)
    client.connect()
    prepared = prepare(messages)
    cpu, wall = cpu_s(), time.perf_counter()
    client.publish(prepared)
    client.wait_acked(600)
    cpu, wall = cpu_s() - cpu, time.perf_counter() - wall
    client.disconnect()
    return cpu, wall


def paho_turn(port: int, messages: Messages) -> tuple[float, float]:
    """The same with paho, driven as ``collector_throughput`` drove it before the bare client."""
    acked = [0]
    connected = threading.Event()
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publish-paho", clean_session=True)
    client.max_inflight_messages_set(INFLIGHT)
    client.on_connect = lambda *_a: connected.set()
    client.on_publish = lambda *_a: acked.__setitem__(0, acked[0] + 1)
    client.connect("127.0.0.1", port, keepalive=60)
    client.loop_start()
    connected.wait(10)
    cpu, wall = cpu_s(), time.perf_counter()
    for j, (topic, payload) in enumerate(messages):
        while j - acked[0] >= INFLIGHT:
            time.sleep(0.0005)
        client.publish(topic, payload, qos=1)
    wait_until(lambda: acked[0] >= len(messages), 600, "paho's PUBACKs", 0.005)
    cpu, wall = cpu_s() - cpu, time.perf_counter() - wall
    client.disconnect()
    client.loop_stop()
    return cpu, wall


def run(folder: Path, reports: int, rounds: int) -> dict[str, Any]:
    messages = [
        (report_topic(PROVINCE, "02473", f"pc-{i % 1000:03d}", "metrics"), encode(metrics_report(1_700_000_000 + i, i)))
        for i in range(reports)
    ]
    broker = Mosquitto(folder / "broker")
    broker.start()
    turns: dict[str, list[tuple[float, float]]] = {"raw": [], "paho": []}
    try:
        for _ in range(rounds):
            turns["raw"].append(raw_turn(broker.port, messages))
            turns["paho"].append(paho_turn(broker.port, messages))
    finally:
        broker.stop()
    figures: dict[str, Any] = {"reports": reports, "rounds": rounds, "payload_bytes": len(messages[0][1])}
    for name, done in turns.items():
        figures[f"{name}_cpu_us_per_publish"] = round(min(cpu for cpu, _w in done) / reports * 1e6, 1)
        figures[f"{name}_publishes_per_s"] = round(reports / min(wall for _c, wall in done))
    figures["paho_over_raw_cpu"] = round(figures["paho_cpu_us_per_publish"] / figures["raw_cpu_us_per_publish"], 1)
    return figures


def main() -> dict[str, Any]:
    reports = int(os.environ.get("BENCH_PUBLISH_REPORTS", "30000"))
    rounds = int(os.environ.get("BENCH_PUBLISH_ROUNDS", "2"))
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as folder:
        figures = run(Path(folder), reports, rounds)
    heading = f"CPU per QoS 1 publish, bare client against paho (best of {rounds} turns each, {os.cpu_count()} cores):"
    print("\n".join([heading, *(f"  {name}: {value}" for name, value in figures.items())]))
    return figures


if __name__ == "__main__":
    main()
