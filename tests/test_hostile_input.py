"""Hostile messages published with a real MQTT client are rejected, counted, and never stored."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Collector, Influxd, Mosquitto, wait_until

from common.wire import report_topic

GOOD_TOPIC = report_topic("08", "02473", "pc-hostile", "metrics")
PERIPHERALS_TOPIC = report_topic("08", "02473", "pc-hostile", "peripherals")


def peripherals(*items: object) -> bytes:
    return json.dumps({"v": 1, "ts": 1, "peripherals": list(items)}).encode()


TOKEN = {"device": "096e-0807-A3F1", "kind": "token", "serial": "A3F1", "present": 1}

HOSTILE = [
    ("invalid_json", GOOD_TOPIC, b"{not json"),
    ("invalid_json", GOOD_TOPIC, b"\xff\xfe\x00garbage"),
    ("bad_type", GOOD_TOPIC, json.dumps({"v": 1, "ts": 1, "system": {"cpu_percent": "99"}}).encode()),
    ("bad_type", GOOD_TOPIC, json.dumps({"v": 1, "ts": "yesterday", "system": {"cpu_percent": 1}}).encode()),
    ("bad_version", GOOD_TOPIC, json.dumps({"v": 99, "ts": 1, "system": {"cpu_percent": 1}}).encode()),
    ("bad_shape", GOOD_TOPIC, b"[1, 2, 3]"),
    ("unknown_field", GOOD_TOPIC, json.dumps({"v": 1, "ts": 1, "system": {"cpu percent,x=1": 1}}).encode()),
    ("unknown_field", GOOD_TOPIC, json.dumps({"v": 1, "ts": 1, "evil,x=1": {"a": 1}}).encode()),
    (
        "bad_label",
        GOOD_TOPIC,
        json.dumps({"v": 1, "ts": 1, "disk": [{"mount": "/,evil=1", "used_percent": 1}]}).encode(),
    ),
    ("bad_label", GOOD_TOPIC, json.dumps({"v": 1, "ts": 1, "disk": [{"mount": "a b=c", "used_percent": 1}]}).encode()),
    ("bad_label", GOOD_TOPIC, json.dumps({"v": 1, "ts": 1, "net": [{"nic": "eth0\nevil x=1", "up": 1}]}).encode()),
    ("bad_value", GOOD_TOPIC, b'{"v": 1, "ts": 1, "system": {"cpu_percent": NaN}}'),
    ("oversized", GOOD_TOPIC, b'{"v":1,"ts":1,"system":{"cpu_percent":1},"pad":"' + b"x" * 10_000_000 + b'"}'),
    ("bad_value", PERIPHERALS_TOPIC, peripherals({**TOKEN, "kind": "camera"})),  # a kind outside the closed set
    ("bad_shape", PERIPHERALS_TOPIC, peripherals({k: v for k, v in TOKEN.items() if k != "kind"})),  # no kind tag
    ("bad_label", PERIPHERALS_TOPIC, peripherals({**TOKEN, "device": "096e,kind=printer x=1"})),
    ("bad_label", PERIPHERALS_TOPIC, peripherals({**TOKEN, "device": "d" * 65})),
    ("bad_shape", PERIPHERALS_TOPIC, json.dumps({"v": 1, "ts": 1, "peripherals": TOKEN}).encode()),  # not a list
    ("bad_shape", PERIPHERALS_TOPIC, json.dumps({"v": 1, "ts": 1}).encode()),  # no section at all
    ("bad_type", PERIPHERALS_TOPIC, peripherals({**TOKEN, "serial": 12345})),
    ("bad_type", PERIPHERALS_TOPIC, peripherals({**TOKEN, "present": "yes"})),
    ("unknown_field", PERIPHERALS_TOPIC, peripherals({**TOKEN, "holder name": "Chủ tịch"})),
    ("oversized", PERIPHERALS_TOPIC, peripherals(*[{**TOKEN, "device": f"d{i}"} for i in range(2000)])),
    (
        "unknown_commune",
        report_topic("08", "99999", "pc-hostile", "metrics"),
        json.dumps({"v": 1, "ts": 1, "system": {"cpu_percent": 1}}).encode(),
    ),
    (
        "unknown_commune",
        report_topic("01", "02473", "pc-hostile", "metrics"),
        json.dumps({"v": 1, "ts": 1, "system": {"cpu_percent": 1}}).encode(),
    ),
    (
        "bad_topic",
        "commune/v1/08/02473/pc hostile,evil=1/metrics",
        json.dumps({"v": 1, "ts": 1, "system": {"cpu_percent": 1}}).encode(),
    ),
    (
        "unknown_kind",
        report_topic("08", "02473", "pc-hostile", "evil"),
        json.dumps({"v": 1, "ts": 1, "system": {"cpu_percent": 1}}).encode(),
    ),
]


@pytest.fixture
def collector(make_collector: Callable[..., Collector]) -> Collector:
    # no fleet points (agent, commune) during the test: only what the messages carry may be stored
    started = make_collector(fleet={"evaluate_interval_s": 3600})
    started.start()
    return started


def _publish(port: int, messages: list[tuple[str, bytes]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="hostile-publisher")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for topic, payload in messages:
        client.publish(topic, payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def test_every_hostile_message_is_rejected_counted_and_never_stored(
    collector: Collector, mosquitto: Mosquitto, influxd: Influxd, database: str
) -> None:
    _publish(mosquitto.port, [(topic, payload) for _reason, topic, payload in HOSTILE])
    expected: dict[str, int] = {}
    for reason, _topic, _payload in HOSTILE:
        expected[reason] = expected.get(reason, 0) + 1

    def all_counted() -> bool:
        return all(
            collector.metric(f'commune_collector_messages_rejected_total{{reason="{reason}"}}') == count
            for reason, count in expected.items()
        )

    wait_until(all_counted, 20, f"rejection counters {expected}\n{collector.metrics_text()}")
    # A good message after the flood proves the collector is still alive and writing. It carries a
    # field and a section this collector does not know (a newer agent's): skipped and counted.
    good = json.dumps(
        {"v": 1, "ts": int(time.time()), "system": {"cpu_percent": 12.5, "fan_rpm": 900}, "future": {"a": 1}}
    ).encode()
    _publish(mosquitto.port, [(GOOD_TOPIC, good)])
    wait_until(lambda: bool(influxd.query('SELECT * FROM "system"', database)), 20, "the good point")
    assert collector.running()
    rows = influxd.query('SELECT * FROM "system"', database)
    assert len(rows) == 1 and rows[0]["cpu_percent"] == 12.5 and "fan_rpm" not in rows[0]
    assert collector.metric("commune_collector_unknown_fields_total") == 2
    assert {r["name"] for r in influxd.query("SHOW MEASUREMENTS", database)} == {"system"}
    tag_values = influxd.query('SHOW TAG VALUES WITH KEY IN ("host", "commune", "province")', database)
    assert {r["value"] for r in tag_values} == {"pc-hostile", "02473", "08"}
    # Retained status messages of earlier tests' agents are accepted too; every other message was hostile.
    received = collector.metric("commune_collector_messages_received_total")
    accepted = collector.metric("commune_collector_messages_accepted_total")
    assert received - accepted == len(HOSTILE)
