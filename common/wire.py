"""The wire contract between agent and collector: topics, schema version and message shapes.

Both programs import this module; the collector never re-declares any of it. It depends on
nothing outside the standard library so that an agent install stays small.

A report is compact JSON: ``{"v": 1, "ts": <UTC seconds>, <section>: ...}``. Each section
maps to one InfluxDB measurement. A section is either one object or a list of objects keyed
by a short label (``mount``, ``nic``, ``sensor``, ``target``) that becomes a tag.

End-to-end acknowledgement: an agent that supports it says so in its ``status`` (``"stream"``:
the id of its spool), and once a collector has acknowledged it, every report carries
``"seq"`` (its number in the agent's spool, increasing per host) and ``"stream"``. The
collector answers on ``.../<host>/cmd/ack`` with ``{"v": 1, "stream": ..., "seqs": [[first,
last], ...]}``: the reports it has stored (InfluxDB or its disk buffer). Ranges, not one
"up to" number: a report lost in a broker crash must stay in the agent's spool even when later
ones were stored. An ack with no ranges is the collector saying it acknowledges at all.

Versions (docs/en/versions.md): the agent's ``online`` status (its hello) carries
``"version"`` (its release) and ``"caps"`` (what it does: ``CAPABILITIES``); the collector's answer
to it, the ack with no ranges, carries the collector's ``"version"`` and ``"caps"``, and each side
logs what they agreed. Fields and sections a collector does not know are skipped and counted
(``Report.unknown``), never refused, as long as their names are within ``UNKNOWN_NAME_RE`` and the
message within its bounds; a collector of release 0.1.0 refused them, so an agent that has not heard
a newer collector sends only what 0.1.0 knew (``KNOWN_TO_0_1``, ``downgrade``).
"""

from __future__ import annotations

import json
import math
import os
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final, Tuple

SCHEMA_VERSION: Final = 1
# Test-only: seconds added to every ``ts`` an agent stamps, so that tests run a PC whose clock is
# wrong (tests/test_clock_skew.py); a real PC's clock is simply wrong. Never set in production.
TEST_CLOCK_SKEW_ENV: Final = "COMMUNE_TEST_CLOCK_SKEW_S"


def _test_clock_skew() -> float:
    try:
        return float(os.environ.get(TEST_CLOCK_SKEW_ENV) or 0.0)
    except ValueError:
        return 0.0


TEST_CLOCK_SKEW_S: Final = _test_clock_skew()


def stamp(now: float | None = None) -> int:
    """A message's ``ts``: the PC's clock now (or when it measured), as whole seconds."""
    return int((time.time() if now is None else now) + TEST_CLOCK_SKEW_S)


TOPIC_ROOT: Final = "commune/v1"
REPORT_KINDS: Final = ("metrics", "inventory", "probe", "speedtest", "peripherals", "status")
MAX_PAYLOAD_BYTES: Final = 256 * 1024
MAX_LIST_ITEMS: Final = 64
MAX_STRING_CHARS: Final = 256

# Checked with fullmatch: "$" alone also matches before a final newline, which must never reach a
# tag. (The patterns stay in the form OpenAPI and pydantic understand.)
PROVINCE_RE: Final = re.compile(r"^[0-9]{2}$")
COMMUNE_RE: Final = re.compile(r"^[0-9]{5}$")
HOST_RE: Final = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Labels become InfluxDB tag values: a closed alphabet makes escaping a second line of defence.
LABEL_RE: Final = re.compile(r"^[A-Za-z0-9_.:/-]{1,64}$")
# The id of an agent's spool: a new spool (reinstall, spool moved aside) starts new numbers.
STREAM_RE: Final = re.compile(r"^[0-9a-f]{8,32}$")
MAX_SEQ: Final = 2**53
ACK_COMMAND: Final = "ack"
MAX_ACK_RANGES: Final = 256
ENVELOPE_KEYS: Final = ("v", "ts", "seq", "stream", "demand")
# What an agent or a collector can say it does (``caps`` in hellos): acks (end-to-end
# acknowledgements), peripherals (USB devices reports), disk_health (S.M.A.R.T. in inventory
# reports), pcsc (smart-card readers watched: the peripherals report's smartcard list). A name
# outside this list is a newer program's: kept out of what is agreed, never refused. actions: the
# agent takes on-demand actions on ``.../cmd/action`` (the collector: it can send them).
CAPABILITIES: Final = ("acks", "peripherals", "disk_health", "pcsc", "actions")
MAX_CAPS: Final = 32
CAP_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")
VERSION_RE: Final = re.compile(r"^[0-9]{1,4}\.[0-9]{1,4}\.[0-9]{1,4}([.+-][A-Za-z0-9.+-]{1,40})?$")
STATUS_KEYS: Final = ("state", "reason", "version", "caps")
# A field or section a collector does not know is skipped and counted when its name is a plain
# name; anything else in a name (spaces, commas, "=") is refused as an ``unknown_field``.
UNKNOWN_NAME_RE: Final = re.compile(r"^[A-Za-z0-9_]{1,64}$")

NUMBER: Final = "number"
TEXT: Final = "text"


# Every ``WireError.reason`` raised here: the collector counts rejections under these labels, each
# from zero at its start. A new reason goes here too (tests/test_selfmetrics.py checks).
REJECT_REASONS: Final = (
    "bad_topic",
    "unknown_kind",
    "oversized",
    "invalid_json",
    "bad_shape",
    "bad_version",
    "unknown_field",
    "bad_type",
    "bad_value",
    "bad_label",
    "bad_sequence",
)


