"""Per-host bounds on the tag values an agent supplies: a host inventing mount names cannot grow
InfluxDB's series index, and its real series keep flowing."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Collector, Influxd, Mosquitto, http_get, wait_until

from collector.config import FleetSettings
from collector.fleet import rules
from collector.fleet.facts import HostFacts
from collector.fleet.rules import HostStatus
from collector.http.status_page import render
from collector.ingest.bounds_state import BoundsKeeper
from collector.ingest.lineprotocol import Point
from collector.ingest.series_bounds import AGENT_TAGS, SeriesBounds
from collector.registry.registry import HostKey
from collector.store import Store
from common.wire import encode, report_topic

HOST = HostKey("08", "02473", "pc-a")


def disk(mount: str, ts: int = 1) -> Point:
    return Point("disk", {"host": "pc-a", "mount": mount}, {"used_percent": 1.0}, ts)


def test_every_label_of_the_wire_contract_is_bounded() -> None:
    assert {"mount", "nic", "sensor", "target", "mode", "device", "disk", "reader"} == AGENT_TAGS


def test_new_values_beyond_the_bound_are_dropped_and_known_ones_keep_flowing() -> None:
    bounds = SeriesBounds(max_values=3, window_s=100)
    kept, dropped = bounds.admit(HOST, [disk("/"), disk("/a"), disk("/b"), disk("/c"), disk("/d")], now=0)
    assert [p.tags["mount"] for p in kept] == ["/", "/a", "/b"]
    assert dropped is not None and (dropped.points, dropped.tag, dropped.example) == (2, "mount", "/c")
    kept, dropped = bounds.admit(HOST, [disk("/e"), disk("/")], now=10)
    assert [p.tags["mount"] for p in kept] == ["/"] and dropped is not None and dropped.points == 1
    assert bounds.over_bound(now=10) == {HOST: 10}
    other = HostKey("08", "02473", "pc-b")  # the bound is per host
    assert bounds.admit(other, [disk("/x")], now=10) == ([disk("/x")], None)
    system = Point("system", {"host": "pc-a"}, {"cpu_percent": 1.0}, 1)  # no agent-supplied tag
    assert bounds.admit(HOST, [system], now=10) == ([system], None)


def test_a_value_unseen_for_a_window_frees_its_place_and_the_mark_expires() -> None:
    bounds = SeriesBounds(max_values=2, window_s=100)
    bounds.admit(HOST, [disk("/"), disk("/old")], now=0)
    assert bounds.admit(HOST, [disk("/new")], now=50)[1] is not None  # /old still holds its place
    bounds.admit(HOST, [disk("/")], now=150)
    kept, dropped = bounds.admit(HOST, [disk("/new")], now=160)  # /old last seen 160 s ago
    assert [p.tags["mount"] for p in kept] == ["/new"] and dropped is None
    assert bounds.over_bound(now=149) == {HOST: 50}
    assert bounds.over_bound(now=151) == {}


def test_a_host_over_its_bound_is_degraded_for_a_window_and_named_on_the_status_page() -> None:
    settings = FleetSettings()
    facts = HostFacts(series_dropped_at=1000.0)
    assert rules.degraded_reasons(facts, settings, 1000.0 + settings.degraded_window_s - 1) == ("too_many_series",)
    assert rules.degraded_reasons(facts, settings, 1000.0 + settings.degraded_window_s) == ()
    assert rules.degraded_reasons(HostFacts(), settings, 1000.0) == ()
    flagged = HostStatus(HOST, "KV1", True, 999.0, ("too_many_series",), 0.0)
    fine = HostStatus(HostKey("08", "02536", "pc-b"), "KV1", True, 999.0, ("disk_full",), 0.0)
    page = render([], {}, 0.0, [flagged, fine])
    assert '<li data-commune="02473" data-host="pc-a">Xã Yên Sơn <small>02473</small>: pc-a</li>' in page
    assert "pc-b" not in page and "Máy gửi quá nhiều chuỗi số liệu mới" in page
    assert 'id="misbehaving"' not in render([], {}, 0.0, [fine])


def test_a_host_cycling_through_new_mount_names_never_holds_more_than_the_bound(
    make_collector: Callable[..., Collector], mosquitto: Mosquitto, influxd: Influxd, database: str
) -> None:
    bound, reports, new_per_report = 5, 10, 3
    collector = make_collector(ingest={"max_values_per_tag": bound}, fleet={"evaluate_interval_s": 0.5})
    collector.start()
    host = f"pc-cycling-{int(time.time())}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", mosquitto.port)
    client.loop_start()
    first_ts = int(time.time()) - 60 * reports
    for n in range(reports):
        mounts = ["/"] + [f"/media/vol-{n}-{i}" for i in range(new_per_report)]
        body = {"v": 1, "ts": first_ts + 60 * n, "disk": [{"mount": m, "used_percent": 40.0 + n} for m in mounts]}
        client.publish(report_topic("08", "02473", host, "metrics"), encode(body), qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()

    where = f"WHERE host = '{host}'"
    count_root = f"SELECT count(used_percent) FROM disk {where} AND mount = '/'"
    wait_until(
        lambda: (influxd.query(count_root, database) or [{"count": 0}])[0]["count"] == reports,
        30,
        "every report's / disk",
    )
    mounts = {row["value"] for row in influxd.query(f"SHOW TAG VALUES FROM disk WITH KEY = mount {where}", database)}
    assert "/" in mounts and len(mounts) == bound, mounts
    dropped = reports * (1 + new_per_report) - bound - (reports - 1)  # every / after the first is known
    assert collector.metric('commune_collector_points_dropped_total{reason="too_many_series"}') == dropped
    assert collector.metric("commune_collector_messages_accepted_total") >= reports
    assert "too_many_series" in collector.log() and "Traceback" not in collector.log()

    def flagged() -> list[str]:
        return [h["host"] for h in collector.get_json("/api/v1/degraded") if "too_many_series" in h["reasons"]]

    wait_until(lambda: flagged() == [host], 30, "the host marked as over its series bound")
    status, page = http_get(f"{collector.url}/status")
    assert status == 200 and f'data-host="{host}"' in page.decode()


def test_bounds_are_kept_in_the_state_file_and_freed_for_retired_and_long_silent_hosts(tmp_path: Path) -> None:
    day = 86400.0
    retired, silent = HostKey("08", "02473", "pc-retired"), HostKey("08", "02536", "pc-silent")
    with Store(tmp_path / "state.sqlite") as store:
        bounds = SeriesBounds(max_values=3, window_s=day)
        keeper = BoundsKeeper(store, bounds, forget_after_s=30 * day)
        bounds.admit(HOST, [disk("/"), disk("/a"), disk("/b")], now=40 * day)
        bounds.admit(retired, [disk("/")], now=40 * day)
        bounds.admit(silent, [disk("/")], now=5 * day)
        assert keeper.save(now=40 * day) == 3 and keeper.save(now=40 * day) == 0  # only what changed
        again = SeriesBounds(max_values=3, window_s=day)  # a restart
        assert BoundsKeeper(store, again, 30 * day).restore() == 3
        kept, dropped = again.admit(HOST, [disk("/"), disk("/c")], now=40 * day + 60)
        assert [p.tags["mount"] for p in kept] == ["/"] and dropped is not None  # no fresh bound after a restart
        known = {HOST, silent}  # pc-retired was forgotten in the registry
        gone = keeper.to_free(now=40 * day, known=known)
        assert set(gone) == {retired, silent}  # silent since day 5: more than 30 days
        bounds.free(gone)
        keeper.forget(gone)
        assert bounds.hosts() == 1 and [row[0] for row in store.query("SELECT host FROM series_bounds")] == [
            "08/02473/pc-a"
        ]


def test_a_restart_does_not_give_a_host_its_bound_again(
    make_collector: Callable[..., Collector], mosquitto: Mosquitto, influxd: Influxd, database: str
) -> None:
    bound = 5
    host = f"pc-restart-{int(time.time())}"
    where = f"WHERE host = '{host}'"

    def send(n: int, mounts: list[str]) -> None:
        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.connect("127.0.0.1", mosquitto.port)
        client.loop_start()
        body = {"v": 1, "ts": int(time.time()) - 60 + n, "disk": [{"mount": m, "used_percent": 40.0} for m in mounts]}
        client.publish(report_topic("08", "02473", host, "metrics"), encode(body), qos=1).wait_for_publish(10)
        client.loop_stop()
        client.disconnect()
        count_root = f"SELECT count(used_percent) FROM disk {where} AND mount = '/'"
        wait_until(lambda: (influxd.query(count_root, database) or [{"count": 0}])[0]["count"] == n, 30, f"report {n}")

    first = make_collector(ingest={"max_values_per_tag": bound})
    first.start()
    send(1, ["/"] + [f"/media/first-{i}" for i in range(bound - 1)])  # the whole bound
    first.stop()
    second = make_collector(ingest={"max_values_per_tag": bound})  # the same state file
    second.start()
    send(2, ["/"] + [f"/media/second-{i}" for i in range(3)])
    mounts = {row["value"] for row in influxd.query(f"SHOW TAG VALUES FROM disk WITH KEY = mount {where}", database)}
    assert len(mounts) == bound and not any(m.startswith("/media/second") for m in mounts), mounts
    assert second.metric('commune_collector_points_dropped_total{reason="too_many_series"}') == 3
