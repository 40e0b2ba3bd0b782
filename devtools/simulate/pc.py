"""What one virtual PC publishes and how it acknowledges, as a real agent does (wire contract of
``common/wire.py``): status with a Last Will, inventory, metrics, probes, peripherals, and speed
tests from the commune's line-probe PC, with realistic values and the faults its plan gives it.

Its ``online`` status names its stream, its reports carry ``seq`` and ``stream``, it reads its own
``.../cmd/ack`` and forgets a report only once the collector has acknowledged it, so benchmarks pay
for acknowledgements in both directions. How the bytes reach the broker is the transport's job
(``transport.Link``); the backfill captures the same reports without a broker.

Like the agent, it keeps what it measures while it has no broker: every report goes into a bounded
in-memory spool (``Spool``, oldest dropped first and counted) and leaves it at the drain rate while
connected, oldest first; a report sent and not acknowledged when its connection was lost is sent
again on the next one. So a province server that comes back after an outage faces the backlog a
province of agents would send it.
"""

from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from common.wire import (
    ACK_COMMAND,
    SCHEMA_VERSION,
    WireError,
    command_topic,
    decode_ack,
    encode,
    report_topic,
    status_payload,
    with_sequence,
)
from devtools.simulate.plan import OUTAGE_FAULTS, VirtualHost
from devtools.simulate.transport import NO_LINK, Link

log = logging.getLogger("devtools.simulate")
GB = 2**30
SPOOL_MESSAGES = 480  # reports a virtual PC keeps while it cannot send: 4 hours at 30 s (metrics and probe)
DRAIN_PER_S = 50.0  # reports a second it sends from its spool, as the agent's ``[spool] drain_per_s``


@dataclass(frozen=True)
class Spooled:
    seq: int
    topic: str
    data: bytes
    measured: float  # wall clock when it was measured
    metrics: bool  # a metrics report (the ones counted against InfluxDB's ``system`` points)


@dataclass
class Spool:
    """A virtual PC's outbox and what it has sent but not had acknowledged, with its counts."""

    limit: int = SPOOL_MESSAGES
    drain_per_s: float = DRAIN_PER_S

    def __post_init__(self) -> None:
        self.outbox: deque[Spooled] = deque()
        self.sent: dict[int, tuple[Spooled, int]] = {}  # seq -> (report, connection it went out on)
        self.metrics_made = 0
        self.dropped = 0  # reports pushed out by the bound, never sent
        self.metrics_dropped = 0
        self.resent = 0  # sent again on a new connection
        self.published = 0  # handed to the broker connection, resent ones included

    def add(self, report: Spooled) -> None:
        self.outbox.append(report)
        self.metrics_made += report.metrics
        self._bound()

    def _bound(self) -> None:
        while len(self.outbox) > self.limit:
            gone = self.outbox.popleft()
            self.dropped += 1
            self.metrics_dropped += gone.metrics

    def take(self, budget: int, connection: int) -> list[Spooled]:
        """Up to ``budget`` reports to send now, oldest first, noted as sent on ``connection``."""
        out: list[Spooled] = []
        while self.outbox and len(out) < budget:
            report = self.outbox.popleft()
            self.sent[report.seq] = (report, connection)
            out.append(report)
        self.published += len(out)
        return out

    def requeue(self, connection: int) -> None:
        """A new connection: what went out on an earlier one unacknowledged goes first again."""
        again = sorted((r for r, conn in self.sent.values() if conn < connection), key=lambda r: r.seq)
        for report in again:
            del self.sent[report.seq]
        self.resent += len(again)
        self.outbox.extendleft(reversed(again))
        self._bound()

    def acknowledged(self, first: int, last: int) -> None:
        if last - first < len(self.sent):
            for seq in range(first, last + 1):
                self.sent.pop(seq, None)
            return
        for seq in [s for s in self.sent if first <= s <= last]:
            del self.sent[seq]

    def clear(self) -> None:
        self.outbox.clear()
        self.sent.clear()

    def pending(self) -> int:
        return len(self.outbox) + len(self.sent)

    def metrics_pending(self) -> int:
        return sum(r.metrics for r in self.outbox) + sum(r.metrics for r, _conn in self.sent.values())

    def oldest_pending(self) -> float | None:
        """When the oldest report not yet acknowledged was measured (None: nothing pending)."""
        times = [r.measured for r, _conn in self.sent.values()]
        if self.outbox:
            times.append(self.outbox[0].measured)
        return min(times, default=None)


