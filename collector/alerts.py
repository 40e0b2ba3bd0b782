"""Alert lifecycle: conditions from fleet state become alerts that go pending -> firing -> resolved.

Like Alertmanager: one alert per rule and subject (deduplicated), a per-rule "for" duration before
firing, flap suppression (an alert that keeps coming back within ``flap_window_s`` stays firing
instead of sending a message each time), silences and daily maintenance windows (state kept,
messages held back), and acknowledgement (someone is on it: the alert coming back after a
short recovery sends nothing). Alerts and silences live in the
state file, so a restart neither forgets nor re-sends. Each transition is an ``alert`` point.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from collector.conditions import Condition
from collector.config import SCOPE_KEYS, AlertSettings, window_minutes
from collector.lineprotocol import Point
from collector.registry import Registry

SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (key, state);
CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
);
"""


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
    message_owed: bool = False  # fired inside a silence or maintenance window: sent when that ends

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
        if not self.starts_at <= now < self.ends_at:
            return False
        return all(getattr(alert, key) == value for key, value in self.matchers.items())


Event = tuple[str, Alert]  # ("firing" | "resolved", alert)


class AlertManager:
    """A ConditionSink. ``notify`` receives the events that should reach people."""

    def __init__(
        self,
        registry: Registry,
        settings: AlertSettings,
        write: Callable[[list[Point]], None],
        notify: Callable[[list[Event]], None],
    ) -> None:
        self._db = registry.db
        self._db_lock = registry.lock
        self.settings = settings
        self._write = write
        self._notify = notify
        self.lock = threading.Lock()
        with self._db_lock:
            self._db.executescript(SCHEMA)
        self.open: dict[str, Alert] = {}
        self.recent: dict[str, Alert] = {}  # resolved within the flap window
        self._load()

    def update(self, active: list[Condition], now: float) -> None:
        events: list[Event] = []
        points: list[Point] = []
        with self.lock:
            seen = set()
            for condition in active:
                key = "|".join(condition.key)
                seen.add(key)
                alert = self.open.get(key)
                if alert is None:
                    alert = self._reopen_or_new(key, condition, now)
                    if alert.state == "firing":  # came back within the flap window
                        points.append(self._point(alert, now))
                        quiet = alert.acked_at or alert.flaps >= self.settings.flap_threshold
                        if not quiet:
                            self._tell_firing(alert, now, events)
                        self._save(alert)
                        continue
                    points.append(self._point(alert, now))
                alert.summary_vi, alert.summary_en = condition.summary_vi, condition.summary_en
                if alert.state == "pending" and now - alert.started_at >= self._for_s(alert.rule):
                    alert.state, alert.fired_at = "firing", now
                    points.append(self._point(alert, now))
                    self._tell_firing(alert, now, events)
                elif alert.message_owed and not alert.acked_at:
                    self._tell_firing(alert, now, events)  # its silence or window has ended?
                self._save(alert)
            for key in [k for k in self.open if k not in seen]:
                alert = self.open.pop(key)
                was_firing, told = alert.state == "firing", not alert.message_owed
                alert.state, alert.resolved_at, alert.message_owed = "resolved", now, False
                points.append(self._point(alert, now))
                self._save(alert)
                if was_firing:
                    self.recent[key] = alert
                    if told and alert.flaps < self.settings.flap_threshold and not self._held(alert, now):
                        events.append(("resolved", alert))
            self.recent = {k: a for k, a in self.recent.items() if now - a.resolved_at < self.settings.flap_window_s}
        if points:
            self._write(points)
        if events:
            self._notify(events)

    def _reopen_or_new(self, key: str, condition: Condition, now: float) -> Alert:
        previous = self.recent.pop(key, None)
        if previous is not None:
            previous.state, previous.resolved_at, previous.flaps = "firing", 0.0, previous.flaps + 1
            self.open[key] = previous
            return previous
        fields = {k: getattr(condition, k) for k in ("rule", "province", "area", "commune", "host", "severity")}
        alert = Alert(0, **fields, summary_vi=condition.summary_vi, summary_en=condition.summary_en,
                      state="pending", started_at=now)  # fmt: skip
        with self._db_lock:
            cursor = self._db.execute(
                "INSERT INTO alerts (key, state, body) VALUES (?, ?, ?)", (key, alert.state, json.dumps(asdict(alert)))
            )
        alert.id = int(cursor.lastrowid or 0)
        self.open[key] = alert
        return alert

    def _tell_firing(self, alert: Alert, now: float, events: list[Event]) -> None:
        """Send the firing now, or owe it until the silence or maintenance window holding it ends."""
        alert.message_owed = self._held(alert, now)
        if not alert.message_owed:
            events.append(("firing", alert))

    def _for_s(self, rule: str) -> float:
        return float(self.settings.for_s.get(rule, self.settings.default_for_s))

    def _held(self, alert: Alert, now: float) -> bool:
        """Silenced or in a maintenance window: keep the state, send nothing."""
        if any(s.matches(alert, now) for s in self.silences(now)):
            return True
        local = time.localtime(now)
        minute = local.tm_hour * 60 + local.tm_min
        for window in self.settings.maintenance:
            scope_ok = all(getattr(alert, k) == v for k, v in window.items() if k in SCOPE_KEYS)
            start, end = window_minutes(window["time"])
            inside = start <= minute < end if start < end else minute >= start or minute < end
            if scope_ok and inside:
                return True
        return False

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
        with self._db_lock:
            self._db.execute(
                "UPDATE alerts SET state = ?, body = ? WHERE id = ?", (alert.state, json.dumps(asdict(alert)), alert.id)
            )

    def _load(self) -> None:
        with self._db_lock:
            rows = self._db.execute("SELECT id, body FROM alerts WHERE state != 'resolved'").fetchall()
        for alert_id, body in rows:
            alert = Alert(**{**json.loads(body), "id": int(alert_id)})
            self.open[alert.key] = alert

    # ---- API ----

    def alerts(self, state: str | None = None, limit: int = 500) -> list[Alert]:
        with self._db_lock:
            if state:
                rows = self._db.execute(
                    "SELECT id, body FROM alerts WHERE state = ? ORDER BY id DESC LIMIT ?", (state, limit)
                ).fetchall()
            else:
                rows = self._db.execute("SELECT id, body FROM alerts ORDER BY id DESC LIMIT ?", (limit,)).fetchall()
        return [Alert(**{**json.loads(body), "id": int(i)}) for i, body in rows]

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
        with self._db_lock:
            cursor = self._db.execute("INSERT INTO silences (body) VALUES (?)", (json.dumps(asdict(silence)),))
        silence.id = int(cursor.lastrowid or 0)
        return silence

    def silences(self, now: float | None = None) -> list[Silence]:
        with self._db_lock:
            rows = self._db.execute("SELECT id, body FROM silences ORDER BY id").fetchall()
        found = [Silence(**{**json.loads(body), "id": int(i)}) for i, body in rows]
        return [s for s in found if now is None or s.ends_at > now]

    def delete_silence(self, silence_id: int) -> bool:
        with self._db_lock:
            return self._db.execute("DELETE FROM silences WHERE id = ?", (silence_id,)).rowcount > 0


def alert_json(alert: Alert) -> dict[str, Any]:
    return {**asdict(alert), "key": alert.key}
