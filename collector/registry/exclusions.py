"""Exclusions: spans the monthly report's adjusted figures leave out, kept as records.

An exclusion names a commune and what of it (the whole commune, one PC, one issued item by its
serial, or the commune's line), an interval [start, end), a reason from the fixed list
(``collector.vocabulary.EXCLUSION_REASONS``), a note, and who made it. It is never changed
(the state file refuses to): withdrawing one is a later record that names it, with who and why.
Bad input is refused whole with one sentence (``ExclusionError``): an unknown commune, PC or
serial, a commune without a line, a reason outside the list, an interval that is inverted or
overlaps one in force for the same thing.

``in_force`` answers what a report asks: the exclusions that cover a commune (or one of its PCs,
items or its line) over an interval, as they stood at a moment (so a frozen month reads them as
they were when it was frozen).
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from collector.registry import units
from collector.registry.equipment import Equipment
from collector.registry.registry import Registry
from collector.store import Store
from collector.vocabulary import EXCLUSION_REASONS, EXCLUSION_SCOPES, Words

SCOPES = tuple(EXCLUSION_SCOPES)
REASONS = tuple(EXCLUSION_REASONS)
MAX_NOTE = 500
MAX_NAME = 100


class ExclusionError(ValueError):
    """Input refused; the message says what and with what value. Nothing was stored. ``kind``:
    ``bad`` (malformed), ``unknown`` (no such commune, PC, serial, line or exclusion) or
    ``conflict`` (an interval inverted or overlapping one in force, a record withdrawn already)."""

    def __init__(self, message: str, kind: str = "bad") -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True)
class Withdrawal:
    id: int
    exclusion: int
    by_name: str
    note: str
    created_at: float


@dataclass(frozen=True)
class Exclusion:
    id: int
    province: str
    commune: str
    scope: str  # commune, host, item or line
    target: str  # the host's name, the item's serial, or "" (commune, line)
    start: float
    end: float
    reason: str
    note: str
    by_name: str
    created_at: float
    withdrawal: Withdrawal | None = None

    def as_json(self) -> dict[str, Any]:
        words: Words = EXCLUSION_REASONS[self.reason]
        return {**asdict(self), "commune_name": units.commune_name(self.commune), "reason_vi": words.vi,
                "reason_en": words.en, "withdrawn": self.withdrawal is not None}  # fmt: skip


COLUMNS = "id, province, commune, scope, target, start, end, reason, note, by_name, created_at"


def parse_time(text: str, zone: str) -> float:
    """An ISO date or date-time as epoch seconds; without an offset it is local time in ``zone``,
    and a date alone is the start of that day."""
    try:
        if len(text.strip()) == 10:
            return moment_of(dt.date.fromisoformat(text.strip()), zone)
        return moment_of(dt.datetime.fromisoformat(text.strip()), zone)
    except ValueError:
        raise ExclusionError(
            f"{text[:40]!r} is not an ISO date or time (e.g. 2026-11-03 or 2026-11-03T08:00)"
        ) from None


def moment_of(value: dt.date | dt.datetime, zone: str) -> float:
    """A date (the start of that day) or a date-time, local in ``zone`` without an offset, as epoch seconds."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo(zone))
    return moment.timestamp()


