"""History replayed: what each released agent really published (tests/data/wire/<version>/, recorded
by devtools/record_wire.py from that release's own code) goes into today's collector through a real
Mosquitto, and InfluxDB must hold exactly the points those messages carry, with nothing refused and
nothing skipped as unknown. The expected points are read from the messages by the contract's own
rule (one point per object of a section, its label a tag, every number a float), not recorded.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from realservices import REPO, Collector, wait_until
from stack import Stack

from common.wire import SECTIONS_BY_KIND

WIRE = REPO / "tests" / "data" / "wire"
VERSIONS = sorted(path.name for path in WIRE.iterdir() if (path / "messages.jsonl").exists())
TEN_YEARS_S = 10 * 365 * 86400  # recorded reports are old by the time they are replayed: never "too old" here


def recorded(version: str) -> list[dict[str, str]]:
    lines = (WIRE / version / "messages.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines if line.strip()]


if TYPE_CHECKING:  # the agent's pure tests are collected under Python 3.8 too (tests/test_old_pythons.py)
    Key = tuple[str, int, tuple[tuple[str, str], ...], tuple[tuple[str, Any], ...]]


def expected_points(messages: list[dict[str, str]], area: str) -> set[Key]:
    """(measurement, time, tags, fields) of every point the messages carry."""
    points: set[Key] = set()
    for message in messages:
        _root, _v, province, commune, host, kind = message["topic"].split("/")
        body = json.loads(message["payload"])
        for name, section in SECTIONS_BY_KIND[kind].items():
            value = body.get(name)
            for item in value if isinstance(value, list) else ([value] if value is not None else []):
                tags = {"province": province, "area": area, "commune": commune, "host": host}
                fields = {}
                for key, raw in item.items():
                    if key == section.label or key in section.tags:
                        tags[key] = raw
                    elif raw is not None:
                        fields[key] = float(raw) if isinstance(raw, (int, float)) else raw
                if fields:
                    points.add(
                        (
                            section.measurement,
                            int(body["ts"]),
                            tuple(sorted(tags.items())),
                            tuple(sorted(fields.items())),
                        )
                    )
    return points


def stored_points(stack: Stack, measurements: set[str], host: str, times: set[int]) -> set[Key]:
    """The same for what InfluxDB holds of ``host`` at those times (the collector's own status points,
    written at other times, left out)."""
    points: set[Key] = set()
    for measurement in measurements:
        for row in stack.query(f"SELECT * FROM \"{measurement}\" WHERE host = '{host}'"):
            if row["time"] not in times:
                continue
            spec = next(
                s for sections in SECTIONS_BY_KIND.values() for s in sections.values() if s.measurement == measurement
            )
            tag_keys = {"province", "area", "commune", "host", *([spec.label] if spec.label else []), *spec.tags}
            tags = tuple(sorted((k, v) for k, v in row.items() if k in tag_keys and v is not None))
            fields = tuple(
                sorted(
                    (k, v) for k, v in row.items() if k not in tag_keys and k not in ("time", "_name") and v is not None
                )
            )
            points.add((measurement, int(row["time"]), tags, fields))
    return points


def publish(port: int, messages: list[dict[str, str]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wire-replay")
    client.connect("127.0.0.1", port)
    client.loop_start()
    for message in messages:
        client.publish(message["topic"], message["payload"].encode(), qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def test_every_released_version_has_a_recording() -> None:
    assert "0.1.0" in VERSIONS
    kinds = {m["topic"].rsplit("/", 1)[1] for m in recorded("0.1.0")}
    assert kinds == {"status", "metrics", "inventory", "probe", "speedtest"}  # every kind 0.1.0 sends


@pytest.mark.parametrize("version", VERSIONS)
def test_a_released_agents_messages_are_stored_exactly_and_none_refused(
    version: str, own_stack: Stack, tmp_path: Path
) -> None:
    stack = own_stack  # its own broker: no other test's retained status is counted as accepted here
    messages = recorded(version)
    collector: Collector = stack.started_collector(
        fleet={"evaluate_interval_s": 3600}, ingest={"max_age_s": TEN_YEARS_S, "status_interval_s": 3600}
    )
    publish(stack.broker.port, messages)
    expected = expected_points(messages, "unassigned")
    host = messages[0]["topic"].split("/")[4]
    measurements = {point[0] for point in expected}
    times = {point[1] for point in expected}
    stored: Callable[[], set[Key]] = lambda: stored_points(stack, measurements, host, times)  # noqa: E731
    wait_until(lambda: len(stored()) >= len(expected), 30, f"{len(expected)} points of {version}")
    assert stored() == expected
    assert collector.metric("commune_collector_messages_accepted_total") == len(messages)
    rejected = [
        line
        for line in collector.metrics_text().splitlines()
        if line.startswith("commune_collector_messages_rejected_total{")
    ]
    assert all(line.endswith(" 0.0") for line in rejected), rejected
    assert collector.metric("commune_collector_unknown_fields_total") == 0
    hosts = {h["host"]: h for h in collector.get_json("/api/v1/hosts")}
    assert hosts[host]["agent_version"] == version
