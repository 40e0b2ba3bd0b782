"""What the HTTP API promises in its OpenAPI document (``/openapi.json``), kept true.

Generated clients and schemathesis read that document, so it has to say exactly what is served:
every parameter bounded as the code checks it (codes by their official shapes, ids within SQLite's
INTEGER range), every status code a route can answer with its body, every content type, the
bearer token scheme, and a ``405`` whose ``Allow`` names every method the path has.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPBearer
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from common.wire import COMMUNE_RE, HOST_RE, PROVINCE_RE

MAX_ROW_ID = 2**63 - 1  # SQLite INTEGER; larger ids cannot exist, and SQLite refuses to look them up
HTTP_METHODS = frozenset({"get", "put", "post", "delete", "options", "head", "patch", "trace"})
LABEL_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"  # areas, as in the registry

# Declared as a security scheme so generated clients send the header; require_token does the checking.
bearer = HTTPBearer(auto_error=False, description="An API token: viewer reads, admin changes.")


class Problem(BaseModel):
    """The body of every error answer except request validation (422)."""

    detail: str


def answers(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error codes, each with the Problem body."""
    meaning = {
        400: "The body is not valid JSON.",
        401: "No bearer token was sent.",
        403: "The token is unknown, or its role may not do this.",
        404: "No such object.",
        409: "The object exists already.",
        413: "The body is larger than this route takes (its x-body-limit-bytes); nothing of it was read.",
        429: "Too many failed attempts from this address; the Retry-After header says when to try again.",
        503: "A service the collector needs cannot be reached, or its state file cannot be written.",
    }
    return {code: {"model": Problem, "description": meaning[code]} for code in codes}


ProvinceCode = Annotated[str, Path(pattern=PROVINCE_RE.pattern, description="official province code, e.g. 08")]
CommuneCode = Annotated[str, Path(pattern=COMMUNE_RE.pattern, description="official commune code, e.g. 02473")]
HostName = Annotated[str, Path(pattern=HOST_RE.pattern, description="the PC's name, e.g. pc-01")]
RowId = Annotated[int, Path(ge=1, le=MAX_ROW_ID)]
AreaFilter = Annotated[str | None, Query(pattern=LABEL_PATTERN, description="only this area's")]
CommuneFilter = Annotated[str | None, Query(pattern=COMMUNE_RE.pattern, description="only this commune's")]


def documented_methods(document: dict[str, Any], path: str) -> list[str]:
    """The methods the OpenAPI document gives the path templates that match ``path``."""
    methods: set[str] = set()
    for template, item in document.get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {method.upper() for method in item if method in HTTP_METHODS}
    return sorted(methods)


async def method_not_allowed(request: Request, exc: Exception) -> Response:
    """A 405 whose ``Allow`` lists every method the document gives the path (Starlette names only the
    first route's; HEAD, answered for every GET, is not an operation of its own)."""
    assert isinstance(exc, StarletteHTTPException)
    allowed = documented_methods(request.app.openapi(), request.url.path)
    return JSONResponse({"detail": exc.detail}, status_code=405, headers={"Allow": ", ".join(allowed)})
