"""Fleet state: which hosts are offline or degraded, which communes' lines are down, degraded or
unused, derived continuously from every accepted report.

``FleetState.observe`` (an ingest observer) keeps per-host facts; ``evaluate`` turns them into
``Condition``s for the alert manager and into the ``agent`` and ``commune`` points. Facts that
span days (reboots, report gaps, traffic per day) are saved in the state file, and for a grace
period after a restart nobody is declared offline, so restarting the collector raises nothing.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from collector.alerting.conditions import (
    HOST_DEGRADED,
    HOST_OFFLINE,
    LINE_DEGRADED,
    LINE_DOWN,
    LINE_UNUSED,
    NO_HOST,
    Condition,
)
from collector.config import FleetSettings
from collector.ingest.checks import Accepted
from collector.ingest.lineprotocol import Point
from collector.registry import units
from collector.registry.registry import HostKey, Registry
from collector.store import Store

DAY_S = 86400.0
OTHER_UPLINKS = ("wwan", "ppp", "usb", "wwp", "rmnet")  # a 4G dongle or phone, not the FTTH line
STATE_CODES = {"up": 0, "degraded": 1, "down": 2, "unused": 3, "unknown": 4}
SEVERITY = {"down": 4, "degraded": 3, "unused": 2, "unknown": 1, "up": 0}  # for "problems first"
LINE_STATE_TEXT = {  # (Vietnamese, English), in STATE_CODES order
    "up": ("Tốt", "Up"),
    "degraded": ("Kém", "Degraded"),
    "down": ("Mất kết nối", "Down"),
    "unused": ("Không sử dụng", "Unused"),
    "unknown": ("Chưa rõ", "Unknown"),
}
LINE_REASONS_VI = {
    "all_hosts_offline": "mọi máy mất kết nối",
    "wan_unreachable": "không tới được mạng WAN",
    "no_agent": "chưa có máy nào báo cáo",
    "other_uplink": "máy dùng đường 4G/khác",
    "low_traffic": "lưu lượng rất thấp",
}

REASONS_VI = {
    "disk_full": "ổ đĩa gần đầy",
    "memory_pressure": "thiếu bộ nhớ",
    "cpu_pegged": "CPU quá tải kéo dài",
    "temperature_high": "nhiệt độ cao",
    "frequent_reboots": "khởi động lại nhiều lần",
    "report_gaps": "treo máy / mất báo cáo",
    "disk_errors": "lỗi ổ đĩa",
    "old_hardware": "phần cứng cũ",
}


@dataclass
class HostFacts:
    interval_s: float = 30.0
    last_report: float = 0.0
    offline_will: bool = False
    disk_percent: float = 0.0
    mem_percent: float = 0.0
    swap_percent: float = 0.0
    cpu_percent: float = 0.0
    temp_c: float = 0.0
    temp_limit_c: float = 0.0
    disk_errors: float = 0.0
    ram_bytes: float = 0.0
    cpu_cores: float = 0.0
    boot_time: float = 0.0
    uplink: str = ""
    mem_high_since: float = 0.0
    cpu_high_since: float = 0.0
    reboots: list[float] = field(default_factory=list)
    gaps: list[float] = field(default_factory=list)
    traffic_by_day: dict[str, float] = field(default_factory=dict)  # bytes on the default-route NIC
    probe_down_since: float = 0.0
    degraded_since: float = 0.0
    samples: deque[tuple[float, float, float]] = field(default_factory=deque)  # (ts, loss %, rtt ms)
    speedtest_percent: float = -1.0


@dataclass(frozen=True)
class HostStatus:
    key: HostKey
    area: str
    online: bool
    seconds_since_report: float
    reasons: tuple[str, ...]
    since: float
    degraded_since: float = 0.0


@dataclass(frozen=True)
class CommuneStatus:
    province: str
    area: str
    commune: str
    hosts_total: int
    hosts_online: int
    hosts_degraded: int
    line_state: str
    contracted_down_mbps: float
    days_unused: float
    reasons: tuple[str, ...] = ()
    traffic_mb_per_day: float = 0.0
    last_traffic_at: float = 0.0
    reasons_vi: tuple[str, ...] = ()


@dataclass
class Snapshot:
    hosts: list[HostStatus] = field(default_factory=list)
    communes: list[CommuneStatus] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)


class FleetState:
    def __init__(
        self, store: Store, registry: Registry, settings: FleetSettings, started_at: float | None = None
    ) -> None:
        self._store = store  # the facts that span days are saved in the state file
        self.registry = registry
        self.settings = settings
        self.started_at = time.time() if started_at is None else started_at
        self.lock = threading.Lock()
        self.facts: dict[HostKey, HostFacts] = {}
        self.snapshot = Snapshot()
        self._load()

    # ---- facts, from each accepted report ----

    def observe(self, accepted: Accepted) -> None:
        report, now = accepted.report, accepted.received_at
        with self.lock:
            facts = self.facts.setdefault(accepted.host, HostFacts())
            if report.kind == "status":
                facts.offline_will = report.state == "offline"
                return
            if facts.last_report and now - facts.last_report > 3 * facts.interval_s:
                facts.gaps.append(now)
            facts.last_report, facts.offline_will = now, False
            sections = report.sections
            if report.kind == "metrics":
                self._observe_metrics(facts, sections, now)
            elif report.kind == "inventory":
                item = sections["inventory"][0]
                facts.ram_bytes = float(item.get("ram_bytes", 0.0))
                facts.cpu_cores = float(item.get("cpu_cores", 0.0))
            elif report.kind == "probe":
                self._observe_probes(facts, sections.get("probe", []), now)
            elif report.kind == "speedtest":
                for item in sections.get("speedtest", []):
                    if item.get("mode") == "wan" or facts.speedtest_percent < 0:
                        self._observe_speedtest(facts, accepted, item)

    def _observe_metrics(self, facts: HostFacts, sections: dict[str, list[dict[str, Any]]], now: float) -> None:
        s = self.settings
        facts.interval_s = float(sections.get("agent", [{}])[0].get("interval_s", facts.interval_s)) or 30.0
        system = sections.get("system", [{}])[0]
        facts.mem_percent = float(system.get("mem_used_percent", 0.0))
        facts.swap_percent = float(system.get("swap_used_percent", 0.0))
        facts.cpu_percent = float(system.get("cpu_percent", 0.0))
        boot = float(system.get("boot_time", 0.0))
        if facts.boot_time and boot and abs(boot - facts.boot_time) > 60:
            facts.reboots.append(now)
        facts.boot_time = boot or facts.boot_time
        memory_high = facts.mem_percent > s.memory_percent and facts.swap_percent > s.swap_percent
        facts.mem_high_since = (facts.mem_high_since or now) if memory_high else 0.0
        facts.cpu_high_since = (facts.cpu_high_since or now) if facts.cpu_percent > s.cpu_percent else 0.0
        disks = sections.get("disk", [])
        facts.disk_percent = max((float(d.get("used_percent", 0.0)) for d in disks), default=0.0)
        facts.disk_errors = sum(float(d.get("errors", 0.0)) for d in disks)
        sensors = sections.get("sensors", [])
        facts.temp_c = max((float(t.get("temp_c", 0.0)) for t in sensors), default=0.0)
        facts.temp_limit_c = min((float(t["temp_high_c"]) for t in sensors if t.get("temp_high_c")), default=0.0)
        for nic in sections.get("net", []):
            if nic.get("default_route") == 1.0:
                facts.uplink = str(nic.get("nic", ""))
                moved = (
                    float(nic.get("rx_bytes_per_s", 0.0)) + float(nic.get("tx_bytes_per_s", 0.0))
                ) * facts.interval_s
                day = time.strftime("%Y-%m-%d", time.localtime(now))
                if day not in facts.traffic_by_day:  # a new day: forget days older than the unused window
                    keep = set(unused_window(now, s.unused_after_days + 7))
                    facts.traffic_by_day = {d: v for d, v in facts.traffic_by_day.items() if d in keep}
                facts.traffic_by_day[day] = facts.traffic_by_day.get(day, 0.0) + moved

    def _observe_probes(self, facts: HostFacts, items: list[dict[str, Any]], now: float) -> None:
        gateway_ok = any(i.get("scope") == "gateway" and i.get("ok") == 1.0 for i in items)
        outside = [i for i in items if i.get("scope") in ("wan", "internet")]
        if outside and gateway_ok and all(i.get("ok") == 0.0 for i in outside):
            facts.probe_down_since = facts.probe_down_since or now
        else:
            facts.probe_down_since = 0.0
        for item in outside:
            if item.get("method") == "ping" and "loss_percent" in item:
                facts.samples.append((now, float(item["loss_percent"]), float(item.get("rtt_avg_ms", 0.0))))
        while facts.samples and facts.samples[0][0] < now - self.settings.degraded_window_s:
            facts.samples.popleft()

    def _observe_speedtest(self, facts: HostFacts, accepted: Accepted, item: dict[str, Any]) -> None:
        lines = self.registry.lines(accepted.host.commune)
        measured = item.get("download_mbps")
        if lines and isinstance(measured, float) and item.get("ok") == 1.0 and lines[0].contracted_down_mbps > 0:
            facts.speedtest_percent = 100.0 * measured / lines[0].contracted_down_mbps

    # ---- evaluation ----

    def evaluate(self, now: float) -> Snapshot:
        s = self.settings
        in_grace = now - self.started_at < s.restart_grace_s
        hosts: list[HostStatus] = []
        by_commune: dict[tuple[str, str], list[tuple[HostStatus, HostFacts]]] = {}
        with self.lock:
            for record in self.registry.hosts():
                facts = self.facts.setdefault(record.key, HostFacts(last_report=record.last_seen))
                silent_for = now - max(facts.last_report, record.last_seen)
                offline = facts.offline_will or silent_for > s.offline_after_intervals * facts.interval_s
                if in_grace:
                    offline = facts.offline_will and record.status == "offline"
                reasons = self._reasons(facts, now)
                facts.degraded_since = (facts.degraded_since or now) if reasons else 0.0
                since = record.status_since if offline else 0.0
                status = HostStatus(
                    record.key,
                    self.registry.area_of(record.key.commune),
                    not offline,
                    silent_for,
                    reasons,
                    since,
                    facts.degraded_since,
                )
                hosts.append(status)
                by_commune.setdefault((record.key.province, record.key.commune), []).append((status, facts))
            # under the lock: the MQTT thread adds samples and traffic days to these facts
            communes = self._communes(by_commune, now)
        snapshot = Snapshot(hosts, communes, self._conditions(hosts, communes, by_commune))
        self.snapshot = snapshot
        return snapshot

    def _reasons(self, facts: HostFacts, now: float) -> tuple[str, ...]:
        s = self.settings
        facts.reboots = [t for t in facts.reboots if t > now - DAY_S]
        facts.gaps = [t for t in facts.gaps if t > now - DAY_S]
        checks = {
            "disk_full": facts.disk_percent > s.disk_full_percent,
            "memory_pressure": bool(facts.mem_high_since) and now - facts.mem_high_since >= s.memory_sustained_s,
            "cpu_pegged": bool(facts.cpu_high_since) and now - facts.cpu_high_since >= s.cpu_sustained_s,
            "temperature_high": facts.temp_c >= (facts.temp_limit_c or s.temperature_c) > 0 and facts.temp_c > 0,
            "frequent_reboots": len(facts.reboots) >= s.reboots_per_day,
            "report_gaps": len(facts.gaps) >= s.gaps_per_day,
            "disk_errors": facts.disk_errors > 0,
            "old_hardware": (0 < facts.ram_bytes < s.min_ram_gb * 2**30) or (0 < facts.cpu_cores < s.min_cpu_cores),
        }
        return tuple(reason for reason, true in checks.items() if true)

    def _communes(
        self, by_commune: dict[tuple[str, str], list[tuple[HostStatus, HostFacts]]], now: float
    ) -> list[CommuneStatus]:
        s = self.settings
        lines = {line.commune: line for line in reversed(self.registry.lines())}
        keys = set(by_commune) | {(line.province, commune) for commune, line in lines.items()}
        out = []
        for province, commune in sorted(keys):
            members = by_commune.get((province, commune), [])
            line = lines.get(commune)
            online = [m for m in members if m[0].online]
            state, reasons, days_unused = "up", [], 0.0
            measured_vi: list[str] | None = None  # a measured reason's Vietnamese text; codes are translated below
            probe_down = [
                f for _s, f in online if f.probe_down_since and now - f.probe_down_since >= s.line_down_probe_s
            ]
            samples = [x for _s, f in online for x in f.samples]
            loss = sum(x[1] for x in samples) / len(samples) if samples else 0.0
            rtt = sum(x[2] for x in samples) / len(samples) if samples else 0.0
            speed = [f.speedtest_percent for _s, f in members if f.speedtest_percent >= 0]
            if not members:
                state, reasons = "unused", ["no_agent"]
                days_unused = days_since(line.install_date, now) if line else 0.0
            elif not online:
                state, reasons = "down", ["all_hosts_offline"]
            elif probe_down:
                state, reasons = "down", ["wan_unreachable"]
            elif len(samples) >= 3 and (loss > s.loss_percent_max or rtt > s.rtt_ms_max):
                state, reasons = "degraded", [f"loss {loss:.1f}%, rtt {rtt:.0f} ms"]
                measured_vi = [f"mất gói {loss:.1f}%, độ trễ {rtt:.0f} ms"]
            elif speed and min(speed) < s.speedtest_min_percent:
                state, reasons = "degraded", [f"speed {min(speed):.0f}% of contract"]
                measured_vi = [f"tốc độ {min(speed):.0f}% hợp đồng"]
            daily = daily_traffic(members)
            if line is not None and state in ("up", "degraded"):
                unused, days_unused, why = self._unused(members, daily, now)
                if unused:
                    state, reasons, measured_vi = "unused", [why], None
            area = self.registry.area_of(commune)
            contracted = line.contracted_down_mbps if line else 0.0
            degraded = sum(1 for m in members if m[0].reasons)
            traffic_mb, last_traffic = self._traffic(daily, now)
            out.append(
                CommuneStatus(
                    province,
                    area,
                    commune,
                    len(members),
                    len(online),
                    degraded,
                    state,
                    contracted,
                    days_unused,
                    tuple(reasons),
                    traffic_mb,
                    last_traffic,
                    tuple(measured_vi if measured_vi is not None else (LINE_REASONS_VI[r] for r in reasons)),
                )
            )
        return out

    def _traffic(self, per_day: dict[str, float], now: float) -> tuple[float, float]:
        """Mean MB/day over the days of the unused window that have data (yesterday and back, as the
        unused rule counts them), and the start of the last day that carried at least the unused
        threshold (0 when none is known)."""
        s = self.settings
        window = [d for d in unused_window(now, s.unused_after_days) if d in per_day]
        mean_mb = sum(per_day[d] for d in window) / len(window) / 1e6 if window else 0.0
        busy = [d for d in per_day if per_day[d] >= s.unused_below_mb_per_day * 1e6]
        last = time.mktime(time.strptime(max(busy), "%Y-%m-%d")) if busy else 0.0
        return round(mean_mb, 1), last

    def _unused(
        self, members: list[tuple[HostStatus, HostFacts]], per_day: dict[str, float], now: float
    ) -> tuple[bool, float, str]:
        s = self.settings
        uplinks = [f.uplink for _s, f in members if f.uplink]
        if uplinks and all(u.startswith(OTHER_UPLINKS) for u in uplinks):
            return True, 0.0, "other_uplink"
        days = unused_window(now, s.unused_after_days)
        if all(day in per_day for day in days) and max(per_day[day] for day in days) < s.unused_below_mb_per_day * 1e6:
            return True, float(len(days)), "low_traffic"
        return False, 0.0, ""

    def _conditions(
        self,
        hosts: list[HostStatus],
        communes: list[CommuneStatus],
        by_commune: dict[tuple[str, str], list[tuple[HostStatus, HostFacts]]],
    ) -> list[Condition]:
        out: list[Condition] = []
        down = {(c.province, c.commune) for c in communes if c.line_state == "down"}
        for commune in communes:
            name = commune_name(commune.commune)
            base = (commune.province, commune.area, commune.commune, NO_HOST)
            why = ", ".join(commune.reasons)
            if commune.line_state == "down":
                out.append(Condition(LINE_DOWN, *base, "critical", f"Mất kết nối đường truyền tại {name} ({why})",
                                     f"Line down at {name} ({why})"))  # fmt: skip
            elif commune.line_state == "degraded":
                out.append(Condition(LINE_DEGRADED, *base, "warning", f"Đường truyền kém tại {name}: {why}",
                                     f"Line degraded at {name}: {why}"))  # fmt: skip
            elif commune.line_state == "unused":
                out.append(Condition(LINE_UNUSED, *base, "info", f"Đường truyền không được sử dụng tại {name} ({why})",
                                     f"Line unused at {name} ({why})"))  # fmt: skip
        for host in hosts:
            key = host.key
            name = commune_name(key.commune)
            base = (key.province, host.area, key.commune, key.host)
            if not host.online and (key.province, key.commune) not in down:  # one alert per commune, not per PC
                out.append(Condition(HOST_OFFLINE, *base, "critical", f"Máy {key.host} tại {name} mất kết nối",
                                     f"Host {key.host} at {name} is offline"))  # fmt: skip
            if host.reasons:
                vi = reasons_vi(host.reasons)
                out.append(Condition(HOST_DEGRADED, *base, "warning", f"Máy {key.host} tại {name}: {vi}",
                                     f"Host {key.host} at {name}: {', '.join(host.reasons)}",
                                     (("reasons", ",".join(host.reasons)),)))  # fmt: skip
        return out

    # ---- points ----

    def points(self, snapshot: Snapshot, now: float) -> list[Point]:
        ts = int(now)
        out = []
        for host in snapshot.hosts:
            tags = {
                "province": host.key.province,
                "area": host.area,
                "commune": host.key.commune,
                "host": host.key.host,
            }
            fields: dict[str, float | str] = {
                "online": 1.0 if host.online else 0.0,
                "seconds_since_report": round(host.seconds_since_report, 1),
                "degraded": 1.0 if host.reasons else 0.0,
                "degraded_reasons": ",".join(host.reasons),
                "degraded_since_ms": host.degraded_since * 1000.0,
                "degraded_reasons_vi": reasons_vi(host.reasons),
                "commune_name": commune_name(host.key.commune),
            }
            out.append(Point("agent", tags, fields, ts))
        area_names = self.registry.areas()
        for c in snapshot.communes:
            tags = {"province": c.province, "area": c.area, "commune": c.commune}
            fields = {
                "hosts_total": float(c.hosts_total),
                "hosts_online": float(c.hosts_online),
                "hosts_degraded": float(c.hosts_degraded),
                "line_state": c.line_state,
                "line_state_code": float(STATE_CODES[c.line_state]),
                "line_severity": float(SEVERITY[c.line_state]),
                "line_down": 1.0 if c.line_state == "down" else 0.0,
                "line_degraded": 1.0 if c.line_state == "degraded" else 0.0,
                "line_unused": 1.0 if c.line_state == "unused" else 0.0,
                "contracted_down_mbps": c.contracted_down_mbps,
                "days_unused": c.days_unused,
                "commune_name": commune_name(c.commune),
                "area_name": area_names.get(c.area, c.area),
                "traffic_mb_per_day": c.traffic_mb_per_day,
                "last_traffic_day": time.strftime("%Y-%m-%d", time.localtime(c.last_traffic_at))
                if c.last_traffic_at
                else "",
            }
            out.append(Point("commune", tags, fields, ts))
        return out

    # ---- persistence ----

    def save(self) -> None:
        with self.lock:
            rows = [(f"{k.province}/{k.commune}/{k.host}", json.dumps(to_json(f))) for k, f in self.facts.items()]
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO fleet_state (host, facts) VALUES (?, ?) "
                "ON CONFLICT(host) DO UPDATE SET facts = excluded.facts",
                rows,
            )

    def _load(self) -> None:
        for name, text in self._store.query("SELECT host, facts FROM fleet_state"):
            province, commune, host = str(name).split("/", 2)
            try:
                self.facts[HostKey(province, commune, host)] = from_json(json.loads(text))
            except (ValueError, TypeError):
                continue


def to_json(facts: HostFacts) -> dict[str, Any]:
    data = dict(vars(facts))
    data["samples"] = list(facts.samples)
    return data


def from_json(data: dict[str, Any]) -> HostFacts:
    known = set(vars(HostFacts()))
    facts = HostFacts(**{k: v for k, v in data.items() if k in known and k != "samples"})
    facts.samples = deque(tuple(x) for x in data.get("samples", []))
    return facts


def commune_name(code: str) -> str:
    found = units.commune(code)
    return found.name if found else code


def reasons_vi(reasons: tuple[str, ...]) -> str:
    """A degraded PC's reason codes in Vietnamese, comma-separated."""
    return ", ".join(REASONS_VI[r] for r in reasons)


def daily_traffic(members: list[tuple[HostStatus, HostFacts]]) -> dict[str, float]:
    """Bytes per local date on the default-route NICs of a commune's PCs, for the days any has data."""
    per_day: dict[str, float] = {}
    for _s, f in members:
        for day, moved in f.traffic_by_day.items():
            per_day[day] = per_day.get(day, 0.0) + moved
    return per_day


def unused_window(now: float, days: int) -> list[str]:
    """Local dates from yesterday back ``days`` days: the whole days the unused rule looks at."""
    return [time.strftime("%Y-%m-%d", time.localtime(now - d * DAY_S)) for d in range(1, days + 1)]


def days_since(iso_date: str, now: float) -> float:
    try:
        start = time.mktime(time.strptime(iso_date, "%Y-%m-%d"))
    except ValueError:
        return 0.0
    return max(0.0, (now - start) // DAY_S)
