"""The collector's /metrics: every metric declared up front with HELP text, each counter at 0
from the start (every rejection reason too), process metrics included, and rejections logged
once per reason per minute."""

from __future__ import annotations

import ast
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from realservices import Collector, Mosquitto, wait_until

from collector.ingest.checks import DROP_REASONS, REJECT_REASONS
from collector.selfmetrics import SelfMetrics

REPO = Path(__file__).resolve().parent.parent

# Every metric name docs/en/reliability.md lists for /metrics, the API refusals and the disk buffer.
README_COUNTERS = (
    "messages_received_total",
    "messages_accepted_total",
    "points_written_total",
    "points_refused_total",
    "write_retries_total",
    "clock_skew_total",
    "points_buffered_total",
    "points_drained_total",
    "api_refused_unknown_token_total",
    "api_refused_role_total",
    "disk_errors_buffer_total",
    "disk_errors_state_total",
)
README_GAUGES = ("write_queue_points", "known_hosts", "write_buffer_points", "write_buffer_bytes")


def families(text: str) -> dict[str, tuple[str, str, list[Sample]]]:
    """Name -> (type, HELP text, samples), read by the library's own parser."""
    return {f.name: (f.type, f.documentation, f.samples) for f in text_string_to_metric_families(text)}


def value(samples: list[Sample], name: str, **labels: str) -> float:
    matching = [s.value for s in samples if s.name == name and s.labels == labels]
    assert len(matching) == 1, (name, labels, samples)
    return matching[0]


def reasons_in_code(callees: tuple[str, ...]) -> set[str]:
    """Reasons written as literals in the code: the first argument of a call to one of ``callees``."""
    found = set()
    for path in [REPO / "common" / "wire.py", *(REPO / "collector").rglob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or not node.args or not isinstance(node.args[0], ast.Constant):
                continue
            callee = node.func
            name = (
                callee.id if isinstance(callee, ast.Name) else callee.attr if isinstance(callee, ast.Attribute) else ""
            )
            if name in callees and isinstance(node.args[0].value, str):
                found.add(node.args[0].value)
    return found


def test_every_rejection_and_drop_reason_in_the_code_is_declared() -> None:
    rejected = reasons_in_code(("WireError", "reject"))
    assert {"bad_topic", "unknown_commune", "unsafe_point", "bad_label"} <= rejected  # the scan sees them
    assert rejected <= set(REJECT_REASONS), sorted(rejected - set(REJECT_REASONS))
    dropped = reasons_in_code(("drop",))
    assert "too_many_series" in dropped
    assert dropped <= set(DROP_REASONS), sorted(dropped - set(DROP_REASONS))


def test_fresh_collector_metrics_show_declared_counters_at_zero_with_help_and_process_metrics(
    make_collector: Callable[..., Collector], own_broker: Mosquitto
) -> None:
    collector = make_collector(mqtt={"port": own_broker.port})  # no other test's retained messages
    collector.start()
    found = families(collector.metrics_text())

    for name in README_COUNTERS:
        kind, help_text, samples = found["commune_collector_" + name.removesuffix("_total")]
        assert kind == "counter" and help_text, name
        assert value(samples, "commune_collector_" + name) == 0, name
    kind, help_text, samples = found["commune_collector_messages_rejected"]
    assert kind == "counter" and help_text
    for reason in REJECT_REASONS:
        assert value(samples, "commune_collector_messages_rejected_total", reason=reason) == 0, reason
    kind, help_text, samples = found["commune_collector_points_dropped"]
    assert kind == "counter" and help_text
    for reason in DROP_REASONS:
        assert value(samples, "commune_collector_points_dropped_total", reason=reason) == 0, reason
    for name in README_GAUGES:
        kind, help_text, samples = found["commune_collector_" + name]
        assert kind == "gauge" and help_text, name
        empty = value(samples, "commune_collector_" + name) == 0
        assert empty or name == "write_buffer_bytes", name  # an empty SQLite file has a size
    kind, help_text, samples = found["commune_collector_influx_write_seconds"]
    assert kind == "histogram" and help_text
    assert value(samples, "commune_collector_influx_write_seconds_count") == 0

    assert value(found["process_resident_memory_bytes"][2], "process_resident_memory_bytes") > 0
    assert value(found["process_cpu_seconds"][2], "process_cpu_seconds_total") > 0
    assert value(found["process_open_fds"][2], "process_open_fds") > 0
    assert found["python_info"][2][0].labels["implementation"] == "CPython"


def test_two_collectors_in_one_process_count_apart() -> None:
    first, second = SelfMetrics(), SelfMetrics()
    first.messages_received.inc(3)
    first.reject("bad_json_test", "detail", "topic")
    assert (first.value("messages_received_total"), second.value("messages_received_total")) == (3, 0)
    assert first.rejections() == {"bad_json_test": 1} and second.rejections() == {}


def test_rejections_and_drops_are_logged_once_per_reason_per_minute_with_the_running_total(
    caplog: pytest.LogCaptureFixture,
) -> None:
    metrics = SelfMetrics()
    metrics.declare_reasons(REJECT_REASONS, DROP_REASONS)
    topic = "commune/v1/08/02473/pc/metrics"
    with caplog.at_level(logging.WARNING, logger="commune_collector.rejects"):
        for n in range(5):
            metrics.reject("bad_type", f"system.cpu_percent is str (message {n})", topic)
        metrics.reject("oversized", "300000 bytes > limit 262144", topic)
        for n in range(3):
            metrics.drop("too_many_series", 2, f"2 point(s) with a new mount (message {n})", topic)
    logged = [(r.msg, r.reason, r.detail, r.total_for_reason) for r in caplog.records]  # type: ignore[attr-defined]
    assert logged == [
        ("message rejected", "bad_type", "system.cpu_percent is str (message 0)", 1),
        ("message rejected", "oversized", "300000 bytes > limit 262144", 1),
        ("points dropped", "too_many_series", "2 point(s) with a new mount (message 0)", 2),
    ]
    assert metrics.rejections()["bad_type"] == 5 and metrics.rejections()["bad_label"] == 0
    assert metrics.value("points_dropped_total", reason="too_many_series") == 6


def test_a_running_collector_counts_its_garbage_collection_pauses(
    make_collector: Callable[..., Collector], own_broker: Mosquitto
) -> None:
    """The GC keeper starts with the collector: its pauses are on /metrics (issue 32), per generation."""
    collector = make_collector(mqtt={"port": own_broker.port})
    collector.start()
    text = collector.metrics_text()
    for generation in range(3):
        assert f'commune_collector_gc_pause_seconds_total{{generation="{generation}"}}' in text, generation
    young = 'commune_collector_gc_pause_seconds_total{generation="0"}'
    wait_until(lambda: collector.metric(young) > 0, 30, "a young-generation collection timed")