class WireError(ValueError):
    """A message that breaks the contract. ``reason`` (one of ``REJECT_REASONS``) is a counter label."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Section:
    """One part of a report and the measurement it is written to."""

    measurement: str
    fields: dict[str, str]
    label: str | None = None  # key of list items that becomes a tag; None for a single object
    tags: tuple[str, ...] = ()  # text fields that become tags too, each limited to its ``choices``
    choices: dict[str, tuple[str, ...]] = field(default_factory=dict)  # the only values a text field may take


@dataclass(frozen=True)
class Topic:
    """A parsed report topic ``commune/v1/<province>/<commune>/<host>/<kind>``."""

    province: str
    commune: str
    host: str
    kind: str


@dataclass
class Report:
    """A validated report: measurement time and its sections, numbers already floats."""

    kind: str
    ts: float
    sections: dict[str, list[dict[str, float | str]]] = field(default_factory=dict)
    state: str | None = None  # status reports only: "online" or "offline"
    stream: str | None = None  # the agent's spool id: it supports end-to-end acknowledgements
    seq: int | None = None  # the report's number in that spool (never on a status)
    reason: str | None = None  # offline status only: "stop" (clean stop) or "will" (Last Will); None if unsaid
    version: str | None = None  # online status only: the agent's release, if it says (0.2.0 on)
    caps: tuple[str, ...] | None = None  # online status only: what the agent does (``CAPABILITIES``), if it says
    unknown: tuple[str, ...] = ()  # names of fields and sections skipped as unknown ("section" or "section.field")
    demand: Demand | None = None  # an on-demand action's answer or result (``cmd/action``), None for the rest


@dataclass(frozen=True)
class Demand:
    """The ``demand`` of a report made for an on-demand action: which request, and what became of it
    (``accepted``, ``refused`` or ``failed``: an answer with no section; ``done``: the result, in the
    sections)."""

    id: str
    action: str
    state: str
    reason: str = ""  # refused or failed only: why (``REFUSALS``, or a newer agent's name)


@dataclass(frozen=True)
class Ack:
    """A collector's acknowledgement: the reports of ``stream`` it has stored, as inclusive ranges."""

    stream: str
    ranges: tuple[tuple[int, int], ...]
    version: str | None = None  # the collector's release (in its answer to a hello, 0.2.0 on)
    caps: tuple[str, ...] | None = None  # what the collector does (``CAPABILITIES``)


def _numbers(*names: str) -> dict[str, str]:
    return {name: NUMBER for name in names}


