"""The agent's fixed catalogue of on-demand actions: what the area team may ask a PC to do now.

The collector asks on the host's own ``.../cmd/action`` topic (``common.wire`` has the shapes). Only
the named actions of ``common.wire.ACTIONS`` exist, each a report this agent already knows how to
make (a speed test, the probes, the inventory, the USB devices): nothing here runs a command or takes
an argument beyond a speed test's mode. ``[actions] allow`` lists the ones this PC accepts.

``take`` checks a request in paho's thread and returns the answer the publisher sends at once:
``accepted`` (queued for the main loop, which runs it and spools its result like any report, tagged
with the request), or ``refused`` with the reason: not allowed here, a name it does not know, a
request it cannot read, the same action still running, or the part it needs turned off.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Dict

from common.wire import ActionRequest, WireError, decode_action_request, demand_envelope, request_id_of

log = logging.getLogger("commune_agent.actions")

MAX_QUEUED = 8  # accepted and not yet started: more are refused as busy

Build = Callable[[ActionRequest], Dict[str, Any]]  # the report's sections; typing's names: run time on 3.8


@dataclass(frozen=True)
class Action:
    """How one action is made: its builder, and whether it runs in a thread of its own (slow ones)
    or on the main loop (those that share state with a job that runs there)."""

    build: Build
    background: bool = True


class ActionDesk:
    """Checks requests (paho's thread), queues the accepted ones for the main loop, and knows which run."""

    def __init__(self, allow: list[str], actions: dict[str, Action | None]) -> None:
        self._allow = frozenset(allow)
        self._actions = actions  # None: known, but the part it needs is turned off in the config
        self._lock = threading.Lock()
        self._busy: set[str] = set()  # queued or running
        self._queue: deque[ActionRequest] = deque()
        self.refused = 0

    def take(self, raw: bytes) -> dict[str, Any] | None:
        """The ``demand`` of the answer to a request: accepted or refused; None when it carries no
        request id to answer (logged and counted)."""
        try:
            request = decode_action_request(raw)
        except WireError as exc:
            request_id = request_id_of(raw)
            reason = "unknown_action" if exc.reason == "unknown_kind" else "bad_request"
            return self._refuse(request_id, _asked(raw), reason, exc.detail)
        if request.action not in self._allow:
            return self._refuse(request.id, request.action, "not_allowed", "not in [actions] allow")
        if self._actions.get(request.action) is None:
            return self._refuse(request.id, request.action, "disabled", "turned off in this agent's config")
        with self._lock:
            if request.action in self._busy or len(self._queue) >= MAX_QUEUED:
                busy = True
            else:
                busy = False
                self._busy.add(request.action)
                self._queue.append(request)
        if busy:
            return self._refuse(request.id, request.action, "busy", "the same action is still running")
        log.info("action accepted", extra={"action": request.action, "request": request.id, "mode": request.mode})
        return demand_envelope(request.id, request.action, "accepted")

    def _refuse(self, request_id: str | None, action: str, reason: str, detail: str) -> dict[str, Any] | None:
        self.refused += 1
        log.warning("action refused", extra={"action": action[:40], "reason": reason, "detail": detail[:200]})
        if request_id is None:
            return None
        return demand_envelope(request_id, action, "refused", reason)

    def accepted(self) -> list[ActionRequest]:
        """The requests accepted since the last call (main loop)."""
        with self._lock:
            taken = list(self._queue)
            self._queue.clear()
        return taken

    def action(self, request: ActionRequest) -> Action:
        found = self._actions.get(request.action)
        assert found is not None  # ``take`` accepted only actions that have one
        return found

    def finished(self, request: ActionRequest) -> None:
        """The action ran (its result is spooled): the same one may be asked again."""
        with self._lock:
            self._busy.discard(request.action)


def _asked(raw: bytes) -> str:
    """The action a refused request named, as far as it can be read (for the answer and the log)."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError, RecursionError):
        return "unknown"
    action = body.get("action") if isinstance(body, dict) else None
    return action if isinstance(action, str) else "unknown"
