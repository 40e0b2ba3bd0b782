"""Fuzzing the collector's message handling with hypothesis: thousands of hostile topics and
payloads never crash it, every message is either accepted or rejected with a counted reason, and
every line it produces, written to the real InfluxDB, creates only the contract's measurements,
tag keys and well-formed tag values."""

from __future__ import annotations

import json
import re
import time
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from realservices import Influxd

from collector.config import InfluxSettings, IngestSettings
from collector.ingest.checks import Ingestor
from collector.ingest.influx import InfluxClient
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import LABEL_RE, REPORT_KINDS, SECTIONS_BY_KIND

SECTIONS = {name: section for kinds in SECTIONS_BY_KIND.values() for name, section in kinds.items()}
MEASUREMENTS = {section.measurement for section in SECTIONS.values()}
TAG_KEYS = {"province", "area", "commune", "host"} | {s.label for s in SECTIONS.values() if s.label}
TAG_VALUE_RE = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
HOSTILE = [",", "=", " ", "\n", "\r", '"', "\\", "'", "\x00", "\u2028", "#", "é", "/", "+"]

hostile_text = st.text(alphabet=st.characters() | st.sampled_from(HOSTILE), max_size=40)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
value = st.recursive(
    scalar, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3)
)


@st.composite
def mostly(
    draw: st.DrawFn, usual: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any] = hostile_text, odds: int = 5
) -> Any:
    """The usual value but one time in ``odds``, so that messages get past the first checks to the later ones."""
    # hypothesis favours the bounds of a range, so the hostile pick sits in the middle
    return draw(hostile) if draw(st.integers(0, 1000 * odds - 1)) % odds == 7 % odds else draw(usual)


@st.composite
def section_body(draw: st.DrawFn, name: str) -> Any:
    section = SECTIONS.get(name)
    known = sorted(section.fields) if section else []
    keys = mostly(st.sampled_from(known), odds=20) if known else hostile_text
    fields = draw(st.dictionaries(keys, mostly(st.floats(-1e6, 1e6), value, odds=20), max_size=6))
    if section is not None and section.label is not None:
        items = []
        for _ in range(draw(st.integers(0, 3))):
            label = draw(mostly(st.sampled_from(["eth0", "/", "sda1", "gateway"])))
            items.append({section.label: label, **fields})
        return draw(mostly(st.just(items), st.just(fields)))
    return fields


@st.composite
def message(draw: st.DrawFn) -> tuple[str, bytes]:
    province = draw(mostly(st.just("08"), st.sampled_from(["8", "01", "99"]) | hostile_text, odds=20))
    commune = draw(
        mostly(st.sampled_from(["02473", "02536"]), st.sampled_from(["00004", "99999"]) | hostile_text, odds=20)
    )
    host = draw(mostly(st.sampled_from(["pc-01", "PC_2.local"]), odds=20))
    kind = draw(mostly(st.sampled_from(REPORT_KINDS), odds=20))
    topic = draw(mostly(st.just(f"commune/v1/{province}/{commune}/{host}/{kind}"), odds=20))
    if draw(mostly(st.just(False), st.just(True), odds=10)):
        return topic, draw(st.binary(max_size=200))
    names = draw(st.lists(mostly(st.sampled_from(sorted(SECTIONS)), odds=20), min_size=1, max_size=3))
    body: dict[str, Any] = {name: draw(section_body(name)) for name in names}
    if draw(mostly(st.just(True), st.just(False), odds=20)):
        body["v"] = draw(mostly(st.just(1), value, odds=10))
    if draw(mostly(st.just(True), st.just(False), odds=20)):
        body["ts"] = draw(mostly(st.just(int(time.time())), value, odds=10))
    if kind == "status":
        body["state"] = draw(mostly(st.sampled_from(["online", "offline"]), value))
    return topic, json.dumps(body, allow_nan=True).encode()


def check_line(line: str) -> None:
    assert "\n" not in line and "\r" not in line, line
    series = re.match(r"^((?:[^ \\]|\\.)+) ", line)
    assert series is not None, line
    measurement, *tags = re.split(r"(?<!\\),", series.group(1))
    assert measurement in MEASUREMENTS, line
    for tag in tags:
        key, _, tag_value = tag.partition("=")
        assert key in TAG_KEYS and TAG_VALUE_RE.match(tag_value), line


def test_thousands_of_hostile_messages_never_crash_never_inject_and_are_all_counted(
    influxd: Influxd, database: str
) -> None:
    metrics = SelfMetrics()
    ingestor = Ingestor(Registry(Store(":memory:"), "unassigned"), metrics, IngestSettings())
    produced: list[str] = []
    seen = {"messages": 0}

    @settings(max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck))
    @given(message())
    def handle(topic_payload: tuple[str, bytes]) -> None:
        topic, payload = topic_payload
        lines = ingestor.handle(topic, payload, time.time())
        seen["messages"] += 1
        for line in lines:
            check_line(line)
        produced.extend(lines)

    handle()

    counted = {reason: count for reason, count in metrics.rejections().items() if count > 0}
    rejected = sum(counted.values())
    accepted = metrics.value("messages_accepted_total")
    assert metrics.value("messages_received_total") == seen["messages"] >= 3000
    assert accepted + rejected == seen["messages"]
    assert rejected > 1000 and accepted > 200, (counted, len(produced))
    assert len(counted) >= 8, counted  # many distinct reasons, each counted

    client = InfluxClient(InfluxSettings(url=influxd.url, database=database))
    try:
        for start in range(0, len(produced), 5000):
            client.write_lines(produced[start : start + 5000])  # raises on any line InfluxDB cannot parse
    finally:
        client.close()
    measurements = {row["name"] for row in influxd.query("SHOW MEASUREMENTS", database)}
    assert measurements and measurements <= MEASUREMENTS, (len(produced), produced[:3])
    tag_keys = {row["tagKey"] for row in influxd.query("SHOW TAG KEYS", database)}
    assert tag_keys <= TAG_KEYS, tag_keys - TAG_KEYS
    for key in tag_keys:
        for row in influxd.query(f'SHOW TAG VALUES WITH KEY = "{key}"', database):
            assert TAG_VALUE_RE.match(row["value"]), row
            if key in {"mount", "nic", "sensor", "target", "mode"}:
                assert LABEL_RE.match(row["value"])
