"""Enrolment keys: what lets an agent enrol itself (``POST /api/v1/enroll``) within one area.

An admin makes a key for an area with an expiry and, optionally, a number of hosts
(``commune-collector enroll-key add``). The key is shown once; only its SHA-256 is kept (a random
key that long needs no slow hash). A key enrols a host only in a commune of its area, before it
expires, while it is not revoked and while it has enrolled fewer hosts than its maximum; each
refusal has one reason, which the HTTP layer counts. The rules are ``refusal``, a pure function.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from dataclasses import dataclass

from collector.registry.enroll import Enroller, EnrollError, Enrollment, Place
from collector.registry.registry import Registry
from collector.store import Store

KEY_PREFIX = "cek_"
DURATION_RE = re.compile(r"^([1-9][0-9]{0,4})([mhd])$")
UNIT_S = {"m": 60, "h": 3600, "d": 86400}


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def duration_s(text: str) -> float:
    """``30d``, ``12h`` or ``90m`` in seconds; ValueError otherwise."""
    match = DURATION_RE.match(text.strip())
    if match is None:
        raise ValueError(f"expiry {text[:20]!r} must be a number and a unit, e.g. 30d, 12h or 90m")
    return int(match.group(1)) * UNIT_S[match.group(2)]


@dataclass(frozen=True)
class EnrollKey:
    id: int
    area: str
    sha256: str
    created_at: float
    expires_at: float
    max_hosts: int | None
    revoked_at: float | None


def refusal(key: EnrollKey | None, area: str, hosts_enrolled: int, now: float) -> str | None:
    """Why ``key`` may not enrol a host in a commune of ``area`` now (a reason of
    ``selfmetrics.ENROLL_REFUSALS``), or None."""
    if key is None:
        return "unknown_key"
    if key.revoked_at is not None:
        return "revoked"
    if now >= key.expires_at:
        return "expired"
    if area != key.area:
        return "outside_area"
    if key.max_hosts is not None and hosts_enrolled >= key.max_hosts:
        return "max_hosts"
    return None


class Refused(Exception):
    """A self-enrolment refused, with its reason (``selfmetrics.ENROLL_REFUSALS``) and a sentence for the caller."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


REFUSAL_TEXT = {
    "unknown_key": "this enrolment key is not known",
    "revoked": "this enrolment key was revoked; ask the area's IT team for a new one",
    "expired": "this enrolment key has expired; ask the area's IT team for a new one",
    "outside_area": "this enrolment key is for another area's communes",
    "max_hosts": "this enrolment key has enrolled as many hosts as it may",
}


class EnrollKeys:
    """Keys in the state file, and enrolment by key through an ``Enroller``."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def add(self, area: str, lifetime_s: float, max_hosts: int | None, now: float | None = None) -> tuple[int, str]:
        """Make a key; keep its digest; return its id and the key (the only time it exists in clear)."""
        now = time.time() if now is None else now
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        cursor = self._store.execute(
            "INSERT INTO enroll_keys (area, sha256, created_at, expires_at, max_hosts) VALUES (?, ?, ?, ?, ?)",
            (area, digest(key), now, now + lifetime_s, max_hosts),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid, key

    def revoke(self, key_id: int) -> bool:
        cursor = self._store.execute(
            "UPDATE enroll_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", (time.time(), key_id)
        )
        return cursor.rowcount > 0

    def all(self) -> list[EnrollKey]:
        rows = self._store.query(
            "SELECT id, area, sha256, created_at, expires_at, max_hosts, revoked_at FROM enroll_keys ORDER BY id"
        )
        return [EnrollKey(*row) for row in rows]

    def hosts_of(self, key_id: int) -> int:
        """Hosts this key has enrolled."""
        return int(self._store.query("SELECT count(*) FROM mqtt_credentials WHERE enroll_key = ?", (key_id,))[0][0])

    def find(self, presented: str) -> EnrollKey | None:
        wanted = digest(presented.strip())
        rows = self._store.query(
            "SELECT id, area, sha256, created_at, expires_at, max_hosts, revoked_at FROM enroll_keys WHERE sha256 = ?",
            (wanted,),
        )
        found = [EnrollKey(*row) for row in rows if hmac.compare_digest(row[2], wanted)]
        return found[0] if found else None

    def enroll(self, enroller: Enroller, registry: Registry, presented: str, place: Place) -> Enrollment:
        """Enrol ``place`` with the key ``presented``; Refused (with its reason) when the rules say no."""
        key = self.find(presented)
        area = registry.area_of(place.commune)
        with enroller.lock:  # the host count and the new host's row, with no other enrolment between
            used = self.hosts_of(key.id) if key is not None else 0
            reason = refusal(key, area, used, time.time())
            if reason is not None:
                raise Refused(reason, REFUSAL_TEXT[reason])
            assert key is not None
            try:
                return enroller.enroll_locked(place, key_id=key.id)
            except EnrollError as exc:
                raise Refused(exc.reason, str(exc)) from None
