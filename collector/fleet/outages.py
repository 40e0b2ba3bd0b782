"""Why a commune went dark: a cut line, a power cut or an office closed, judged once it is back.

The province acts on the cause: a cut line is a ticket to the ISP, a power cut is not the ISP's
fault, an office closed is no fault at all, and the monthly scorecard charges a line only with its
own outages. The evidence arrives by itself once the commune is back: the reports each PC spooled
during the outage (stamped when their measurement started), its boot time before and after, its
probes (gateway answering, WAN and internet failing), how its agent went offline (a clean stop or
a Last Will), and whether the outage lies in the night, a weekend or a holiday.

Everything here is pure: hand it the evidence of each PC and the outage's window, and it returns
the verdict with its confidence and the reasons per PC. It never guesses: too little or mixed
evidence is ``unknown``, with each PC's reason. The fleet gathers the evidence; tests call
``decide`` over hand-built evidence.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

from collector.config import AlertSettings, ReportSettings, window_minutes
from collector.localtime import OfficeHours, office_hours

CAUSES = ("line", "power", "office_closed", "unknown")
BOOT_SLACK_S = 60.0  # boot times computed from uptime move by a few seconds between reports
MIN_HOSTS = 2  # a single PC cannot tell its own trouble from the commune's
QUIET_SCAN_MAX_S = 14 * 86400.0  # an outage longer than this is never called "office closed"
OPENING_S = 3600.0  # PCs switched on within this long of a time that is not quiet: "at opening"


@dataclass(frozen=True)
class HostEvidence:
    """What one PC said about the outage, gathered after it came back."""

    host: str
    spools: bool  # its agent keeps reports on disk while the line is down (spool_ok, not failed)
    boot_before: float  # its boot time in the last report before the outage; 0 when unknown
    boot_after: float  # its boot time in the first report after it; 0 when none came yet
    reports_during: int  # reports measured inside the outage (spooled, original timestamps)
    gateway_ok: int = 0  # probe reports inside the outage whose gateway answered
    outside_failed: int = 0  # of those, the ones whose every wan and internet probe failed
    offline_reason: str = ""  # how its agent went offline: "stop", "will", "" (unsaid, old agent)


@dataclass(frozen=True)
class HostFinding:
    """One PC's reading of the evidence: the cause it points to, and why (codes)."""

    host: str
    points_to: str  # a cause in CAUSES
    reasons: tuple[str, ...]
    strong: bool  # every piece of evidence for that cause is there


@dataclass(frozen=True)
class Verdict:
    cause: str  # one of CAUSES
    confidence: float  # 0 for unknown; else 0.5 when every PC agrees, up to 1 as more have complete evidence
    reasons: tuple[str, ...]  # the commune's reasons, codes
    hosts: tuple[HostFinding, ...]


@dataclass(frozen=True)
class QuietWindows:
    """When a dark office is no fault: outside ``[report]`` office hours (nights, weekends,
    holidays), or inside one of the ``[alerts] maintenance`` daily windows (minutes of the day)."""

    office: OfficeHours | None
    maintenance: tuple[tuple[int, int], ...] = ()
    maintenance_zone: tzinfo | None = None  # None: the collector's local time, as alerting reads them


def quiet_windows(report: ReportSettings, alerts: AlertSettings) -> QuietWindows:
    """The quiet time the settings give: ``[report]`` office hours, and the ``[alerts] maintenance``
    windows that cover every commune (no area, commune or host in their scope) and either name no
    rule or name ``line_down``."""
    office = office_hours(report.timezone, report.office_hours, report.workdays, report.holidays)
    windows = tuple(
        window_minutes(w["time"])
        for w in alerts.maintenance
        if not {"area", "commune", "host"} & set(w) and w.get("rule", "line_down") == "line_down"
    )
    return QuietWindows(office, windows)


