"""The audit log: every administrative change, append-only and hash-chained.

Who (a token's name or the CLI's user), from where (an address, or ``cli``), when, the action, the
object and its values before and after, in full. Entries are not written by each module that
changes something: the two doors administrative changes come through (the CLI's commands and the
HTTP API's admin routes) each take a ``snapshot`` of the watched tables before the change, and
``record`` writes one entry per row that differs afterwards. A path added later is audited
without being told to, and a test walks every admin route and command. One change is the
collector's own doing whoever asks: a new revision of a month's report (a report made by the CLI,
a viewer's API call or the monthly e-mail, ``collector/reports/revisions.py``), which ``append``s
its entry in the same transaction that stores it.

Each entry's hash covers its fields and the hash of the entry before it; ``audit_head`` keeps the
last id and hash, so an edited, removed or appended-by-hand entry breaks the chain where it was
touched and ``verify`` names the first broken entry. The file itself refuses an UPDATE and a
DELETE younger than the retention floor (400 days), which no setting lowers; ``prune`` drops only
older entries and keeps the hash it cut at, so the chain still verifies.

Watched rows are what an admin changes, not what the collector changes on its own while an
admin call runs: hosts only when removed (agents add hosts by reporting), alerts only their
acknowledgement, enrolment credentials without their password hash.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from collector.store import AUDIT_FLOOR_DAYS, Store

GENESIS = "0" * 64
NO_CHANGE = "none"  # the object of an admin call that changed no watched row (a speed test asked, a file written)
Row = dict[str, Any]
Snapshot = dict[str, dict[str, Row]]  # watched name -> object key -> row


@dataclass(frozen=True)
class Watched:
    """A kind of object: how to read every row of it (the first column is its key) and which
    changes an admin makes (the others the collector makes by itself)."""

    name: str
    sql: str
    kinds: frozenset[str] = frozenset({"added", "changed", "removed"})


ALL_KINDS = frozenset({"added", "changed", "removed"})
WATCHED: tuple[Watched, ...] = (
    Watched("area", "SELECT code AS key, code AS area, name FROM areas"),
    Watched("commune_area", "SELECT commune AS key, commune, area FROM commune_areas"),
    Watched("line", "SELECT circuit_id AS key, * FROM lines"),
    Watched(
        "host",
        "SELECT province || '/' || commune || '/' || host AS key, province, commune, host FROM hosts",
        frozenset({"removed"}),
    ),
    Watched("equipment", "SELECT id AS key, * FROM equipment"),
    Watched("token", "SELECT name AS key, name, role, scope, sha256, created_at FROM api_tokens"),
    Watched(
        "enrolment",
        "SELECT username AS key, username, province, commune, host, enrolled_at, enroll_key FROM mqtt_credentials",
    ),
    Watched(
        "enroll_key",
        "SELECT id AS key, id, area, sha256, created_at, expires_at, max_hosts, revoked_at FROM enroll_keys",
    ),
    Watched("silence", "SELECT id AS key, body FROM silences"),
    Watched(
        "alert_ack",
        "SELECT id AS key, id, json_extract(body, '$.commune') AS commune, json_extract(body, '$.area') AS area,"
        " json_extract(body, '$.rule') AS rule, json_extract(body, '$.acked_by') AS acked_by,"
        " json_extract(body, '$.acked_at') AS acked_at, json_extract(body, '$.ack_comment') AS ack_comment"
        " FROM alerts WHERE coalesce(json_extract(body, '$.acked_at'), 0) > 0",
        frozenset({"added", "changed"}),  # an acknowledged alert forgotten later is the collector's doing
    ),
    Watched("known_id", "SELECT vendor_id || ':' || product_id AS key, * FROM known_ids"),
    Watched("exclusion", "SELECT id AS key, * FROM exclusions"),
    Watched("exclusion_withdrawal", "SELECT id AS key, * FROM exclusion_withdrawals"),
    Watched(  # who asked an agent for an action; its answer and result are the collector's doing
        "action_request",
        "SELECT id AS key, id, province, commune, host, action, mode, asked_by, asked_at FROM action_requests",
        frozenset({"added"}),
    ),
)


@dataclass(frozen=True)
class Actor:
    """Who made a change and from where: a token's name and the client's address, or the CLI's user and ``cli``."""

    name: str
    origin: str


def cli_actor() -> Actor:
    """The person running the CLI: the one who ran sudo, if it was sudo."""
    try:
        user = os.environ.get("SUDO_USER") or getpass.getuser()
    except (KeyError, OSError):  # a uid with no name
        user = f"uid-{os.getuid()}"
    return Actor(user, "cli")


