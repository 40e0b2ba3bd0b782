"""Request body limits: every route states the most bytes its body may carry, and no more is read.

A route states its limit with ``openapi_extra=stated(n)``, so the limit is in the OpenAPI document
too (``x-body-limit-bytes`` on each operation); a route that takes no body takes 0 bytes, and one
that takes a body without stating a limit stops ``build_app``. ``BodyLimits`` is a pure ASGI
middleware in front of everything else: a declared ``Content-Length`` over the route's limit is
answered 413 before the app runs (so before the enrolment throttle, the key check or any parsing),
and a body sent without a length (chunked) is counted as it streams in and refused once it passes
the limit (on a route that takes none, at its first bytes, since the app would never read it). The
rest of such a body is never read: the connection is closed. A request no route takes is left to
the router's 404 or 405, which reads no body (and could read none: its limit is 0).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("commune_collector.http")

BODY_LIMIT_KEY = "x-body-limit-bytes"
KB = 1024
ENROLL_MAX = 4 * KB  # {"province", "commune", "host"}: under 100 bytes
JSON_MAX = 64 * KB  # the admin routes' JSON bodies (an ack, a silence, a speed-test request)
SPEEDTEST_UPLOAD_MAX = 8 * KB * KB  # speed-test uploads: the largest size speedtest-cli sends is 7,340,032
NO_BODY = 0


def stated(max_bytes: int) -> dict[str, Any]:
    """The ``openapi_extra`` by which a route states its body limit."""
    return {BODY_LIMIT_KEY: max_bytes}


@dataclass(frozen=True)
class RouteLimit:
    path: re.Pattern[str]
    methods: frozenset[str]  # empty: any method
    max_bytes: int


class TooLarge(Exception):
    """Raised to the app by ``receive`` once the streamed body passes the limit."""


class BodyLimits:
    """Refuses (413) a request whose body is larger than its route's limit, before reading it."""

    def __init__(self, app: ASGIApp, routes: list[RouteLimit], refused: Callable[[], None]) -> None:
        self.app = app
        self.routes = routes
        self.refused = refused

    def limit(self, method: str, path: str) -> int | None:
        """The limit of the route that takes ``method path``; None when none does."""
        for route in self.routes:
            if route.path.match(path) and (not route.methods or method in route.methods):
                return route.max_bytes
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        routed = self.limit(scope["method"], scope["path"])
        max_bytes = NO_BODY if routed is None else routed
        declared = declared_length(scope)
        if routed is not None and declared is not None and declared > max_bytes:
            await self.refuse(scope, send, max_bytes, declared)
            return
        first: list[Message] = []
        if routed == NO_BODY and declared is None and chunked(scope):  # the app may never read it: look now
            first.append(await receive())
            if first[0]["type"] == "http.request" and first[0].get("body"):
                await self.refuse(scope, send, max_bytes, None)
                return
        state = {"received": 0, "over": False, "started": False}

        async def limited_receive() -> Message:
            message = first.pop() if first else await receive()
            if message["type"] == "http.request":
                state["received"] += len(message.get("body", b""))
                if state["received"] > max_bytes:
                    state["over"] = True
                    raise TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            if state["over"]:  # the app answered the refused body its own way (400, 500): ours goes instead
                if message["type"] == "http.response.start" and not state["started"]:
                    state["started"] = True
                    await self.refuse(scope, send, max_bytes, None)
                return
            state["started"] = state["started"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except TooLarge:
            if not state["started"]:
                state["started"] = True
                await self.refuse(scope, send, max_bytes, None)

    async def refuse(self, scope: Scope, send: Send, max_bytes: int, declared: int | None) -> None:
        self.refused()
        client = scope.get("client")
        log.warning(
            "request body too large",
            extra={"path": str(scope["path"])[:200], "limit": max_bytes, "declared": declared,
                   "address": client[0] if client else "unknown"},
        )  # fmt: skip
        body = json.dumps(
            {"detail": f"the body is larger than the {max_bytes} bytes {scope['method']} {scope['path']} takes"}
        ).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": [*headers, (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})


def chunked(scope: Scope) -> bool:
    return any(name == b"transfer-encoding" for name, _value in scope["headers"])


def declared_length(scope: Scope) -> int | None:
    """The request's ``Content-Length``, or None when it has none (chunked) or one that is not a number."""
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def route_limits(routes: list[BaseRoute], too_large: dict[str, Any]) -> list[RouteLimit]:
    """Each route's limit as the middleware matches it; every API operation gets its limit and the
    413 answer (``too_large``) in the OpenAPI document (so call it before the routers are included).
    A route that takes a body must state its limit; any other route (FastAPI's docs) takes none."""
    out = []
    for route in routes:
        if isinstance(route, APIRoute):
            extra = route.openapi_extra or {}
            if BODY_LIMIT_KEY not in extra:
                if route.body_field is not None:
                    raise RuntimeError(f"{route.path} takes a body but states no limit: openapi_extra=stated(n)")
                route.openapi_extra = extra = {**extra, BODY_LIMIT_KEY: NO_BODY}
            route.responses = {**route.responses, 413: too_large}
            out.append(RouteLimit(route.path_regex, frozenset(route.methods or ()), int(extra[BODY_LIMIT_KEY])))
        elif isinstance(route, Route):
            out.append(RouteLimit(route.path_regex, frozenset(route.methods or ()), NO_BODY))
    return out
