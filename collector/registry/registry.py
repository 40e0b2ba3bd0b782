"""The collector's registry: areas, which area each commune belongs to, lines and known hosts.

Stored in the state file (``collector.store``, which declares the tables). Host last-seen times
change on every message, so they live in memory and are flushed in batches by ``flush``
(called periodically by the service).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

from collector.store import Store

RELOAD_CHECK_S = 1.0


@dataclass(frozen=True)
class HostKey:
    """A host by its place: province, commune and name. Its hash is computed once: every report
    looks its host up in several dicts (known hosts, changed hosts, series bounds, fleet state)."""

    province: str
    commune: str
    host: str
    _hash: int = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_hash", hash((self.province, self.commune, self.host)))

    def __hash__(self) -> int:
        return self._hash

    def __reduce__(self) -> tuple[type[HostKey], tuple[str, str, str]]:
        """Pickled by its place: a string's hash differs between processes, so ``_hash`` is not kept."""
        return HostKey, (self.province, self.commune, self.host)


class HostRecord(NamedTuple):
    """What the registry knows of a host. A named tuple, not a frozen dataclass: ``touch`` makes one
    for every report, and a tuple is built several times faster."""

    key: HostKey
    first_seen: float
    last_seen: float
    status: str
    status_since: float
    agent_version: str


@dataclass(frozen=True)
class Line:
    """A commune's internet/WAN line as contracted (typically FTTH, 100 Mb/s)."""

    circuit_id: str
    province: str
    commune: str
    isp: str
    contracted_down_mbps: float
    contracted_up_mbps: float
    install_date: str = ""  # ISO date, may be empty


