"""The fleet's rules: whether a PC is offline or degraded (and why), the line-state chain of a
commune (down, degraded, unused, up), and the alert conditions they make.

Every function here is pure: it reads facts (``facts.HostFacts``), the settings and ``now``, and
returns new values; no SQLite, no threads, no clock, nothing changed in place. ``state.py``
gathers the facts and calls these under its lock; ``tests/test_fleet_rules_pure.py`` calls them
directly over hand-built facts.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple, TypeVar

from collector import vocabulary as words
from collector.alerting.conditions import NO_HOST, Condition
from collector.config import FleetSettings
from collector.fleet.equipment import CommuneEquipment
from collector.fleet.facts import DAY_S, HostFacts, window_days
from collector.localtime import LOCAL_DAYS
from collector.registry import units
from collector.registry.registry import HostKey, Line

BROKER_WILLS_BEFORE_S = 5.0  # a broker shutting down sends the PCs' Wills at most this long before it drops us
OTHER_UPLINKS = ("wwan", "ppp", "usb", "wwp", "rmnet")  # a 4G dongle or phone, not the FTTH line
DUE_SLACK_S = 0.001  # a verdict is evaluated again this early: rounding in ``now - since >= limit`` never skips it


class HostStatus(NamedTuple):  # tuples: one of each per host at every evaluation, 3x cheaper than frozen dataclasses
    key: HostKey
    area: str
    online: bool
    last_heard: float  # its last report or registry sighting; the seconds since are the snapshot's ``at`` minus it
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
    reasons: tuple[str, ...] = ()  # codes, or a measured reason in English (``loss 6.0%, rtt 40 ms``)
    traffic_mb_per_day: float = 0.0
    last_traffic_at: float = 0.0
    reasons_vi: tuple[str, ...] = ()


T = TypeVar("T")
ANSWERS_KEPT = 256  # answers kept per snapshot (``Snapshot.answer``): status pages of areas, levels and pages
_MISSING = object()


@dataclass
class Snapshot:
    """One evaluation of the whole fleet."""

    hosts: list[HostStatus] = field(default_factory=list)
    communes: list[CommuneStatus] = field(default_factory=list)
    conditions: list[Condition] = field(default_factory=list)
    equipment: list[CommuneEquipment] = field(default_factory=list)  # communes with issued or seen equipment
    at: float = 0.0  # the moment evaluated: a PC's seconds since its last report are ``at - last_heard``
    _answers: dict[Hashable, object] = field(default_factory=dict, init=False, repr=False, compare=False)
    _answers_lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False, compare=False)

    # A snapshot is not changed once evaluated; the API reads it many times between two evaluations,
    # so what a request would otherwise find by walking every PC (100,000 for a nation) is indexed:
    # by the evaluator (``indexed``) before the snapshot is published, or else on first use. Two
    # requests may build an index at once: the same one, the last kept.

    def indexed(self) -> Snapshot:
        """The snapshot with every index built, so no request pays for one (the first request after
        each tick at 100,000 PCs did: tens of milliseconds of walking, more while waiting for the GIL)."""
        _ = self._hosts_by_commune, self._communes_by_code, self.degraded_hosts
        return self

    def answer(self, key: Hashable, make: Callable[[], T]) -> T:
        """What a reader makes from this snapshot alone (a page, a sorted list), made on first use and
        kept with the snapshot: every request until the next evaluation gets the same, without making
        it again. ``key`` names it with everything besides the snapshot it depends on. At most
        ``ANSWERS_KEPT`` are kept, the oldest dropped first; what ``make`` raises is not kept."""
        found = self._answers.get(key, _MISSING)
        if found is _MISSING:
            found = make()
            with self._answers_lock:
                self._answers[key] = found
                while len(self._answers) > ANSWERS_KEPT:
                    del self._answers[next(iter(self._answers))]
        return found  # type: ignore[return-value]

    def hosts_of(self, commune: str) -> list[HostStatus]:
        """The commune's PCs, in the snapshot's order."""
        return self._hosts_by_commune.get(commune, [])

    def commune_of(self, commune: str) -> CommuneStatus | None:
        return self._communes_by_code.get(commune)

    @cached_property
    def degraded_hosts(self) -> list[HostStatus]:
        """The PCs with a degraded reason, in the snapshot's order."""
        return [h for h in self.hosts if h.reasons]

    @cached_property
    def _hosts_by_commune(self) -> dict[str, list[HostStatus]]:
        found: dict[str, list[HostStatus]] = {}
        for host in self.hosts:
            found.setdefault(host.key.commune, []).append(host)
        return found

    @cached_property
    def _communes_by_code(self) -> dict[str, CommuneStatus]:
        found: dict[str, CommuneStatus] = {}
        for c in self.communes:
            found.setdefault(c.commune, c)  # the first, as a walk through the list finds it
        return found


