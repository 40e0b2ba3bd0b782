"""The fleet evaluation made cheaper for a nation (100,000 PCs a tick, issue 32) gives the same
verdicts as before: the rules as they were written before it (kept below as the reference,
plain and obviously right) against ``FleetState.evaluate`` on randomized fleets (hypothesis):
every PC's online state and degraded reasons, every commune's line verdict and figures; and the
snapshot's indexes the API reads (a commune's PCs, a commune, the degraded PCs) against a walk
through its lists."""

from __future__ import annotations

import time
from collections import deque

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from collector import vocabulary as words
from collector.config import FleetSettings
from collector.fleet.facts import DAY_S, HostFacts, unused_window
from collector.fleet.rules import (
    CommuneStatus,
    LineVerdict,
    Member,
    days_since,
    degraded_reasons,
    reachability,
    traffic_figures,
    unused_reason,
)
from collector.fleet.state import FleetState
from collector.registry import units
from collector.registry.registry import HostKey, Line, Registry
from collector.store import Store

NOW = time.mktime((2026, 11, 20, 12, 0, 0, 0, 0, -1))
S = FleetSettings(restart_grace_s=0)
COMMUNES = units.communes_of("08")[:12]

# ---- the reference: the rules as written before issue 32 ----


def reference_degraded_reasons(facts: HostFacts, s: FleetSettings, now: float) -> tuple[str, ...]:
    day_ago = now - DAY_S
    limit_c = facts.temp_limit_c or s.temperature_c
    checks = {
        "disk_full": facts.disk_percent > s.disk_full_percent,
        "memory_pressure": bool(facts.mem_high_since) and now - facts.mem_high_since >= s.memory_sustained_s,
        "cpu_pegged": bool(facts.cpu_high_since) and now - facts.cpu_high_since >= s.cpu_sustained_s,
        "temperature_high": facts.temp_c >= limit_c > 0 and facts.temp_c > 0,
        "frequent_reboots": sum(1 for t in facts.reboots if t > day_ago) >= s.reboots_per_day,
        "report_gaps": sum(1 for t in facts.gaps if t > day_ago) >= s.gaps_per_day,
        "disk_failing": facts.disk_verdict_failed
        or facts.disk_bad_sectors > s.disk_bad_sectors
        or facts.disk_ioerr_rising,
        "disk_slow": bool(facts.disk_busy_since) and now - facts.disk_busy_since >= s.disk_slow_minutes * 60,
        "spool_failed": facts.spool_failed,
        "old_hardware": (0 < facts.ram_bytes < s.min_ram_gb * 2**30) or (0 < facts.cpu_cores < s.min_cpu_cores),
        "too_many_series": bool(facts.series_dropped_at) and now - facts.series_dropped_at < s.degraded_window_s,
    }
    return tuple(reason for reason in words.DEGRADED_REASONS if checks[reason])


def reference_reachability(members: list[Member], s: FleetSettings, now: float) -> LineVerdict:
    online = [m.facts for m in members if m.online]
    if not online:
        return LineVerdict("down", ("all_hosts_offline",))
    if any(f.probe_down_since and now - f.probe_down_since >= s.line_down_probe_s for f in online):
        return LineVerdict("down", ("wan_unreachable",))
    samples = [x for f in online for x in f.samples]
    if len(samples) >= 3:
        loss = sum(x[1] for x in samples) / len(samples)
        rtt = sum(x[2] for x in samples) / len(samples)
        if loss > s.loss_percent_max or rtt > s.rtt_ms_max:
            said = words.loss_reason(loss, rtt)
            return LineVerdict("degraded", (said.en,), (said.vi,))
    speed = [m.facts.speedtest_percent for m in members if m.facts.speedtest_percent >= 0]
    if speed and min(speed) < s.speedtest_min_percent:
        said = words.speed_reason(min(speed))
        return LineVerdict("degraded", (said.en,), (said.vi,))
    return LineVerdict("up")


def reference_daily(members: list[Member]) -> dict[str, float]:
    per_day: dict[str, float] = {}
    for m in members:
        for day, moved in m.facts.traffic_by_day.items():
            per_day[day] = per_day.get(day, 0.0) + moved
    return per_day


