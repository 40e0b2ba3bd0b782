"""The message that tells why a commune went dark, once its outage's cause is decided.

The cause is known only after the PCs' spooled backlog has arrived, a little after the commune is
back. So the ``line_down`` resolve of a commune whose outage is still being judged waits in the
outbox (``[notify] cause_wait_s``) and, when the cause is decided meanwhile, states it; a cause
decided later follows as a short message of its own ("cause"), in the notifier's language,
through the same channels and outbox. A follow-up for an office that was simply closed in quiet
time (nights, weekends, holidays) is not sent: there was nothing to tell.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
from typing import Protocol

from collector import vocabulary as words
from collector.alerting.conditions import NO_HOST
from collector.alerting.lifecycle import Alert, Event
from collector.fleet.outage_book import OutageRecord
from collector.registry import units

CAUSE_EVENT = "cause"


def worth_telling(record: OutageRecord) -> bool:
    return not (record.cause == "office_closed" and "quiet_hours" in record.reasons)


def duration(seconds: float, lang: str) -> str:
    minutes = int(seconds // 60)
    return words.OUTAGE_DURATION.in_(lang).format(hours=minutes // 60, minutes=minutes % 60)


def detail(record: OutageRecord, lang: str, zone: tzinfo | None) -> str:
    template = words.OUTAGE_DETAILS[record.cause].in_(lang)
    if record.cause == "power":
        boots = [t.boot_after for t in record.hosts.values() if record.start < t.boot_after]
        if not boots:
            return ""
        return template.format(at=datetime.fromtimestamp(min(boots), zone).strftime("%H:%M"))
    if record.cause == "line":
        return template.format(reports=sum(t.reports_during for t in record.hosts.values()))
    why = ", ".join(words.OUTAGE_REASONS[r].in_(lang) for r in record.reasons if r in words.OUTAGE_REASONS)
    return template.format(why=why) if why else ""


def text(record: OutageRecord, lang: str, zone: tzinfo | None) -> str:
    """For example "Xã Yên Sơn có kết nối trở lại sau 2 giờ 14 phút; nguyên nhân: mất điện (...)"."""
    return words.OUTAGE_NOTICE.in_(lang).format(
        name=units.display_name(record.commune),
        duration=duration(record.duration_s, lang),
        cause=words.OUTAGE_CAUSES[record.cause].in_(lang),
        detail=detail(record, lang, zone),
    )


def notice(record: OutageRecord, zone: tzinfo | None) -> Alert:
    """The follow-up as an event the notifier groups and sends like any other."""
    return Alert(
        id=0,
        rule="line_down",
        province=record.province,
        area=record.area,
        commune=record.commune,
        host=NO_HOST,
        severity=words.RULE_SEVERITY[words.LINE_DOWN],
        summary_vi=text(record, "vi", zone),
        summary_en=text(record, "en", zone),
        state="resolved",
        started_at=record.start,
        resolved_at=record.end,
    )


def with_cause(resolve: Alert, record: OutageRecord, zone: tzinfo | None) -> Alert:
    """The ``line_down`` resolve, saying how long the commune was dark and why."""
    return replace(resolve, summary_vi=text(record, "vi", zone), summary_en=text(record, "en", zone))


class Outbox(Protocol):
    """What the teller needs of the notifier (``collector.alerting.notify.Notifier``)."""

    def submit(self, events: list[Event]) -> None: ...
    def hold(self, alert: Alert) -> int: ...
    def release(self, outbox_id: int, kind: str, alert: Alert) -> None: ...


@dataclass
class Held:
    outbox_id: int
    alert: Alert
    since: float


class CauseTeller:
    """Between the alert manager and the notifier: holds a commune's ``line_down`` resolve while its
    outage awaits a verdict (``awaiting(province, commune)``), at most ``wait_s``; the verdict
    (``tell``) goes into the held resolve, or, once it has gone, into a follow-up. Called from the
    fleet evaluator's thread only."""

    def __init__(
        self, outbox: Outbox, awaiting: Callable[[str, str], bool], wait_s: float, zone: tzinfo | None
    ) -> None:
        self.outbox = outbox
        self.awaiting = awaiting
        self.wait_s = wait_s
        self.zone = zone
        self.held: dict[tuple[str, str], Held] = {}

    def submit(self, events: list[Event]) -> None:
        """The alert manager's events: a resolve awaiting its cause is held, the rest sent."""
        passing: list[Event] = []
        for kind, alert in events:
            key = (alert.province, alert.commune)
            if self.wait_s > 0 and kind == "resolved" and is_commune_down(alert) and self.awaiting(*key):
                kept = replace(alert)
                self.held[key] = Held(self.outbox.hold(kept), kept, time.time())
            else:
                passing.append((kind, alert))
        if passing:
            self.outbox.submit(passing)

    def tell(self, decided: list[OutageRecord], now: float) -> None:
        """Verdicts just reached, into their held resolves or follow-ups; resolves held too long go
        out as they are."""
        for record in decided:
            held = self.held.pop((record.province, record.commune), None)
            if held is not None:
                self.outbox.release(held.outbox_id, "resolved", with_cause(held.alert, record, self.zone))
            elif worth_telling(record):
                self.outbox.submit([(CAUSE_EVENT, notice(record, self.zone))])
        for key, held in list(self.held.items()):
            if now - held.since >= self.wait_s:
                del self.held[key]
                self.outbox.release(held.outbox_id, "resolved", held.alert)


def is_commune_down(alert: Alert) -> bool:
    return alert.rule == words.LINE_DOWN and alert.host == NO_HOST