@dataclass(frozen=True)
class Entry:
    id: int
    ts: float
    actor: str
    origin: str
    action: str
    object: str
    commune: str
    area: str
    before: str | None  # the row as JSON, None when it did not exist
    after: str | None
    prev: str
    hash: str

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id, "ts": self.ts, "actor": self.actor, "origin": self.origin, "action": self.action,
            "object": self.object, "commune": self.commune or None, "area": self.area or None,
            "before": None if self.before is None else json.loads(self.before),
            "after": None if self.after is None else json.loads(self.after), "hash": self.hash,
        }  # fmt: skip


COLUMNS = "id, ts, actor, origin, action, object, commune, area, before, after, prev, hash"


def entry_hash(prev: str, entry_id: int, ts: float, actor: str, origin: str, action: str, obj: str, commune: str,
               area: str, before: str | None, after: str | None) -> str:  # fmt: skip
    fields = [entry_id, ts, actor, origin, action, obj, commune, area, before, after]
    text = json.dumps(fields, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(f"{prev}\n{text}".encode()).hexdigest()


def snapshot(store: Store, watched: Iterable[Watched] = WATCHED) -> Snapshot:
    """Every watched row, by kind and key."""
    out: Snapshot = {}
    with store.lock:
        for kind in watched:
            cursor = store.execute(kind.sql)
            names = [d[0] for d in cursor.description]
            out[kind.name] = {str(row[0]): dict(zip(names[1:], row[1:], strict=True)) for row in cursor.fetchall()}
    return out


@dataclass(frozen=True)
class Change:
    object: str
    before: Row | None
    after: Row | None

    def place(self) -> tuple[str, str]:
        """The commune and area the object belongs to, where it names them."""
        row = self.after or self.before or {}
        commune, area = row.get("commune"), row.get("area")
        if "body" in row:  # a silence: its matchers
            matchers = json.loads(str(row["body"])).get("matchers", {})
            commune, area = matchers.get("commune"), matchers.get("area")
        return str(commune or ""), str(area or "")


def changes(before: Snapshot, after: Snapshot) -> list[Change]:
    """The rows an admin added, changed or removed between two snapshots."""
    found = []
    for kind in WATCHED:
        old, new = before.get(kind.name, {}), after.get(kind.name, {})
        for key in sorted(old.keys() | new.keys()):
            was, now = old.get(key), new.get(key)
            if was == now:
                continue
            what = "added" if was is None else "removed" if now is None else "changed"
            if what in kind.kinds:
                found.append(Change(f"{kind.name}:{key}", was, now))
    return found


def dumped(row: Row | None) -> str | None:
    return None if row is None else json.dumps(row, ensure_ascii=False, sort_keys=True)


def record(store: Store, actor: Actor, action: str, before: Snapshot, now: float, always: bool = True) -> int:
    """Write an entry for each watched row changed since ``before`` (or, with ``always``, one
    ``none`` entry when nothing was), all in one transaction; how many were written."""
    with store.transaction() as db:  # the second snapshot and the entries: no other writer between them
        found = changes(before, snapshot(store))
        if not found and always:
            found = [Change(NO_CHANGE, None, None)]
        append(db, actor, action, found, now)
    return len(found)


def append(db: sqlite3.Connection, actor: Actor, action: str, found: list[Change], now: float) -> None:
    """Chain an entry for each of ``found`` to the log, inside the caller's transaction (so a change
    made by the collector itself, a report revision, and its entry are one write)."""
    head = db.execute("SELECT last_id, last_hash FROM audit_head").fetchone()
    last_id, prev = (int(head[0]), str(head[1])) if head else (0, GENESIS)
    for change in found:
        last_id += 1
        commune, area = change.place()
        values = (last_id, now, actor.name, actor.origin, action, change.object, commune, area,
                  dumped(change.before), dumped(change.after))  # fmt: skip
        prev_of_entry, prev = prev, entry_hash(prev, *values)
        db.execute(f"INSERT INTO audit_log ({COLUMNS}) VALUES ({', '.join('?' * 12)})",
                   (*values, prev_of_entry, prev))  # fmt: skip
    if found:
        db.execute(
            "INSERT INTO audit_head (one, last_id, last_hash) VALUES (1, ?, ?) "
            "ON CONFLICT(one) DO UPDATE SET last_id = excluded.last_id, last_hash = excluded.last_hash",
            (last_id, prev),
        )


@dataclass(frozen=True)
class Broken:
    """The first entry where the chain does not hold, and how."""

    entry: int
    why: str

    def __str__(self) -> str:
        return f"audit entry {self.entry} {self.why}"


def rows(store: Store, after_id: int = 0, batch: int = 1000) -> Iterator[Entry]:
    """Every entry from ``after_id`` on, in order, read a batch at a time."""
    while True:
        found = store.query(f"SELECT {COLUMNS} FROM audit_log WHERE id > ? ORDER BY id LIMIT ?", (after_id, batch))
        for row in found:
            yield Entry(*row)
        if len(found) < batch:
            return
        after_id = int(found[-1][0])


def verify(store: Store) -> tuple[int, Broken | None]:
    """How many entries hold, and the first broken one (None when the whole chain holds)."""
    head = store.query("SELECT last_id, last_hash, pruned_through, pruned_hash FROM audit_head")
    last_id, last_hash, expected, prev = head[0] if head else (0, GENESIS, 0, GENESIS)
    good = 0
    for entry in rows(store, 0):
        expected += 1
        if entry.id < expected:
            return good, Broken(entry.id, "is older than the log's pruned start: it was put back by hand")
        if entry.id > expected:
            return good, Broken(expected, f"is missing: the log goes from entry {expected - 1} to {entry.id}")
        if entry.prev != prev:
            return good, Broken(entry.id - 1, f"was rewritten: entry {entry.id} was chained to another hash")
        fields = (entry.id, entry.ts, entry.actor, entry.origin, entry.action, entry.object, entry.commune,
                  entry.area, entry.before, entry.after)  # fmt: skip
        if entry_hash(prev, *fields) != entry.hash:
            return good, Broken(entry.id, "was changed after it was written: its fields do not give its hash")
        prev = entry.hash
        good += 1
    if expected < last_id:
        return good, Broken(expected + 1, f"is missing: the log ends at entry {expected}, its head names {last_id}")
    if expected > last_id or prev != last_hash:
        return good, Broken(expected, "was added outside the log: the head names another last entry")
    return good, None


def prune(store: Store, now: float, keep_days: int) -> int:
    """Drop entries older than ``keep_days`` (never fewer than the 400-day floor), oldest first, and
    keep the hash the log now starts from; how many were dropped."""
    cutoff = now - max(keep_days, AUDIT_FLOOR_DAYS) * 86400.0
    with store.transaction() as db:
        young = db.execute("SELECT min(id) FROM audit_log WHERE ts >= ?", (cutoff,)).fetchone()[0]
        last = db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        through = (int(young) - 1) if young is not None else int(last or 0)
        start = db.execute("SELECT pruned_through FROM audit_head").fetchone()
        if start is None or through <= int(start[0]):
            return 0
        cut = db.execute("SELECT hash FROM audit_log WHERE id = ?", (through,)).fetchone()
        if cut is None:  # the chain is broken there already: leave it for verify to name
            return 0
        try:
            dropped = db.execute("DELETE FROM audit_log WHERE id <= ?", (through,)).rowcount
        except sqlite3.IntegrityError:  # the file's own clock says the floor is not reached: it wins
            return 0
        db.execute("UPDATE audit_head SET pruned_through = ?, pruned_hash = ?", (through, cut[0]))
    return int(dropped)


@dataclass(frozen=True)
class Filter:
    communes: frozenset[str] | None = None  # None: every commune's, and entries of no commune
    object: str = ""  # a kind (``line``) or one object (``line:VNPT-1``)
    since: float = 0.0
    until: float = float("inf")
    area: str = ""  # with ``communes``: also the entries of this whole area (an area scope's own)


def entries(store: Store, wanted: Filter, before_id: int | None, limit: int) -> list[Entry]:
    """Entries matching ``wanted``, newest first, older than ``before_id``, at most ``limit``."""
    where = ["ts >= ?", "ts < ?"]
    params: list[object] = [wanted.since, min(wanted.until, 1e18)]
    if before_id is not None:
        where.append("id < ?")
        params.append(before_id)
    if wanted.object:
        where.append("(object = ? OR object LIKE ? ESCAPE '\\')")
        params += [wanted.object, wanted.object.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + ":%"]
    if wanted.communes is not None:
        of_area = " OR (commune = '' AND area = ?)" if wanted.area else ""
        where.append(f"(commune IN ({', '.join('?' * len(wanted.communes))}){of_area})")
        params += [*sorted(wanted.communes), *([wanted.area] if wanted.area else [])]
    sql = f"SELECT {COLUMNS} FROM audit_log WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT ?"
    return [Entry(*row) for row in store.query(sql, (*params, limit))]


class AuditBook:
    """The audit log as the HTTP layer and the service use it: one object over the state file."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def snapshot(self) -> Snapshot:
        return snapshot(self._store)

    def record(self, actor: Actor, action: str, before: Snapshot, now: float, always: bool = True) -> int:
        return record(self._store, actor, action, before, now, always)

    def entries(self, wanted: Filter, before_id: int | None, limit: int) -> list[Entry]:
        return entries(self._store, wanted, before_id, limit)

    def prune(self, now: float, keep_days: int) -> int:
        return prune(self._store, now, keep_days)
