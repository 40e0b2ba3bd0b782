"""The collector's quick way for metrics reports (lines straight from the decoded struct, topic
checks and series heads cached per topic, ``collector/ingest/checks.py``) gives exactly what the
way through ``points`` gives, message for message, and its caches never let a refused value
through, stay bounded and follow a host's area."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from test_fuzz import message, mostly, section_body

from collector.config import IngestSettings
from collector.ingest import checks, fastwire
from collector.ingest.checks import Accepted, Dropped, Handled, Ingestor, Source
from collector.registry.registry import Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import SECTIONS_BY_KIND, encode, report_topic

NOW = time.time()
SYSTEM = {"cpu_percent": 12.5, "load1": 0.5, "cpu_count": 4, "boot_time": 1.7e9}
DISK = {"mount": "/", "used_percent": 40.5, "free_bytes": 1e9}
NET = {"nic": "eth0", "rx_bytes_per_s": 1500.0, "up": 1}


class PointsWay(Ingestor):
    """The reference: every message through ``points`` and ``encode_point``, as before the quick way."""

    def _fast_lines(self, source: Source, accepted: Accepted, body: Any) -> tuple[list[str], Dropped | None] | None:
        return None


def ingestor(kind: type[Ingestor] = Ingestor, **ingest: Any) -> Ingestor:
    return kind(Registry(Store(":memory:"), "unassigned"), SelfMetrics(), IngestSettings(**ingest))


def metrics_message(host: str = "pc-01", commune: str = "02473", **body: Any) -> tuple[str, bytes]:
    return report_topic("08", commune, host, "metrics"), encode({"v": 1, "ts": NOW - 5, **body})


@st.composite
def metrics_reports(draw: st.DrawFn) -> tuple[str, bytes]:
    """Metrics reports of a few hosts, mostly well formed: numbers, labels and a text now and then."""
    names = draw(st.lists(st.sampled_from(sorted(SECTIONS_BY_KIND["metrics"])), min_size=1, max_size=5, unique=True))
    body = {name: draw(section_body(name)) for name in names}
    ts = draw(mostly(st.just(NOW - 5), st.sampled_from([NOW - 3600, NOW + 3600, 0]), odds=4))  # backlog, skew
    topic = report_topic("08", "02473", draw(st.sampled_from(["pc-01", "pc-02"])), "metrics")
    return topic, json.dumps({"v": 1, "ts": ts, **body}, allow_nan=True).encode()


def counts(handler: Ingestor) -> dict[str, float]:
    metrics = handler.metrics
    return {
        **metrics.rejections(),
        "accepted": metrics.value("messages_accepted_total"),
        "dropped": metrics.value("points_dropped_total", reason="too_many_series"),
        "backlog": metrics.value("reports_backlog_total"),
        "clock_skew": metrics.value("clock_skew_total"),
    }


def same_way(quick: Ingestor, reference: Ingestor, topic: str, payload: bytes, received_at: float) -> Handled:
    handled = quick.handle_message(topic, payload, received_at)
    assert handled == reference.handle_message(topic, payload, received_at), (topic, payload[:300])
    assert counts(quick) == counts(reference)
    return handled


@pytest.mark.parametrize(
    "body",
    [
        {"system": SYSTEM, "disk": [DISK, {**DISK, "mount": "C:"}], "net": [NET], "agent": {"cycle_ms": 35}},
        {"system": {"cpu_percent": 1e16, "load1": -0.0, "load5": 1e-7, "uptime_s": 2**60}},
        {"disk": [{"mount": "/"}], "net": [NET]},  # an item holding its label alone makes no point
        {"system": {"cpu_percent": None}, "disk": []},  # nothing left to write
        {"agent": {"spool_error": "disk_full", "spool_ok": 0}},  # a text field: the way through points
        {"system": {"cpu_percent": True}},  # taken by the contract's decoder, not the struct
        {"sensors": [{"sensor": "cpu", "temp_c": 51.0}, {"sensor": "acpi", "battery_percent": 80}]},
    ],
)
def test_a_metrics_report_gives_the_same_lines_both_ways(body: dict[str, Any]) -> None:
    quick, reference = ingestor(), ingestor(PointsWay)
    topic, payload = metrics_message(**body)
    for _ in range(2):  # the second time from the caches
        same_way(quick, reference, topic, payload, NOW)


def test_hundreds_of_hostile_messages_give_the_same_lines_and_counts_both_ways() -> None:
    quick, reference = ingestor(max_values_per_tag=2), ingestor(PointsWay, max_values_per_tag=2)
    stored = {"metrics": 0}

    @settings(max_examples=400, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.one_of(message(), metrics_reports()))
    @example(metrics_message(system=SYSTEM, disk=[DISK], net=[NET]))  # the quick way every run, whatever is drawn
    @example(metrics_message(disk=[{**DISK, "mount": "/a"}, {**DISK, "mount": "/b"}, {**DISK, "mount": "/c"}]))
    def check(topic_payload: tuple[str, bytes]) -> None:
        handled = same_way(quick, reference, *topic_payload, NOW)
        stored["metrics"] += topic_payload[0].endswith("/metrics") and bool(handled.lines)

    check()
    assert stored["metrics"] >= 2 and counts(quick)["dropped"] >= 1, (stored, counts(quick))


def test_drawn_metrics_reports_are_stored_the_same_way_both_ways_in_number() -> None:
    """Drawn metrics reports alone, so the quick way is compared on many stored reports every run,
    not only on the two fixed examples above (about 40 of 200 are stored; the fewest of twelve
    runs was 24)."""
    quick, reference = ingestor(max_values_per_tag=2), ingestor(PointsWay, max_values_per_tag=2)
    stored = {"metrics": 0}

    @settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
    @given(metrics_reports())
    def check(topic_payload: tuple[str, bytes]) -> None:
        stored["metrics"] += bool(same_way(quick, reference, *topic_payload, NOW).lines)

    check()
    assert stored["metrics"] >= 10 and counts(quick)["accepted"] >= 10, (stored, counts(quick))


def test_a_refused_area_is_refused_every_time_and_a_moved_host_gets_its_new_area() -> None:
    handler = ingestor()
    topic, payload = metrics_message(system=SYSTEM, disk=[DISK])
    handler.registry.set_area("north hills", "Bad code", ["02473"])  # a space: not a tag value
    for expected in (1, 2):
        assert handler.handle(topic, payload, NOW) == []
        assert handler.metrics.rejections()["unsafe_point"] == expected
    handler.registry.set_area("north", "North", ["02473"])
    assert all(",area=north," in line for line in handler.handle(topic, payload, NOW))
    handler.registry.set_area("south", "South", ["02473"])  # the commune moved: the cached heads go
    lines = handler.handle(topic, payload, NOW)
    assert len(lines) == 2 and all(",area=south," in line for line in lines)


def test_a_refused_topic_is_refused_and_counted_every_time() -> None:
    handler = ingestor()
    topic, payload = metrics_message(commune="99999", system=SYSTEM)
    for expected in (1, 2, 3):
        assert handler.handle(topic, payload, NOW) == []
        assert handler.metrics.rejections()["unknown_commune"] == expected
    assert handler.metrics.value("messages_accepted_total") == 0


def test_a_label_over_the_series_bound_is_dropped_every_time() -> None:
    handler = ingestor(max_values_per_tag=1)
    topic, payload = metrics_message(disk=[DISK, {**DISK, "mount": "/data"}])
    for expected in (1, 2):
        lines = handler.handle(topic, payload, NOW)
        assert [line.split(" ")[0].split(",mount=")[1].split(",")[0] for line in lines] == ["/"]
        assert handler.metrics.value("points_dropped_total", reason="too_many_series") == expected
    assert set(handler.bounds.over_bound(NOW)) == {next(iter(handler._sources.values())).host}


def test_the_topic_and_series_caches_stay_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(checks, "MAX_SOURCES", 5)
    monkeypatch.setattr(checks, "MAX_HEADS", 3)
    handler = ingestor()
    for number in range(12):
        topic, payload = metrics_message(f"pc-{number:02d}", system=SYSTEM)
        assert len(handler.handle(topic, payload, NOW)) == 1
        assert len(handler._sources) <= 5
    mounts = [{**DISK, "mount": f"/m{number}"} for number in range(8)]
    topic, payload = metrics_message(disk=mounts)
    for _ in range(2):
        assert len(handler.handle(topic, payload, NOW)) == 8
        assert all(len(source.made[1]) <= 3 for source in handler._sources.values())


def test_a_report_of_numbers_takes_the_quick_way_and_one_with_a_text_does_not() -> None:
    handler = ingestor()
    for body, quick in (({"system": SYSTEM, "disk": [DISK]}, True), ({"agent": {"spool_error": "io_error"}}, False)):
        topic, payload = metrics_message(**body)
        source = handler._source(topic)
        report, struct = fastwire.decode_with_body("metrics", payload)
        made = handler._fast_lines(source, handler._accept(source, report, NOW), struct)
        assert (made is not None) == quick, body


def test_a_label_or_stream_out_of_its_alphabet_is_refused_every_time_and_the_good_ones_stay_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fastwire, "MAX_GOOD", 4)
    monkeypatch.setattr(fastwire, "_GOOD_LABELS", set())
    handler = ingestor()
    bad = [
        metrics_message(disk=[{**DISK, "mount": "/x y"}]),
        metrics_message(disk=[{**DISK, "mount": "/x\n"}]),
        metrics_message(system=SYSTEM, stream="0123ABCD", seq=1),
    ]
    for expected in (1, 2):
        for topic, payload in bad:
            assert handler.handle(topic, payload, NOW) == []
        assert handler.metrics.rejections()["bad_label"] == 2 * expected
        assert handler.metrics.rejections()["bad_sequence"] == expected
    for number in range(10):
        topic, payload = metrics_message(disk=[{**DISK, "mount": f"/m{number}"}])
        assert len(handler.handle(topic, payload, NOW)) == 1
        assert len(fastwire._GOOD_LABELS) <= 4
