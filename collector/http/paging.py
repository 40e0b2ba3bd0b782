"""Cursor pagination, the same on every list route.

A list route answers one page: at most ``limit`` items (default ``DEFAULT_LIMIT``, at most
``MAX_LIMIT``) in the route's stable order, and, when more follow, a ``Link: <...>; rel="next"``
header (RFC 8288) whose URL is the same request with ``cursor`` set; the body stays a JSON array.
The cursor is opaque to clients: the sort key of the page's last item, as URL-safe base64 of JSON.
The next page is every item whose key comes after it, so items added or removed meanwhile neither
shift the pages nor repeat one (an item whose key changes between two pages, e.g. a commune whose
line state changes, may be seen twice or not at all). A cursor that is not one we gave names no
page: 404 (any string of the cursor's alphabet is a well-formed request, so not 400 or 422).

A list route takes a ``PagerDep`` (its ``limit`` and ``cursor`` parameters, the request's scope) and
answers ``pager.page(items, key, where)``: ``where`` says where each item lies, and the items outside
the token's scope are dropped before paging (``collector/http/scope.py``), so a list route cannot
forget to keep to the scope.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends, HTTPException, Query, Request, Response

from collector.http.contract import Problem
from collector.http.scope import Scope, ScopeDep, Where

DEFAULT_LIMIT = 500
MAX_LIMIT = 1000
T = TypeVar("T")
Key = tuple[Any, ...]

Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description=f"items per page (default {DEFAULT_LIMIT}, at most {MAX_LIMIT})")
]
Cursor = Annotated[
    str | None,
    Query(
        pattern=r"^[A-Za-z0-9_-]{1,400}$",
        description='opaque: from the previous page\'s `Link: <...>; rel="next"` header; leave out for the first page',
    ),
]
NEXT_HEADER = {
    "Link": {
        "description": 'When more items follow: `<url of the next page>; rel="next"`.',
        "schema": {"type": "string"},
    }
}


def listed(description: str) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of a list route: the page, the next-page header, and 404 for a bad cursor."""
    return {
        200: {"description": description, "headers": NEXT_HEADER},
        404: {"model": Problem, "description": "No such page: the cursor is not one this collector gave."},
    }


def encode(key: Key) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key), separators=(",", ":")).encode()).rstrip(b"=").decode()


def refused() -> HTTPException:
    return HTTPException(404, "no such page: this cursor is not one the collector gave; ask again without a cursor")


def decode(cursor: str) -> Key:
    """The key a cursor holds; 404 for one we did not make."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        key = None
    if not isinstance(key, list) or not all(isinstance(v, (str, int, float)) for v in key):
        raise refused()
    return tuple(key)


def after(items: Iterable[T], key: Callable[[T], Key], cursor: str | None) -> Iterator[T]:
    """``items`` (any order) in key order, from just after the cursor's key (compared lazily: a
    forged key that does not compare with ours is caught by ``page``)."""
    ordered = sorted(items, key=key)
    start = None if cursor is None else decode(cursor)
    return iter(ordered) if start is None else (item for item in ordered if key(item) > start)


def page(ordered: Iterator[T], key: Callable[[T], Key], limit: int, request: Request, response: Response) -> list[T]:
    """The first ``limit`` items of ``ordered``; sets the next-page ``Link`` header when more follow."""
    taken: list[T] = []
    try:
        for item in ordered:
            if len(taken) == limit:
                response.headers["Link"] = f'<{next_url(request, key(taken[-1]))}>; rel="next"'
                break
            taken.append(item)
    except TypeError:  # a forged cursor whose key does not compare with ours
        raise refused() from None
    return taken


def next_url(request: Request, key: Key) -> str:
    """This request's path and query with ``cursor`` set to ``key``."""
    query = request.url.include_query_params(cursor=encode(key))
    return f"{query.path}?{query.query}"


@dataclass(frozen=True)
class Pager(Generic[T]):
    """One list request: its page size and cursor, and the scope its items are cut to."""

    request: Request
    response: Response
    limit: int
    cursor: str | None
    scope: Scope

    def page(self, items: Iterable[T], key: Callable[[T], Key], where: Callable[[T], Where]) -> list[T]:
        """The page of ``items`` (any order) after the cursor, in key order, of those in the scope."""
        return page(after(self.kept(items, where), key, self.cursor), key, self.limit, self.request, self.response)

    def take(self, ordered: Iterator[T], key: Callable[[T], Key], where: Callable[[T], Where]) -> list[T]:
        """The page of items already in order from the cursor on (a route that reads them so itself)."""
        return page(iter(self.kept(ordered, where)), key, self.limit, self.request, self.response)

    def kept(self, items: Iterable[T], where: Callable[[T], Where]) -> Iterable[T]:
        return items if self.scope.whole else (item for item in items if self.scope.sees(where(item)))


async def pager(
    request: Request, response: Response, scope: ScopeDep, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Pager[Any]:
    return Pager(request, response, limit, cursor, scope)


PagerDep = Annotated[Pager[Any], Depends(pager)]
