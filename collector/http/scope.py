"""What part of the province a request may see: its token's scope, and the one way routes keep to it.

A viewer token may be scoped to one area or one commune (``commune-collector token add --area`` or
``--commune``); every other token sees the whole province. ``ScopeDep`` hands a route the request's
``Scope``. The rules are applied in three places only, never pasted into each route:

- ``guard`` runs before every token-protected route: a path or query parameter naming a commune or
  an area outside the scope (``commune``, ``area``, and ``code`` under ``/communes/`` or ``/areas/``)
  is answered 404, as if the thing did not exist (a 403 would tell that it does);
- ``collector.http.paging.Pager`` drops the items of a list that lie outside the scope before paging,
  so a list route names where each item is (``Where``) and cannot forget to filter;
- ``whole_province`` is the dependency of a route whose answer cannot be cut to a scope: 404 for a
  scoped token (an area's document asks ``Scope.area()``, which is 404 for a commune's token).

A door that signs in otherwise (the web console's session) makes its scope with ``of_token`` from
the token it found, and filters with the same ``Scope`` and ``Where``.

An item of one commune is in the scope when its commune is. An item of a whole area (an area, a
silence of an area) is in an area scope of that area and in a commune scope whose commune lies in it.
An item of neither (a silence of a rule, the whole province's report) is seen only with the whole province.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, NamedTuple

from fastapi import Depends, HTTPException, Request

from collector.http.auth import Token, parse_scope
from collector.http.deps import RegistryDep
from collector.registry.registry import Registry

Kind = Literal["province", "area", "commune"]
SCOPED_PATH_CODES = ("/api/v1/communes/{code}", "/api/v1/areas/{code}")  # where a path's ``code`` is a place


class Where(NamedTuple):
    """Where an item lies: its commune, or for an item of a whole area its area; neither for the province."""

    commune: str | None = None
    area: str | None = None


@dataclass(frozen=True)
class Scope:
    """The communes a request may see: all of them (``province``), one area's, or one commune. Made
    once per request from the registry as it is then (areas may be re-imported while it runs)."""

    kind: Kind
    code: str = ""
    members: frozenset[str] = frozenset()  # an area scope's communes, or a commune scope's one
    home: str = ""  # the area a commune scope's commune lies in; an area scope's own code

    @property
    def whole(self) -> bool:
        return self.kind == "province"

    def sees_commune(self, commune: str) -> bool:
        return self.whole or commune in self.members

    def sees_area(self, area: str) -> bool:
        """An area is in view when it is the scope or holds the scope's commune."""
        return self.whole or area == self.home

    def sees(self, where: Where) -> bool:
        if where.commune is not None:
            return self.sees_commune(where.commune)
        if where.area is not None:
            return self.sees_area(where.area)
        return self.whole

    def communes(self) -> frozenset[str] | None:
        """The scope's communes (None: every commune), for filters run in SQL."""
        return None if self.whole else self.members

    def area(self) -> str | None:
        """The area a report or list may be cut to: an area scope's own; None for the province; 404 for a
        commune scope (an area's document shows its other communes)."""
        if self.kind == "commune":
            raise hidden()
        return self.code if self.kind == "area" else None

    def describe(self) -> str:
        return "the whole province" if self.whole else f"{self.kind} {self.code}"


WHOLE = Scope("province")


def hidden() -> HTTPException:
    """The answer for what lies outside a token's scope: the same 404 whether or not it exists."""
    return HTTPException(404, "no such object here: it does not exist, or this token's scope does not reach it")


def of_token(token: Token | None, registry: Registry) -> Scope:
    """The scope a token gives (the whole province without a token: a public page)."""
    if token is None or not token.scope:
        return WHOLE
    kind, code = parse_scope(token.scope)
    if kind == "commune":
        return Scope("commune", code, frozenset({code}), registry.area_of(code))
    return Scope("area", code, frozenset(registry.communes_by_area().get(code, [])), code)


async def request_scope(request: Request, registry: RegistryDep) -> Scope:
    """The request's scope, from the token ``require_token`` found (kept on the request once made).
    ``async`` like the other dependencies that do not wait (``collector.http.deps``): the registry
    answers from memory without waiting for the store's lock."""
    made = getattr(request.state, "scope", None)
    if isinstance(made, Scope):
        return made
    scope = of_token(getattr(request.state, "token", None), registry)
    request.state.scope = scope
    return scope


ScopeDep = Annotated[Scope, Depends(request_scope)]


async def guard(request: Request, scope: ScopeDep) -> None:
    """404 for a request naming a commune or an area (in its path or query) outside the token's scope."""
    if scope.whole:
        return
    route = request.scope.get("route")
    template = str(getattr(route, "path", ""))
    named = list(request.query_params.multi_items())  # every value of a repeated parameter
    for name, value in request.path_params.items():
        if name == "code" and any(template.startswith(p) for p in SCOPED_PATH_CODES):
            name = "commune" if template.startswith(SCOPED_PATH_CODES[0]) else "area"
        named.append((name, value))
    for name, value in named:
        if name == "commune" and not scope.sees_commune(str(value)):
            raise hidden()
        if name == "area" and not scope.sees_area(str(value)):
            raise hidden()


def whole_province(scope: ScopeDep) -> None:
    """For a route whose answer cannot be cut to one area or commune: 404 for a scoped token."""
    if not scope.whole:
        raise hidden()