class Member(NamedTuple):
    """A PC of a commune as the line rules see it: whether it is online or degraded, and its facts."""

    online: bool
    degraded: bool
    facts: HostFacts


@dataclass(frozen=True)
class LineVerdict:
    state: str
    reasons: tuple[str, ...] = ()  # codes, or measured reasons in English
    reasons_vi: tuple[str, ...] = ()
    days_unused: float = 0.0


# ---- one PC ----


def in_restart_grace(now: float, started_at: float, backlog_at: float, settings: FleetSettings) -> bool:
    """Within ``restart_grace_s`` of a start (or of the broker's return); or, up to
    ``grace_while_draining_max_s`` after it, within ``restart_grace_s`` of the last backlog report.
    After an outage the broker and the spools send their backlog first and the PCs' live reports
    wait behind it: while it drains, a PC's silence is the collector's, not the PC's."""
    since = now - started_at
    if since < settings.restart_grace_s:
        return True
    draining = backlog_at >= started_at and now - backlog_at < settings.restart_grace_s
    return draining and since < settings.grace_while_draining_max_s


def counted_status(status: str, status_since: float, in_grace: bool, grace_from: float) -> str:
    """The registry's status as the offline rule reads it: in a grace, an ``offline`` that came
    since the grace began does not count yet. A collector that starts receives the Last Wills the
    broker queued while it was away, and a broker that shuts down sends every PC's Will; the PCs
    get the grace to come back, and a Will still standing when it ends counts then."""
    if in_grace and status == "offline" and status_since >= grace_from:
        return "online"
    return status


def backlog_counts(facts: HostFacts, last_seen: float, settings: FleetSettings, now: float) -> bool:
    """Whether a backlog report (measured long before it came) is gathered: it keeps a PC that is
    online now online (an agent draining its spool after an outage sends its oldest reports first),
    and never brings an offline one back (what a broker held while the PC has since gone away)."""
    return not is_offline(facts, last_seen, "online", False, settings, now)


def is_offline(
    facts: HostFacts, last_seen: float, status: str, in_grace: bool, settings: FleetSettings, now: float
) -> bool:
    """Offline: its Last Will came, or it has been silent for ``offline_after_intervals``; during
    the restart grace only a Last Will the registry also holds counts."""
    if in_grace:
        return facts.offline_will and status == "offline"
    silent_for = now - max(facts.last_report, last_seen)
    return facts.offline_will or silent_for > settings.offline_after_intervals * facts.interval_s


