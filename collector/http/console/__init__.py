"""The web console for the area team, beside ``/status``: sign in with an API token, see the fleet
and each commune, and (with an admin token) act: acknowledge alerts, silence them, make enrolment
keys, upload the registry's lists. Server-rendered Jinja2, no JavaScript needed.

``ROUTERS`` hold every console route; ``install`` adds them and their refusal page to an app.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from collector.http.console import actions, changes, pages
from collector.http.console.guard import Refused, SignInNeeded
from collector.http.console.view import refusal_page

ROUTERS: list[APIRouter] = [pages.router, changes.router, actions.router]
CHANGING: list[APIRouter] = [changes.router, actions.router]  # what the audit middleware watches (not the
# sign-in form: anyone may post it, and it changes nothing stored)


def install(app: FastAPI) -> None:
    for router in ROUTERS:
        app.include_router(router)
    app.add_exception_handler(Refused, refusal_page)
    app.add_exception_handler(SignInNeeded, refusal_page)