class Registry:
    def __init__(self, store: Store, default_area: str) -> None:
        self._store = store
        self._lock = store.lock  # the store's lock also guards the hosts kept in memory
        self.default_area = default_area
        self._hosts: dict[HostKey, HostRecord] = {}
        self._dirty: set[HostKey] = set()
        self._order: list[HostKey] | None = None  # the hosts sorted by place, kept until one comes or goes
        self._areas: dict[str, str] = {}
        self._data_version = -1
        self._checked_at = 0.0
        self._load()

    def _load(self) -> None:
        with self._lock:
            for row in self._store.query(
                "SELECT province, commune, host, first_seen, last_seen, status, status_since, agent_version FROM hosts"
            ):
                key = HostKey(row[0], row[1], row[2])
                self._hosts[key] = HostRecord(key, row[3], row[4], row[5], row[6], row[7])
            self._areas = dict(self._store.query("SELECT commune, area FROM commune_areas"))
            self._data_version = self._store.data_version()

    def area_of(self, commune: str) -> str:
        self._reload_if_changed()
        return self._areas.get(commune, self.default_area)

    def _reload_if_changed(self) -> None:
        """Pick up areas imported by ``commune-collector registry`` while the collector runs.

        SQLite's data_version changes when another connection commits; it is checked once a second,
        and not while the store's lock is held (a save, a flush): an API request asking a commune's
        area does not wait for that, and the next call checks instead.
        """
        now = time.monotonic()
        if now - self._checked_at < RELOAD_CHECK_S or not self._lock.acquire(blocking=False):
            return
        try:
            self._checked_at = now
            version = self._store.data_version()
            if version != self._data_version:
                self._data_version = version
                self._areas = dict(self._store.query("SELECT commune, area FROM commune_areas"))
        finally:
            self._lock.release()

    def set_area(self, area_code: str, area_name: str, communes: list[str]) -> None:
        """Create or rename an area and assign communes to it."""
        self.set_areas({area_code: area_name}, {area_code: communes})

    def set_areas(self, names: dict[str, str], communes: dict[str, list[str]]) -> None:
        """Create or rename areas and assign their communes, all in one transaction (all or nothing)."""
        with self._store.transaction() as db:
            db.executemany(
                "INSERT INTO areas (code, name) VALUES (?, ?) ON CONFLICT(code) DO UPDATE SET name = excluded.name",
                list(names.items()),
            )
            db.executemany(
                "INSERT INTO commune_areas (commune, area) VALUES (?, ?) "
                "ON CONFLICT(commune) DO UPDATE SET area = excluded.area",
                [(c, area) for area, codes in communes.items() for c in codes],
            )
            self._areas.update({c: area for area, codes in communes.items() for c in codes})

    def areas(self) -> dict[str, str]:
        """Every area's code and name, as last committed (``Store.read``: not behind a save or a flush)."""
        return dict(self._store.read("SELECT code, name FROM areas ORDER BY code"))

    def communes_by_area(self) -> dict[str, list[str]]:
        self._reload_if_changed()
        grouped: dict[str, list[str]] = {}
        for commune, area in sorted(dict(self._areas).items()):  # a copy (one C call): no wait for the lock
            grouped.setdefault(area, []).append(commune)
        return grouped

    def upsert_lines(self, lines: list[Line]) -> None:
        """Create or update lines by circuit id."""
        with self._lock:
            self._store.executemany(
                "INSERT INTO lines (circuit_id, province, commune, isp, contracted_down_mbps, contracted_up_mbps, "
                "install_date) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(circuit_id) DO UPDATE SET "
                "province = excluded.province, commune = excluded.commune, isp = excluded.isp, "
                "contracted_down_mbps = excluded.contracted_down_mbps, "
                "contracted_up_mbps = excluded.contracted_up_mbps, install_date = excluded.install_date",
                [
                    (
                        ln.circuit_id,
                        ln.province,
                        ln.commune,
                        ln.isp,
                        ln.contracted_down_mbps,
                        ln.contracted_up_mbps,
                        ln.install_date,
                    )
                    for ln in lines
                ],
            )

    def lines(self, commune: str | None = None) -> list[Line]:
        """Registered lines, all or one commune's, ordered by commune then circuit id, as last committed
        (``Store.read``: an API request or a report does not wait behind a save or a flush)."""
        query = (
            "SELECT circuit_id, province, commune, isp, contracted_down_mbps, contracted_up_mbps, install_date "
            "FROM lines"
        )
        if commune is None:
            rows = self._store.read(query + " ORDER BY commune, circuit_id")
        else:
            rows = self._store.read(query + " WHERE commune = ? ORDER BY circuit_id", (commune,))
        return [Line(*row) for row in rows]

    def touch(self, key: HostKey, now: float, status: str | None = None, agent_version: str | None = None) -> bool:
        """Record that a host was heard from; returns True when the host is new."""
        with self._lock:
            record = self._hosts.get(key)
            is_new = record is None
            if record is None:
                record = HostRecord(key, now, now, "unknown", now, "")
            if status is not None and status != record.status:
                record = record._replace(status=status, status_since=now)
            if agent_version is not None:
                record = record._replace(agent_version=agent_version)
            if status != "offline" and now > record.last_seen:  # every report: built directly, not replace()d
                record = HostRecord(
                    key, record.first_seen, now, record.status, record.status_since, record.agent_version
                )
            self._hosts[key] = record
            self._dirty.add(key)
            if is_new:
                self._order = None
            return is_new

    def count(self) -> int:
        """How many hosts are known (the /metrics gauge: without sorting them all on every scrape)."""
        return len(self._hosts)

    def hosts(self) -> list[HostRecord]:
        """Every host, by province, commune and name (the fleet asks every 5 s: sorted only when one came or went)."""
        with self._lock:
            if self._order is None:
                self._order = sorted(self._hosts, key=lambda k: (k.province, k.commune, k.host))
            hosts = self._hosts
            return [hosts[key] for key in self._order]

    def host(self, key: HostKey) -> HostRecord | None:
        with self._lock:
            return self._hosts.get(key)

    def forget(self, key: HostKey) -> bool:
        """Drop a decommissioned host; it comes back as new if it ever reports again."""
        with self._lock:
            known = self._hosts.pop(key, None) is not None
            self._order = None
            self._dirty.discard(key)
            cursor = self._store.execute(
                "DELETE FROM hosts WHERE province = ? AND commune = ? AND host = ?",
                (key.province, key.commune, key.host),
            )
        return known or cursor.rowcount > 0

    def flush(self) -> int:
        """Write changed hosts to SQLite in one commit; returns how many. Hosts a failed write (a full
        disk) did not store stay changed, for the next flush."""
        with self._lock:
            dirty = [self._hosts[k] for k in self._dirty]
            with self._store.transaction() as db:
                db.executemany(
                    "INSERT INTO hosts (province, commune, host, first_seen, last_seen, status, status_since, "
                    "agent_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(province, commune, host) DO UPDATE "
                    "SET last_seen = excluded.last_seen, status = excluded.status, "
                    "status_since = excluded.status_since, agent_version = excluded.agent_version",
                    [
                        (
                            r.key.province,
                            r.key.commune,
                            r.key.host,
                            r.first_seen,
                            r.last_seen,
                            r.status,
                            r.status_since,
                            r.agent_version,
                        )
                        for r in dirty
                    ],
                )
            self._dirty.clear()
        return len(dirty)


def now() -> float:
    return time.time()