def degraded_reasons(facts: HostFacts, settings: FleetSettings, now: float) -> tuple[str, ...]:
    """Why a PC is degraded, as codes in ``vocabulary.DEGRADED_REASONS`` order; () when it is not.

    Run for every PC at every evaluation (100,000 of them a tick for a nation): each check in turn,
    in the vocabulary's order, the counts of the last day only summed when there are enough
    entries to reach the limit (``tests/test_fleet_evaluation_same.py`` holds it to the plain form)."""
    s = settings
    out: list[str] = []
    if facts.disk_percent > s.disk_full_percent:
        out.append("disk_full")
    if facts.mem_high_since and now - facts.mem_high_since >= s.memory_sustained_s:
        out.append("memory_pressure")
    if facts.cpu_high_since and now - facts.cpu_high_since >= s.cpu_sustained_s:
        out.append("cpu_pegged")
    limit_c = facts.temp_limit_c or s.temperature_c
    if facts.temp_c >= limit_c > 0 and facts.temp_c > 0:
        out.append("temperature_high")
    day_ago = now - DAY_S
    reboots, gaps = facts.reboots, facts.gaps
    if len(reboots) >= s.reboots_per_day and sum(1 for t in reboots if t > day_ago) >= s.reboots_per_day:
        out.append("frequent_reboots")
    if len(gaps) >= s.gaps_per_day and sum(1 for t in gaps if t > day_ago) >= s.gaps_per_day:
        out.append("report_gaps")
    if facts.disk_verdict_failed or facts.disk_bad_sectors > s.disk_bad_sectors or facts.disk_ioerr_rising:
        out.append("disk_failing")
    if facts.disk_busy_since and now - facts.disk_busy_since >= s.disk_slow_minutes * 60:
        out.append("disk_slow")
    if facts.spool_failed:
        out.append("spool_failed")
    if (0 < facts.ram_bytes < s.min_ram_gb * 2**30) or (0 < facts.cpu_cores < s.min_cpu_cores):
        out.append("old_hardware")
    if facts.series_dropped_at and now - facts.series_dropped_at < s.degraded_window_s:
        out.append("too_many_series")
    return tuple(out)


def host_due(facts: HostFacts, last_seen: float, settings: FleetSettings, now: float) -> float:
    """When ``is_offline`` and ``degraded_reasons`` may next give another answer for these facts
    and this registry record with no report in between: silence passing the offline limit, a
    high memory, CPU or busy disk held long enough, too many series leaving the window, a reboot or
    a gap leaving the last day. The grace and the settings are the caller's to watch."""
    s = settings
    moments = [max(facts.last_report, last_seen) + s.offline_after_intervals * facts.interval_s]
    if facts.mem_high_since:
        moments.append(facts.mem_high_since + s.memory_sustained_s)
    if facts.cpu_high_since:
        moments.append(facts.cpu_high_since + s.cpu_sustained_s)
    if facts.disk_busy_since:
        moments.append(facts.disk_busy_since + s.disk_slow_minutes * 60)
    if facts.series_dropped_at:
        moments.append(facts.series_dropped_at + s.degraded_window_s)
    moments += [t + DAY_S for t in facts.reboots]
    moments += [t + DAY_S for t in facts.gaps]
    return next_due(moments, now)


def next_due(moments: Iterable[float], now: float) -> float:
    """The first of ``moments`` (when a rule's answer flips, at or just after it) not yet surely
    past, less ``DUE_SLACK_S``; infinity when none is to come."""
    due = math.inf
    for t in moments:
        if now <= t + DUE_SLACK_S and t < due:
            due = t
    return due - DUE_SLACK_S


# ---- a commune's line ----


def line_verdict(
    members: list[Member], line: Line | None, settings: FleetSettings, now: float, daily: dict[str, float] | None = None
) -> LineVerdict:
    """The line-state chain: neither PC nor line (unknown), no PC ever (unused), every PC offline
    (down), the WAN unreachable from a PC whose gateway answers (down), loss or round-trip time too
    high (degraded), a slow speed test (degraded); then a registered line that is up or degraded may
    still be unused. ``daily`` is ``daily_traffic(members)`` when the caller has it already."""
    s = settings
    if not members and line is None:  # a commune known only by its issued equipment: nothing to judge
        return LineVerdict("unknown", ("no_agent",))
    if not members:
        return LineVerdict("unused", ("no_agent",), days_unused=days_since(line.install_date, now) if line else 0.0)
    verdict = reachability(members, settings, now)
    if line is not None and verdict.state in ("up", "degraded"):
        daily = daily_traffic(members) if daily is None else daily
        why, days_unused = unused_reason(members, daily, s, now)
        if why:
            return LineVerdict("unused", (why,), days_unused=days_unused)
        return LineVerdict(verdict.state, verdict.reasons, verdict.reasons_vi, days_unused)
    return verdict


