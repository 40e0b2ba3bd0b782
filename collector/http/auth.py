"""API tokens: who may read and who may change things through the collector's HTTP API.

A token is 32 random bytes shown once when it is made; only its SHA-256 is kept (in the state
file, or in ``[http] tokens`` of the config). A random token that long needs no slow hash:
nobody can guess it, and the stored digest gives nothing back.

Reads (GET, HEAD) need a ``viewer`` or ``admin`` token; anything that changes state needs ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from dataclasses import dataclass
from typing import Literal

from collector.store import Store

Role = Literal["viewer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "admin")
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
TOKEN_PREFIX = "cmt_"


@dataclass(frozen=True)
class Token:
    name: str
    role: Role
    sha256: str


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

    def add(self, name: str, role: Role) -> str:
        """Make a token, keep its digest, return the token itself (the only time it exists in clear)."""
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        token = new_token()
        try:
            self._store.execute(
                "INSERT INTO api_tokens (name, role, sha256, created_at) VALUES (?, ?, ?, ?)",
                (name, role, digest(token), time.time()),
            )
        except sqlite3.IntegrityError:
            raise ValueError(f"a token named {name!r} exists already; revoke it first") from None
        return token

    def revoke(self, name: str) -> bool:
        return self._store.execute("DELETE FROM api_tokens WHERE name = ?", (name,)).rowcount > 0

    def tokens(self) -> list[Token]:
        rows = self._store.query("SELECT name, role, sha256 FROM api_tokens ORDER BY name")
        stored = [Token(name, role, sha) for name, role, sha in rows if role in ROLES]
        return self._configured + stored

    def lookup(self, presented: str) -> Token | None:
        """The token whose digest matches, compared in constant time; None when none does."""
        wanted = digest(presented)
        found = None
        for token in self.tokens():
            if hmac.compare_digest(token.sha256, wanted):
                found = token
        return found