def reference_line_verdict(members: list[Member], line: Line | None, s: FleetSettings, now: float) -> LineVerdict:
    if not members and line is None:
        return LineVerdict("unknown", ("no_agent",))
    if not members:
        return LineVerdict("unused", ("no_agent",), days_unused=days_since(line.install_date, now) if line else 0.0)
    verdict = reference_reachability(members, s, now)
    if line is not None and verdict.state in ("up", "degraded"):
        why, days_unused = unused_reason(members, reference_daily(members), s, now)
        if why:
            return LineVerdict("unused", (why,), days_unused=days_unused)
        return LineVerdict(verdict.state, verdict.reasons, verdict.reasons_vi, days_unused)
    return verdict


def reference_commune(
    province: str, commune: str, area: str, members: list[Member], line: Line | None, s: FleetSettings, now: float
) -> CommuneStatus:
    verdict = reference_line_verdict(members, line, s, now)
    traffic_mb, last_traffic = traffic_figures(reference_daily(members), s, now)
    reasons_vi = verdict.reasons_vi or tuple(words.LINE_REASONS[r].vi for r in verdict.reasons)
    return CommuneStatus(province, area, commune, len(members), sum(1 for m in members if m.online),
                         sum(1 for m in members if m.degraded), verdict.state,
                         line.contracted_down_mbps if line else 0.0, verdict.days_unused, verdict.reasons,
                         traffic_mb, last_traffic, reasons_vi)  # fmt: skip


# ---- randomized facts ----

ago = st.one_of(st.just(0.0), st.floats(0, 3 * DAY_S))
moments = st.lists(st.floats(0, 2 * DAY_S), max_size=6).map(lambda xs: [NOW - x for x in xs])
days = unused_window(NOW + DAY_S, 10)  # today and the 9 days before
edges = st.sampled_from([S.loss_percent_max, S.rtt_ms_max, 0.0])
loss_rtt = st.tuples(st.one_of(st.floats(0, 100), edges), st.one_of(st.floats(0, 500), edges))  # limits exactly too
# and one sample repeated: a line's mean loss or RTT exactly at its limit (mixed samples almost never average to it)
sample_lists = st.one_of(
    st.lists(loss_rtt, max_size=5), st.tuples(loss_rtt, st.integers(3, 5)).map(lambda x: [x[0]] * x[1])
)
facts_strategy = st.builds(
    lambda f, since, samples, traffic: _facts(f, since, samples, traffic),
    st.fixed_dictionaries({
        "disk_percent": st.floats(0, 100), "temp_c": st.sampled_from([0.0, 50.0, 80.0, 95.0]),
        "temp_limit_c": st.sampled_from([0.0, 85.0]), "spool_failed": st.booleans(),
        "ram_bytes": st.sampled_from([0.0, 2.0 * 2**30, 8.0 * 2**30]), "cpu_cores": st.sampled_from([0.0, 1.0, 4.0]),
        "reboots": moments, "gaps": moments, "disk_verdict_failed": st.booleans(),
        "disk_bad_sectors": st.sampled_from([0.0, 5.0, 500.0]), "disk_ioerr_rising": st.booleans(),
        "uplink": st.sampled_from(["", "eth0", "wwan0"]), "speedtest_percent": st.sampled_from([-1.0, 20.0, 95.0]),
        "offline_will": st.booleans(),
    }),
    st.fixed_dictionaries({name: ago for name in ("mem_high_since", "cpu_high_since", "disk_busy_since",
                                                   "series_dropped_at", "probe_down_since", "last_report")}),
    sample_lists,
    st.dictionaries(st.sampled_from(days), st.floats(0, 5e9), max_size=10),
)  # fmt: skip


def _facts(
    plain: dict[str, object], since: dict[str, float], samples: list[tuple[float, float]], traffic: dict[str, float]
) -> HostFacts:
    facts = HostFacts(**plain)  # type: ignore[arg-type]
    for name, seconds in since.items():
        setattr(facts, name, NOW - seconds if seconds else 0.0)
    facts.samples = deque((NOW - 30 * i, loss, rtt) for i, (loss, rtt) in enumerate(samples))
    facts.traffic_by_day = dict(traffic)
    return facts