SYSTEM = Section(
    "system",
    _numbers(
        "cpu_percent",
        "load1",
        "load5",
        "load15",
        "cpu_count",
        "mem_total_bytes",
        "mem_available_bytes",
        "mem_used_percent",
        "swap_total_bytes",
        "swap_used_percent",
        "uptime_s",
        "boot_time",
        "process_count",
    ),
)
DISK = Section(
    "disk",
    _numbers(
        "total_bytes",
        "used_bytes",
        "free_bytes",
        "used_percent",
        "read_bytes_per_s",
        "write_bytes_per_s",
        "read_ops_per_s",
        "write_ops_per_s",
    ),
    label="mount",
)
NET = Section(
    "net",
    _numbers(
        "rx_bytes_per_s",
        "tx_bytes_per_s",
        "rx_packets_per_s",
        "tx_packets_per_s",
        "rx_errors_per_s",
        "tx_errors_per_s",
        "rx_drops_per_s",
        "tx_drops_per_s",
        "rx_bytes_total",
        "tx_bytes_total",
        "speed_mbps",
        "up",
        "default_route",
    ),
    label="nic",
)
SENSORS = Section(
    "sensors",
    _numbers("temp_c", "temp_high_c", "temp_critical_c", "battery_percent", "power_plugged"),
    label="sensor",
)
AGENT = Section(
    "agent",
    {
        "spool_error": TEXT,  # why the spool is unusable: disk_full, read_only, io_error, corrupt, cannot_open, other
        **_numbers(
            "spool_depth",
            "spool_bytes",
            "spool_dropped",
            "spool_ok",  # 1 while the on-disk spool works, 0 while reports are held in memory
            "spool_memory",  # reports held in memory because the spool cannot be written
            "spool_memory_dropped",  # reports dropped from the full memory queue since the agent started
            "cycle_ms",
            "cpu_s",
            "rss_bytes",
            "interval_s",
        ),
    },
)
# Slow I/O, the evidence of a PC that "hangs": the system disk's share of time busy and the mean
# time an I/O waited since the last report, and the kernel's pressure-stall figures (Linux 4.20
# and newer). New since 0.1.0: a 0.1.0 collector refuses a metrics report carrying it.
IO = Section(
    "io",
    {
        "system_disk": TEXT,  # the disk holding the system (sda, nvme0n1; disk0 on Windows)
        **_numbers(
            "busy_percent",  # share of wall time the system disk had I/O in flight
            "await_ms",  # mean time of one read or write, queue included
            "psi_io_some_avg60",  # % of the last 60 s some task waited on I/O (/proc/pressure/io)
            "psi_memory_some_avg60",  # % of the last 60 s some task waited on memory (/proc/pressure/memory)
        ),
    },
)
INVENTORY = Section(
    "inventory",
    {
        "os": TEXT,
        "os_version": TEXT,
        "architecture": TEXT,
        "cpu_model": TEXT,
        "agent_version": TEXT,
        "disks": TEXT,
        "nics": TEXT,
        **_numbers("cpu_cores", "cpu_threads", "ram_bytes", "disk_total_bytes", "boot_time"),
    },
)
DISK_TYPES: Final = ("hdd", "ssd", "nvme", "unknown")
# Why S.M.A.R.T. could not be read: no smartctl, no permission to open the disk, a virtual disk,
# a disk without S.M.A.R.T. (or USB bridge hiding it), smartctl failing or too slow, or a
# platform where the agent does not read it.
SMART_UNAVAILABLE: Final = ("no_smartctl", "permission", "virtual_disk", "no_smart", "smartctl_failed", "timeout")
# Each physical disk's health, sent every [disk_health] interval_s (6 h) in an ``inventory``
# report of its own (the inventory kind, so no new topic or broker ACL). New since 0.1.0: a 0.1.0
# collector refuses that report and nothing else.
DISK_HEALTH = Section(
    "disk_health",
    {
        "model": TEXT,
        "serial": TEXT,
        "type": TEXT,  # hdd, ssd, nvme or unknown
        "reason": TEXT,  # only while smart_available is 0: one of SMART_UNAVAILABLE
        **_numbers(
            "smart_available",  # 1 when S.M.A.R.T. was read, 0 with a reason
            "system",  # 1 for the disk holding the system
            "health_passed",  # the disk's own overall verdict: 1 passed, 0 failed
            "power_on_hours",
            "reallocated_sectors",  # ATA 5
            "pending_sectors",  # ATA 197
            "offline_uncorrectable",  # ATA 198
            "media_errors",  # NVMe
            "percentage_used",  # NVMe: share of rated life used
            "temp_c",
            "ioerr_count",  # the kernel's failed I/O requests since boot (sysfs ioerr_cnt)
        ),
    },
    label="disk",
    choices={"type": DISK_TYPES, "reason": SMART_UNAVAILABLE},
)
PING_METHODS: Final = ("icmp", "system")
PROBE = Section(
    "probe",
    {
        "method": TEXT,  # ping, dns or http
        "scope": TEXT,  # gateway, wan (government network) or internet: what an unreachable target means
        "error": TEXT,
        # how a ping ran: "icmp" (in-process ICMP socket) or "system" (the ping command); optional,
        # as agents before it do not send it
        "ping_method": TEXT,
        **_numbers(
            "ok",
            "rtt_min_ms",
            "rtt_avg_ms",
            "rtt_max_ms",
            "jitter_ms",
            "loss_percent",
            "sent",
            "received",
            "duration_ms",
            "status_code",
        ),
    },
    label="target",
    choices={"ping_method": PING_METHODS},
)
SPEEDTEST = Section(
    "speedtest",
    {
        "server": TEXT,
        "skipped": TEXT,
        "error": TEXT,
        **_numbers(
            "ok",
            "download_mbps",
            "upload_mbps",
            "ping_ms",
            "bytes_used",
            "bytes_sent",
            "bytes_received",
        ),
    },
    label="mode",  # "internet" (speedtest.net) or "wan" (the collector's own endpoint)
)

PERIPHERAL_KINDS: Final = ("scanner", "token", "printer", "other")
PERIPHERALS = Section(
    "peripheral",
    {
        "kind": TEXT,  # scanner, token (smart card / CCID, digital signature), printer or other; a tag
        "vendor_id": TEXT,  # USB idVendor, four hex digits
        "product_id": TEXT,  # USB idProduct, four hex digits
        "serial": TEXT,
        "manufacturer": TEXT,
        "product": TEXT,
        "model": TEXT,  # the known model from the agent's data file, else the product string
        "device_class": TEXT,  # bDeviceClass, two hex digits
        "interface_classes": TEXT,  # bInterfaceClass of each interface, comma-separated hex
        **_numbers(
            "present",  # 1 while plugged in now, 0 for a device seen earlier today and unplugged since
            "minutes_today",  # minutes present today (local date of the PC)
            "first_seen_today",  # UTC seconds, 0 when not seen today
            "last_seen_today",
            "pcsc",  # 1 for a token whose use the PC watched through PC/SC for this report, else absent
        ),
    },
    label="device",  # a stable id: vendor-product-serial, or vendor-product-port without a serial
    tags=("kind",),
    choices={"kind": PERIPHERAL_KINDS},
)

# Each PC/SC reader's use since the PC's last peripherals report (agent/peripherals/pcsc.py); only
# sent by a PC that watches its readers through PC/SC.
SMARTCARD = Section(
    "smartcard",
    {
        "name": TEXT,  # the reader's name as PC/SC gives it
        "device": TEXT,  # the USB token (the peripherals item's ``device``) this reader is, when the agent could tell
        **_numbers(
            "card_now",  # 1 when a card was in the reader at the last look
            "card_present",  # 1 when a card was in it at any look since the last report
            "in_use_now",  # 1 when an application had the card open at the last look
            "in_use",  # 1 when an application had it open at any look since the last report
            "opened",  # looks since the last report that found it newly opened
            "last_in_use",  # UTC seconds of the last look that found it open, 0 when none since the last report
        ),
    },
    label="reader",  # the reader's name in the label alphabet
)

