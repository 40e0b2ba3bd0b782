"""``commune-collector simulate``: a whole province of virtual agents in one process, over real MQTT.

Every commune of the province (from ``vietnam-provinces``; Tuyên Quang has 124) gets PCs that
publish what a real agent publishes (wire contract of ``common/wire.py``: status with a Last Will,
inventory, metrics, probes, and speed tests from one line-probe PC per commune), with realistic
values, and a seeded share of faults: dead lines (every PC of the commune drops off the
network), PCs that go offline, disks filling up, old hardware, lossy lines, lines installed
but unused (no PC, or PCs on a 4G uplink). Areas and lines for the province are written into
the registry so the fleet state has contracts to compare with.

Each virtual PC acknowledges like a real agent: its ``online`` status names its stream, its
reports carry ``seq`` and ``stream``, it reads its own ``.../cmd/ack`` and forgets a report only
once the collector has acknowledged it, so benchmarks pay for acknowledgements in both directions.

Every commune with PCs was issued a scanner (no serial) and two digital-signature tokens (with
serials), written into the equipment registry; one of its PCs reports them plugged in (a
``peripherals`` report at the start and hourly, as the agent does). Equipment faults hold from the
start, since "never plugged in" cannot begin later: ``token_unused`` (the second token is never
plugged in) and ``scanner_missing`` (the scanner never is), each in a seeded share of the communes
without a line fault.

For demos and benchmarks, on a broker without per-host ACLs: each virtual PC connects with its
own client id and Last Will, but with the credentials of ``[mqtt]``.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from collector.config import CollectorConfig
from collector.registry import units
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import Line, Registry
from collector.store import Store
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

log = logging.getLogger("devtools.simulate")
COMMUNE_FAULTS = ("dead_line", "no_agent", "other_uplink", "lossy_line")
HOST_FAULTS = ("goes_offline", "disk_filling", "old_hardware")
EQUIPMENT_FAULTS = ("token_unused", "scanner_missing")
ISSUED_ON = "2025-08-15"
GB = 2**30


@dataclass
class VirtualHost:
    province: str
    commune: str
    host: str
    role: str  # "pc" or "line-probe"
    fault: str = ""  # a HOST_FAULTS or COMMUNE_FAULTS entry, or "" for a healthy PC
    ram_gb: float = 8.0
    cores: int = 4
    disk_gb: float = 256.0
    disk_used_gb: float = 80.0
    boot_time: float = 0.0
    sent_bytes: int = 0
    received_bytes: int = 0  # acknowledgements
    devices: list[dict[str, str]] = field(default_factory=list)  # peripherals plugged in (device, kind, serial, model)


@dataclass
class Plan:
    province: str
    hosts: list[VirtualHost]
    areas: dict[str, tuple[str, list[str]]]  # code -> (name, communes)
    lines: list[Line]
    faults: dict[str, list[str]] = field(default_factory=dict)  # fault -> communes or province/commune/host
    equipment: list[IssuedItem] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {"province": self.province, "communes": len(self.lines), "hosts": len(self.hosts),
                "areas": len(self.areas), "faults": self.faults}  # fmt: skip


def make_plan(province: str, hosts_per_commune: int, seed: int, fault_share: float = 0.05) -> Plan:
    """Deterministic for a seed: which communes and PCs get which fault. ``fault_share`` (0 to 0.25)
    of the communes, and of the PCs, get each fault; 0 gives a healthy province."""
    if not 0 <= fault_share <= 0.25:
        raise ValueError(f"fault share {fault_share} is outside 0..0.25 (each of 4 commune faults takes that share)")
    if hosts_per_commune < 1:
        raise ValueError(f"hosts per commune must be at least 1, not {hosts_per_commune}")
    rng = random.Random(seed)
    communes = [c.code for c in units.communes_of(province)]
    if not communes:
        raise ValueError(f"province {province!r} has no communes in vietnam-provinces; use a code such as 08")
    per_area = max(1, round(len(communes) / 8))
    areas = {
        f"KV{i // per_area + 1:02d}": (f"Khu vực {i // per_area + 1}", communes[i : i + per_area])
        for i in range(0, len(communes), per_area)
    }
    shuffled = communes[:]
    rng.shuffle(shuffled)
    count = max(1, round(len(communes) * fault_share)) if fault_share else 0
    commune_fault = {c: COMMUNE_FAULTS[i // count] for i, c in enumerate(shuffled[: count * len(COMMUNE_FAULTS)])}
    hosts: list[VirtualHost] = []
    for commune in communes:
        fault = commune_fault.get(commune, "")
        if fault == "no_agent":
            continue
        for n in range(hosts_per_commune):
            role = "line-probe" if n == 0 else "pc"
            name = f"pc-{n + 1:02d}"
            disk = rng.choice((120.0, 256.0, 500.0))
            hosts.append(VirtualHost(province, commune, name, role, fault, rng.choice((4.0, 8.0, 8.0, 16.0)),
                                     rng.choice((2, 4, 4, 8)), disk, disk * rng.uniform(0.2, 0.6)))  # fmt: skip
    healthy = [h for h in hosts if not h.fault]
    rng.shuffle(healthy)
    per_fault = max(1, round(len(hosts) * fault_share)) if fault_share else 0
    for i, host in enumerate(healthy[: per_fault * len(HOST_FAULTS)]):
        host.fault = HOST_FAULTS[i // per_fault]
        if host.fault == "old_hardware":
            host.ram_gb, host.cores = 2.0, 1
        if host.fault == "disk_filling":
            host.disk_used_gb = host.disk_gb * 0.8
    faults: dict[str, list[str]] = {name: [] for name in COMMUNE_FAULTS + HOST_FAULTS}
    for commune, fault in sorted(commune_fault.items()):
        faults[fault].append(commune)
    for host in hosts:
        if host.fault in HOST_FAULTS:
            faults[host.fault].append(f"{host.province}/{host.commune}/{host.host}")
    isps = ("VNPT", "Viettel", "FPT")
    lines = [Line(f"SIM-{province}-{c}", province, c, rng.choice(isps), 100.0, 100.0, "2025-08-15") for c in communes]
    equipment = issue_equipment(province, hosts, commune_fault, count, rng, faults)
    return Plan(province, hosts, areas, lines, faults, equipment)


def issue_equipment(
    province: str,
    hosts: list[VirtualHost],
    commune_fault: dict[str, str],
    count: int,
    rng: random.Random,
    faults: dict[str, list[str]],
) -> list[IssuedItem]:
    """A scanner and two tokens for each commune with PCs, carried by its last PC, except what an
    equipment fault leaves in a drawer; the faults are noted in ``faults``."""
    carrier = {h.commune: h for h in hosts}  # the last PC of each commune
    clean = sorted(c for c in carrier if c not in commune_fault)
    rng.shuffle(clean)
    fault_of = {c: EQUIPMENT_FAULTS[i // count] for i, c in enumerate(clean[: count * len(EQUIPMENT_FAULTS)])}
    for name in EQUIPMENT_FAULTS:
        faults[name] = sorted(c for c, f in fault_of.items() if f == name)
    items = []
    for commune, host in sorted(carrier.items()):
        tokens = [f"SIM{commune}T{n}" for n in (1, 2)]
        items.append(IssuedItem(province, commune, "scanner", "Canon imageFORMULA DR-C225 II", "", "Bộ phận Một cửa",
                                ISSUED_ON))  # fmt: skip
        items += [IssuedItem(province, commune, "token", "Feitian ePass2003", serial, holder, ISSUED_ON)
                  for serial, holder in zip(tokens, ("Chủ tịch UBND", "Phó Chủ tịch UBND"), strict=True)]  # fmt: skip
        if fault_of.get(commune) != "scanner_missing":
            host.devices.append({"device": f"sim-scanner-{commune}", "kind": "scanner", "serial": "",
                                 "model": "Canon imageFORMULA DR-C225 II"})  # fmt: skip
        for serial in tokens[:1] if fault_of.get(commune) == "token_unused" else tokens:
            host.devices.append({"device": f"sim-token-{serial}", "kind": "token", "serial": serial,
                                 "model": "Feitian ePass2003"})  # fmt: skip
    return items


def register(plan: Plan, config: CollectorConfig) -> None:
    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        registry.upsert_lines(plan.lines)
        for code, (name, communes) in plan.areas.items():
            registry.set_area(code, name, communes)
        Equipment(store).replace_communes(plan.equipment)


class VirtualAgent:
    """One PC: its own MQTT connection (Last Will ``offline``), publishing like ``agent.cli run``."""

    def __init__(self, host: VirtualHost, config: CollectorConfig, rng: random.Random) -> None:
        self.host, self.rng = host, rng
        self.cpu = rng.uniform(5, 30)
        self.dropped = False
        self.stream = f"{rng.getrandbits(64):016x}"
        self.seq = 0
        self.unacked: set[int] = set()  # reports sent and not yet acknowledged (paho thread and main)
        self.acks = 0
        self.ack_topic = command_topic(host.province, host.commune, host.host, ACK_COMMAND)
        settings = config.mqtt
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sim-{host.province}-{host.commune}-{host.host}",
            protocol=mqtt.MQTTv311,
        )
        if settings.username:
            self.client.username_pw_set(settings.username, settings.password.get_secret_value())
        if settings.tls:
            self.client.tls_set(ca_certs=settings.ca_file or None)
        self.client.will_set(self.topic("status"), status_payload("offline", reason="will"), qos=1, retain=True)
        self.client.on_connect = self.on_connect
        self.client.on_message = self.on_ack
        self.client.connect_async(settings.host, settings.port, keepalive=30)
        self.client.loop_start()

    def topic(self, kind: str) -> str:
        return report_topic(self.host.province, self.host.commune, self.host.host, kind)

    def publish(self, kind: str, body: dict[str, Any], retain: bool = False) -> None:
        if kind == "status":
            data = encode(body)
        else:
            self.seq += 1
            self.unacked.add(self.seq)
            data = with_sequence(encode({"v": SCHEMA_VERSION, "ts": int(time.time()), **body}), self.stream, self.seq)
        self.host.sent_bytes += len(data)
        self.client.publish(self.topic(kind), data, qos=1, retain=retain)

    def on_connect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("virtual agent refused", extra={"host": self.host.host, "reason": str(reason)})
            return
        self.client.publish(self.topic("status"), status_payload("online", self.stream), qos=1, retain=True)
        self.client.subscribe(self.ack_topic, qos=1)
        h = self.host
        self.publish("inventory", {"inventory": {
            "os": "Windows 10 Pro" if h.ram_gb >= 4 else "Windows 7 Professional", "os_version": "10.0.19045",
            "architecture": "AMD64", "cpu_model": "Intel(R) Core(TM) i3-4150 CPU @ 3.50GHz" if h.cores <= 2
            else "Intel(R) Core(TM) i5-10400 CPU @ 2.90GHz", "agent_version": "sim", "disks": "C: SSD",
            "nics": "eth0", "cpu_cores": float(h.cores), "cpu_threads": float(h.cores * 2),
            "ram_bytes": h.ram_gb * GB, "disk_total_bytes": h.disk_gb * GB, "boot_time": h.boot_time}})  # fmt: skip

    def on_ack(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        """The collector stored these reports: forget them, as the agent's spool does."""
        self.host.received_bytes += len(message.payload)
        try:
            ack = decode_ack(bytes(message.payload))
        except WireError:
            log.warning("virtual agent got a malformed ack", extra={"host": self.host.host})
            return
        if ack.stream != self.stream:
            return
        self.acks += 1
        for first, last in ack.ranges:
            self.unacked.difference_update(range(first, last + 1))

    def drop(self) -> None:
        """The PC vanishes (power cut, dead line): no DISCONNECT, so the broker sends the Last Will."""
        if self.dropped:
            return
        self.dropped = True
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()

    def stop(self) -> None:
        """A clean shutdown, like the real agent's: a retained ``offline``, then DISCONNECT."""
        if not self.dropped:
            info = self.client.publish(
                self.topic("status"), status_payload("offline", reason="stop"), qos=1, retain=True
            )
            if self.client.is_connected():
                info.wait_for_publish(timeout=2)
            self.client.disconnect()
            self.client.loop_stop()

    def tick(self, interval_s: float, faulty: bool) -> None:
        h, rng = self.host, self.rng
        if faulty and (h.fault in ("goes_offline", "dead_line")):
            self.drop()
            return
        if self.dropped:
            return
        self.cpu = min(100.0, max(1.0, self.cpu + rng.uniform(-8, 8)))
        fault = h.fault if faulty else ""  # old hardware's small RAM shows in the inventory from the start
        if fault == "old_hardware":
            self.cpu = rng.uniform(85, 100)
        if faulty and h.fault == "disk_filling":
            h.disk_used_gb = min(h.disk_gb * 0.99, h.disk_used_gb + h.disk_gb * 0.02)
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

    def peripherals(self, since: float) -> None:
        """What is plugged in, as the agent reports it: at the start, then hourly."""
        if self.dropped:
            return
        now = time.time()
        minutes = round(max(0.0, now - since) / 60, 1)
        self.publish("peripherals", {"peripherals": [
            {**device, "present": 1.0, "minutes_today": minutes, "first_seen_today": since, "last_seen_today": now}
            for device in self.host.devices
        ]})  # fmt: skip

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