@settings(max_examples=300, deadline=None)
@given(facts=facts_strategy, now_later=st.floats(0, DAY_S))
def test_degraded_reasons_are_the_same_as_the_reference(facts: HostFacts, now_later: float) -> None:
    assert degraded_reasons(facts, S, NOW + now_later) == reference_degraded_reasons(facts, S, NOW + now_later)


AT_LOSS_LIMIT = _facts({}, {}, [(S.loss_percent_max, 0.0)] * 3, {})
AT_RTT_LIMIT = _facts({}, {}, [(0.0, S.rtt_ms_max)] * 3, {})


@settings(max_examples=300, deadline=None)
@given(members=st.lists(st.tuples(st.booleans(), facts_strategy), max_size=6))
@example(members=[(True, AT_LOSS_LIMIT)])  # a line exactly at its limits is not degraded, every run
@example(members=[(True, AT_RTT_LIMIT)])
def test_reachability_is_the_same_as_the_reference(members: list[tuple[bool, HostFacts]]) -> None:
    found = [Member(online, False, facts) for online, facts in members]
    assert reachability(found, S, NOW) == reference_reachability(found, S, NOW)


fleets = st.lists(
    st.tuples(st.integers(0, len(COMMUNES) - 1), facts_strategy, st.sampled_from(["online", "offline", "unknown"])),
    max_size=40,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(fleet=fleets, with_line=st.lists(st.booleans(), min_size=len(COMMUNES), max_size=len(COMMUNES)),
       later=st.floats(0, 2 * DAY_S))  # fmt: skip
def test_a_randomized_fleet_evaluates_to_the_reference_verdicts(
    fleet: list[tuple[int, HostFacts, str]], with_line: list[bool], later: float
) -> None:
    store = Store(":memory:")
    registry = Registry(store, "unassigned")
    registry.set_area("north", "Khu vực Bắc", [c.code for c in COMMUNES[::2]])
    lines = [Line(f"L-{c.code}", "08", c.code, "VNPT", 100.0, 100.0, "2025-08-15")
             for c, has in zip(COMMUNES, with_line, strict=True) if has]  # fmt: skip
    registry.upsert_lines(lines)
    state = FleetState(store, registry, S, started_at=NOW - 10 * DAY_S)
    for n, (commune, facts, status) in enumerate(fleet):
        key = HostKey("08", COMMUNES[commune].code, f"pc-{n:02d}")
        registry.touch(key, facts.last_report or NOW - DAY_S, status)
        state.facts[key] = facts
    now = NOW + later
    snapshot = state.evaluate(now)

    records = {r.key: r for r in registry.hosts()}
    members: dict[str, list[Member]] = {}
    for host in snapshot.hosts:
        facts = state.facts[host.key]
        reasons = reference_degraded_reasons(facts, S, now)
        assert host.reasons == reasons and host.area == registry.area_of(host.key.commune)
        silent = now - max(facts.last_report, records[host.key].last_seen)
        offline = facts.offline_will or silent > S.offline_after_intervals * facts.interval_s
        assert host.online is not offline
        members.setdefault(host.key.commune, []).append(Member(host.online, bool(reasons), facts))
    line_of = {line.commune: line for line in lines}
    want = [reference_commune("08", c, registry.area_of(c), members.get(c, []), line_of.get(c), S, now)
            for c in sorted(set(members) | set(line_of))]  # fmt: skip
    assert snapshot.communes == want
    # the API's indexes are built by the evaluator, before any request reads the snapshot ...
    assert {"_hosts_by_commune", "_communes_by_code", "degraded_hosts"} <= vars(snapshot).keys()
    for c in {c.code for c in COMMUNES} | {"99999"}:  # ... and find what a walk through the lists does
        assert snapshot.hosts_of(c) == [h for h in snapshot.hosts if h.key.commune == c]
        assert snapshot.commune_of(c) == next((x for x in snapshot.communes if x.commune == c), None)
    assert snapshot.degraded_hosts == [h for h in snapshot.hosts if h.reasons]