def reachability(members: list[Member], settings: FleetSettings, now: float) -> LineVerdict:
    """Down, degraded or up, from the PCs that are online."""
    s = settings
    online = [m.facts for m in members if m.online]
    if not online:
        return LineVerdict("down", ("all_hosts_offline",))
    if any(f.probe_down_since and now - f.probe_down_since >= s.line_down_probe_s for f in online):
        return LineVerdict("down", ("wan_unreachable",))
    count, loss_sum, rtt_sum = 0, 0.0, 0.0  # summed in the samples' order, as sum() over one list would
    for f in online:
        count += len(f.samples)
        for _at, loss_percent, rtt_ms in f.samples:
            loss_sum += loss_percent
            rtt_sum += rtt_ms
    if count >= 3:
        loss, rtt = loss_sum / count, rtt_sum / count
        if loss > s.loss_percent_max or rtt > s.rtt_ms_max:
            said = words.loss_reason(loss, rtt)
            return LineVerdict("degraded", (said.en,), (said.vi,))
    speed = [m.facts.speedtest_percent for m in members if m.facts.speedtest_percent >= 0]
    if speed and min(speed) < s.speedtest_min_percent:
        said = words.speed_reason(min(speed))
        return LineVerdict("degraded", (said.en,), (said.vi,))
    return LineVerdict("up")


def unused_reason(
    members: list[Member], per_day: dict[str, float], settings: FleetSettings, now: float
) -> tuple[str, float]:
    """Why a registered line counts as unused ("" when it does not), and for how many days: every
    PC routes through a 4G dongle or phone, or each whole day of the window carried less than
    ``unused_below_mb_per_day``."""
    s = settings
    uplinks = [m.facts.uplink for m in members if m.facts.uplink]
    if uplinks and all(u.startswith(OTHER_UPLINKS) for u in uplinks):
        return "other_uplink", 0.0
    days = window_days(now, s.unused_after_days)
    if all(day in per_day for day in days) and max(per_day[day] for day in days) < s.unused_below_mb_per_day * 1e6:
        return "low_traffic", float(len(days))
    return "", 0.0


def daily_traffic(members: list[Member]) -> dict[str, float]:
    """Bytes per local date on the default-route NICs of a commune's PCs, for the days any has data."""
    per_day: dict[str, float] = {}
    for m in members:
        for day, moved in m.facts.traffic_by_day.items():
            per_day[day] = per_day.get(day, 0.0) + moved
    return per_day


def traffic_figures(per_day: dict[str, float], settings: FleetSettings, now: float) -> tuple[float, float]:
    """Mean MB/day over the days of the unused window that have data (yesterday and back, as the
    unused rule counts them), and the start of the last day that carried at least the unused
    threshold (0 when none is known)."""
    s = settings
    window = [d for d in window_days(now, s.unused_after_days) if d in per_day]
    mean_mb = sum(per_day[d] for d in window) / len(window) / 1e6 if window else 0.0
    busy = [d for d in per_day if per_day[d] >= s.unused_below_mb_per_day * 1e6]
    last = LOCAL_DAYS.midnight(max(busy)) if busy else 0.0
    return round(mean_mb, 1), last


