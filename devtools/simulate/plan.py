"""The simulated province: which communes and PCs exist, what hardware they have, which fault each
gets and what equipment each commune was issued. Deterministic for a seed, and independent of how
the virtual PCs connect (``transport``) or what they publish (``pc``).

Every commune of the province (from ``vietnam-provinces``; Tuyên Quang has 124) gets PCs, one of
them the line-probe PC, and a seeded share of faults: dead lines (every PC of the commune drops off
the network), PCs that go offline, disks filling up, old hardware, lossy lines, lines installed but
unused (no PC, or PCs on a 4G uplink); and, from a draw of their own, failing disks (reallocated
sectors growing) and slow disks (the system disk busy above 90 %). Areas and lines for the province are written into the
registry so the fleet state has contracts to compare with.

Outage faults (``power_cut``, ``office_closed``) make every PC of a commune go dark for a while and
come back, so the collector can judge why: a power cut drops the PCs (the broker sends their Last
Wills) and they boot again when it returns; an office closing stops them cleanly and they are
switched on again. They go to communes with no other fault, from a random draw of their own, so a
seed gives the same other faults as before they existed.

Every commune with PCs was issued a scanner (no serial) and two digital-signature tokens (with
serials), written into the equipment registry; one of its PCs reports them plugged in. Equipment
faults hold from the start, since "never plugged in" cannot begin later: ``token_unused`` (the
second token is never plugged in), its variant ``token_plugged_idle`` (the second token stays plugged
in and no application ever opens it: the PC reports its readers through PC/SC, and that one is never
in use) and ``scanner_missing`` (the scanner never is), each in a seeded share of the communes
without a line fault. Every PC that carries tokens reports them watched through PC/SC.
"""

from __future__ import annotations

import json
import random
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from typing import Any

from collector.config import CollectorConfig
from collector.registry import units
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import Line, Registry
from collector.store import Store

COMMUNE_FAULTS = ("dead_line", "no_agent", "other_uplink", "lossy_line")
HOST_FAULTS = ("goes_offline", "disk_filling", "old_hardware")
EQUIPMENT_FAULTS = ("token_unused", "scanner_missing", "token_plugged_idle")  # new ones last: a seed keeps the others
OUTAGE_FAULTS = ("power_cut", "office_closed")  # every PC of the commune goes dark, then comes back
DISK_FAULTS = ("disk_failing", "disk_slow")  # one PC's disk: sectors reallocated by the hour, or busy all the time
ISSUED_ON = "2025-08-15"
AREAS = 8  # areas of a province without a table below: that many runs of communes, by code
# Tuyên Quang's areas for the demo, named after the former districts whose commune codes they span
# (an approximation by code ranges, not an official map): a commune is in the last row whose first
# code is at or below its own. They agree with config/areas.example.csv.
PROVINCE_AREAS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "08": (
        ("00691", "ha-giang", "Khu vực Hà Giang"),
        ("00715", "dong-van", "Khu vực Đồng Văn"),
        ("00913", "vi-xuyen", "Khu vực Vị Xuyên"),
        ("01021", "hoang-su-phi", "Khu vực Hoàng Su Phì"),
        ("01153", "bac-quang", "Khu vực Bắc Quang"),
        ("02212", "tp-tuyen-quang", "Khu vực TP Tuyên Quang"),
        ("02221", "na-hang", "Khu vực Nà Hang"),
        ("02287", "chiem-hoa", "Khu vực Chiêm Hoá"),
        ("02365", "ham-yen", "Khu vực Hàm Yên"),
        ("02425", "yen-son", "Khu vực Yên Sơn"),
        ("02509", "tp-tuyen-quang", "Khu vực TP Tuyên Quang"),
        ("02530", "son-duong", "Khu vực Sơn Dương"),
    ),
}


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
    never_opened: list[str] = field(default_factory=list)  # tokens (device ids) plugged in that no application opens


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
    areas = areas_of(province, communes)
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
    assign_outages(hosts, faults, count, random.Random(seed * 7907 + 3))
    assign_disk_faults(hosts, faults, per_fault, random.Random(seed * 7919 + 5))
    return Plan(province, hosts, areas, lines, faults, equipment)


