"""Viewer tokens scoped to one commune or one area, on a real collector: every route of the app,
enumerated from the app itself (so a route added later is held to it without being named here), is
asked for the scope's own objects and for another commune's or area's.

- A read of the scope's own answers what an admin gets for the same request (200 on every route
  with data here), and its body names no other commune, PC or area;
- a read naming another commune, area, PC or object (in its path or its ``commune``/``area``
  filter) is 404, word for word the answer for one that does not exist at all;
- a change is refused (403) and changes nothing.

The token that sees a commune is made with ``token add --commune``, the one that sees an area is in
``[http] tokens``; bad scopes on the command line are refused with one line and nothing stored.
"""

from __future__ import annotations

import json
import re
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from realservices import API_TOKEN, Collector, Mosquitto, wait_until
from starlette.routing import Mount, Route

from collector.alerting.lifecycle import Alert, record
from collector.config import load_config
from collector.fleet.outage_book import OutageRecord
from collector.http.app import build_app, require_token
from collector.http.auth import digest
from collector.http.console.guard import signed_in
from collector.http.scope import hidden
from collector.registry.registry import HostKey, Line, Registry
from collector.service import CollectorService
from collector.store import Store

REPO = Path(__file__).resolve().parent.parent
AREA_TOKEN = "area-token-for-tests"
MONTH = time.strftime("%Y-%m")
PUBLIC = {"/", "/healthz", "/metrics", "/api/v1/enroll", "/speedtest/upload.php", "/speedtest/latency.txt",
          "/speedtest/random{side}x{side2}.jpg"}  # fmt: skip  # no token, so no scope: they name no commune's data
# Answers that cannot be cut to one commune (an area's report ranks its other communes): 404 for a
# commune's token. An area's token gets its own area's.
AREA_WIDE = {
    "/api/v1/reports/monthly",
    "/api/v1/reports/{month}/revisions",
    "/api/v1/reports/{month}/revisions/{number}",
}
HIDDEN = hidden().detail


@dataclass(frozen=True)
class Place:
    """One side of a scope test: a commune, its area, one of its PCs, and its objects' ids."""

    commune: str
    area: str
    host: str
    ids: dict[str, int | str]

    def fill(self, name: str) -> str:
        values = {"commune": self.commune, "code": self.commune, "area": self.area, "host": self.host,
                  "province": "08", "month": MONTH, "number": "1"}  # fmt: skip
        values.update({k: str(v) for k, v in self.ids.items()})
        assert name in values, f"a route has a path parameter {{{name}}}: say here what names own and other with it"
        return values[name]


@dataclass(frozen=True)
class Pass:
    token: str
    kind: str  # commune or area
    own: Place
    other: Place
    leaks: tuple[str, ...]  # what no answer to this token may contain


def call(collector: Collector, method: str, path: str, token: str) -> tuple[int, str, str]:
    """(status, body text, content type)."""
    request = urllib.request.Request(f"{collector.url}{path}", method=method,
                                     headers={"Authorization": f"Bearer {token}"})  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode("utf-8", "replace"), response.headers["Content-Type"] or ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), exc.headers["Content-Type"] or ""


@dataclass(frozen=True)
class Found:
    """A route as the app serves it: its full path, and every dependency it runs (its routers' too)."""

    path: str
    route: APIRoute
    dependencies: tuple[Any, ...]

    @property
    def methods(self) -> set[str]:
        return set(self.route.methods or ())


def app_routes(collector: Collector) -> list[Found]:
    """Every route of the app this collector serves, built in this process from its own config."""
    service = CollectorService(load_config(collector.config_path))
    try:
        app = build_app(service.http_parts())
        found = list(walk(app.routes))
        document = app.openapi()
    finally:
        service.store.close()
    served = {(m, f.path) for f in found for m in f.methods}
    documented = {(m.upper(), p) for p, item in document["paths"].items() for m in item}
    assert documented <= served, documented - served  # the walk missed nothing the document names
    return found


