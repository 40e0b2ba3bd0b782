"""The shared wire contract accepts what the agent produces and refuses everything else."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from realservices import REPO

from common.wire import (
    Ack,
    WireError,
    ack_payload,
    agreed,
    compact,
    decode_ack,
    decode_report,
    downgrade,
    encode,
    parse_topic,
    seq_ranges,
    status_payload,
    with_sequence,
)


@pytest.mark.services  # runs commune-agent once
def test_agent_once_output_validates_against_the_contract(tmp_path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[identity]\nprovince = "08"\ncommune = "02473"\n[spool]\npath = "{tmp_path}/s.sqlite"\n'
        "[probe]\ngateway = false\nping_count = 1\n"
        'targets = [{ name = "loopback", method = "ping", address = "127.0.0.1", scope = "wan" }]\n'
    )
    out = subprocess.run(
        [sys.executable, "-m", "agent.cli", "once", "-c", str(config)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    )
    reports = json.loads(out.stdout)
    assert set(reports) == {"metrics", "inventory", "probe", "peripherals"}
    peripherals = decode_report("peripherals", encode(reports["peripherals"]))
    assert peripherals.sections == {"peripherals": []}  # this machine has no USB bus
    probe = decode_report("probe", encode(reports["probe"]))
    assert probe.sections["probe"][0]["target"] == "loopback" and probe.sections["probe"][0]["ok"] == 1
    metrics = decode_report("metrics", encode(reports["metrics"]))
    assert {"system", "disk", "net"} <= set(metrics.sections)
    assert metrics.sections["system"][0]["mem_total_bytes"] > 0
    assert any(item["mount"] == "/" for item in metrics.sections["disk"])
    inventory = decode_report("inventory", encode(reports["inventory"]))
    assert inventory.sections["inventory"][0]["ram_bytes"] > 0


def test_numbers_become_floats_and_booleans_zero_or_one() -> None:
    report = decode_report("metrics", b'{"v":1,"ts":5,"system":{"cpu_percent":3,"load1":true},"net":[]}')
    assert report.sections["system"][0] == {"cpu_percent": 3.0, "load1": 1.0}
    assert isinstance(report.sections["system"][0]["cpu_percent"], float)
    assert report.sections["net"] == []


def test_status_report_carries_state() -> None:
    assert decode_report("status", b'{"v":1,"ts":1,"state":"offline"}').state == "offline"
    with pytest.raises(WireError) as err:
        decode_report("status", b'{"v":1,"ts":1,"state":"sleeping"}')
    assert err.value.reason == "bad_value"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "invalid_json"),
        (b"[" * 100_000, "invalid_json"),
        (b'{"v":1,"ts":1e999,"system":{}}', "bad_value"),
        (b'{"v":1,"ts":1,"system":{"cpu_percent":' + b"9" * 400 + b"}}", "bad_value"),
        (b'{"v":1,"ts":1}', "bad_shape"),
        (b'{"v":1,"ts":1,"system":[]}', "bad_shape"),
        (b'{"v":1,"ts":1,"disk":{"mount":"/"}}', "bad_shape"),
        (b'{"v":1,"ts":1,"disk":[{"used_percent":1}]}', "bad_label"),
        (b'{"v":1,"ts":1,"disk":[{"mount":"' + b"a" * 65 + b'"}]}', "bad_label"),
        (b'{"v":1,"ts":1,"disk":[' + b",".join([b'{"mount":"/"}'] * 65) + b"]}", "oversized"),
        (b'{"v":1,"ts":null,"system":{}}', "bad_type"),
    ],
)
def test_contract_breaches_name_their_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode_report("metrics", payload)
    assert err.value.reason == reason


@pytest.mark.parametrize(
    "topic",
    [
        "commune/v1/8/02473/pc/metrics",
        "commune/v1/08/2473/pc/metrics",
        "commune/v1/08/02473/p c/metrics",
        "commune/v1/08/02473/pc/metrics/extra",
        "other/v1/08/02473/pc/metrics",
        "commune/v1/08/02473/" + "h" * 65 + "/metrics",
        "commune/v1/08/02473/pc\n/metrics",  # "$" alone matches before a final newline: fullmatch
        "commune/v1/08\n/02473/pc/metrics",
    ],
)
def test_malformed_topics_are_refused(topic: str) -> None:
    with pytest.raises(WireError):
        parse_topic(topic)


def test_topic_parses_into_identity() -> None:
    parsed = parse_topic("commune/v1/08/02473/pc-01/probe")
    assert (parsed.province, parsed.commune, parsed.host, parsed.kind) == ("08", "02473", "pc-01", "probe")


def test_agents_send_numbers_compactly_and_the_collector_reads_them_as_floats_again() -> None:
    body = {"v": 1, "ts": 1700000000, "system": {"cpu_percent": 12.345678901, "mem_total_bytes": 8589934592.0}}
    raw = encode(compact(body))
    assert raw == b'{"v":1,"ts":1700000000,"system":{"cpu_percent":12.346,"mem_total_bytes":8589934592}}'
    report = decode_report("metrics", raw)
    assert report.sections["system"][0] == {"cpu_percent": 12.346, "mem_total_bytes": 8589934592.0}
    assert all(type(v) is float for v in report.sections["system"][0].values())
    assert compact([12.0004, -0.0001, 2.5, float("inf")]) == [12, 0, 2.5, float("inf")]


def test_peripherals_report_carries_kind_as_a_closed_set_and_may_be_empty() -> None:
    token = {"device": "0529-0620-0123ABC", "kind": "token", "vendor_id": "0529", "product_id": "0620",
             "present": 1, "minutes_today": 12.5}  # fmt: skip
    report = decode_report("peripherals", encode({"v": 1, "ts": 1, "peripherals": [token]}))
    assert report.sections["peripherals"] == [
        {
            "device": "0529-0620-0123ABC",
            "kind": "token",
            "vendor_id": "0529",
            "product_id": "0620",
            "present": 1.0,
            "minutes_today": 12.5,
        }
    ]
    assert decode_report("peripherals", b'{"v":1,"ts":1,"peripherals":[]}').sections == {"peripherals": []}
    assert parse_topic("commune/v1/08/02473/pc-01/peripherals").kind == "peripherals"


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ({"device": "0529-0620", "kind": "keyboard"}, "bad_value"),
        ({"device": "0529-0620"}, "bad_shape"),
        ({"device": "0529 0620", "kind": "token"}, "bad_label"),
        ({"device": "0529-0620", "kind": "token", "hub port": 3}, "unknown_field"),  # not even a plain name
        ({"device": "0529-0620", "kind": 7}, "bad_type"),
    ],
)
def test_peripherals_breaches_name_their_reason(item: dict[str, object], reason: str) -> None:
    with pytest.raises(WireError) as err:
        decode_report("peripherals", encode({"v": 1, "ts": 1, "peripherals": [item]}))
    assert err.value.reason == reason


def test_a_numbered_report_carries_its_stream_and_seq_and_validates() -> None:
    raw = with_sequence(b'{"v":1,"ts":5,"system":{"cpu_percent":3}}', "0123abcd0123abcd", 42)
    assert raw == b'{"seq":42,"stream":"0123abcd0123abcd","v":1,"ts":5,"system":{"cpu_percent":3}}'
    report = decode_report("metrics", raw)
    assert (report.stream, report.seq) == ("0123abcd0123abcd", 42)
    assert report.sections["system"][0] == {"cpu_percent": 3.0}
    plain = decode_report("metrics", b'{"v":1,"ts":5,"system":{"cpu_percent":3}}')
    assert (plain.stream, plain.seq) == (None, None)


def test_an_online_status_names_the_agents_stream() -> None:
    status = decode_report("status", status_payload("online", "0123abcd"))
    assert (status.state, status.stream, status.seq) == ("online", "0123abcd", None)
    assert decode_report("status", status_payload("offline")).stream is None


def test_an_offline_status_says_whether_the_agent_stopped_or_its_will_came() -> None:
    assert decode_report("status", status_payload("offline", reason="stop")).reason == "stop"
    assert decode_report("status", status_payload("offline", reason="will")).reason == "will"
    assert decode_report("status", status_payload("offline")).reason is None  # an old agent
    for bad in (
        b'{"v":1,"ts":1,"state":"offline","reason":"crash"}',
        b'{"v":1,"ts":1,"state":"online","reason":"stop"}',
    ):
        with pytest.raises(WireError) as caught:
            decode_report("status", bad)
        assert caught.value.reason == "bad_value"


@pytest.mark.parametrize(
    "payload",
    [
        b'{"v":1,"ts":1,"seq":1,"system":{}}',  # a seq without its stream
        b'{"v":1,"ts":1,"stream":"0123abcd","system":{}}',  # a stream without a seq
        b'{"v":1,"ts":1,"seq":0,"stream":"0123abcd","system":{}}',
        b'{"v":1,"ts":1,"seq":1.5,"stream":"0123abcd","system":{}}',
        b'{"v":1,"ts":1,"seq":true,"stream":"0123abcd","system":{}}',
        b'{"v":1,"ts":1,"seq":9007199254740993,"stream":"0123abcd","system":{}}',
        b'{"v":1,"ts":1,"seq":1,"stream":"NOT-HEX!","system":{}}',
    ],
)
def test_a_broken_sequence_is_refused_with_its_reason(payload: bytes) -> None:
    with pytest.raises(WireError) as err:
        decode_report("metrics", payload)
    assert err.value.reason == "bad_sequence"


def test_acks_carry_ranges_and_round_trip() -> None:
    assert seq_ranges([7, 1, 3, 2, 3, 9, 8]) == [(1, 3), (7, 9)]
    ack = decode_ack(ack_payload("0123abcd", seq_ranges([1, 2, 3, 7])))
    assert ack == Ack("0123abcd", ((1, 3), (7, 7)))
    assert decode_ack(ack_payload("0123abcd", [])).ranges == ()


@pytest.mark.parametrize(
    "payload",
    [
        b"not json",
        b'{"v":2,"stream":"0123abcd","seqs":[]}',
        b'{"v":1,"stream":"x","seqs":[]}',
        b'{"v":1,"stream":"0123abcd","seqs":[[3,1]]}',
        b'{"v":1,"stream":"0123abcd","seqs":[[0,1]]}',
        b'{"v":1,"stream":"0123abcd","seqs":[[1]]}',
        b'{"v":1,"stream":"0123abcd","seqs":{"1":2}}',
        b'{"v":1,"stream":"0123abcd","seqs":[' + b",".join([b"[1,1]"] * 257) + b"]}",
    ],
)
def test_a_malformed_ack_is_refused(payload: bytes) -> None:
    with pytest.raises(WireError):
        decode_ack(payload)


def test_fields_and_sections_a_collector_does_not_know_are_skipped_and_named() -> None:
    raw = encode(
        {
            "v": 1,
            "ts": 1,
            "probe": [
                {"target": "gw", "ok": 1, "hop_count": 3},
                {"target": "dns", "ok": 1, "hop_count": 4, "resolver": "a"},
            ],
            "traceroute": [{"hop": 1}],
        }
    )
    report = decode_report("probe", raw)
    assert report.sections == {"probe": [{"ok": 1.0, "target": "gw"}, {"ok": 1.0, "target": "dns"}]}
    assert report.unknown == ("probe.hop_count", "probe.resolver", "traceroute")


def test_a_field_name_outside_plain_names_is_still_refused() -> None:
    with pytest.raises(WireError) as err:
        decode_report("metrics", encode({"v": 1, "ts": 1, "system": {"cpu percent,x=1": 1}}))
    assert err.value.reason == "unknown_field"


def test_the_hello_says_version_and_capabilities_and_the_answer_says_the_collectors() -> None:
    hello = decode_report("status", status_payload("online", "0123abcd", version="0.2.0", caps=("acks", "zzz")))
    assert (hello.state, hello.stream, hello.version, hello.caps, hello.unknown) == (
        "online",
        "0123abcd",
        "0.2.0",
        ("acks", "zzz"),
        (),
    )
    old = decode_report("status", b'{"v":1,"ts":1,"state":"online"}')  # 0.1.0's hello
    assert (old.version, old.caps) == (None, None)
    answer = decode_ack(ack_payload("0123abcd", [], version="0.2.0", caps=("acks", "peripherals")))
    assert (answer.ranges, answer.version, answer.caps) == ((), "0.2.0", ("acks", "peripherals"))
    assert decode_ack(ack_payload("0123abcd", [(1, 2)])).version is None
    assert agreed(("acks", "peripherals", "zzz"), ("peripherals", "acks", "yyy")) == ("acks", "peripherals")
    assert agreed(("acks",), None) == ()


def test_downgrade_leaves_out_what_release_0_1_0_refused() -> None:
    probe = encode({"v": 1, "ts": 1, "probe": [{"target": "gw", "ok": 1, "ping_method": "icmp"}]})
    assert json.loads(downgrade("probe", probe) or b"") == {"v": 1, "ts": 1, "probe": [{"target": "gw", "ok": 1}]}
    metrics = encode({"v": 1, "ts": 1, "agent": {"cycle_ms": 3, "spool_ok": 1, "spool_error": "disk_full"}})
    assert json.loads(downgrade("metrics", metrics) or b"") == {"v": 1, "ts": 1, "agent": {"cycle_ms": 3}}
    inventory = encode({"v": 1, "ts": 1, "inventory": {"os": "Linux"}})
    assert downgrade("inventory", inventory) == inventory
    assert downgrade("peripherals", encode({"v": 1, "ts": 1, "peripherals": []})) is None
    both = encode({"v": 1, "ts": 1, "system": {"cpu_percent": 1}, "io": [{"disk": "sda", "busy_percent": 3}]})
    assert json.loads(downgrade("metrics", both) or b"") == {"v": 1, "ts": 1, "system": {"cpu_percent": 1}}
    assert downgrade("inventory", encode({"v": 1, "ts": 1, "disk_health": [{"disk": "sda"}]})) is None