SECTIONS_BY_KIND: Final[dict[str, dict[str, Section]]] = {
    "metrics": {"system": SYSTEM, "disk": DISK, "net": NET, "sensors": SENSORS, "agent": AGENT, "io": IO},
    # an inventory report carries the PC's inventory (daily) or its disks' health (every 6 h)
    "inventory": {"inventory": INVENTORY, "disk_health": DISK_HEALTH},
    "probe": {"probe": PROBE},
    "speedtest": {"speedtest": SPEEDTEST},
    # lists; peripherals empty when nothing is plugged in, smartcard only from a PC that watches PC/SC
    "peripherals": {"peripherals": PERIPHERALS, "smartcard": SMARTCARD},
    "status": {},
}
# What a collector of release 0.1.0 knew; it refused anything else (a field, a section, a kind). An
# agent that has not heard a newer collector sends only this (``downgrade``). Copied from 0.1.0's
# contract once (it never changes); tests/test_mixed_versions.py checks it against that release's own.
KNOWN_TO_0_1: Final[dict[str, dict[str, frozenset[str]]]] = {
    "metrics": {
        "system": frozenset(
            [
                "boot_time",
                "cpu_count",
                "cpu_percent",
                "load1",
                "load15",
                "load5",
                "mem_available_bytes",
                "mem_total_bytes",
                "mem_used_percent",
                "process_count",
                "swap_total_bytes",
                "swap_used_percent",
                "uptime_s",
            ]
        ),
        "disk": frozenset(
            [
                "free_bytes",
                "mount",
                "read_bytes_per_s",
                "read_ops_per_s",
                "total_bytes",
                "used_bytes",
                "used_percent",
                "write_bytes_per_s",
                "write_ops_per_s",
            ]
        ),
        "net": frozenset(
            [
                "default_route",
                "nic",
                "rx_bytes_per_s",
                "rx_bytes_total",
                "rx_drops_per_s",
                "rx_errors_per_s",
                "rx_packets_per_s",
                "speed_mbps",
                "tx_bytes_per_s",
                "tx_bytes_total",
                "tx_drops_per_s",
                "tx_errors_per_s",
                "tx_packets_per_s",
                "up",
            ]
        ),
        "sensors": frozenset(
            ["battery_percent", "power_plugged", "sensor", "temp_c", "temp_critical_c", "temp_high_c"]
        ),
        "agent": frozenset(
            ["cpu_s", "cycle_ms", "interval_s", "rss_bytes", "spool_bytes", "spool_depth", "spool_dropped"]
        ),
    },
    "inventory": {
        "inventory": frozenset(
            [
                "agent_version",
                "architecture",
                "boot_time",
                "cpu_cores",
                "cpu_model",
                "cpu_threads",
                "disk_total_bytes",
                "disks",
                "nics",
                "os",
                "os_version",
                "ram_bytes",
            ]
        ),
    },
    "probe": {
        "probe": frozenset(
            [
                "duration_ms",
                "error",
                "jitter_ms",
                "loss_percent",
                "method",
                "ok",
                "received",
                "rtt_avg_ms",
                "rtt_max_ms",
                "rtt_min_ms",
                "scope",
                "sent",
                "status_code",
                "target",
            ]
        ),
    },
    "speedtest": {
        "speedtest": frozenset(
            [
                "bytes_received",
                "bytes_sent",
                "bytes_used",
                "download_mbps",
                "error",
                "mode",
                "ok",
                "ping_ms",
                "server",
                "skipped",
                "upload_mbps",
            ]
        ),
    },
    "status": {},
}
STATUS_STATES: Final = ("online", "offline")
# Why an ``offline`` status was sent: the agent stopped cleanly (``stop``) or the broker published
# its Last Will (``will``). Optional: an old agent's offline status simply lacks it.
STATUS_REASONS: Final = ("stop", "will")


def report_topic(province: str, commune: str, host: str, kind: str) -> str:
    """The topic an agent publishes a report of ``kind`` on."""
    return f"{TOPIC_ROOT}/{province}/{commune}/{host}/{kind}"


def command_topic(province: str, commune: str, host: str, command: str) -> str:
    """The topic the collector sends a command to one agent on (seven levels, never a report)."""
    return f"{TOPIC_ROOT}/{province}/{commune}/{host}/cmd/{command}"


def parse_topic(topic: str) -> Topic:
    """Split and check a report topic; raises WireError("bad_topic") when it is not one."""
    parts = topic.split("/")
    if len(parts) != 6 or "/".join(parts[:2]) != TOPIC_ROOT:
        raise WireError("bad_topic", f"topic {topic[:120]!r} is not {TOPIC_ROOT}/<p>/<c>/<h>/<kind>")
    province, commune, host, kind = parts[2:]
    if not PROVINCE_RE.fullmatch(province):
        raise WireError("bad_topic", f"province {province[:20]!r} is not two digits")
    if not COMMUNE_RE.fullmatch(commune):
        raise WireError("bad_topic", f"commune {commune[:20]!r} is not five digits")
    if not HOST_RE.fullmatch(host):
        raise WireError("bad_topic", f"host {host[:70]!r} does not match {HOST_RE.pattern}")
    if kind not in REPORT_KINDS:
        raise WireError("unknown_kind", f"kind {kind[:20]!r} is not one of {', '.join(REPORT_KINDS)}")
    return Topic(province, commune, host, kind)


