"""The rows behind each figure of a commune's scorecard, and the figures computed from them: pure.

A head who reads "line available 91.2 %" can open it to the rows it is made of, and the figure is
computed FROM those rows (``figures.py`` calls the functions here), so the rows and the figure
cannot drift apart:

- **Line availability**: one row per office window: the 5-minute slots with data, those unused,
  those down, of the down ones those in a power cut or an office closing (not the line's fault),
  those in which nobody in the whole fleet was heard (our collector or broker was down: no data,
  never the commune's downtime), and the share of the window under an exclusion in force.
  Raw = up slots / counted slots; adjusted = the same with the excluded share of each window taken
  out of both (excluded time leaves the denominator, it is never counted as "up").
  Beside them, the decided outages with their cause and the evidence the cause came from.
- **Speed against contract**: the median of the month's speed tests (5-minute rollups), each a row.
- **PC health**: one row per PC: its slots, those online and degraded (raw and with its
  exclusions taken out), its degraded office days as spells, and the reasons.
- **Equipment**: one row per issued item (the registry's, issued by the month's end): the seen device
  it matched (by the fleet's own matching, ``fleet/equipment.py``), the local days of the month it
  was seen on (from the ``peripheral`` points), and the state it was in at the month's end with the
  rule that judged it (the fleet's ``verdict``, not a second rule). Issued per kind = its rows; in use
  = its rows in use; adjusted: the items under an exclusion (the item's, or the commune's) in force
  at the month's end leave both counts.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from collector.fleet import equipment as kit
from collector.localtime import Window
from collector.registry.equipment import IssuedItem
from collector.registry.exclusions import Exclusion

SLOT_S = 300  # the 5-minute rollups the slots count
NOT_THE_LINE = ("power", "office_closed")  # outages not charged to the line; line and unknown are
LINE_SCOPES = ("commune", "line")  # exclusions that take time out of line availability
PC_SCOPES = ("commune", "host")  # exclusions that take time out of a PC's availability (host: that PC)
ITEM_SCOPES = ("commune", "item")  # exclusions that take an issued item out of the adjusted equipment count
MIN_SILENT = 2  # fleet silence needs at least this many communes dark at once (one alone is its own outage)
# The first agent release that reports what a figure needs: older agents (0.1.0 sends no peripherals
# reports) cannot be judged on it, so a commune whose every PC runs one has no data for it, not zero.
FIRST_RELEASE: dict[str, tuple[int, int, int]] = {"equipment": (0, 2, 0)}

Interval = tuple[float, float]


@dataclass(frozen=True)
class Outage:
    """A decided outage of a commune (the collector's ``outage`` point), with the evidence its cause
    came from when the state file still has its record: the commune's reasons (codes), and each
    PC's reading as ``host: cause (reason, reason)``."""

    commune: str
    cause: str  # line, power, office_closed, unknown
    start: int
    end: int
    confidence: float = 0.0
    reasons: tuple[str, ...] = ()
    hosts: tuple[str, ...] = ()


@dataclass(frozen=True)
class LineRow:
    """One office window of a commune's line, in 5-minute slots (fractions where a span cuts a slot)."""

    day: date
    start: int
    end: int
    slots: float  # slots with data
    unused: float  # the line was not used (no PC on it)
    down: float  # the line was down, as measured
    excused: float  # of the down slots, those in a power cut or an office closing (not the line's)
    no_data: float  # slots in which nobody in the fleet was heard (collector/broker down): out of every figure
    excluded: float  # share 0..1 of the window under an exclusion in force (commune or line)

    @property
    def counted(self) -> float:
        """The raw denominator: slots whose line was in use, our own silence taken out."""
        return max(0.0, self.slots - self.unused - self.no_data)

    @property
    def charged(self) -> float:
        """Down slots charged to the line."""
        return min(self.counted, max(0.0, self.down - self.excused - self.no_data))

    @property
    def up(self) -> float:
        return self.counted - self.charged

    @property
    def counted_adjusted(self) -> float:
        return self.counted * (1.0 - self.excluded)

    @property
    def up_adjusted(self) -> float:
        return self.up * (1.0 - self.excluded)

    @property
    def seconds(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class OutageRow:
    """A decided outage as evidence: its office seconds in the month, and whether the line is charged."""

    start: int
    end: int
    cause: str
    charged: bool  # line and unknown are charged to the line; power and office_closed are not
    office_s: float  # its overlap with the month's office windows
    confidence: float
    reasons: tuple[str, ...]
    hosts: tuple[str, ...]


@dataclass(frozen=True)
class ExclusionRow:
    """An exclusion applied to the commune's adjusted figures, with who recorded it."""

    id: int
    scope: str
    target: str
    start: float
    end: float
    reason: str
    note: str
    by_name: str
    created_at: float
    office_s: float  # its overlap with the month's office windows


@dataclass(frozen=True)
class Spell:
    """Consecutive office days a PC was degraded (on at least half the slots it reported)."""

    first: date
    last: date
    days: int


@dataclass(frozen=True)
class PcRow:
    host: str
    slots: float
    online: float
    degraded: float
    slots_adjusted: float  # with the share of each window under an exclusion of this PC (or commune) taken out
    online_adjusted: float
    degraded_days: int
    spells: tuple[Spell, ...]
    reasons: tuple[str, ...]
    agent_version: str = ""  # as the registry has it (the hello or the inventory said it); "" unknown
    too_old_for: tuple[str, ...] = ()  # figures its agent is too old to report (``FIRST_RELEASE``)


@dataclass(frozen=True)
class SpeedRow:
    time: int
    percent: float  # download as % of the contracted speed (a 5-minute rollup's mean)


@dataclass(frozen=True)
class ItemRow:
    """One issued item at the month's end: the device it matched ("" when none was seen in the
    month), the local days of the month it was seen on, and its state with the rule that judged it."""

    kind: str
    model: str
    serial: str
    issued_on: str
    device: str
    host: str  # the PC it was last seen on, "" when none
    days: tuple[date, ...]
    state: str  # fleet/equipment.py STATES
    rule: str  # fleet/equipment.py RULES
    last_seen: float  # 0 when not seen in the month
    excluded: bool = False  # under an exclusion (item or commune) in force at the month's end

    @property
    def in_use(self) -> bool:
        return self.state == kit.IN_USE


@dataclass(frozen=True)
class ItemCount:
    """One kind's items, summed from the rows: raw, and adjusted (excluded items left out of both)."""

    kind: str
    issued: int
    in_use: int
    plugged_idle: int
    pcsc: int
    issued_adjusted: int
    in_use_adjusted: int


@dataclass
class CommuneEvidence:
    commune: str
    line: list[LineRow] = field(default_factory=list)
    outages: list[OutageRow] = field(default_factory=list)
    exclusions: list[ExclusionRow] = field(default_factory=list)
    silence: list[Interval] = field(default_factory=list)  # fleet silence overlapping its office windows
    pcs: list[PcRow] = field(default_factory=list)
    speed: list[SpeedRow] = field(default_factory=list)
    items: list[ItemRow] = field(default_factory=list)


# ---- figures from rows: the only arithmetic the report prints ----


def percent(part: float, whole: float) -> float | None:
    return round(100.0 * part / whole, 1) if whole > 0 else None


def line_availability(rows: Sequence[LineRow]) -> float | None:
    return percent(sum(r.up for r in rows), sum(r.counted for r in rows))


def line_availability_adjusted(rows: Sequence[LineRow]) -> float | None:
    return percent(sum(r.up_adjusted for r in rows), sum(r.counted_adjusted for r in rows))


def down_hours(rows: Sequence[LineRow]) -> float:
    """Office time charged to the line as down: in each window, the share of its slots charged times
    the window's length (so a gap in the data does not shorten it), in hours to a tenth."""
    return round(sum(r.charged / r.slots * r.seconds for r in rows if r.slots > 0) / 3600, 1)


def pc_availability(rows: Sequence[PcRow]) -> float | None:
    return percent(sum(r.online for r in rows), sum(r.slots for r in rows))


def pc_availability_adjusted(rows: Sequence[PcRow]) -> float | None:
    return percent(sum(r.online_adjusted for r in rows), sum(r.slots_adjusted for r in rows))


def speed_percent(rows: Sequence[SpeedRow]) -> float | None:
    return round(statistics.median(r.percent for r in rows), 1) if rows else None


def item_counts(rows: Sequence[ItemRow]) -> list[ItemCount]:
    """Per kind, by kind: the equipment figure, summed from the item rows."""
    out = []
    for kind in sorted({r.kind for r in rows}):
        mine = [r for r in rows if r.kind == kind]
        kept = [r for r in mine if not r.excluded]
        out.append(ItemCount(kind, len(mine), sum(r.in_use for r in mine),
                             sum(r.state == kit.PLUGGED_IDLE for r in mine), sum(r.rule == kit.PCSC for r in mine),
                             len(kept), sum(r.in_use for r in kept)))  # fmt: skip
    return out


# ---- rows from what was fetched ----


def item_rows(
    items: Sequence[IssuedItem],
    seen: Sequence[kit.SeenDevice],
    days_seen: dict[str, tuple[date, ...]],
    window_days: int,
    month_end: float,
    applied_here: Sequence[Exclusion],
) -> list[ItemRow]:
    """One commune's item rows: its issued items (issued before ``month_end``) matched to the devices
    seen in the month as the fleet matches them, judged at ``month_end`` by the fleet's rule;
    ``days_seen``: device -> the local days it was seen on; ``applied_here``: the commune's exclusions
    in force (an item's, by serial, or the commune's, over the month's end, takes it out of adjusted)."""
    mine = [i for i in items if kit.issued_at(i) < month_end]
    matched, _left = kit.match(mine, list(seen))
    over_end = [e for e in applied_here if e.scope in ITEM_SCOPES and e.start < month_end <= e.end]
    out = []
    for item, device in zip(mine, matched, strict=True):
        judged = kit.verdict(item, device, window_days, month_end)
        excluded = any(e.scope == "commune" or kit.serial_key(e.target) == kit.serial_key(item.serial)
                       for e in over_end if e.scope == "commune" or item.serial)  # fmt: skip
        out.append(ItemRow(item.kind, item.model, item.serial, item.issued_on, judged.device,
                           device.host if device else "", days_seen.get(device.device, ()) if device else (),
                           judged.state, judged.rule, judged.last_seen, excluded))  # fmt: skip
    return out


def line_rows(
    commune: str,
    slots: Iterable[tuple[int, float, float, float]],
    windows: Sequence[Window],
    outages: Sequence[Outage],
    silence: Sequence[Interval],
    excluded: Sequence[Interval],
) -> list[LineRow]:
    """A commune's rows from its slots ``(window index, n, down, unused)``: power cuts and office
    closings excused (outside fleet silence), fleet silence out of every figure, exclusions as a share."""
    excusing = subtract(merge((o.start, o.end) for o in outages if o.commune == commune and o.cause in NOT_THE_LINE),
                        silence)  # fmt: skip
    exclusions = merge(excluded)
    out = []
    for index, n, down, unused in slots:
        w = windows[index]
        quiet = min(n, overlap(silence, w) / SLOT_S)
        excused = min(max(0.0, down - quiet), overlap(excusing, w) / SLOT_S)
        share = min(1.0, overlap(exclusions, w) / w.seconds) if w.seconds > 0 else 0.0
        out.append(LineRow(w.day, w.start, w.end, n, unused, down, excused, quiet, share))
    return out


def outage_rows(commune: str, outages: Sequence[Outage], windows: Sequence[Window]) -> list[OutageRow]:
    mine = sorted((o for o in outages if o.commune == commune), key=lambda o: (o.start, o.end))
    return [OutageRow(o.start, o.end, o.cause, o.cause not in NOT_THE_LINE, office_seconds([(o.start, o.end)], windows),
                      o.confidence, o.reasons, o.hosts) for o in mine]  # fmt: skip


def exclusion_rows(applied: Sequence[Exclusion], windows: Sequence[Window]) -> list[ExclusionRow]:
    return [ExclusionRow(e.id, e.scope, e.target, e.start, e.end, e.reason, e.note, e.by_name, e.created_at,
                         office_seconds([(e.start, e.end)], windows)) for e in applied]  # fmt: skip


def applied(exclusions: Sequence[Exclusion], commune: str, start: float, end: float, as_of: float) -> list[Exclusion]:
    """The exclusions of ``commune`` in force at ``as_of`` (made by then, not withdrawn by then)
    that overlap [start, end), by start."""
    return sorted(
        (e for e in exclusions if e.commune == commune and e.start < end and e.end > start and e.created_at <= as_of
         and (e.withdrawal is None or e.withdrawal.created_at > as_of)),
        key=lambda e: (e.start, e.id),
    )  # fmt: skip


def excluded_spans(applied_here: Sequence[Exclusion], scopes: tuple[str, ...], host: str = "") -> list[Interval]:
    """The spans of those exclusions that reach a figure: of a scope in ``scopes`` and, for a PC's,
    of that host (scope host) or of the whole commune."""
    return merge((e.start, e.end) for e in applied_here
                 if e.scope in scopes and (e.scope != "host" or e.target == host))  # fmt: skip


def pc_row(
    host: str,
    slots: Iterable[tuple[int, float, float, float]],
    windows: Sequence[Window],
    excluded: Sequence[Interval],
    reasons: tuple[str, ...],
    agent_version: str = "",
    silence: Sequence[Interval] = (),
) -> PcRow:
    """A PC's row from its slots ``(window index, n, online, degraded)``; slots in fleet silence
    (``silence``: nobody heard, our broker or collector down) are out of it, as no data."""
    spans = merge(excluded)
    per_day: dict[date, list[float]] = defaultdict(lambda: [0.0, 0.0])
    n = online = degraded = n_adj = online_adj = 0.0
    for index, sn_all, sa_all, sb_all in slots:
        w = windows[index]
        sn = max(0.0, sn_all - min(sn_all, overlap(silence, w) / SLOT_S))
        sa, sb = min(sa_all, sn), min(sb_all, sn)
        keep = 1.0 - (min(1.0, overlap(spans, w) / w.seconds) if w.seconds > 0 else 0.0)
        n, online, degraded = n + sn, online + sa, degraded + sb
        n_adj, online_adj = n_adj + sn * keep, online_adj + sa * keep
        per_day[w.day][0] += sn
        per_day[w.day][1] += sb
    bad_days = sorted(d for d, (dn, db) in per_day.items() if dn > 0 and db >= dn / 2)
    office_days = sorted(per_day)
    return PcRow(host, n, online, degraded, n_adj, online_adj, len(bad_days), spells(bad_days, office_days),
                 reasons, agent_version, too_old_for(agent_version))  # fmt: skip


def too_old_for(version: str) -> tuple[str, ...]:
    """The figures an agent of ``version`` cannot report; none when the version is unknown (not said)."""
    release = _release(version)
    if release is None:
        return ()
    return tuple(figure for figure, first in FIRST_RELEASE.items() if release < first)


def unreported(pcs: Sequence[PcRow], figure: str) -> bool:
    """True when the commune has PCs and every one runs an agent too old to report ``figure``."""
    return bool(pcs) and all(figure in p.too_old_for for p in pcs)


def _release(version: str) -> tuple[int, int, int] | None:
    parts = version.strip().split("-")[0].split("+")[0].split(".")
    if len(parts) < 3 or not all(p.isdigit() for p in parts[:3]):
        return None
    return int(parts[0]), int(parts[1]), int(parts[2])


def spells(bad: Sequence[date], office_days: Sequence[date]) -> tuple[Spell, ...]:
    """Runs of degraded days, consecutive among the office days the PC reported on (a weekend between
    two degraded days does not break a spell)."""
    position = {d: i for i, d in enumerate(office_days)}
    out: list[Spell] = []
    for d in bad:
        if out and position[d] == position[out[-1].last] + 1:
            out[-1] = Spell(out[-1].first, d, out[-1].days + 1)
        else:
            out.append(Spell(d, d, 1))
    return tuple(out)


def silent_spans(outages: Sequence[Outage], heard: dict[str, Interval]) -> list[Interval]:
    """When nobody in the fleet was heard: every commune heard in the month (``heard``: commune ->
    its first and last report) was dark at once, at least ``MIN_SILENT`` of them in a decided outage
    (before its first report or after its last, a commune is dark anyway). A broker or collector
    down, not the communes' lines."""
    if len(heard) < MIN_SILENT:
        return []
    own: dict[str, list[Interval]] = defaultdict(list)
    for o in outages:
        if o.commune in heard:
            own[o.commune].append((o.start, o.end))
    common: list[Interval] = [(float("-inf"), float("inf"))]
    for commune, (first, last) in heard.items():
        common = intersect(common, merge([*own.get(commune, []), *_dead_spans((first, last))]))
        if not common:
            return []
    return [span for span in _at_least(own, MIN_SILENT) for span in intersect(common, [span])]


def _dead_spans(seen: Interval) -> list[Interval]:
    return [(float("-inf"), seen[0]), (seen[1], float("inf"))]


def _at_least(own: dict[str, list[Interval]], count: int) -> list[Interval]:
    """Where at least ``count`` communes are in an outage at once."""
    edges: list[tuple[float, int]] = []
    for spans in own.values():
        for a, b in merge(spans):
            edges += [(a, 1), (b, -1)]
    out: list[Interval] = []
    depth, since = 0, 0.0
    for moment, step in sorted(edges, key=lambda e: (e[0], e[1])):
        before, depth = depth, depth + step
        if before < count <= depth:
            since = moment
        elif depth < count <= before and moment > since:
            out.append((since, moment))
    return merge(out)


# ---- intervals ----


def merge(spans: Iterable[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in sorted(s for s in spans if s[1] > s[0]):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def intersect(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    out = []
    for a, b in xs:
        for c, d in ys:
            lo, hi = max(a, c), min(b, d)
            if lo < hi:
                out.append((lo, hi))
    return merge(out)


def subtract(xs: Sequence[Interval], ys: Sequence[Interval]) -> list[Interval]:
    out: list[Interval] = []
    for a, b in xs:
        pieces = [(a, b)]
        for c, d in ys:
            pieces = [p for x, y in pieces for p in ((x, min(y, c)), (max(x, d), y)) if p[1] > p[0]]
        out += pieces
    return merge(out)


def overlap(spans: Sequence[Interval], window: Window) -> float:
    return sum(max(0.0, min(b, window.end) - max(a, window.start)) for a, b in spans)


def office_seconds(spans: Sequence[Interval], windows: Sequence[Window]) -> float:
    merged = merge(spans)
    return sum(overlap(merged, w) for w in windows)