class VirtualAgent:
    """One PC, publishing like ``agent.cli run`` over the ``Link`` its transport gives it."""

    def __init__(self, host: VirtualHost, rng: random.Random) -> None:
        self.host, self.rng = host, rng
        self.cpu = rng.uniform(5, 30)
        self.dropped = False
        self.stream = f"{rng.getrandbits(64):016x}"
        self.seq = 0
        self.spool = Spool()
        self.connections = 0
        self.drained_at = time.monotonic()
        self.acks = 0
        self.ack_topic = command_topic(host.province, host.commune, host.host, ACK_COMMAND)
        self.link: Link = NO_LINK
        self.relink: Callable[[], Link] = lambda: NO_LINK  # a new connection, for a PC back from going dark
        self.dark = False  # switched off by an outage fault (power cut, office closed) until it is over
        self.bad_sectors = 0  # reallocated sectors of its disk: they grow once a disk_failing fault starts

    @property
    def client_id(self) -> str:
        return f"sim-{self.host.province}-{self.host.commune}-{self.host.host}"

    @property
    def will(self) -> tuple[str, bytes]:
        """The Last Will the broker publishes when this PC vanishes."""
        return self.topic("status"), status_payload("offline", reason="will")

    def topic(self, kind: str) -> str:
        return report_topic(self.host.province, self.host.commune, self.host.host, kind)

    def publish(self, kind: str, body: dict[str, Any], retain: bool = False) -> None:
        if kind == "status":
            data = encode(body)
            self.host.sent_bytes += len(data)
            self.link.publish(self.topic(kind), data, retain)
            return
        self.seq += 1
        now = time.time()
        data = with_sequence(encode({"v": SCHEMA_VERSION, "ts": int(now), **body}), self.stream, self.seq)
        self.spool.add(Spooled(self.seq, self.topic(kind), data, now, kind == "metrics"))
        if len(self.spool.outbox) == 1:  # no backlog: it goes now, as the agent's live reports do
            self.send(1)

    def send(self, budget: int) -> None:
        """Publish up to ``budget`` spooled reports, if the PC has a broker."""
        if not self.link.ready():
            return
        for report in self.spool.take(budget, self.connections):
            self.host.sent_bytes += len(report.data)
            self.link.publish(report.topic, report.data)

    def drain(self) -> None:
        """Send from the backlog at the spool's drain rate since the last call."""
        now = time.monotonic()
        budget = int(min(1.0, now - self.drained_at) * self.spool.drain_per_s)
        if budget < 1:
            return
        self.drained_at = now
        self.send(budget)

    def on_connect(self) -> None:
        """A new connection: reports unacknowledged on the last one go first, then ``connected``."""
        self.connections += 1
        self.spool.requeue(self.connections)
        self.connected()

    def connected(self) -> None:
        """The broker accepted the connection: ``online`` with this stream, the ack topic, the inventory."""
        self.link.publish(self.topic("status"), status_payload("online", self.stream), retain=True)
        self.link.subscribe(self.ack_topic)
        h = self.host
        self.publish("inventory", {"inventory": {
            "os": "Windows 10 Pro" if h.ram_gb >= 4 else "Windows 7 Professional", "os_version": "10.0.19045",
            "architecture": "AMD64", "cpu_model": "Intel(R) Core(TM) i3-4150 CPU @ 3.50GHz" if h.cores <= 2
            else "Intel(R) Core(TM) i5-10400 CPU @ 2.90GHz", "agent_version": "sim", "disks": "C: SSD",
            "nics": "eth0", "cpu_cores": float(h.cores), "cpu_threads": float(h.cores * 2),
            "ram_bytes": h.ram_gb * GB, "disk_total_bytes": h.disk_gb * GB, "boot_time": h.boot_time}})  # fmt: skip
        self.disk_health()

    def disk_health(self) -> None:
        """Its disk's S.M.A.R.T., as an agent sends it (every 6 h, here at connect and each round of a
        failing disk): a SATA SSD, its reallocated and pending sectors growing once it fails."""
        self.publish("inventory", {"disk_health": [{
            "disk": "sda", "model": "KINGSTON SA400S37240G", "serial": f"SIM{self.host.commune}{self.host.host}",
            "type": "ssd", "smart_available": 1.0, "system": 1.0, "power_on_hours": 21000.0 + self.bad_sectors,
            "health_passed": 1.0, "reallocated_sectors": float(self.bad_sectors),
            "pending_sectors": float(self.bad_sectors // 4), "temp_c": 38.0}]})  # fmt: skip

    def on_ack(self, payload: bytes) -> None:
        """The collector stored these reports: forget them, as the agent's spool does."""
        self.host.received_bytes += len(payload)
        try:
            ack = decode_ack(payload)
        except WireError:
            log.warning("virtual agent got a malformed ack", extra={"host": self.host.host})
            return
        if ack.stream != self.stream:
            return
        self.acks += 1
        for first, last in ack.ranges:
            self.spool.acknowledged(first, last)

    def drop(self) -> None:
        """The PC vanishes (power cut, dead line): no DISCONNECT, so the broker sends the Last Will."""
        if self.dropped:
            return
        self.dropped = True
        self.link.drop()

    def stop(self) -> None:
        """A clean shutdown, like the real agent's: a retained ``offline``, then DISCONNECT."""
        if not self.dropped and not self.dark:
            self.link.close(self.topic("status"), status_payload("offline", reason="stop"))

    def go_dark(self) -> None:
        """An outage fault begins: a power cut drops the PC (Last Will), an office closing shuts it
        down cleanly. Nothing is measured until it is back."""
        if self.dark:
            return
        self.dark = True
        if self.host.fault == "power_cut":
            self.link.drop()
        else:
            self.link.close(self.topic("status"), status_payload("offline", reason="stop"))

    def come_back(self) -> None:
        """Switched on again: a new boot time and a new connection (``online``, inventory). Its
        in-memory spool went with the power: reports not yet acknowledged are forgotten."""
        self.dark = False
        self.host.boot_time = time.time()
        self.spool.clear()
        self.link = self.relink()

    def tick(self, interval_s: float, faulty: bool, outage_over: bool = False) -> None:
        h, rng = self.host, self.rng
        if faulty and (h.fault in ("goes_offline", "dead_line")):
            self.drop()
            return
        if faulty and h.fault in OUTAGE_FAULTS and not outage_over:
            self.go_dark()
            return
        if self.dark:
            self.come_back()  # its reports start with the next round, after a new boot
            return
        if self.dropped:
            return
        self.cpu = min(100.0, max(1.0, self.cpu + rng.uniform(-8, 8)))
        fault = h.fault if faulty else ""  # old hardware's small RAM shows in the inventory from the start
        if fault == "old_hardware":
            self.cpu = rng.uniform(85, 100)
        if faulty and h.fault == "disk_filling":
            h.disk_used_gb = min(h.disk_gb * 0.99, h.disk_used_gb + h.disk_gb * 0.02)
        if fault == "disk_failing":
            self.bad_sectors += rng.randint(1, 8)
            self.disk_health()
        slow = fault == "disk_slow"
        mem = rng.uniform(92, 98) if fault == "old_hardware" else rng.uniform(35, 75)
        uplink = "ppp0" if fault == "other_uplink" else "eth0"
        rate = rng.uniform(5e3, 40e3) if fault == "other_uplink" else rng.uniform(50e3, 600e3)
        self.publish("metrics", {
            "system": {"cpu_percent": round(self.cpu, 1), "load1": self.cpu / 25, "cpu_count": float(h.cores),
                       "mem_total_bytes": h.ram_gb * GB, "mem_used_percent": round(mem, 1),
                       "mem_available_bytes": h.ram_gb * GB * (1 - mem / 100),
                       "swap_used_percent": 70.0 if fault == "old_hardware" else 5.0,
                       "uptime_s": time.time() - h.boot_time, "boot_time": h.boot_time, "process_count": 140.0},
            "disk": [{"mount": "C:", "total_bytes": h.disk_gb * GB, "used_bytes": h.disk_used_gb * GB,
                      "free_bytes": (h.disk_gb - h.disk_used_gb) * GB,
                      "used_percent": round(100 * h.disk_used_gb / h.disk_gb, 1),
                      "read_bytes_per_s": rng.uniform(0, 2e6), "write_bytes_per_s": rng.uniform(0, 1e6)}],
            "net": [{"nic": uplink, "rx_bytes_per_s": rate, "tx_bytes_per_s": rate / 4, "speed_mbps": 100.0,
                     "up": 1.0, "default_route": 1.0}],
            "sensors": [{"sensor": "coretemp", "temp_c": round(40 + self.cpu * 0.35 + rng.uniform(-2, 2), 1),
                         "temp_high_c": 85.0, "temp_critical_c": 100.0}],
            "agent": {"interval_s": interval_s, "cycle_ms": rng.uniform(15, 40), "rss_bytes": 24e6,
                      "spool_depth": 0.0},
            "io": {"system_disk": "sda", "busy_percent": rng.uniform(93, 100) if slow else rng.uniform(1, 20),
                   "await_ms": rng.uniform(150, 900) if slow else rng.uniform(0.5, 8),
                   "psi_io_some_avg60": rng.uniform(30, 70) if slow else rng.uniform(0, 2)},
        })  # fmt: skip
        lossy = fault == "lossy_line"
        self.publish("probe", {"probe": [
            {"target": "gateway", "method": "ping", "scope": "gateway", "ok": 1.0, "rtt_avg_ms": rng.uniform(0.5, 2),
             "loss_percent": 0.0},
            {"target": "province", "method": "ping", "scope": "wan", "ok": 1.0,
             "rtt_avg_ms": rng.uniform(180, 260) if lossy else rng.uniform(12, 30),
             "loss_percent": rng.uniform(8, 15) if lossy else 0.0,
             "jitter_ms": rng.uniform(1, 5)},
            {"target": "dns", "method": "dns", "scope": "internet", "ok": 1.0, "duration_ms": rng.uniform(5, 40)},
        ]})  # fmt: skip

    def peripherals(self, since: float, at: float | None = None) -> None:
        """What is plugged in, as the agent reports it: at the start, then hourly (``at``: the
        moment it says, by default the wall clock)."""
        if self.dropped:
            return
        now = time.time() if at is None else at
        minutes = round(max(0.0, now - since) / 60, 1)
        tokens = [device["device"] for device in self.host.devices if device["kind"] == "token"]
        sections: dict[str, Any] = {"peripherals": [
            {**device, "present": 1.0, "minutes_today": minutes, "first_seen_today": since, "last_seen_today": now,
             **({"pcsc": 1.0} if device["kind"] == "token" else {})}
            for device in self.host.devices
        ]}  # fmt: skip
        if tokens:  # one reader per token, as pcsc-lite names a USB token's; opened shortly before, or never
            sections["smartcard"] = [smartcard_reader(token, token not in self.host.never_opened, now)
                                     for token in tokens]  # fmt: skip
        self.publish("peripherals", sections)

    def speedtest(self, faulty: bool) -> None:
        if self.dropped or self.host.role != "line-probe":
            return
        slow = faulty and self.host.fault == "lossy_line"
        down = self.rng.uniform(25, 40) if slow else self.rng.uniform(82, 97)
        up = self.rng.uniform(20, 35) if slow else self.rng.uniform(80, 95)
        self.publish("speedtest", {"speedtest": [{"mode": "wan", "ok": 1.0, "download_mbps": round(down, 1),
                                                  "upload_mbps": round(up, 1), "ping_ms": self.rng.uniform(10, 30),
                                                  "server": "Speedtest Mini (simulated)",
                                                  "bytes_used": (down + up) * 1.25e6 * 10}]})  # fmt: skip


def smartcard_reader(device: str, opened: bool, now: float) -> dict[str, Any]:
    """A token's PC/SC reader as the agent reports it: opened by an application ten minutes ago, or never."""
    serial = device.rsplit("-", 1)[-1]
    return {"reader": f"Feitian_ePass2003_{serial}", "name": f"FT ePass2003 [ePass2003] ({serial}) 00 00",
            "device": device, "card_now": 1.0, "card_present": 1.0, "in_use_now": 0.0,
            "in_use": 1.0 if opened else 0.0, "opened": 1.0 if opened else 0.0,
            "last_in_use": now - 600 if opened else 0.0}  # fmt: skip
