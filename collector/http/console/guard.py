"""Who is asking, in which language, and whether they may: the console's FastAPI dependencies.

``signed_in`` hands a route the session of the person signed in (or sends a browser to the sign-in
page); ``acting`` also requires an admin token and the form's CSRF token, and names the token for
the audit log (``collector/http/app.py``'s ``audit_changes``), so a change made through the console
is audited exactly like the same change through the API. A refusal is a ``Refused``: the page
says, in Vietnamese and English, what failed and that nothing was changed.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request

from collector.http.deps import PartsDep
from collector.http.scope import Scope, of_token
from collector.http.sessions import Session, same
from collector.vocabulary import CONSOLE

SESSION_COOKIE = "cm_session"
LANG_COOKIE = "cm_lang"
LANGS = ("vi", "en")
CSRF_FIELD = "csrf"


class SignInNeeded(Exception):
    """A page asked for without a session: the browser goes to the sign-in page, then back."""

    def __init__(self, back_to: str) -> None:
        super().__init__(back_to)
        self.back_to = back_to


class Refused(Exception):
    """A request the console will not do; ``key`` names its sentence in ``vocabulary.CONSOLE``."""

    def __init__(self, status: int, key: str, **values: object) -> None:
        super().__init__(CONSOLE[key].en.format(**values))
        self.status, self.key, self.values = status, key, values


def lang(request: Request) -> str:
    """``?lang=`` when given (the switch), else the language chosen before, else Vietnamese."""
    asked = request.query_params.get("lang") or request.cookies.get(LANG_COOKIE)
    return asked if asked in LANGS else "vi"


def session_of(request: Request, p: PartsDep) -> Session | None:
    """The session the cookie names, while its token still exists; the token's scope (the whole
    province, one area or one commune: ``collector/http/scope.py``) is kept on the request."""
    session = p.sessions.get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    token = p.tokens.holder_of(session.token_sha256)
    if token is None:  # revoked since: the session ends with it
        p.sessions.close(session.id)
        return None
    request.state.console_scope = of_token(token, p.registry)
    return session


def scope_of(request: Request) -> Scope:
    """The scope of the signed-in token (``signed_in`` ran first)."""
    found = getattr(request.state, "console_scope", None)
    if not isinstance(found, Scope):
        raise Refused(401, "err_signed_out")
    return found


def signed_in(request: Request, p: PartsDep) -> Session:
    session = session_of(request, p)
    if session is None:
        if request.method in ("GET", "HEAD"):
            raise SignInNeeded(quote(request.url.path + (f"?{request.url.query}" if request.url.query else "")))
        raise Refused(401, "err_signed_out")
    request.state.console_session = session
    return session


SessionDep = Annotated[Session, Depends(signed_in)]


async def sent(request: Request, session: SessionDep) -> Session:
    """The session whose form carries its CSRF token (any role: signing out)."""
    form = await request.form()
    given = form.get(CSRF_FIELD)
    if not same(given if isinstance(given, str) else None, session.csrf):
        raise Refused(403, "err_csrf")
    return session


SentDep = Annotated[Session, Depends(sent)]


async def acting(request: Request, session: SentDep) -> Session:
    """The session of an admin whose form carries its CSRF token; names the token for the audit log."""
    if session.role != "admin":
        raise Refused(403, "err_viewer")
    request.state.token_name, request.state.token_role = session.token_name, session.role
    return session


AdminDep = Annotated[Session, Depends(acting)]
