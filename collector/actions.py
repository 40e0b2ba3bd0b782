"""The desk's on-demand actions: each request sent to an agent, its answer and its result.

One row per request in the state file (``action_requests``): the host and the action, who asked and
when; then the agent's answer (``accepted``, or ``refused`` with its reason) and its result (the
sections of the report it made: a speed figure, the probes...). The HTTP API asks and reads
(``collector/http/action_routes.py``); the ingestor hands over every report that carries a ``demand``
(``answered``). What a person reads is ``ActionRecord.state``: pending, accepted, done, refused,
failed, or no_answer when neither an answer nor a result came within ``[actions] answer_timeout_s``
(an agent that is off, or one older than actions, which does not even subscribe to the topic).

The audit log sees each new row (who asked, from the audit middleware's token name); answers and
results are the collector's doing and are not audited. Rows older than ``[actions] keep_days`` go.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from collector.registry.registry import HostKey
from collector.store import Store
from common.wire import ACTION_COMMAND, Demand, action_request_payload, command_topic

Publish = Callable[[str, bytes], bool]  # topic, payload -> taken by the MQTT client
COLUMNS = "id, province, commune, host, action, mode, asked_by, asked_at, state, reason, answered_at, result"
ANSWERED = ("done", "refused", "failed")  # a later answer (a late "accepted") never moves one of these back


@dataclass(frozen=True)
class ActionRecord:
    id: str
    host: HostKey
    action: str
    mode: str
    asked_by: str
    asked_at: float
    stored_state: str  # pending, accepted, done, refused, failed
    reason: str
    answered_at: float | None
    result: dict[str, Any] | None
    timeout_s: float

    def state(self, now: float) -> str:
        """What became of the request as of ``now``: ``no_answer`` once the wait is over unanswered."""
        if self.stored_state in ("pending", "accepted") and now - self.asked_at > self.timeout_s:
            return "no_answer"
        return self.stored_state


class ActionDesk:
    """Sends requests, keeps their rows, and wakes whoever waits for an answer."""

    def __init__(
        self, store: Store, publish: Publish, timeout_s: float, keep_days: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._publish = publish
        self.timeout_s = timeout_s
        self._keep_s = keep_days * 86400
        self._clock = clock
        self._answered = threading.Condition()

    def ask(self, host: HostKey, action: str, mode: str, asked_by: str) -> ActionRecord | None:
        """Record a request and send it to the host's agent; None (and no row) when the broker cannot
        take it now. The row is written first so an answer arriving at once finds it."""
        now = self._clock()
        request_id = uuid.uuid4().hex[:16]
        with self._store.transaction() as db:
            db.execute("DELETE FROM action_requests WHERE asked_at < ?", (now - self._keep_s,))
            db.execute(
                f"INSERT INTO action_requests ({COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', '', NULL, NULL)",
                (request_id, host.province, host.commune, host.host, action, mode, asked_by, now),
            )
        topic = command_topic(host.province, host.commune, host.host, ACTION_COMMAND)
        if not self._publish(topic, action_request_payload(request_id, action, mode, now)):
            self._store.execute("DELETE FROM action_requests WHERE id = ?", (request_id,))
            return None
        return self.get(host, request_id)

    def answered(self, host: HostKey, demand: Demand, sections: dict[str, list[dict[str, float | str]]]) -> bool:
        """An agent's answer or result (the ingestor's thread); False when it names no request of
        this host (forged, or dropped as old), which changes nothing."""
        now = self._clock()
        result = json.dumps(sections, ensure_ascii=False) if demand.state == "done" else None
        cursor = self._store.execute(
            "UPDATE action_requests SET state = ?, reason = ?, answered_at = ?, result = coalesce(?, result)"
            " WHERE id = ? AND province = ? AND commune = ? AND host = ? AND action = ?"
            f" AND (? != 'accepted' OR state NOT IN ({', '.join('?' * len(ANSWERED))}))",
            (demand.state, demand.reason, now, result, demand.id, host.province, host.commune, host.host,
             demand.action, demand.state, *ANSWERED),
        )  # fmt: skip
        if cursor.rowcount <= 0:
            return False
        with self._answered:
            self._answered.notify_all()
        return True

    def get(self, host: HostKey, request_id: str) -> ActionRecord | None:
        rows = self._store.query(
            f"SELECT {COLUMNS} FROM action_requests WHERE id = ? AND province = ? AND commune = ? AND host = ?",
            (request_id, host.province, host.commune, host.host),
        )
        return self._record(rows[0]) if rows else None

    def find(self, commune: str, request_id: str) -> ActionRecord | None:
        """A request of this commune (the console names the commune, not the PC, in its address)."""
        rows = self._store.query(
            f"SELECT {COLUMNS} FROM action_requests WHERE id = ? AND commune = ?", (request_id, commune)
        )
        return self._record(rows[0]) if rows else None

    def recent(self, commune: str, limit: int = 10) -> list[ActionRecord]:
        """A commune's latest requests, newest first."""
        rows = self._store.query(
            f"SELECT {COLUMNS} FROM action_requests WHERE commune = ? ORDER BY asked_at DESC LIMIT ?", (commune, limit)
        )
        return [self._record(row) for row in rows]

    def wait_answer(self, host: HostKey, request_id: str, wait_s: float) -> ActionRecord | None:
        """The request once the agent has answered it, or as it stands after ``wait_s``."""
        deadline = time.monotonic() + wait_s
        while True:
            found = self.get(host, request_id)
            left = deadline - time.monotonic()
            if found is None or found.stored_state != "pending" or left <= 0:
                return found
            with self._answered:
                self._answered.wait(min(left, 0.5))

    def _record(self, row: tuple[Any, ...]) -> ActionRecord:
        (request_id, province, commune, host, action, mode, asked_by, asked_at, state, reason, answered_at,
         result) = row  # fmt: skip
        return ActionRecord(
            str(request_id), HostKey(province, commune, host), str(action), str(mode), str(asked_by), float(asked_at),
            str(state), str(reason), None if answered_at is None else float(answered_at),
            None if result is None else json.loads(result), self.timeout_s,
        )  # fmt: skip
