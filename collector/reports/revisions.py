"""Frozen months: a month's report, once made, is kept as a revision, and a later change is a new one.

A revision holds the month's figures per commune (as JSON), a hash of the inputs they were
computed from (the fetched rows, the registry's communes, the exclusions in force, each as
canonical JSON hashed with SHA-256, and a hash of all of them), its number, and when and by whom
it was made. Making the report again from the same inputs gives the same revision. When the
inputs change (an exclusion added or withdrawn, a late backlog written, a commune moved to
another area) or the same inputs give other figures (a release that computes them otherwise),
the next report is the next revision, which says what changed (each commune's figure, old ->
new) and why. Revisions are records: the state file refuses to change or remove one, every
revision stays served, and each new one writes an entry to the audit log in the same transaction.

Only a month that is over is frozen: not the current month (still counting), nor one whose
history is still being written (a backfill holds its range, ``windows.py``), nor one whose last
office windows have not settled yet. A report of such a month says it is provisional.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields, is_dataclass
from typing import Any

from collector.audit import Actor, Change, append
from collector.registry.exclusions import Exclusion
from collector.reports.figures import MonthFigures, Place
from collector.reports.gather import Fetched, Slots
from collector.reports.windows import HELD, SETTLED_S
from collector.store import Store

ACTION = "report revision"
ALL_AREAS = ""  # the area of a report of every area
NOT_FIGURES = frozenset({"place", "score_change", "rank_change", "equipment_change",  # against last month: not frozen
                         "evidence"})  # the rows the figures are made of: made from the inputs hashed  # fmt: skip
LATE_DATA_PARTS = ("windows", "communes", "pcs", "speed", "alerts", "reasons", "outages", "equipment", "issued",
                   "heard", "peripherals")  # fmt: skip
# why a revision was made: causes, in the order they are told (words in collector.vocabulary.REVISION_CAUSES)
EXCLUSION_ADDED, EXCLUSION_WITHDRAWN, LATE_DATA, REGISTRY, METHOD = (
    "exclusion_added", "exclusion_withdrawn", "late_data", "registry", "method")  # fmt: skip
PROVISIONAL_CURRENT, PROVISIONAL_SETTLING, PROVISIONAL_HELD = "current_month", "settling", "held"
COLLECTOR = Actor("commune-collector", "collector")  # a revision made with no person asking (the monthly e-mail)


class RevisionError(LookupError):
    """No such month or revision frozen; the message says what there is."""


@dataclass(frozen=True)
class Inputs:
    """What a month's figures are computed from, as hashes: one per part, and one of them all."""

    parts: dict[str, str]
    exclusions: list[dict[str, Any]]  # the exclusions in force, as records (id, commune, what, when, reason, who)
    digest: str


@dataclass(frozen=True)
class Revision:
    month: str
    area: str  # "" for the report of every area
    number: int
    inputs: str
    parts: dict[str, str]
    exclusions: list[dict[str, Any]]
    figures: dict[str, dict[str, Any]]  # commune code -> its figures
    figures_hash: str
    changes: list[dict[str, Any]]  # commune, name, figure, old, new (empty for revision 1)
    why: list[dict[str, Any]]  # cause and what it names (empty for revision 1)
    made_at: float
    made_by: str
    origin: str

    def summary(self) -> dict[str, Any]:
        """The revision without its figures: what a list shows."""
        return {"month": self.month, "area": self.area or None, "revision": self.number, "inputs": self.inputs,
                "figures_hash": self.figures_hash, "made_at": self.made_at, "made_by": self.made_by,
                "origin": self.origin, "communes": len(self.figures), "changes": len(self.changes),
                "why": self.why}  # fmt: skip

    def as_json(self) -> dict[str, Any]:
        return {**self.summary(), "changes": self.changes, "input_parts": self.parts,
                "exclusions": self.exclusions, "figures": self.figures}  # fmt: skip