def days_since(iso_date: str, now: float) -> float:
    try:
        start = LOCAL_DAYS.midnight(iso_date)
    except ValueError:
        return 0.0
    return max(0.0, (now - start) // DAY_S)


def commune_status(
    province: str,
    commune: str,
    area: str,
    members: list[Member],
    line: Line | None,
    settings: FleetSettings,
    now: float,
) -> CommuneStatus:
    """A commune's summary: its PCs, its line's verdict and its traffic figures."""
    daily = daily_traffic(members)
    verdict = line_verdict(members, line, settings, now, daily)
    traffic_mb, last_traffic = traffic_figures(daily, settings, now)
    reasons_vi = verdict.reasons_vi or tuple(words.LINE_REASONS[r].vi for r in verdict.reasons)
    return CommuneStatus(
        province,
        area,
        commune,
        len(members),
        sum(1 for m in members if m.online),
        sum(1 for m in members if m.degraded),
        verdict.state,
        line.contracted_down_mbps if line else 0.0,
        verdict.days_unused,
        verdict.reasons,
        traffic_mb,
        last_traffic,
        reasons_vi,
    )


def commune_due(members: list[Member], line: Line | None, settings: FleetSettings, now: float) -> float:
    """When ``commune_status`` may next give another answer with the same members, facts and line:
    a WAN failing for ``line_down_probe_s`` seen from an online PC, or a line with no PC one more
    day old. The local date (the unused window) is the caller's to watch."""
    moments = [m.facts.probe_down_since + settings.line_down_probe_s for m in members
               if m.online and m.facts.probe_down_since]  # fmt: skip
    if line is not None and not members:
        try:
            start = LOCAL_DAYS.midnight(line.install_date)
        except ValueError:
            start = 0.0
        if start:
            moments.append(start + (days_since(line.install_date, now) + 1) * DAY_S)
    return next_due(moments, now)


# ---- what to alert on ----

LINE_RULES = {"down": words.LINE_DOWN, "degraded": words.LINE_DEGRADED, "unused": words.LINE_UNUSED}


def conditions(hosts: list[HostStatus], communes: list[CommuneStatus]) -> list[Condition]:
    """One condition per commune whose line is not up, then per PC offline (unless its commune's
    line is down: one alert for a cut line, not one per PC) and per PC degraded."""
    out: list[Condition] = []
    down = {(c.province, c.commune) for c in communes if c.line_state == "down"}
    for commune in communes:
        rule = LINE_RULES.get(commune.line_state)
        if rule is None:
            continue
        name = units.display_name(commune.commune)
        why_vi = ", ".join(commune.reasons_vi)
        why_en = ", ".join(words.line_reason_en(r) for r in commune.reasons)
        said = words.SUMMARIES[rule]
        out.append(Condition(rule, commune.province, commune.area, commune.commune, NO_HOST,
                             words.RULE_SEVERITY[rule], said.vi.format(name=name, why=why_vi),
                             said.en.format(name=name, why=why_en)))  # fmt: skip
    for host in hosts:
        key = host.key
        offline = not host.online and (key.province, key.commune) not in down
        if not offline and not host.reasons:  # most PCs: nothing to say, no name to look up
            continue
        name = units.display_name(key.commune)
        base = (key.province, host.area, key.commune, key.host)
        if offline:
            said = words.SUMMARIES[words.HOST_OFFLINE]
            vi, en = said.vi.format(host=key.host, name=name), said.en.format(host=key.host, name=name)
            out.append(Condition(words.HOST_OFFLINE, *base, words.RULE_SEVERITY[words.HOST_OFFLINE], vi, en))
        if host.reasons:
            said = words.SUMMARIES[words.HOST_DEGRADED]
            vi = said.vi.format(host=key.host, name=name, why=words.degraded_reasons(host.reasons, "vi"))
            en = said.en.format(host=key.host, name=name, why=words.degraded_reasons(host.reasons, "en"))
            out.append(Condition(words.HOST_DEGRADED, *base, words.RULE_SEVERITY[words.HOST_DEGRADED], vi, en,
                                 (("reasons", ",".join(host.reasons)),)))  # fmt: skip
    return out
