"""Keeping each PC's facts across restarts: reboots, report gaps and traffic per day span days,
so the collector saves them in the state file (table ``fleet_state``, one JSON row per host, declared
by ``collector/store.py``) and reads them back at start. A row it cannot read is skipped: that host
starts afresh. The peripherals each commune was seen with (table ``peripherals_seen``, one JSON row
per commune and device) are kept the same way: "not seen for 14 days" must survive a restart.

This is the only place fleet facts meet the state file.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import asdict, fields
from typing import Any

from collector.fleet.clock import ClockState
from collector.fleet.equipment import SeenDevice
from collector.fleet.facts import HostFacts
from collector.registry.registry import HostKey
from collector.store import Store

Row = tuple[str, str]


def rows(facts: dict[HostKey, HostFacts]) -> list[Row]:
    """Every host's facts as rows to save; quick, so the caller can hold its lock meanwhile."""
    return [(f"{k.province}/{k.commune}/{k.host}", json.dumps(to_json(f))) for k, f in facts.items()]


def save(store: Store, rows: list[Row]) -> None:
    store.upsert("fleet_state", ["host"], ["facts"], rows)


def load(store: Store) -> dict[HostKey, HostFacts]:
    out: dict[HostKey, HostFacts] = {}
    for name, text in store.query("SELECT host, facts FROM fleet_state"):
        province, commune, host = str(name).split("/", 2)
        try:
            out[HostKey(province, commune, host)] = from_json(json.loads(text))
        except (ValueError, TypeError):
            continue
    return out


def to_json(facts: HostFacts) -> dict[str, Any]:
    data = dict(vars(facts))
    data["samples"] = list(facts.samples)
    data["clock"] = asdict(facts.clock)
    return data


def from_json(data: dict[str, Any]) -> HostFacts:
    known = {f.name for f in fields(HostFacts)}
    facts = HostFacts(**{k: v for k, v in data.items() if k in known and k not in ("samples", "clock")})
    facts.samples = deque(tuple(x) for x in data.get("samples", []))
    facts.clock = ClockState(**data.get("clock", {}))  # a row saved before clocks were learned: unknown
    return facts


SeenRow = tuple[str, str, str]


def seen_rows(changed: list[tuple[str, SeenDevice]]) -> list[SeenRow]:
    """(commune, device) rows to save."""
    return [(commune, d.device, json.dumps(asdict(d))) for commune, d in changed]


def save_seen(store: Store, rows: list[SeenRow]) -> None:
    store.upsert("peripherals_seen", ["commune", "device"], ["body"], rows)


def load_seen(store: Store) -> dict[str, dict[str, SeenDevice]]:
    out: dict[str, dict[str, SeenDevice]] = {}
    for commune, device, body in store.query("SELECT commune, device, body FROM peripherals_seen"):
        try:
            out.setdefault(str(commune), {})[str(device)] = SeenDevice(**json.loads(body))
        except (ValueError, TypeError):
            continue
    return out