def areas_of(province: str, communes: list[str]) -> dict[str, tuple[str, list[str]]]:
    """The province's areas (code -> name, communes): from ``PROVINCE_AREAS``, or else ``AREAS`` runs
    of communes by code, each named after its first commune ("Khu vực Lũng Cú", code ``lung-cu``)."""
    table = PROVINCE_AREAS.get(province)
    areas: dict[str, tuple[str, list[str]]] = {}
    if table:
        for commune in communes:
            _first, code, name = ([row for row in table if row[0] <= commune] or [table[0]])[-1]
            areas.setdefault(code, (name, []))[1].append(commune)
        return areas
    per_area = max(1, -(-len(communes) // AREAS))
    for i in range(0, len(communes), per_area):
        place = units.display_name(communes[i]).split(" ", 1)[-1]  # "Xã Lũng Cú" -> "Lũng Cú"
        code = slug(place)
        code = code if code not in areas else f"{code}-{i // per_area + 1}"
        areas[code] = (f"Khu vực {place}", communes[i : i + per_area])
    return areas


def slug(text: str) -> str:
    """``Lũng Cú`` -> ``lung-cu``: an area code from a Vietnamese name."""
    plain = unicodedata.normalize("NFD", text.replace("đ", "d").replace("Đ", "D"))
    ascii_only = "".join(ch for ch in plain if not unicodedata.combining(ch)).lower()
    return "-".join(re.findall(r"[a-z0-9]+", ascii_only))


def assign_outages(hosts: list[VirtualHost], faults: dict[str, list[str]], count: int, rng: random.Random) -> None:
    """``count`` communes per outage fault, among those none of whose PCs has a fault and that no
    equipment fault touches; noted in ``faults`` and given to every PC of the commune."""
    touched = {c for name in EQUIPMENT_FAULTS for c in faults.get(name, [])}
    by_commune: dict[str, list[VirtualHost]] = {}
    for host in hosts:
        by_commune.setdefault(host.commune, []).append(host)
    clean = sorted(c for c, pcs in by_commune.items() if c not in touched and not any(h.fault for h in pcs))
    rng.shuffle(clean)
    for i, name in enumerate(OUTAGE_FAULTS):
        faults[name] = sorted(clean[i * count : (i + 1) * count])
        for commune in faults[name]:
            for host in by_commune[commune]:
                host.fault = name


def assign_disk_faults(hosts: list[VirtualHost], faults: dict[str, list[str]], count: int, rng: random.Random) -> None:
    """``count`` PCs per disk fault, among the PCs left without a fault, from a draw of their own
    (so a seed gives the same other faults as before they existed); noted in ``faults``."""
    healthy = [h for h in hosts if not h.fault]
    rng.shuffle(healthy)
    for i, name in enumerate(DISK_FAULTS):
        chosen = healthy[i * count : (i + 1) * count]
        for host in chosen:
            host.fault = name
        faults[name] = sorted(f"{h.province}/{h.commune}/{h.host}" for h in chosen)


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
        if fault_of.get(commune) == "token_plugged_idle":
            host.never_opened.append(f"sim-token-{tokens[1]}")
    return items


def register(plan: Plan, config: CollectorConfig) -> None:
    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        registry.upsert_lines(plan.lines)
        for code, (name, communes) in plan.areas.items():
            registry.set_area(code, name, communes)
        Equipment(store).replace_communes(plan.equipment)


def plan_json(plan: Plan) -> str:
    data = plan.summary()
    data["hosts_detail"] = [asdict(h) for h in plan.hosts]
    return json.dumps(data, ensure_ascii=False, indent=1)
