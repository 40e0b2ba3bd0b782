"""The message that tells why a commune went dark, once its outage's cause is decided.

The ``line_down`` resolve goes out when the commune is back; the cause is known only after the
PCs' spooled backlog has arrived, so it follows as a short message of its own ("cause"), in the
notifier's language, sent through the same channels and outbox. An office that was simply closed
in quiet time (nights, weekends, holidays) gets no message: there was nothing to tell.
"""

from __future__ import annotations

from datetime import datetime, tzinfo

from collector import vocabulary as words
from collector.alerting.conditions import NO_HOST
from collector.alerting.lifecycle import Alert
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
