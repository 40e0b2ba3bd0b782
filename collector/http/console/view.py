"""Rendering a console page: the template, the words in the chosen language, the session's name,
role and CSRF token for its forms, the language cookie when the switch was used, and the
refusal page (both languages: what failed, that nothing changed, what to do)."""

from __future__ import annotations

import time
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from collector.http import templating
from collector.http.console.guard import LANG_COOKIE, LANGS, Refused, SignInNeeded, lang
from collector.http.sessions import Session
from collector.vocabulary import CONSOLE, Words

NAV = ("fleet", "alerts", "silences", "enroll_keys", "imports")
NAV_PATHS = {"fleet": "/console", "alerts": "/console/alerts", "silences": "/console/silences",
             "enroll_keys": "/console/enroll-keys", "imports": "/console/imports"}  # fmt: skip
YEAR_S = 365 * 86400
# Every console page: not kept by the browser or a proxy (a new enrolment key is on one), never in a
# frame of another site (a form pressed through it), forms only to this collector; scripts only as
# files this collector serves (a vendored htmx, say), never inline, so injected markup runs nothing.
HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; connect-src 'self'; "
    "style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}


def words(language: str, table: dict[str, Words] | None = None) -> dict[str, str]:
    return {key: w.in_(language) for key, w in (table or CONSOLE).items()}


def when(ts: float) -> str:
    """A moment as people here write it, in the collector's local time."""
    return time.strftime("%H:%M %d/%m/%Y", time.localtime(ts)) if ts else ""


def ago(seconds: float, language: str) -> str:
    seconds = max(0.0, seconds)
    for limit, unit, key in ((120, 1, "ago_s"), (7200, 60, "ago_min"), (172800, 3600, "ago_h")):
        if seconds < limit:
            return CONSOLE[key].in_(language).format(n=int(seconds // unit))
    return CONSOLE["ago_d"].in_(language).format(n=int(seconds // 86400))


def page(
    request: Request, template: str, session: Session | None, current: str = "", status: int = 200, **context: Any
) -> HTMLResponse:
    language = lang(request)
    html = templating.render(
        f"console/{template}",
        lang=language,
        other_lang=LANGS[1 - LANGS.index(language)],
        t=words(language),
        session=session,
        can_act=session is not None and session.role == "admin",
        nav=[(key, NAV_PATHS[key], CONSOLE[key].in_(language)) for key in NAV],
        current=current,
        path=request.url.path,
        when=when,
        **context,
    )
    response = HTMLResponse(html, status_code=status, headers=HEADERS)
    remember_language(request, response)
    return response


def remember_language(request: Request, response: Response) -> None:
    asked = request.query_params.get("lang")
    if asked in LANGS:
        secure = request.url.scheme == "https"
        response.set_cookie(LANG_COOKIE, asked, max_age=YEAR_S, httponly=True, samesite="strict", secure=secure)


def refusal_page(request: Request, exc: Exception) -> Response:
    """The page of a ``Refused`` (its status) and the redirect of a ``SignInNeeded``."""
    if isinstance(exc, SignInNeeded):
        return RedirectResponse(f"/console/sign-in?next={exc.back_to}", status_code=303)
    assert isinstance(exc, Refused)
    language = lang(request)
    said = CONSOLE[exc.key]
    first = said.in_(language).format(**exc.values)
    second = said.in_("en" if language == "vi" else "vi").format(**exc.values)
    session = getattr(request.state, "console_session", None)
    return page(request, "refused.html", session, status=exc.status, first=first, second=second)
