"""API tokens: who may read and who may change things through the collector's HTTP API.

A token is 32 random bytes shown once when it is made; only its SHA-256 is kept (in the state
file, or in ``[http] tokens`` of the config). A random token that long needs no slow hash:
nobody can guess it, and the stored digest gives nothing back.

Reads (GET, HEAD) need a ``viewer`` or ``admin`` token; anything that changes state needs ``admin``.
A viewer token may be scoped to one area (``area:CODE``) or one commune (``commune:CODE``): it then
sees only that part of the province (``collector/http/scope.py``). An admin token is never scoped.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from collector.registry import units
from collector.store import Store

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PREFIX = "cmt_"


SCOPE_KINDS = ("area", "commune")


@dataclass(frozen=True)
class Token:
    name: str
    role: Role
    sha256: str
    scope: str = ""  # "" the whole province, else "area:CODE" or "commune:CODE"


def parse_scope(scope: str) -> tuple[str, str]:
    """(kind, code) of a stored scope; ValueError for one that is neither an area's nor a commune's."""
    kind, _, code = scope.partition(":")
    if kind not in SCOPE_KINDS or not code:
        raise ValueError(f"scope {scope!r} is not area:CODE or commune:CODE")
    return kind, code


def usable(role: str, scope: str) -> bool:
    """A stored row a request may use: a known role, and a scope only on a viewer (a row edited by hand
    to scope an admin, or with a scope that names nothing, is left out rather than read as unscoped)."""
    if role not in ROLES:
        return False
    if not scope:
        return True
    try:
        parse_scope(scope)
    except ValueError:
        return False
    return role == "viewer"


def checked_scope(role: Role, area: str, commune: str, areas: Iterable[str]) -> str:
    """The scope to store for a token of ``role`` limited to ``area`` or ``commune`` ("" for neither);
    ValueError, saying what to do, for both, for a scoped admin, or for a code that names nothing."""
    if not area and not commune:
        return ""
    if area and commune:
        raise ValueError("a token is scoped to one area or one commune, not both")
    if role != "viewer":
        raise ValueError("only a viewer token can be scoped; an admin token sees and changes the whole province")
    if commune:
        if units.commune(commune) is None:
            raise ValueError(f"commune {commune[:20]!r} is not an official commune code (e.g. 02473)")
        return f"commune:{commune}"
    if area not in set(areas):
        raise ValueError(f"area {area[:64]!r} is not in the registry; import it first (registry import-areas)")
    return f"area:{area}"


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def role_allows(role: Role, method: str) -> bool:
    return role == "admin" or method.upper() in READ_METHODS


class TokenStore:
    """Tokens from the config (fixed) plus those made with ``commune-collector token add`` (SQLite)."""

    def __init__(self, store: Store, configured: list[Token]) -> None:
        self._store = store
        self._configured = list(configured)

    def add(self, name: str, role: Role, scope: str = "") -> str:
        """Make a token, keep its digest, return the token itself (the only time it exists in clear).
        ``scope`` comes from ``checked_scope``."""
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if scope:
            parse_scope(scope)
            if role != "viewer":
                raise ValueError("only a viewer token can be scoped")
        token = new_token()
        try:
            self._store.execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at, scope) VALUES (?, ?, ?, ?, ?)",
                (name, role, digest(token), time.time(), scope),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a token named {name!r} exists already; revoke it first") from None
        return token

    def revoke(self, name: str) -> bool:
        return self._store.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount > 0

    def tokens(self) -> list[Token]:
        rows = self._store.read("SELECT name, role, sha256, scope FROM api_tokens ORDER BY name")  # not behind a save
        stored = [Token(name, role, sha, scope) for name, role, sha, scope in rows if usable(role, scope)]
        return self._configured + stored

    def lookup(self, presented: str) -> Token | None:
        """The token whose digest matches, compared in constant time; None when none does."""
        wanted = digest(presented)
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.sha256, wanted):
                found = token
        return found

    def holder_of(self, sha256: str) -> Token | None:
        """The token with this digest, if it still exists (a console session keeps only the digest)."""
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.sha256, sha256):
                found = token
        return found