def run(
    config: CollectorConfig,
    plan: Plan,
    interval_s: float,
    fault_after_s: float,
    duration_s: float,
    stop: threading.Event,
    seed: int = 1,
) -> dict[str, Any]:
    """Publishes until ``stop`` is set or ``duration_s`` (0: forever) has passed; returns counts."""
    rng = random.Random(seed)
    started = time.time()
    for host in plan.hosts:
        host.boot_time = started - rng.uniform(3600, 30 * 86400)
    agents = [VirtualAgent(host, config, random.Random(rng.random())) for host in plan.hosts]
    cycles = 0
    try:
        stop.wait(min(2.0, interval_s))  # connections up, status and inventory out
        next_speedtest, next_peripherals, was_faulty = 0.0, 0.0, False
        while not stop.is_set():
            now = time.time()
            faulty = now - started >= fault_after_s
            for agent in agents:
                agent.tick(interval_s, faulty)
            if now >= next_speedtest or (faulty and not was_faulty):  # and once more as the faults start
                for agent in agents:
                    agent.speedtest(faulty)
                next_speedtest = now + 3600
            if now >= next_peripherals:
                for agent in agents:
                    agent.peripherals(started)
                next_peripherals = now + 3600
            was_faulty = faulty
            cycles += 1
            if duration_s and time.time() - started >= duration_s:
                break
            stop.wait(max(0.0, interval_s - (time.time() - now)))
    finally:
        for agent in agents:
            agent.stop()
    return {
        "cycles": cycles,
        "hosts": len(agents),
        "bytes_sent": sum(h.sent_bytes for h in plan.hosts),
        "bytes_received": sum(h.received_bytes for h in plan.hosts),
        "acks_received": sum(agent.acks for agent in agents),
        "reports_unacknowledged": sum(len(agent.unacked) for agent in agents if not agent.dropped),
    }


def plan_json(plan: Plan) -> str:
    data = plan.summary()
    data["hosts_detail"] = [asdict(h) for h in plan.hosts]
    return json.dumps(data, ensure_ascii=False, indent=1)