def walk(routes: list[Any], prefix: str = "", dependencies: tuple[Any, ...] = ()) -> Iterator[Found]:
    """The app's routes, into included routers (FastAPI keeps an included router whole, with the
    dependencies it was included with); a kind of route this test does not know fails it."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield Found(prefix + route.path_format, route, (*dependencies, *route.dependencies))
        elif hasattr(route, "original_router") and hasattr(route, "include_context"):
            context = route.include_context
            yield from walk(route.original_router.routes, prefix + context.prefix, (*dependencies,
                            *context.dependencies))  # fmt: skip
        elif isinstance(route, Mount) and isinstance(route.app, StaticFiles):
            continue  # files shipped with the program: no commune's data
        elif isinstance(route, Route) and route.path in DOCUMENTATION:
            continue
        else:
            raise AssertionError(f"a route of a kind this test does not know: {route!r}; teach walk()")


DOCUMENTATION = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


CONSOLE_OPEN = {"/console/sign-in"}  # the web console's sign-in form: it names no commune's data


def console_guarded(found: Found) -> bool:
    """A web console route that needs a signed-in session (``collector/http/console/guard.py``)."""
    pending = list(found.route.dependant.dependencies)
    while pending:
        dependant = pending.pop()
        if dependant.call is signed_in:
            return True
        pending += dependant.dependencies
    return False


def protected(found: Found) -> bool:
    return any(getattr(d, "dependency", None) is require_token for d in found.dependencies)


def url(found: Found, place: Place, **query: str) -> str:
    path = re.sub(r"\{(\w+)\}", lambda m: place.fill(m.group(1)), found.path)
    required = {p.alias: p for p in found.route.dependant.query_params if p.field_info.is_required()}
    wanted = {**{name: place.fill(name) for name in required}, **query}
    return path + ("?" + "&".join(f"{k}={v}" for k, v in wanted.items()) if wanted else "")


def query_names(found: Found) -> set[str]:
    """Every query parameter of the route, its dependencies' included."""
    names: set[str] = set()
    stack = [found.route.dependant]
    while stack:
        dependant = stack.pop()
        names |= {p.alias for p in dependant.query_params}
        stack += dependant.dependencies
    return names


def is_hidden(answer: tuple[int, str, str]) -> bool:
    """The answer for what lies outside the scope: 404, the same words as for what does not exist."""
    if answer[0] != 404:
        return False
    body = json.loads(answer[1])
    return isinstance(body, dict) and body.get("detail") == HIDDEN


def audit_count(collector: Collector) -> int:
    with sqlite3.connect(Path(collector.config_path).parent.parent / "state.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM audit_log").fetchone()[0])


def seed(state: Path) -> dict[str, int]:
    """Three communes in two areas, with PCs, lines, alerts and outages; the alerts' ids by commune."""
    now = time.time()
    alerts = {}
    with Store(state) as store:
        registry = Registry(store, "unassigned")
        registry.set_area("yen-son", "Yên Sơn", ["02473", "02536"])
        registry.set_area("minh-xuan", "Minh Xuân", ["02215"])
        for commune, host in (("02473", "pc-01"), ("02473", "pc-02"), ("02536", "pc-03"), ("02215", "pc-09")):
            registry.touch(HostKey("08", commune, host), now, "online")
        registry.flush()
        registry.upsert_lines([Line(f"TQG-{c}", "08", c, "VNPT", 100.0, 100.0, "2025-08-01")
                               for c in ("02473", "02536", "02215")])  # fmt: skip
        for commune, area, host in (("02473", "yen-son", "pc-01"), ("02536", "yen-son", "pc-03"),
                                    ("02215", "minh-xuan", "pc-09")):  # fmt: skip
            alerts[commune] = record(store, Alert(0, "host_offline", "08", area, commune, host, "warning", "vi", "en",
                                                  "firing", now - 600, fired_at=now - 300))  # fmt: skip
            outage = OutageRecord("08", commune, area, now - 7200, now - 7000, now - 3600, "decided", "power", 0.9)
            store.execute("INSERT INTO outages (province, commune, start, state, body) VALUES (?, ?, ?, ?, ?)",
                          ("08", commune, outage.start, "decided", outage.body()))  # fmt: skip
    return alerts