def canonical(value: Any) -> str:
    """One text for one value: sorted keys, no spaces, floats to 6 decimals."""
    return json.dumps(_rounded(value), ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def sha256(value: Any) -> str:
    return hashlib.sha256(canonical(value).encode()).hexdigest()


def _rounded(value: Any) -> Any:
    if isinstance(value, float):
        return round(value, 6) + 0.0  # -0.0 is 0.0
    if isinstance(value, dict):
        return {str(k): _rounded(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_rounded(v) for v in value]
    return value


def exclusion_record(e: Exclusion) -> dict[str, Any]:
    return {"id": e.id, "commune": e.commune, "scope": e.scope, "target": e.target, "start": e.start, "end": e.end,
            "reason": e.reason, "note": e.note, "by": e.by_name, "created_at": e.created_at}  # fmt: skip


def in_force(
    found: Iterable[Exclusion], communes: Iterable[str], start: float, end: float, now: float
) -> list[Exclusion]:
    """Of every exclusion, those of these communes over [start, end) as they stood at ``now``:
    made by then, and not withdrawn by then."""
    wanted = set(communes)
    return sorted(
        (e for e in found if e.commune in wanted and e.start < end and e.end > start and e.created_at <= now
         and (e.withdrawal is None or e.withdrawal.created_at > now)),
        key=lambda e: e.id,
    )  # fmt: skip


def inputs_of(fetched: Fetched, places: dict[str, Place], exclusions: list[Exclusion]) -> Inputs:
    """The hash of each input part of a month's figures, and of them all."""
    start, until = fetched.month_start, fetched.month_end
    window = [(w.start, w.end) for w in fetched.windows]
    mine = set(places)  # rows of communes outside the report (another area's) are not its inputs

    def slots(found: list[Slots]) -> list[list[Any]]:
        return sorted([*window[s.window], s.commune, s.host, s.n, s.a, s.b] for s in found if s.commune in mine)

    alerts = [a for a in fetched.alerts if a.commune in mine]
    parts_of: dict[str, Any] = {
        "windows": window,
        "communes": slots(fetched.communes),
        "pcs": slots(fetched.hosts),
        "speed": {c: sorted([r.time, r.percent] for r in rows) for c, rows in fetched.speed_tests.items() if c in mine},
        # an alert resolved after the month counts as it did at the month's end
        "alerts": sorted(
            [a.commune, a.host, a.rule, max(a.start, start - 1.0), min(a.end or until, until)] for a in alerts
        ),
        "reasons": sorted([c, h, r] for (c, h), r in fetched.reasons.items() if c in mine),
        "outages": sorted([o.commune, o.cause, o.start, o.end] for o in fetched.outages if o.commune in mine),
        "equipment": sorted([c, k, *v] for (c, k), v in fetched.equipment.items() if c in mine),
        "issued": sorted([c, k, n] for (c, k), n in fetched.issued.items() if c in mine),
        # the devices seen in the month (the item rows' matching, days and rule)
        "peripherals": sorted(
            [
                c,
                d.device,
                d.kind,
                d.serial,
                d.host,
                d.last_seen,
                d.watched_since,
                d.opened_at,
                [x.isoformat() for x in fetched.days_seen.get((c, d.device), ())],
            ]
            for c, devices in fetched.seen.items()
            if c in mine
            for d in devices
        ),
        # when the fleet's PCs were first and last heard, within the month (a PC heard since is the same)
        "heard": sorted([c, max(a, start), min(b, until)] for c, (a, b) in fetched.heard.items() if c in mine),
        "registry": sorted((asdict(p) for p in places.values()), key=lambda p: str(p["commune"])),
    }
    records = [exclusion_record(e) for e in exclusions]
    parts = {name: sha256(value) for name, value in parts_of.items()}
    parts["exclusions"] = sha256(records)
    return Inputs(parts, records, sha256(parts))


def figures_of(figures: MonthFigures) -> dict[str, dict[str, Any]]:
    """Each commune's figures as they are frozen (not its changes from last month, which a revision
    of the month before would move)."""
    out = {}
    for c in figures.communes:  # field by field: asdict would copy the evidence rows first, then drop them
        row = {f.name: _plain(getattr(c, f.name)) for f in fields(c) if f.name not in NOT_FIGURES}
        out[c.place.commune] = {"name": c.place.name, "area": c.place.area, **row}
    for n in figures.no_data:  # listed apart, unranked: frozen as no data with its reason
        out[n.place.commune] = {"name": n.place.name, "area": n.place.area, "no_data": True, "since": n.since}
    frozen: dict[str, dict[str, Any]] = json.loads(canonical(out))
    return frozen


def _plain(value: Any) -> Any:
    """A figure as JSON-able values: a dataclass (a degraded PC, a kind of equipment) as a dict."""
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def changes(old: dict[str, dict[str, Any]], new: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each commune's figure that differs, old -> new; a commune new to the month or gone from it
    is one change of its figure ``commune`` (old or new None)."""
    out = []
    for code in sorted(old.keys() | new.keys()):
        was, now = old.get(code), new.get(code)
        name = (now or was or {}).get("name", code)
        if was is None or now is None:
            out.append({"commune": code, "name": name, "figure": "commune", "old": was and "listed",
                        "new": now and "listed"})  # fmt: skip
            continue
        for key in sorted(was.keys() | now.keys()):
            if key not in ("name", "area") and was.get(key) != now.get(key):
                out.append({"commune": code, "name": name, "figure": key, "old": was.get(key), "new": now.get(key)})
    return out


def why(
    before: Revision, inputs: Inputs, figures_hash: str, withdrawn: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The causes of a new revision: exclusions added and withdrawn (each with its record), late
    data (which parts of the fetched rows changed), the registry, or the arithmetic itself."""
    out: list[dict[str, Any]] = []
    had = {e["id"]: e for e in before.exclusions}
    has = {e["id"]: e for e in inputs.exclusions}
    out += [{"cause": EXCLUSION_ADDED, "exclusion": has[i]} for i in sorted(has.keys() - had.keys())]
    out += [{"cause": EXCLUSION_WITHDRAWN, "exclusion": had[i], "withdrawal": withdrawn.get(i)}
            for i in sorted(had.keys() - has.keys())]  # fmt: skip
    # a part the earlier revision did not hash (made before it was an input) is no late data: its
    # figures, if they moved, moved by the arithmetic (METHOD)
    late = [p for p in LATE_DATA_PARTS if p in before.parts and before.parts.get(p) != inputs.parts.get(p)]
    if late:
        out.append({"cause": LATE_DATA, "parts": late})
    if before.parts.get("registry") != inputs.parts.get("registry"):
        out.append({"cause": REGISTRY})
    if not out and before.figures_hash != figures_hash:
        out.append({"cause": METHOD})
    return out


COLUMNS = ("month, area, number, inputs, parts, exclusions, figures, figures_hash, changes, why, made_at, made_by,"
           " origin")  # fmt: skip
SUMMARY = COLUMNS.replace(" figures,", " '{}',")  # a list does not read the figures


class RevisionBook:
    """The ``report_revisions`` table (store migration 12)."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def freeze(self, month: str, area: str, inputs: Inputs, figures: dict[str, dict[str, Any]], actor: Actor,
               now: float, withdrawn: dict[int, dict[str, Any]] | None = None) -> Revision:  # fmt: skip
        """The month's revision for these inputs and figures: the newest one when they are the
        same, else a new one (stored with its audit entry in one transaction)."""
        figures_hash = sha256(figures)
        with self._store.transaction() as db:  # the newest and the next: no other report between them
            row = db.execute(f"SELECT {COLUMNS} FROM report_revisions WHERE month = ? AND area = ?"
                             " ORDER BY number DESC LIMIT 1", (month, area)).fetchone()  # fmt: skip
            newest = _revision(row) if row else None
            if newest is not None and newest.inputs == inputs.digest and newest.figures_hash == figures_hash:
                return newest
            made = Revision(
                month, area, (newest.number + 1) if newest else 1, inputs.digest, inputs.parts, inputs.exclusions,
                figures, figures_hash, changes(newest.figures, figures) if newest else [],
                why(newest, inputs, figures_hash, withdrawn or {}) if newest else [], now, actor.name, actor.origin,
            )  # fmt: skip
            db.execute(
                f"INSERT INTO report_revisions ({COLUMNS}) VALUES ({', '.join('?' * 13)})",
                (made.month, made.area, made.number, made.inputs, canonical(made.parts), canonical(made.exclusions),
                 canonical(made.figures), made.figures_hash, canonical(made.changes), canonical(made.why),
                 made.made_at, made.made_by, made.origin),
            )  # fmt: skip
            previous = newest.summary() if newest else None
            entry = {**made.summary(), "area": area, "changes": made.changes, "exclusions": made.exclusions}
            append(db, actor, ACTION, [Change(f"report_revision:{month}/{area or 'all'}/{made.number}", previous,
                                              entry)], now)  # fmt: skip
        return made

    def revisions(self, month: str, area: str = ALL_AREAS) -> list[Revision]:
        """The month's revisions, oldest first, without their figures; RevisionError when none is frozen."""
        rows = self._store.query(f"SELECT {SUMMARY} FROM report_revisions WHERE month = ? AND area = ?"
                                 " ORDER BY number", (month, area))  # fmt: skip
        if not rows:
            raise RevisionError(self._none(month, area))
        return [_revision(row) for row in rows]

    def revision(self, month: str, number: int, area: str = ALL_AREAS) -> Revision:
        """One revision with its figures; RevisionError when the month has none or not that one."""
        row = self._store.query(f"SELECT {COLUMNS} FROM report_revisions WHERE month = ? AND area = ? AND number = ?",
                                (month, area, number))  # fmt: skip
        if row:
            return _revision(row[0])
        newest = self._store.query("SELECT max(number) FROM report_revisions WHERE month = ? AND area = ?",
                                   (month, area))[0][0]  # fmt: skip
        if newest is None:
            raise RevisionError(self._none(month, area))
        raise RevisionError(f"{month}{_of(area)} has no revision {number}: its revisions are 1 to {newest}")

    @staticmethod
    def _none(month: str, area: str) -> str:
        return (
            f"no report of {month}{_of(area)} is frozen: a month is frozen when its report is first made "
            "after the month is over (commune-collector report --month)"
        )


def _of(area: str) -> str:
    return f" for area {area}" if area else ""


def _revision(row: tuple[Any, ...]) -> Revision:
    (month, area, number, inputs, parts, exclusions, figures, figures_hash, changed, why_, made_at, made_by,
     origin) = row  # fmt: skip
    return Revision(str(month), str(area), int(number), str(inputs), json.loads(parts), json.loads(exclusions),
                    json.loads(figures), str(figures_hash), json.loads(changed), json.loads(why_), float(made_at),
                    str(made_by), str(origin))  # fmt: skip


def provisional(store: Store, month_start: int, month_end: int, now: float) -> str:
    """Why a month is not frozen yet ("" when it may be): still counting, its last windows not
    settled, or a range of it held while its history is written."""
    if now < month_end:
        return PROVISIONAL_CURRENT
    if now < month_end + SETTLED_S:
        return PROVISIONAL_SETTLING
    held = store.query("SELECT 1 FROM report_windows WHERE kind = ? AND end > ? AND start < ? LIMIT 1",
                       (HELD, month_start, month_end))  # fmt: skip
    return PROVISIONAL_HELD if held else ""