def finding(evidence: HostEvidence, start: float, end: float) -> HostFinding:
    """What one PC's evidence says, from the strongest sign down."""
    e = evidence
    rebooted = e.boot_before > 0 and e.boot_after > e.boot_before + BOOT_SLACK_S
    booted_during = rebooted and start - BOOT_SLACK_S <= e.boot_after <= end + BOOT_SLACK_S
    same_boot = e.boot_before > 0 and e.boot_after > 0 and abs(e.boot_after - e.boot_before) <= BOOT_SLACK_S
    if e.reports_during > 0:
        if rebooted and not booted_during:
            return HostFinding(e.host, "unknown", ("rebooted_outside_outage",), False)
        probes = e.gateway_ok > 0 and e.outside_failed > 0
        reasons = ("measured_during_outage",) + (("gateway_ok_outside_failed",) if probes else ())
        return HostFinding(
            e.host, "line", reasons + (("uptime_continuous",) if same_boot else ()), probes and same_boot
        )
    if e.offline_reason == "stop":
        reasons = ("clean_stop",) + (("booted_after_outage_start",) if booted_during else ())
        return HostFinding(e.host, "office_closed", reasons, True)
    if booted_during:
        reasons = ("no_report_during_outage", "booted_after_outage_start")
        return HostFinding(e.host, "power", reasons, e.spools)
    if not e.spools:
        return HostFinding(e.host, "unknown", ("no_spool",), False)
    if e.boot_after <= 0 or e.boot_before <= 0:
        return HostFinding(e.host, "unknown", ("no_boot_time",), False)
    if same_boot:  # the PC ran on, but its agent measured nothing: killed, or stopped unsaid
        return HostFinding(e.host, "unknown", ("agent_silent_boot_unchanged",), False)
    return HostFinding(e.host, "unknown", ("rebooted_outside_outage",), False)


def decide(evidence: Sequence[HostEvidence], start: float, end: float, quiet: QuietWindows) -> Verdict:
    """The commune's cause: every PC must point the same way, and at least ``MIN_HOSTS`` PCs must
    say so. PCs without a measured sign while the others agree on a power cut in a quiet window
    count for an office closed. Otherwise ``unknown``, with each PC's reasons."""
    found = tuple(finding(e, start, end) for e in evidence)
    if len(found) < MIN_HOSTS:
        return Verdict("unknown", 0.0, ("too_few_hosts",), found)
    causes = {f.points_to for f in found}
    if causes <= {"power", "office_closed"} and dark_in_quiet_time(evidence, start, end, quiet):
        sure = sum(1 for f in found if f.points_to == "office_closed" or f.strong)
        return Verdict("office_closed", confidence(sure, len(found)), ("quiet_hours",), found)
    if len(causes) > 1:
        return Verdict("unknown", 0.0, ("mixed_evidence",), found)
    cause = causes.pop()
    if cause == "unknown":
        return Verdict("unknown", 0.0, tuple(sorted({r for f in found for r in f.reasons})), found)
    sure = sum(1 for f in found if f.strong)
    return Verdict(cause, confidence(sure, len(found)), ("every_host_agrees",), found)


def confidence(sure: int, total: int) -> float:
    """Every PC agrees: 0.5, and up to 1.0 as the share of PCs with complete evidence grows."""
    return round(0.5 + 0.5 * sure / total, 2)


def dark_in_quiet_time(evidence: Sequence[HostEvidence], start: float, end: float, quiet: QuietWindows) -> bool:
    """Whether the PCs were off only while the office was closed: from the outage's start until
    ``OPENING_S`` before the first PC booted again (until it booted, or the end, for a shorter
    outage), all of it quiet time."""
    boots = [e.boot_after for e in evidence if start < e.boot_after < end]
    until = min(boots, default=end)
    return lies_in_quiet_time(start, until - OPENING_S if until - OPENING_S > start else until, quiet)


def lies_in_quiet_time(start: float, end: float, quiet: QuietWindows) -> bool:
    """Whether the whole outage is outside office hours, or inside one maintenance window,
    checked minute by minute (a daily window may run past midnight)."""
    if end <= start or end - start > QUIET_SCAN_MAX_S:
        return False
    minutes = [start + 60.0 * n for n in range(int((end - start) // 60) + 1)] + [end]
    if quiet.office is not None and not any(quiet.office.contains(t) for t in minutes):
        return True
    return bool(quiet.maintenance) and all(in_maintenance(t, quiet) for t in minutes)


def in_maintenance(ts: float, quiet: QuietWindows) -> bool:
    local = datetime.fromtimestamp(ts, quiet.maintenance_zone) if quiet.maintenance_zone else datetime.fromtimestamp(ts)
    minute = local.hour * 60 + local.minute
    return any((a <= minute < b) if a < b else (minute >= a or minute < b) for a, b in quiet.maintenance)


def evidence_rows(verdict: Verdict) -> list[dict[str, object]]:
    """The per-PC evidence as JSON-ready rows, for the state file and the API."""
    return [{"host": f.host, "points_to": f.points_to, "reasons": list(f.reasons), "strong": f.strong}
            for f in verdict.hosts]  # fmt: skip