class Exclusions:
    """The exclusions and withdrawals in the state file; validation against the registry."""

    def __init__(self, store: Store, registry: Registry, zone: str) -> None:
        self._store = store
        self._registry = registry
        self.zone = zone  # where a time without an offset is local (the report's time zone)

    def add(self, commune: str, scope: str, target: str, start: float, end: float, reason: str, note: str,
            by_name: str, now: float | None = None) -> Exclusion:  # fmt: skip
        """Store a new exclusion after checking it whole; ExclusionError (nothing stored) otherwise."""
        place = self._checked_place(commune, scope, target)
        if reason not in EXCLUSION_REASONS:
            raise ExclusionError(f"reason {reason[:40]!r} is not one of {', '.join(REASONS)}")
        if not start < end:
            raise ExclusionError(
                f"the interval is inverted or empty: from {iso(start)} is not before to {iso(end)}", "conflict"
            )
        note, by_name = note.strip(), by_name.strip()
        if not note or len(note) > MAX_NOTE:
            raise ExclusionError(f"a note of 1 to {MAX_NOTE} characters is needed (what happened, a ticket number)")
        if not by_name or len(by_name) > MAX_NAME:
            raise ExclusionError(f"who made it (by) is needed, 1 to {MAX_NAME} characters")
        created = time.time() if now is None else now
        with self._store.transaction() as db:  # the overlap check and the insert: no other exclusion between
            clash = db.execute(
                "SELECT id, start, end FROM exclusions WHERE commune = ? AND scope = ? AND target = ? AND start < ?"
                " AND end > ? AND id NOT IN (SELECT exclusion FROM exclusion_withdrawals) ORDER BY start LIMIT 1",
                (commune, scope, target, end, start),
            ).fetchone()
            if clash is not None:
                raise ExclusionError(
                    f"it overlaps exclusion {clash[0]} ({iso(clash[1])} to {iso(clash[2])}) of the same "
                    f"{scope}; withdraw that one first, or choose another interval",
                    "conflict",
                )
            cursor = db.execute(
                f"INSERT INTO exclusions ({COLUMNS[4:]}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (place, commune, scope, target, start, end, reason, note, by_name, created),
            )
            new_id = int(cursor.lastrowid or 0)
        return Exclusion(new_id, place, commune, scope, target, start, end, reason, note, by_name, created)

    def _checked_place(self, commune: str, scope: str, target: str) -> str:
        """The commune's province, once the commune and what of it is named are known."""
        official = units.commune(commune)
        if official is None:
            raise ExclusionError(f"commune {commune[:20]!r} is not an official commune code (e.g. 02473)", "unknown")
        if scope not in EXCLUSION_SCOPES:
            raise ExclusionError(f"scope {scope[:20]!r} is not one of {', '.join(SCOPES)}")
        hosts = {r.key.host for r in self._registry.hosts() if r.key.commune == commune}
        lines = self._registry.lines(commune)
        serials = {item.serial for item in Equipment(self._store).items(commune) if item.serial}
        if not (hosts or lines or serials or any(commune in cs for cs in self._registry.communes_by_area().values())):
            raise ExclusionError(f"commune {commune} has no PC, line, equipment or area in the registry", "unknown")
        if scope in ("commune", "line") and target:
            raise ExclusionError(f"an exclusion of the {scope} names no host or serial", "conflict")
        if scope == "host" and target not in hosts:
            raise ExclusionError(f"commune {commune} has no known PC named {target[:64]!r}", "unknown")
        if scope == "item" and target not in serials:
            raise ExclusionError(f"commune {commune} has no issued item with serial {target[:64]!r}", "unknown")
        if scope == "line" and not lines:
            raise ExclusionError(f"commune {commune} has no registered line", "unknown")
        return official.province_code

    def withdraw(self, exclusion_id: int, note: str, by_name: str, now: float | None = None) -> Withdrawal:
        """Record that an exclusion no longer applies; ExclusionError when there is no such exclusion
        in force (unknown, or withdrawn already)."""
        note, by_name = note.strip(), by_name.strip()
        if not note or len(note) > MAX_NOTE:
            raise ExclusionError(f"why it is withdrawn (a note of 1 to {MAX_NOTE} characters) is needed")
        if not by_name or len(by_name) > MAX_NAME:
            raise ExclusionError(f"who withdraws it (by) is needed, 1 to {MAX_NAME} characters")
        created = time.time() if now is None else now
        with self._store.transaction() as db:
            if db.execute("SELECT 1 FROM exclusions WHERE id = ?", (exclusion_id,)).fetchone() is None:
                raise ExclusionError(f"there is no exclusion {exclusion_id}", "unknown")
            if db.execute("SELECT 1 FROM exclusion_withdrawals WHERE exclusion = ?", (exclusion_id,)).fetchone():
                raise ExclusionError(f"exclusion {exclusion_id} is withdrawn already", "conflict")
            cursor = db.execute(
                "INSERT INTO exclusion_withdrawals (exclusion, by_name, note, created_at) VALUES (?, ?, ?, ?)",
                (exclusion_id, by_name, note, created),
            )
        return Withdrawal(int(cursor.lastrowid or 0), exclusion_id, by_name, note, created)

    def all(self, communes: frozenset[str] | None = None) -> list[Exclusion]:
        """Every exclusion (of these communes), oldest first, each with its withdrawal if any."""
        rows = self._store.query(f"SELECT {COLUMNS} FROM exclusions ORDER BY id")
        withdrawals = self._withdrawals()
        found = [with_withdrawal(row, withdrawals) for row in rows]
        return [e for e in found if communes is None or e.commune in communes]

    def in_force(self, commune: str, start: float, end: float, scope: str | None = None, target: str | None = None,
                 as_of: float | None = None) -> list[Exclusion]:  # fmt: skip
        """The exclusions of a commune (only one scope, one host or serial, if given) that overlap
        [start, end), as they stood at ``as_of`` (default now): made by then and not withdrawn by then."""
        moment = time.time() if as_of is None else as_of
        rows = self._store.query(
            f"SELECT {COLUMNS} FROM exclusions WHERE commune = ? AND start < ? AND end > ? AND created_at <= ?"
            " ORDER BY start, id",
            (commune, end, start, moment),
        )
        withdrawals = self._withdrawals()
        found = [with_withdrawal(row, withdrawals) for row in rows]
        return [
            e for e in found
            if (scope is None or e.scope == scope) and (target is None or e.target == target)
            and (e.withdrawal is None or e.withdrawal.created_at > moment)
        ]  # fmt: skip

    def _withdrawals(self) -> dict[int, Withdrawal]:
        rows = self._store.query("SELECT id, exclusion, by_name, note, created_at FROM exclusion_withdrawals")
        return {int(row[1]): Withdrawal(*row) for row in rows}


def with_withdrawal(row: tuple[Any, ...], withdrawals: dict[int, Withdrawal]) -> Exclusion:
    (id_, province, commune, scope, target, start, end, reason, note, by_name, created_at) = row
    return Exclusion(id_, province, commune, scope, target, start, end, reason, note, by_name, created_at,
                     withdrawals.get(int(id_)))  # fmt: skip


def iso(epoch: float) -> str:
    try:
        return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):  # beyond the years a datetime holds
        return f"{epoch:.0f} s since 1970"
