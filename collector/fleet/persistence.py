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
from collections.abc import Iterable
from dataclasses import asdict, fields
from typing import Any

import msgspec

from collector.fleet.clock import ClockState
from collector.fleet.equipment import SeenDevice
from collector.fleet.facts import HostFacts
from collector.registry.registry import HostKey
from collector.store import Store

Row = tuple[str, str]
FACT_NAMES = tuple(f.name for f in fields(HostFacts))


def rows(facts: Iterable[tuple[HostKey, HostFacts]]) -> list[Row]:
    """Hosts' facts as the rows to save, each made straight from the facts by msgspec's JSON encoder
    (in C): no copy first, so the caller holds its lock for this only. For a nation's 100,000 PCs
    copying the facts under the lock and making the JSON after took 2.8 s of each save."""
    return [(f"{k.province}/{k.commune}/{k.host}", _ENCODE(f).decode()) for k, f in facts]


def _plain(value: object) -> object:
    """What msgspec cannot encode by itself: the line samples' deque, as a list."""
    if isinstance(value, deque):
        return list(value)
    raise NotImplementedError(type(value).__name__)


_ENCODE = msgspec.json.Encoder(enc_hook=_plain).encode


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


def from_json(data: dict[str, Any]) -> HostFacts:
    known = set(FACT_NAMES)
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