def compact(value: Any) -> Any:
    """Numbers as an agent sends them: three decimals, and whole numbers without ".0" (a metrics
    report is about 15 % smaller; the collector reads every number as a float again)."""
    if isinstance(value, float):
        rounded = round(value, 3) + 0.0  # + 0.0 turns -0.0 into 0.0
        return int(rounded) if rounded.is_integer() and abs(rounded) < 2**53 else rounded
    if isinstance(value, dict):
        return {k: compact(v) for k, v in value.items()}
    if isinstance(value, list):
        return [compact(v) for v in value]
    return value


def encode(payload: dict[str, Any]) -> bytes:
    """Compact JSON as sent on the wire."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def status_payload(
    state: str, stream: str = "", reason: str = "", version: str = "", caps: Iterable[str] = ()
) -> bytes:
    """The retained ``status`` message, ``online`` or ``offline`` (also the Last Will), stamped now.
    ``stream`` (online only) says the agent keeps reports until the collector acknowledges them;
    ``reason`` (offline only) says whether the agent stopped cleanly (``stop``) or this is its
    Last Will (``will``), so an outage's cause can tell a PC shut down from a PC cut off.
    ``version`` and ``caps`` (online only: the hello) say the agent's release and what it does."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "ts": stamp(), "state": state}
    if stream:
        body["stream"] = stream
    if reason:
        body["reason"] = reason
    if version:
        body["version"] = version
        body["caps"] = list(caps)
    return encode(body)


def with_sequence(payload: bytes, stream: str, seq: int) -> bytes:
    """A spooled report as sent to an acknowledging collector: ``seq`` and ``stream`` put first.

    Spliced into the bytes rather than decoded and encoded again: an old PC sends thousands a day.
    """
    if not payload.startswith(b"{") or payload.startswith(b"{}"):
        raise WireError("bad_shape", "a report is a JSON object with at least v and ts")
    return b'{"seq":%d,"stream":"%s",' % (seq, stream.encode()) + payload[1:]


def downgrade(kind: str, payload: bytes) -> bytes | None:
    """A report as a collector of release 0.1.0 takes it: only the sections and fields it knew
    (``KNOWN_TO_0_1``); None for a kind it did not know, or a report left with no section (nothing of
    it can be stored there). A payload that is not a JSON object is returned as it is."""
    known = KNOWN_TO_0_1.get(kind)
    if known is None:
        return None
    if kind == "status":
        return payload
    try:
        body = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return payload
    if not isinstance(body, dict):
        return payload
    kept: dict[str, Any] = {key: value for key, value in body.items() if key in ("v", "ts")}
    for name, value in body.items():
        fields = known.get(name)
        if fields is None:
            continue
        if isinstance(value, list):
            kept[name] = [_only(item, fields) for item in value]
        else:
            kept[name] = _only(value, fields)
    if len(kept) == len([key for key in body if key in ("v", "ts")]):
        return None  # no section that release knew: it refuses a report with none
    return encode(kept)


def _only(item: Any, fields: frozenset[str]) -> Any:
    return {key: value for key, value in item.items() if key in fields} if isinstance(item, dict) else item


