"""Alert lifecycle: conditions from fleet state become alerts that go pending -> firing -> resolved.

Like Alertmanager: one alert per rule and subject (deduplicated), a per-rule "for" duration before
firing, flap suppression (an alert that keeps coming back within ``flap_window_s`` stays firing
instead of sending a message each time), silences and daily maintenance windows (state kept,
messages held back), and acknowledgement (someone is on it: the alert coming back after a
short recovery sends nothing). Alerts and silences live in the
state file (``collector.store``), so a restart neither forgets nor re-sends. Each transition is an ``alert`` point.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from collector.alerting.conditions import Condition
from collector.config import AlertSettings, window_minutes
from collector.ingest.lineprotocol import Point
from collector.store import Store

PRUNE_EVERY_S = 3600.0


@dataclass
class Alert:
    id: int
    rule: str
    province: str
    area: str
    commune: str
    host: str
    severity: str
    summary_vi: str
    summary_en: str
    state: str  # pending, firing, resolved
    started_at: float
    fired_at: float = 0.0
    resolved_at: float = 0.0
    flaps: int = 0
    acked_by: str = ""
    acked_at: float = 0.0
    ack_comment: str = ""
    firing_since: float = 0.0  # this spell of firing (fired_at is the first)
    told_firing: bool = False  # its firing was sent and its resolve not yet

    @property
    def key(self) -> str:
        return "|".join((self.rule, self.province, self.commune, self.host))


@dataclass
class Silence:
    id: int
    matchers: dict[str, str]
    starts_at: float
    ends_at: float
    author: str
    comment: str

    def matches(self, alert: Alert, now: float) -> bool:
        return self.starts_at <= now < self.ends_at and in_scope(alert, self.matchers)


@dataclass(frozen=True)
class MaintenanceWindow:
    """A daily window in minutes of the local day; ``end`` before ``start`` runs past midnight."""

    scope: dict[str, str]
    start: int
    end: int

    def matches(self, alert: Alert, minute: int) -> bool:
        inside = self.start <= minute < self.end if self.start < self.end else minute >= self.start or minute < self.end
        return inside and in_scope(alert, self.scope)


def in_scope(alert: Alert, scope: dict[str, str]) -> bool:
    """Whether the alert has every value of a silence's or window's scope (area, commune, host, rule)."""
    return all(getattr(alert, key) == value for key, value in scope.items())


Event = tuple[str, Alert]  # ("firing" | "resolved", alert)


class AlertManager:
    """A ConditionSink. ``notify`` receives the events that should reach people."""

    def __init__(
        self,
        store: Store,
        settings: AlertSettings,
        write: Callable[[list[Point]], None],
        notify: Callable[[list[Event]], None],
    ) -> None:
        self._store = store
        self.settings = settings
        self._write = write
        self._notify = notify
        self.lock = threading.Lock()
        self.open: dict[str, Alert] = {}
        self.recent: dict[str, Alert] = {}  # resolved within the flap window
        self._windows = [
            MaintenanceWindow({k: v for k, v in w.items() if k != "time"}, *window_minutes(w["time"]))
            for w in settings.maintenance
        ]
        self._pruned_at = 0.0
        self._load()

    def update(self, active: list[Condition], now: float) -> None:
        events: list[Event] = []
        points: list[Point] = []
        with self.lock:
            silences = self.silences(now)
            for key, ended in list(self.recent.items()):
                if now - ended.resolved_at >= self.settings.flap_window_s:
                    del self.recent[key]
                    if ended.told_firing:  # a flapping alert that stayed resolved: its end, at last
                        ended.told_firing = False
                        events.append(("resolved", ended))
                        self._save(ended)
            seen = set()
            for condition in active:
                key = "|".join(condition.key)
                seen.add(key)
                alert = self.open.get(key)
                if alert is None:
                    alert = self._reopen_or_new(key, condition, now)
                    points.append(self._point(alert, now))
                alert.summary_vi, alert.summary_en = condition.summary_vi, condition.summary_en
                if alert.state == "pending" and now - alert.started_at >= self._for_s(alert.rule):
                    alert.state, alert.fired_at, alert.firing_since = "firing", now, now
                    points.append(self._point(alert, now))
                if (alert.state == "firing" and not alert.told_firing and not self._quiet(alert, now)
                        and not self._held(alert, now, silences)):  # fmt: skip
                    alert.told_firing = True
                    events.append(("firing", alert))
                self._save(alert)
            for key in [k for k in self.open if k not in seen]:
                alert = self.open.pop(key)
                was_firing = alert.state == "firing"
                alert.state, alert.resolved_at = "resolved", now
                points.append(self._point(alert, now))
                if alert.told_firing:
                    self.recent[key] = alert
                    if alert.flaps < self.settings.flap_threshold:
                        alert.told_firing = False
                        events.append(("resolved", alert))
                elif was_firing and (alert.acked_at or alert.flaps):
                    self.recent[key] = alert  # acked or flapping: a quick return stays quiet
                self._save(alert)
        if now - self._pruned_at >= PRUNE_EVERY_S:
            self._pruned_at = now
            self.prune(now)
        if points:
            self._write(points)
        if events:
            self._notify(events)

    def prune(self, now: float) -> int:
        """Forget alerts resolved, and silences ended, more than ``keep_resolved_days`` ago (InfluxDB
        keeps every transition as an ``alert`` point); an end still to be told is kept."""
        before = now - self.settings.keep_resolved_days * 86400
        with self._store.transaction() as db:
            alerts = db.execute(
                "DELETE FROM alerts WHERE state = 'resolved' AND json_extract(body, '$.resolved_at') < ? "
                "AND json_extract(body, '$.told_firing') = 0",
                (before,),
            ).rowcount
            db.execute("DELETE FROM silences WHERE json_extract(body, '$.ends_at') < ?", (before,))
        return int(alerts)

    def _reopen_or_new(self, key: str, condition: Condition, now: float) -> Alert:
        """An alert that people were told about and that returns within the flap window is the same alert."""
        previous = self.recent.pop(key, None)
        if previous is not None:
            previous.state, previous.resolved_at, previous.firing_since = "firing", 0.0, now
            previous.flaps += 1
            self.open[key] = previous
            return previous
        fields = {k: getattr(condition, k) for k in ("rule", "province", "area", "commune", "host", "severity")}
        alert = Alert(0, **fields, summary_vi=condition.summary_vi, summary_en=condition.summary_en,
                      state="pending", started_at=now)  # fmt: skip
        cursor = self._store.execute(
            "INSERT INTO alerts (key, state, body) VALUES (?, ?, ?)", (key, alert.state, alert_row(alert))
        )
        alert.id = int(cursor.lastrowid or 0)
        self.open[key] = alert
        return alert

    def _quiet(self, alert: Alert, now: float) -> bool:
        """Acknowledged or flapping, and not yet back for a whole flap window: nothing to tell yet."""
        if alert.firing_since == alert.fired_at and alert.acked_at:
            return True  # acknowledged in its first spell: people know
        settled = now - alert.firing_since >= self.settings.flap_window_s
        return not settled and (bool(alert.acked_at) or alert.flaps >= self.settings.flap_threshold)

    def _for_s(self, rule: str) -> float:
        return float(self.settings.for_s.get(rule, self.settings.default_for_s))

    def _held(self, alert: Alert, now: float, silences: list[Silence]) -> bool:
        """Silenced or in a maintenance window: its firing waits until the hold ends."""
        if any(s.matches(alert, now) for s in silences):
            return True
        local = time.localtime(now)
        minute = local.tm_hour * 60 + local.tm_min
        return any(window.matches(alert, minute) for window in self._windows)

    def _point(self, alert: Alert, now: float) -> Point:
        tags = {"province": alert.province, "area": alert.area, "commune": alert.commune, "host": alert.host,
                "rule": alert.rule, "severity": alert.severity}  # fmt: skip
        fields: dict[str, float | str] = {
            "firing": 1.0 if alert.state == "firing" else 0.0,
            "state": alert.state,
            "summary": alert.summary_vi,
        }
        return Point("alert", tags, fields, int(now))

    def _save(self, alert: Alert) -> None:
        self._store.execute(
            "UPDATE alerts SET state = ?, body = ? WHERE id = ?", (alert.state, alert_row(alert), alert.id)
        )

    def _load(self) -> None:
        for alert_id, body in self._store.query("SELECT id, body FROM alerts WHERE state != 'resolved'"):
            alert = alert_from_row(alert_id, body)
            self.open[alert.key] = alert
        rows = self._store.query(
            "SELECT id, body FROM alerts WHERE state = 'resolved' AND json_extract(body, '$.told_firing') = 1"
        )
        for alert_id, body in rows:  # a flapping alert whose end is still to be told
            alert = alert_from_row(alert_id, body)
            self.recent[alert.key] = alert

    # ---- API ----

    def alerts(self, state: str | None = None, limit: int = 500, before_id: int | None = None) -> list[Alert]:
        """Alerts newest first (by id), at most ``limit``, of one state if given, older than ``before_id`` if given."""
        where, params = "id < ?", [before_id if before_id is not None else 2**63 - 1, *([state] if state else [])]
        if state:
            where += " AND state = ?"
        rows = self._store.query(
            f"SELECT id, body FROM alerts WHERE {where} ORDER BY id DESC LIMIT ?", (*params, limit)
        )
        return [alert_from_row(i, body) for i, body in rows]

    def ack(self, alert_id: int, by: str, comment: str, now: float) -> Alert | None:
        with self.lock:
            for alert in self.open.values():
                if alert.id == alert_id:
                    alert.acked_by, alert.acked_at, alert.ack_comment = by, now, comment
                    self._save(alert)
                    return alert
        return None

    def add_silence(
        self, matchers: dict[str, str], starts_at: float, ends_at: float, author: str, comment: str
    ) -> Silence:
        silence = Silence(0, matchers, starts_at, ends_at, author, comment)
        cursor = self._store.execute("INSERT INTO silences (body) VALUES (?)", (json.dumps(asdict(silence)),))
        silence.id = int(cursor.lastrowid or 0)
        return silence

    def silences(self, now: float | None = None) -> list[Silence]:
        rows = self._store.query("SELECT id, body FROM silences ORDER BY id")
        found = [Silence(**{**json.loads(body), "id": int(i)}) for i, body in rows]
        return [s for s in found if now is None or s.ends_at > now]

    def end_silence(self, silence_id: int, now: float) -> Silence | None:
        """End a silence now (or, not begun yet, cancel it: it ends when it would start); None when
        no such silence is in force or to come. The record stays, with its new end."""
        for silence in self.silences(now):
            if silence.id == silence_id:
                silence.ends_at = max(silence.starts_at, now)
                body = json.dumps(asdict(silence))
                self._store.execute("UPDATE silences SET body = ? WHERE id = ?", (body, silence_id))
                return silence
        return None

    def delete_silence(self, silence_id: int) -> bool:
        return self._store.execute("DELETE FROM silences WHERE id = ?", (silence_id,)).rowcount > 0


def fired_between(store: Store, start: float, end: float) -> list[Alert]:
    """The alerts that were firing at some moment of [start, end): fired before ``end`` and not
    resolved by ``start``, oldest first. Resolved alerts are kept ``keep_resolved_days`` (180 by
    default), so a monthly report reaches back far enough; a flapping alert is one record, firing
    from its first firing to its last resolve, as the people told about it saw it."""
    rows = store.query(
        "SELECT id, body FROM alerts WHERE json_extract(body, '$.fired_at') > 0 "
        "AND json_extract(body, '$.fired_at') < ? "
        "AND (json_extract(body, '$.resolved_at') = 0 OR json_extract(body, '$.resolved_at') > ?) ORDER BY id",
        (end, start),
    )
    return [alert_from_row(i, body) for i, body in rows]


def record(store: Store, alert: Alert) -> int:
    """Store an alert as the lifecycle keeps it (for history written afterwards, such as the
    simulator's backfill); returns its id."""
    cursor = store.execute("INSERT INTO alerts (key, state, body) VALUES (?, ?, ?)",
                           (alert.key, alert.state, alert_row(alert)))  # fmt: skip
    return int(cursor.lastrowid or 0)


def alert_row(alert: Alert) -> str:
    """An alert as stored (``alert_from_row`` reads it back)."""
    return json.dumps(asdict(alert))


def alert_from_row(alert_id: int, body: str) -> Alert:
    """A stored alert (rows of older releases were upgraded once, by the store's migrations)."""
    return Alert(**{**json.loads(body), "id": int(alert_id)})


def alert_json(alert: Alert) -> dict[str, Any]:
    return {**asdict(alert), "key": alert.key}
