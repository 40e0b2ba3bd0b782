"""The collector's one-pass decoder (msgspec structs, collector/ingest/fastwire.py) agrees with the
wire contract's own (common/wire.py) on every payload: the same Report, or the same rejection
with the same reason and detail. Hand-picked edge cases, then thousands of hostile messages."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from test_fuzz import message

from collector.ingest import fastwire
from common.wire import MAX_LIST_ITEMS, MAX_STRING_CHARS, Report, WireError, decode_report, encode

NOW = 1_796_000_000  # fixed: the raw messages are in the test ids, which every xdist worker must collect alike
DISK = {"mount": "/", "used_percent": 40.5, "free_bytes": 1e9}
PLUG = {"device": "04e6-5116-1", "kind": "token", "present": 1, "model": "ePass"}
HEALTH = {"disk": "sda", "model": "ST500DM002", "type": "hdd", "smart_available": 1, "reallocated_sectors": 8}


def outcome(decoder: Any, kind: str, raw: bytes) -> Report | tuple[str, str]:
    try:
        report: Report = decoder(kind, raw)
    except WireError as exc:
        return exc.reason, exc.detail
    return report


def same(kind: str, raw: bytes) -> Report | tuple[str, str]:
    expected = outcome(decode_report, kind, raw)
    assert outcome(fastwire.decode, kind, raw) == expected, (kind, raw[:300])
    return expected


def metrics(**body: Any) -> bytes:
    return encode({"v": 1, "ts": NOW, **body})


@pytest.mark.parametrize(
    ("kind", "raw", "reason"),
    [
        ("metrics", metrics(system={"cpu_percent": 5, "load1": 0.5}, disk=[DISK]), None),
        ("metrics", metrics(system={"cpu_percent": True}), None),  # a boolean is a number to the contract
        ("metrics", b'{"v":1.0,"ts":1,"system":{"cpu_percent":1}}', None),  # so is v as 1.0
        ("metrics", metrics(system={"cpu_percent": None}), None),  # null: left out
        ("metrics", metrics(system={"cpu_percent": 2**80}), None),
        ("metrics", metrics(system={"cpu_percent": 1.0, "cpu_percent ": 1.0}), "unknown_field"),
        ("metrics", b'{"v":1,"ts":1,"system":{"cpu_percent":1e400}}', "bad_value"),
        ("metrics", b'{"v":1,"ts":1,"system":{"cpu_percent":NaN}}', "bad_value"),
        ("metrics", b'{"v":1,"ts":1,"system":{"cpu_percent":1},"system":{"load1":2}}', None),  # the last wins
        ("metrics", metrics(system=None), "bad_shape"),
        ("metrics", metrics(), "bad_shape"),
        ("metrics", metrics(disk=[{**DISK, "mount": "/x\n"}]), "bad_label"),  # "$" alone would let it through
        ("metrics", metrics(disk=[{"used_percent": 1.0}]), "bad_label"),
        ("metrics", metrics(disk=[DISK] * (MAX_LIST_ITEMS + 1)), "oversized"),
        ("metrics", metrics(disk=DISK), "bad_shape"),
        ("metrics", metrics(agent={"spool_error": "x" * (MAX_STRING_CHARS + 1)}), "bad_type"),
        ("metrics", metrics(agent={"spool_error": "disk_full", "spool_ok": 0}), None),
        ("metrics", metrics(system={"cpu_percent": 1}, seq=3), "bad_sequence"),
        ("metrics", metrics(system={"cpu_percent": 1}, seq=3, stream="0123abcd"), None),
        ("metrics", metrics(system={"cpu_percent": 1}, seq=0, stream="0123abcd"), "bad_sequence"),
        ("metrics", metrics(system={"cpu_percent": 1}, seq=3, stream="0123abcd\n"), "bad_sequence"),
        ("metrics", metrics(system={"cpu_percent": 1}, extra=1), None),  # skipped and counted (Report.unknown)
        ("metrics", metrics(system={"cpu_percent": 1}, **{"ex tra": 1}), "unknown_field"),  # not a plain name
        ("metrics", metrics(system={"cpu_percent": 1, "fan_rpm": 900}), None),
        ("metrics", metrics(future={"a": 1}), None),  # a newer agent's section alone: nothing to store, no refusal
        ("status", metrics(state="online", version="0.2.0", caps=["acks", "peripherals", "later"]), None),
        ("status", metrics(state="online", version="0.2", caps=[]), "bad_value"),
        ("status", metrics(state="online", version="0.2.0", caps=["Acks"]), "bad_value"),
        ("metrics", b'{"v":1,"ts":1,"system":{', "invalid_json"),
        ("metrics", b'\xef\xbb\xbf{"v":1,"ts":1,"system":{"load1":1}}', None),  # json.loads skips a BOM
        ("metrics", b"[1, 2]", "bad_shape"),
        ("peripherals", metrics(peripherals=[PLUG]), None),
        ("peripherals", metrics(peripherals=[]), None),
        ("peripherals", metrics(peripherals=[{**PLUG, "kind": "mouse"}]), "bad_value"),
        ("peripherals", metrics(peripherals=[{k: v for k, v in PLUG.items() if k != "kind"}]), "bad_shape"),
        ("status", metrics(state="online", stream="0123abcd"), None),
        ("status", metrics(state="offline", reason="will"), None),
        ("status", metrics(state="online", reason="will"), "bad_value"),
        ("status", metrics(state="online", seq=1, stream="0123abcd"), "bad_sequence"),
        ("status", metrics(state="online", anything="else"), None),  # the contract reads a status's state only
        ("status", metrics(state="gone"), "bad_value"),
        ("probe", metrics(probe=[{"target": "gw", "method": "ping", "ok": 1, "rtt_avg_ms": 1.5}]), None),
        ("speedtest", metrics(speedtest=[{"mode": "wan", "ok": 1, "download_mbps": 90.5}]), None),
        ("inventory", metrics(inventory={"os": "Windows", "ram_bytes": 8e9}), None),
        # a closed set that is not a tag is checked too (the structs let any text through before)
        ("probe", metrics(probe=[{"target": "gw", "ping_method": "bogus"}]), "bad_value"),
        ("inventory", metrics(disk_health=[HEALTH]), None),
        ("inventory", metrics(disk_health=[{**HEALTH, "type": "floppy"}]), "bad_value"),
        ("inventory", metrics(disk_health=[{"disk": "vda", "smart_available": 0, "reason": "virtual_disk"}]), None),
        ("inventory", metrics(disk_health=[{"disk": "vda", "smart_available": 0, "reason": "broken"}]), "bad_value"),
        ("metrics", metrics(io={"system_disk": "sda", "busy_percent": 97.5, "psi_io_some_avg60": 3.2}), None),
    ],
)
def test_the_one_pass_decoder_gives_what_the_contract_gives(kind: str, raw: bytes, reason: str | None) -> None:
    result = same(kind, raw)
    if reason is None:
        assert isinstance(result, Report), result
    else:
        assert isinstance(result, tuple) and result[0] == reason, result


TYPICAL = {
    "metrics": metrics(
        system={"cpu_percent": 5.5}, disk=[DISK], net=[{"nic": "eth0", "up": 1}], seq=7, stream="0a1b2c3d"
    ),
    "peripherals": metrics(peripherals=[PLUG]),
    "probe": metrics(probe=[{"target": "gateway", "method": "ping", "scope": "gateway", "ok": 1, "rtt_avg_ms": 0.4}]),
    "speedtest": metrics(speedtest=[{"mode": "wan", "ok": 1, "server": "Speedtest Mini", "upload_mbps": 20.1}]),
    "inventory": metrics(inventory={"os": "Windows", "agent_version": "0.9.0", "ram_bytes": 8e9}),
    "status": metrics(state="offline", reason="stop"),
    "hello": metrics(state="online", stream="0a1b2c3d", version="0.2.0", caps=["acks", "peripherals"]),
}


@pytest.mark.parametrize("kind", sorted(TYPICAL))
def test_what_agents_send_takes_the_one_pass(kind: str) -> None:
    wire_kind = "status" if kind == "hello" else kind
    body = fastwire.DECODERS[wire_kind].decode(TYPICAL[kind])  # no fallback: the structs take it as it is
    assert fastwire.structured(wire_kind, body) == decode_report(wire_kind, TYPICAL[kind])


def test_oversized_payloads_are_refused_before_parsing() -> None:
    raw = metrics(agent={"spool_error": "x" * 200}) + b" " * 300_000
    assert same("metrics", raw)[0] == "oversized"  # type: ignore[index]


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topic_payload=message())
def test_thousands_of_hostile_payloads_decode_the_same_both_ways(topic_payload: tuple[str, bytes]) -> None:
    topic, raw = topic_payload
    kind = topic.rsplit("/", 1)[-1]
    assume(kind in fastwire.DECODERS)  # any other kind is refused by parse_topic, before decoding
    same(kind, raw)