def seq_ranges(seqs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of sequence numbers: ``[1, 2, 3, 7]`` -> ``[(1, 3), (7, 7)]``."""
    ranges: list[tuple[int, int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1] = (ranges[-1][0], seq)
        else:
            ranges.append((seq, seq))
    return ranges


def ack_payload(stream: str, ranges: Iterable[tuple[int, int]], version: str = "", caps: Iterable[str] = ()) -> bytes:
    """What the collector publishes on ``.../cmd/ack`` (empty ranges: it acknowledges at all, and
    then says its ``version`` and ``caps``: the answer to the agent's hello)."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "stream": stream, "seqs": [list(r) for r in ranges]}
    if version:
        body["version"] = version
        body["caps"] = list(caps)
    return encode(body)


def _json_body(raw: bytes) -> Any:
    """The payload parsed as JSON, if it is within the size limit; raises WireError otherwise."""
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise WireError("oversized", f"{len(raw)} bytes > limit {MAX_PAYLOAD_BYTES}")
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise WireError("invalid_json", str(exc)[:120] or type(exc).__name__) from None


def decode_ack(raw: bytes) -> Ack:
    """Validate an acknowledgement; raises WireError on any breach."""
    body = _json_body(raw)
    if not isinstance(body, dict) or body.get("v") != SCHEMA_VERSION:
        raise WireError("bad_version", "an ack is an object with v=1")
    stream, seqs = body.get("stream"), body.get("seqs")
    if not isinstance(stream, str) or not STREAM_RE.fullmatch(stream):
        raise WireError("bad_value", f"ack stream {str(stream)[:40]!r} does not match {STREAM_RE.pattern}")
    if not isinstance(seqs, list) or len(seqs) > MAX_ACK_RANGES:
        raise WireError("bad_shape", f"ack seqs must be a list of at most {MAX_ACK_RANGES} [first, last] pairs")
    ranges = []
    for pair in seqs:
        if not (isinstance(pair, list) and len(pair) == 2 and all(_is_seq(n) for n in pair) and pair[0] <= pair[1]):
            raise WireError("bad_value", f"ack range {str(pair)[:40]} is not [first, last] with 1 <= first <= last")
        ranges.append((int(pair[0]), int(pair[1])))
    return Ack(stream, tuple(ranges), _version(body), _caps(body))


def _version(body: dict[str, Any]) -> str | None:
    """A hello's ``version``, checked; None when it says none."""
    version = body.get("version")
    if version is None:
        return None
    if not isinstance(version, str) or not VERSION_RE.fullmatch(version):
        raise WireError("bad_value", f"version {str(version)[:40]!r} does not match {VERSION_RE.pattern}")
    return version


def _caps(body: dict[str, Any]) -> tuple[str, ...] | None:
    """A hello's ``caps``, checked (names unknown here are kept: a newer program's); None when it says none."""
    caps = body.get("caps")
    if caps is None:
        return None
    if (
        not isinstance(caps, list)
        or len(caps) > MAX_CAPS
        or not all(isinstance(cap, str) and CAP_RE.fullmatch(cap) for cap in caps)
    ):
        raise WireError("bad_value", f"caps must be a list of at most {MAX_CAPS} names matching {CAP_RE.pattern}")
    return tuple(caps)


def agreed(ours: Iterable[str], theirs: Iterable[str] | None) -> tuple[str, ...]:
    """The capabilities both sides have, in ``CAPABILITIES`` order (none when the other said none)."""
    both = set(ours) & set(theirs or ())
    return tuple(cap for cap in CAPABILITIES if cap in both)


def _is_seq(value: Any) -> bool:
    return type(value) is int and 1 <= value <= MAX_SEQ


def decode_report(kind: str, raw: bytes) -> Report:
    """Validate a payload against the contract for ``kind``; raises WireError on any breach."""
    body = _json_body(raw)
    if not isinstance(body, dict):
        raise WireError("bad_shape", f"payload is {type(body).__name__}, expected an object")
    if body.get("v") != SCHEMA_VERSION:
        raise WireError("bad_version", f"v={str(body.get('v'))[:20]!r}, expected {SCHEMA_VERSION}")
    ts = _number(body.get("ts"), "ts")
    report = Report(kind=kind, ts=ts)
    report.stream, report.seq = _sequence(body, kind)
    if kind != "status" and "demand" in body:
        report.demand = _demand(body["demand"])
    unknown: list[str] = []
    if kind == "status":
        report.state = _status_state(body)
        report.reason = _status_reason(body, report.state)
        if report.state == "online":
            report.version, report.caps = _version(body), _caps(body)
        for key in body:
            if key not in ENVELOPE_KEYS and key not in STATUS_KEYS:
                unknown.append(_unknown(key, kind))
        report.unknown = tuple(unknown)
        return report
    sections = SECTIONS_BY_KIND[kind]
    for key, value in body.items():
        if key in ENVELOPE_KEYS:
            continue
        section = sections.get(key)
        if section is None:
            unknown.append(_unknown(key, kind))
            continue
        report.sections[key] = _section_items(key, section, value, unknown)
    answer = report.demand is not None and report.demand.state != "done"  # accepted or refused: no section
    if not report.sections and not unknown and not answer:
        raise WireError("bad_shape", f"{kind} report carries no section")
    report.unknown = tuple(unknown)
    return report


def _unknown(name: str, where: str) -> str:
    """The name of a field or section skipped as unknown; refused when it is not a plain name."""
    if not UNKNOWN_NAME_RE.fullmatch(name):
        raise WireError("unknown_field", f"{where}: {name[:40]!r} is not in the contract (nor a plain name)")
    return name


def _sequence(body: dict[str, Any], kind: str) -> tuple[str | None, int | None]:
    """The stream and sequence number of a report: both or neither (a status has a stream only)."""
    stream, seq = body.get("stream"), body.get("seq")
    if stream is None and seq is None:
        return None, None
    if not isinstance(stream, str) or not STREAM_RE.fullmatch(stream):
        raise WireError("bad_sequence", f"stream {str(stream)[:40]!r} does not match {STREAM_RE.pattern}")
    if kind == "status":
        if seq is not None:
            raise WireError("bad_sequence", "a status carries no seq")
        return stream, None
    if not _is_seq(seq):
        raise WireError("bad_sequence", f"seq {str(seq)[:30]!r} is not a whole number from 1 to 2**53")
    return stream, int(seq)  # type: ignore[arg-type]


def _status_state(body: dict[str, Any]) -> str:
    state = body.get("state")
    if state not in STATUS_STATES:
        raise WireError("bad_value", f"status state {str(state)[:20]!r} is not online/offline")
    return str(state)


def _status_reason(body: dict[str, Any], state: str) -> str | None:
    reason = body.get("reason")
    if reason is None:
        return None
    if state != "offline" or reason not in STATUS_REASONS:
        raise WireError("bad_value", f"status reason {str(reason)[:20]!r} is not stop/will on an offline status")
    return str(reason)


def _section_items(name: str, section: Section, value: Any, unknown: list[str]) -> list[dict[str, float | str]]:
    if section.label is None:
        if not isinstance(value, dict):
            raise WireError("bad_shape", f"section {name!r} must be an object")
        return [_fields(name, section, value, unknown)]
    if not isinstance(value, list):
        raise WireError("bad_shape", f"section {name!r} must be a list")
    if len(value) > MAX_LIST_ITEMS:
        raise WireError("oversized", f"section {name!r} has {len(value)} items > {MAX_LIST_ITEMS}")
    items = []
    for item in value:
        if not isinstance(item, dict):
            raise WireError("bad_shape", f"items of {name!r} must be objects")
        label = item.get(section.label)
        if not isinstance(label, str) or not LABEL_RE.fullmatch(label):
            raise WireError(
                "bad_label", f"{name}.{section.label}={str(label)[:70]!r} does not match {LABEL_RE.pattern}"
            )
        fields = _fields(name, section, {k: v for k, v in item.items() if k != section.label}, unknown)
        _check_choices(name, section, fields)
        fields[section.label] = label
        items.append(fields)
    return items


def _check_choices(name: str, section: Section, fields: dict[str, float | str]) -> None:
    """Fields limited to a closed set (``Section.choices``) hold one of its values; a tag field is required."""
    for key in section.tags:
        if key not in fields:
            raise WireError("bad_shape", f"{name}.{key} is missing (it becomes a tag)")
    for key, allowed in section.choices.items():
        if key in fields and fields[key] not in allowed:
            raise WireError("bad_value", f"{name}.{key}={str(fields[key])[:40]!r} is not one of {', '.join(allowed)}")


def _fields(name: str, section: Section, value: dict[str, Any], unknown: list[str]) -> dict[str, float | str]:
    out: dict[str, float | str] = {}
    for key, raw in value.items():
        kind = section.fields.get(key)
        if kind is None:
            field = f"{name}.{_unknown(key, name)}"
            if field not in unknown:  # once per message, however many items carry it
                unknown.append(field)
            continue
        if raw is None:
            continue
        if kind == NUMBER:
            # a finite float (what agents send) needs no conversion; anything else gets the full checks
            out[key] = raw if type(raw) is float and math.isfinite(raw) else _number(raw, f"{name}.{key}")
        elif not isinstance(raw, str) or len(raw) > MAX_STRING_CHARS:
            raise WireError("bad_type", f"{name}.{key} must be a string of at most {MAX_STRING_CHARS} chars")
        else:
            out[key] = raw
    return out


def _number(raw: Any, where: str) -> float:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if not isinstance(raw, (int, float)):
        raise WireError("bad_type", f"{where} is {type(raw).__name__}, expected a number")
    try:
        number = float(raw)
    except OverflowError:
        raise WireError("bad_value", f"{where} is out of range") from None
    if not math.isfinite(number):
        raise WireError("bad_value", f"{where} is not finite")
    return number


# ---- known USB ids handed from the collector to agents (``.../<host>/cmd/known_ids``) ----
# ``commune-collector registry import-known-ids`` stores rows an area team added for devices its
# agents reported as ``other``; the collector sends them to an agent when it says ``online`` (its
# hello): ``{"v": 1, "ts": <now>, "rows": [["1083", "1658", "scanner", "Canon DR-C225"], ...]}``.
KNOWN_IDS_COMMAND: Final = "known_ids"
MAX_KNOWN_ID_ROWS: Final = 1000
MAX_MODEL_CHARS: Final = 128
USB_ID_RE: Final = re.compile(r"^[0-9a-f]{4}$")

KnownIdRow = Tuple[str, str, str, str]  # vendor_id, product_id, kind, model; typing's name: run time on 3.8


def known_id_row(vendor_id: Any, product_id: Any, kind: Any, model: Any) -> KnownIdRow:
    """One checked row (ids lower-cased); raises WireError("bad_value") naming the field."""
    ids = []
    for name, value in (("vendor_id", vendor_id), ("product_id", product_id)):
        text = value.strip().lower() if isinstance(value, str) else ""
        if not USB_ID_RE.match(text):
            raise WireError("bad_value", f"{name} {str(value)[:20]!r} must be four hex digits, e.g. 04a9")
        ids.append(text)
    if kind not in PERIPHERAL_KINDS:
        raise WireError("bad_value", f"kind {str(kind)[:20]!r} must be one of {', '.join(PERIPHERAL_KINDS)}")
    if not isinstance(model, str) or len(model) > MAX_MODEL_CHARS or not model.isprintable():
        raise WireError("bad_value", f"model must be printable text of at most {MAX_MODEL_CHARS} characters")
    return ids[0], ids[1], kind, model.strip()


def known_ids_payload(rows: Iterable[KnownIdRow], now: float | None = None) -> bytes:
    """What the collector publishes on ``.../cmd/known_ids``."""
    return encode({"v": SCHEMA_VERSION, "ts": stamp(now), "rows": [list(row) for row in rows]})


def decode_known_ids(raw: bytes) -> list[KnownIdRow]:
    """The rows of a ``known_ids`` command; raises WireError on any breach (then none is used)."""
    body = _json_body(raw)
    if not isinstance(body, dict) or body.get("v") != SCHEMA_VERSION:
        raise WireError("bad_version", "a known_ids command is an object with v=1")
    rows = body.get("rows")
    if not isinstance(rows, list) or len(rows) > MAX_KNOWN_ID_ROWS:
        raise WireError("bad_shape", f"known_ids rows must be a list of at most {MAX_KNOWN_ID_ROWS} rows")
    out = []
    for row in rows:
        if not isinstance(row, list) or len(row) != 4:
            raise WireError("bad_shape", "a known_ids row is [vendor_id, product_id, kind, model]")
        out.append(known_id_row(*row))
    return out


# ---- on-demand actions (``.../<host>/cmd/action``) ----
# A fixed catalogue of named actions, never a shell. The collector sends
# ``{"v": 1, "ts": <now>, "id": "<request id>", "action": "speedtest_now", "mode": "wan"}``; the agent
# answers at once with a report of no section on its ``ANSWER_KIND`` topic carrying
# ``"demand": {"id": ..., "action": ..., "state": "accepted"}`` (or ``"refused"`` with a ``reason``),
# then sends the result as a normal report of the action's kind with ``"state": "done"``. The
# collector writes the result's points tagged ``on_demand`` and the monthly figures leave them out.
ACTION_COMMAND: Final = "action"
ACTION_KINDS: Final = {
    "speedtest_now": "speedtest",  # the province endpoint (wan) or the internet; the busy-line guard applies
    "probe_now": "probe",  # gateway, DNS and the configured targets
    "inventory_now": "inventory",
    "peripherals_now": "peripherals",
}
ACTIONS: Final = tuple(ACTION_KINDS)
ANSWER_KIND: Final = "metrics"  # where accepted and refused answers travel (every agent may publish there)
# accepted and refused: the agent's answer at once; done: the result; failed: the action ran and
# made no report (its reason says what broke)
DEMAND_STATES: Final = ("accepted", "refused", "done", "failed")
# Why an agent refuses an action: not in its ``[actions] allow``, a name it does not know, a request
# it cannot read, the same action still running, or the part it needs turned off in its config.
REFUSALS: Final = ("not_allowed", "unknown_action", "bad_request", "busy", "disabled")
SPEEDTEST_MODES: Final = ("", "wan", "internet")  # "": the agent's configured modes
REQUEST_ID_RE: Final = re.compile(r"^[0-9a-f]{8,32}$")
ACTION_NAME_RE: Final = re.compile(r"^[a-z0-9_]{1,32}$")


@dataclass(frozen=True)
class ActionRequest:
    """A checked request from the collector."""

    id: str
    action: str
    mode: str = ""  # speedtest_now only


def action_request_payload(request_id: str, action: str, mode: str = "", now: float | None = None) -> bytes:
    """What the collector publishes on ``.../cmd/action``."""
    body: dict[str, Any] = {"v": SCHEMA_VERSION, "ts": stamp(now), "id": request_id, "action": action}
    if mode:
        body["mode"] = mode
    return encode(body)


def request_id_of(raw: bytes) -> str | None:
    """The request id of a command, when it can be read at all (to refuse a bad request by its id)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    found = body.get("id") if isinstance(body, dict) else None
    return found if isinstance(found, str) and REQUEST_ID_RE.fullmatch(found) else None


def decode_action_request(raw: bytes) -> ActionRequest:
    """A request on ``.../cmd/action``, checked; raises WireError on any breach (``unknown_kind`` for a
    well-formed name outside the catalogue, so the agent can say which it was)."""
    body = _json_body(raw)
    if not isinstance(body, dict) or body.get("v") != SCHEMA_VERSION:
        raise WireError("bad_version", "an action request is an object with v=1")
    request_id, action, mode = body.get("id"), body.get("action"), body.get("mode", "")
    if not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id):
        raise WireError("bad_value", f"request id {str(request_id)[:40]!r} does not match {REQUEST_ID_RE.pattern}")
    if not isinstance(action, str) or not ACTION_NAME_RE.fullmatch(action):
        raise WireError("bad_value", f"action {str(action)[:40]!r} does not match {ACTION_NAME_RE.pattern}")
    if action not in ACTION_KINDS:
        raise WireError("unknown_kind", f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if mode not in SPEEDTEST_MODES or (mode and action != "speedtest_now"):
        raise WireError("bad_value", f"mode {str(mode)[:20]!r} is wan, internet or none, and for speedtest_now only")
    return ActionRequest(request_id, action, str(mode))


def demand_envelope(request_id: str, action: str, state: str, reason: str = "") -> dict[str, Any]:
    """The ``demand`` an agent puts in an answer or a result."""
    body = {"id": request_id, "action": action if ACTION_NAME_RE.fullmatch(action) else "unknown", "state": state}
    if reason:
        body["reason"] = reason
    return body


def _demand(value: Any) -> Demand:
    """A report's ``demand``, checked; raises WireError("bad_value") naming the fault."""
    keys = {"id", "action", "state"}
    if not isinstance(value, dict) or not keys <= set(value) <= {*keys, "reason"}:
        raise WireError("bad_value", "demand must be an object with id, action, state and, if refused, reason")
    request_id, action, state, reason = value["id"], value["action"], value["state"], value.get("reason", "")
    if not isinstance(request_id, str) or not REQUEST_ID_RE.fullmatch(request_id):
        raise WireError("bad_value", f"demand id {str(request_id)[:40]!r} does not match {REQUEST_ID_RE.pattern}")
    if not isinstance(action, str) or not ACTION_NAME_RE.fullmatch(action):
        raise WireError("bad_value", f"demand action {str(action)[:40]!r} does not match {ACTION_NAME_RE.pattern}")
    if state not in DEMAND_STATES:
        raise WireError("bad_value", f"demand state {str(state)[:20]!r} is not one of {', '.join(DEMAND_STATES)}")
    if (
        not isinstance(reason, str)
        or (reason and not ACTION_NAME_RE.fullmatch(reason))
        or bool(reason) != (state in ("refused", "failed"))
    ):
        raise WireError("bad_value", "a refused or failed demand says why (a plain name); the others say no reason")
    return Demand(request_id, action, state, reason)
