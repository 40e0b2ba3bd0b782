"""The web console's sessions: who signed in with which API token, and the CSRF token of their forms.

Signing in with an API token opens a session; the browser holds only the session's random id
(a cookie, ``HttpOnly``, ``SameSite=Strict``, ``Secure`` over TLS). Sessions live in the
collector's memory: a restart signs everybody out, which is safe and costs a sign-in. A session
keeps the token's digest, never the token, and is checked against the token store on each
request, so revoking a token ends its sessions. Each session has a CSRF token that every form it
sends must carry; a file uploaded for preview waits in its session until it is confirmed or
dropped (at most ``MAX_PENDING``, each for ``PENDING_S``).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from collector.http.auth import Role, Token

SESSION_S = 12 * 3600.0  # a working day; then sign in again
PENDING_S = 30 * 60.0
MAX_PENDING = 4
MAX_SESSIONS = 2000  # the oldest go first beyond it, so a flood of sign-ins cannot fill memory


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def same(given: str | None, wanted: str) -> bool:
    """Whether a presented secret is the expected one, compared in constant time."""
    return given is not None and hmac.compare_digest(given.encode(), wanted.encode())


@dataclass
class Pending:
    """A checked upload waiting for its confirmation."""

    id: str
    created_at: float
    checked: Any  # collector.registry.csv_import.Checked (kept opaque: this module knows no registry)


@dataclass
class Session:
    id: str
    token_name: str
    role: Role
    token_sha256: str
    csrf: str
    expires_at: float
    pending: dict[str, Pending] = field(default_factory=dict)

    def hold(self, checked: Any, now: float) -> Pending:
        """Keep a checked upload for confirmation; the oldest is dropped beyond MAX_PENDING."""
        self.pending = {k: p for k, p in self.pending.items() if now - p.created_at < PENDING_S}
        while len(self.pending) >= MAX_PENDING:
            del self.pending[min(self.pending, key=lambda k: self.pending[k].created_at)]
        held = Pending(new_secret(), now, checked)
        self.pending[held.id] = held
        return held

    def take(self, pending_id: str, now: float) -> Pending | None:
        """The upload held under ``pending_id`` (now no longer held), or None when there is none."""
        held = self.pending.pop(pending_id, None)
        if held is None or now - held.created_at >= PENDING_S:
            return None
        return held


class Sessions:
    """Open sessions by id, under one lock (requests run on several threads)."""

    def __init__(self, lifetime_s: float = SESSION_S) -> None:
        self.lifetime_s = lifetime_s
        self._lock = threading.Lock()
        self._open: dict[str, Session] = {}

    def open(self, token: Token, now: float | None = None) -> Session:
        now = time.time() if now is None else now
        session = Session(new_secret(), token.name, token.role, token.sha256, new_secret(), now + self.lifetime_s)
        with self._lock:
            self._open = {k: s for k, s in self._open.items() if s.expires_at > now}
            while len(self._open) >= MAX_SESSIONS:
                del self._open[min(self._open, key=lambda k: self._open[k].expires_at)]
            self._open[session.id] = session
        return session

    def get(self, session_id: str | None, now: float | None = None) -> Session | None:
        if not session_id:
            return None
        now = time.time() if now is None else now
        with self._lock:
            session = self._open.get(session_id)
            if session is None or session.expires_at <= now:
                self._open.pop(session_id, None)
                return None
            return session

    def close(self, session_id: str | None) -> None:
        with self._lock:
            self._open.pop(session_id or "", None)

    def count(self) -> int:
        with self._lock:
            return len(self._open)