def test_a_scoped_token_reads_only_its_scope_on_every_route(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    broker = Mosquitto(tmp_path / "broker")  # of its own: no other test's PCs
    broker.start()
    try:
        run_every_route(make_collector, broker.port, tmp_path)
    finally:
        broker.stop()


def run_every_route(make_collector: Callable[..., Collector], port: int, tmp_path: Path) -> None:
    area_token = {"name": "kv-minh-xuan", "role": "viewer", "area": "minh-xuan", "sha256": digest(AREA_TOKEN)}
    admin = {"name": "tests", "role": "admin", "sha256": digest(API_TOKEN)}
    collector = make_collector(mqtt={"port": port}, http={"public_status_page": False, "tokens": [admin, area_token]},
                               actions={"answer_wait_s": 0})  # fmt: skip
    alerts = seed(tmp_path / "state.sqlite")
    assert collector.cli("setup-influx").returncode == 0  # the rollups the scorecard and reports read
    assert collector.cli("registry", "import-equipment", str(REPO / "config/equipment.example.csv")).returncode == 0
    made = collector.cli("token", "add", "--name", "xa-yen-son", "--role", "viewer", "--commune", "02473")
    assert made.returncode == 0, made.stderr
    commune_token = made.stdout.strip()
    routes = app_routes(collector)
    console = [r for r in routes if r.path.startswith("/console")]
    assert {r.path for r in console if not console_guarded(r)} == CONSOLE_OPEN, "a console route without a session"
    routes = [r for r in routes if r not in console]  # a session, not a bearer token: tests/test_console.py scopes them
    collector.start()
    ids: dict[str, dict[str, int | str]] = {c: {"alert_id": alerts[c]} for c in alerts}
    for commune, host in (("02473", "pc-01"), ("02536", "pc-03"), ("02215", "pc-09")):
        status, body = collector.post_json("/api/v1/silences", {"matchers": {"commune": commune}, "duration_s": 600,
                                                                "author": "A"})  # fmt: skip
        assert status == 201, body
        ids[commune]["silence_id"] = body["id"]
        status, body = collector.post_json("/api/v1/exclusions", {"commune": commune, "scope": "host", "target": host,
                                           "from": "2026-11-03", "to": "2026-11-04", "reason": "repair", "note": "sửa",
                                           "by": "A"})  # fmt: skip
        assert status == 201, body
        ids[commune]["exclusion_id"] = body["id"]
        status, body = collector.post_json(f"/api/v1/hosts/08/{commune}/{host}/actions/probe_now", {})
        assert status == 202, body  # no agent: pending, its id the GET's {key}
        ids[commune]["key"] = body["id"]
    assert collector.post_json("/api/v1/silences", {"matchers": {"rule": "line_down"}, "duration_s": 600,
                                                    "author": "A"})[0] == 201  # of the whole province  # fmt: skip
    wait_until(lambda: len(collector.get_json("/api/v1/communes")) == 3, 30, "three communes evaluated")

    yen_son = Place("02473", "yen-son", "pc-01", ids["02473"])
    minh_xuan = Place("02215", "minh-xuan", "pc-09", ids["02215"])
    passes = (
        Pass(commune_token, "commune", yen_son, minh_xuan, ("02536", "02215", "pc-03", "pc-09", "minh-xuan")),
        Pass(AREA_TOKEN, "area", minh_xuan, yen_son, ("02473", "02536", "pc-01", "pc-02", "pc-03", "yen-son")),
    )
    assert {r.path for r in routes if not protected(r)} == PUBLIC, "a new public route: say here why it needs no token"
    for scope in passes:
        check_every_route(collector, routes, scope)
    assert call(collector, "GET", "/api/v1/audit", commune_token)[0] == 200  # its commune's entries, below
    assert call(collector, "GET", "/api/v1/audit", AREA_TOKEN)[0] == 200


def check_every_route(collector: Collector, routes: list[Found], scope: Pass) -> None:
    leaking: set[str] = set()  # list routes whose admin answer names another commune: the check below can fail
    for route in routes:
        if not protected(route):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            if method != "GET":
                before = audit_count(collector)
                for place in (scope.own, scope.other):
                    status, body, _type = call(collector, method, url(route, place), scope.token)
                    assert status == 403, (scope.kind, method, route.path, status, body)
                assert audit_count(collector) == before, (method, route.path)
                continue
            check_read(collector, route, scope, leaking)
    lists = {"/api/v1/hosts", "/api/v1/lines", "/api/v1/areas", "/api/v1/communes", "/api/v1/equipment",
             "/api/v1/outages", "/api/v1/alerts", "/api/v1/silences", "/api/v1/audit",
             "/api/v1/exclusions"}  # fmt: skip
    assert lists <= leaking, lists - leaking  # each has the other communes' items for an admin, none for the scope


def check_read(collector: Collector, route: Found, scope: Pass, leaking: set[str]) -> None:
    own = url(route, scope.own)
    same = own  # what an admin asks to be given what the scope's token is given
    if scope.kind == "area" and route.path in AREA_WIDE and "area" in query_names(route):
        same = url(route, scope.own, area=scope.own.area)  # an area's token reads its area's document
    admin_status, admin_body, _type = call(collector, "GET", same, API_TOKEN)
    status, body, kind = call(collector, "GET", own, scope.token)
    where = (scope.kind, route.path)
    if scope.kind == "commune" and route.path in AREA_WIDE:
        assert is_hidden((status, body, kind)), (*where, status, body)
    else:
        assert status == admin_status, (*where, own, status, body, admin_body[:300])
        assert status == 200 or route.path in AREA_WIDE, (*where, status, body)
    if status == 200 and ("json" in kind or "html" in kind):
        assert not [w for w in scope.leaks if w in body], (*where, [w for w in scope.leaks if w in body], body[:600])
        if body.startswith("["):
            assert json.loads(body) or route.path not in {"/api/v1/hosts", "/api/v1/alerts"}, where
            if any(w in admin_body for w in scope.leaks):
                leaking.add(route.path)
    names = {m.group(1) for m in re.finditer(r"\{(\w+)\}", route.path)} - {"province", "month", "number"}
    if names:  # the route names a commune, PC or object in its path: another's is hidden
        other = url(route, scope.other)
        answer = call(collector, "GET", other, scope.token)
        assert is_hidden(answer), (*where, other, answer)
        assert call(collector, "GET", other, API_TOKEN)[0] != 404 or route.path in AREA_WIDE, (*where, other)
    for name in ("commune", "area") if not names else ():
        if name not in query_names(route):
            continue
        theirs = getattr(scope.other, name)
        answer = call(collector, "GET", url(route, scope.own, **{name: theirs}), scope.token)
        assert is_hidden(answer), (*where, name, answer)
        twice = url(route, scope.own, **{name: theirs}) + f"&{name}={getattr(scope.own, name)}"
        assert is_hidden(call(collector, "GET", twice, scope.token)), (*where, twice)  # every value is checked
        unknown = call(collector, "GET", url(route, scope.own, **{name: "02218" if name == "commune" else "nowhere"}),
                       scope.token)  # fmt: skip
        assert unknown[:2] == answer[:2], (*where, name, unknown)  # an existing one is told apart from none by nothing
        mine = url(route, scope.own, **{name: getattr(scope.own, name)})
        answer = call(collector, "GET", mine, scope.token)
        if scope.kind == "commune" and route.path in AREA_WIDE:
            assert is_hidden(answer), (*where, name, answer)
        else:
            assert answer[0] == call(collector, "GET", mine, API_TOKEN)[0], (*where, name, answer)
            assert answer[0] == 200 or route.path in AREA_WIDE, (*where, name, answer)


def test_a_bad_scope_on_the_command_line_is_refused_in_one_line_and_nothing_is_stored(
    make_collector: Callable[..., Collector],
) -> None:
    collector = make_collector()
    assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
    before = audit_count(collector)
    for args, said in (
        (("--commune", "99999"), "'99999' is not an official commune code"),
        (("--area", "son-la"), "area 'son-la' is not in the registry"),
        (("--role", "admin", "--commune", "02473"), "only a viewer token can be scoped"),
    ):
        done = collector.cli("token", "add", "--name", "x", *args)
        assert done.returncode == 2 and said in done.stderr, (args, done.stderr)
        assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout, done.stderr
    both = collector.cli("token", "add", "--name", "x", "--area", "yen-son", "--commune", "02473")
    assert both.returncode == 2 and "not allowed with argument" in both.stderr
    assert collector.cli("token", "list").stdout == "tests\tadmin\n" and audit_count(collector) == before
    made = collector.cli("token", "add", "--name", "kv", "--area", "yen-son")
    assert made.returncode == 0 and "sees only area yen-son" in made.stderr, made.stderr
    assert "kv\tviewer\tarea:yen-son" in collector.cli("token", "list").stdout
    with sqlite3.connect(Path(collector.config_path).parent.parent / "state.sqlite") as db:
        (after,) = db.execute("SELECT after FROM audit_log WHERE object = 'token:kv'").fetchone()
    assert json.loads(after)["scope"] == "area:yen-son"  # the scope given is in the audit log
