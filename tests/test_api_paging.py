"""Cursor pagination on a real collector: every list route answers pages of ``limit`` items in a
stable order, says with ``Link: <...>; rel="next"`` that more follow, and the pages put together are
the whole list, each item once. Issue 29: ``/api/v1/alerts`` answered 500 alerts and said nothing
of the rest."""

from __future__ import annotations

import json
import re
import tomllib
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from realservices import API_TOKEN, REPO, Collector, Mosquitto, wait_until

from collector.alerting.lifecycle import Alert
from collector.audit import Actor
from collector.reports.revisions import Inputs, RevisionBook
from collector.store import Store

ALERTS = 620
LIST_ROUTES = ["/api/v1/hosts", "/api/v1/lines", "/api/v1/areas", "/api/v1/degraded", "/api/v1/unused-lines",
               "/api/v1/communes", "/api/v1/equipment", "/api/v1/outages", "/api/v1/alerts",
               "/api/v1/silences", "/api/v1/other-devices", "/api/v1/replacement", "/api/v1/audit",
               "/api/v1/exclusions", "/api/v1/reports/2026-10/revisions"]  # fmt: skip
TEMPLATES = {"/api/v1/reports/2026-10/revisions": "/api/v1/reports/{month}/revisions"}  # a list route with a path
REVISIONS = 3


def get(collector: Collector, path: str) -> tuple[int, Any, str]:
    """(status, JSON body, the URL of the next page or "")."""
    request = urllib.request.Request(f"{collector.url}{path}", headers={"Authorization": f"Bearer {API_TOKEN}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            link = response.headers.get("Link", "")
            found = re.fullmatch(r'<([^>]+)>; rel="next"', link)
            assert bool(found) == bool(link), link
            return response.status, json.loads(response.read()), found.group(1) if found else ""
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), ""


def walk(collector: Collector, path: str) -> list[Any]:
    """Every item of a list route, page after page."""
    items: list[Any] = []
    while path:
        status, page, path = get(collector, path)
        assert status == 200, page
        items += page
    return items


def resolved_alert(n: int) -> str:
    commune = ("02473", "02536")[n % 2]
    alert = Alert(0, "host_offline", "08", "yen-son", commune, f"pc-{n}", "warning", "máy mất kết nối", "offline",
                  "resolved", 1_700_000_000.0 + n, 1_700_000_100.0 + n, 1_700_000_200.0 + n)  # fmt: skip
    body = {k: v for k, v in vars(alert).items() if k != "id"}
    return json.dumps(body)


def test_alerts_are_paged_with_a_next_link_until_every_one_is_listed_once(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    collector = make_collector()
    with Store(tmp_path / "state.sqlite") as store:
        store.executemany("INSERT INTO alerts (key, state, body) VALUES ('k', 'resolved', ?)",
                          [(resolved_alert(n),) for n in range(ALERTS)])  # fmt: skip
    collector.start()
    status, first, following = get(collector, "/api/v1/alerts")
    assert status == 200 and len(first) == 500 and following  # the default page, and it says more follow
    every = walk(collector, "/api/v1/alerts?limit=250")
    ids = [a["id"] for a in every]
    assert ids == sorted(range(1, ALERTS + 1), reverse=True)  # newest first, each once
    mine = walk(collector, "/api/v1/alerts?commune=02536&limit=100")
    assert [a["id"] for a in mine] == [i for i in ids if every[ids.index(i)]["commune"] == "02536"]
    assert get(collector, "/api/v1/alerts?limit=1001")[0] == 422  # the maximum is 1000
    assert get(collector, "/api/v1/alerts?cursor=bm90LWEta2V5")[0] == 404  # base64 of "not-a-key": no such page


def test_every_list_route_pages_the_same_way(
    make_collector: Callable[..., Collector], make_agent: Any, tmp_path: Path
) -> None:
    # A broker of its own: the shared one holds retained statuses of other tests' PCs of 02473,
    # which a new collector would count among its hosts (then three hosts could be the wrong three).
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    try:
        run_every_list_route(make_collector, make_agent, broker.port)
    finally:
        broker.stop()


def run_every_list_route(make_collector: Callable[..., Collector], make_agent: Any, port: int) -> None:
    collector = make_collector(mqtt={"port": port})
    state = tomllib.loads(collector.config_path.read_text())["state"]["path"]
    with Store(state) as store:  # revisions of a month, as reports make them
        for n in range(REVISIONS):
            inputs = Inputs({"communes": str(n)}, [], f"inputs-{n}")
            RevisionBook(store).freeze(
                "2026-10", "", inputs, {"02473": {"score": float(n)}}, Actor("t", "cli"), 1e9 + n
            )
    done = collector.cli("registry", "import-areas", str(REPO / "config" / "areas.example.csv"))
    assert done.returncode == 0, done.stderr
    collector.start()
    for host in ("pc-1", "pc-2", "pc-3"):
        make_agent(commune="02473", host=host, mqtt={"port": port}).start()
    wait_until(lambda: len(collector.get_json("/api/v1/hosts")) == 3, 60, "three hosts known")
    for n in range(3):
        status, _ = collector.post_json(
            "/api/v1/silences", {"matchers": {"host": f"pc-{n}"}, "duration_s": 600, "author": "test"}
        )
        assert status == 201
    for host in ("pc-1", "pc-2"):
        status, _ = collector.post_json("/api/v1/exclusions", {"commune": "02473", "scope": "host", "target": host,
                                        "from": "2026-11-03", "to": "2026-11-04", "reason": "repair", "note": "sửa",
                                        "by": "test"})  # fmt: skip
        assert status == 201
    document = collector.get_json("/openapi.json")
    arrays = {
        path
        for path, item in document["paths"].items()
        if "get" in item
        and item["get"]["responses"]["200"].get("content", {}).get("application/json", {}).get("schema", {}).get("type")
        == "array"
    }
    assert arrays == {TEMPLATES.get(r, r) for r in LIST_ROUTES}  # a new list route pages too
    sizes = {}
    for route in LIST_ROUTES:
        whole = [identity(item) for item in collector.get_json(f"{route}?limit=1000")]
        assert [identity(item) for item in walk(collector, f"{route}?limit=1")] == whole, route
        if len(whole) > 1:
            status, first, following = get(collector, f"{route}?limit=1")
            assert (status, len(first), bool(following)) == (200, 1, True), route
        sizes[route] = len(whole)
    assert sizes["/api/v1/hosts"] == 3 and sizes["/api/v1/silences"] == 3 and sizes["/api/v1/areas"] > 1
    assert sizes["/api/v1/exclusions"] == 2 and sizes["/api/v1/audit"] >= 5  # areas imported, silences, exclusions
    assert sizes["/api/v1/reports/2026-10/revisions"] == REVISIONS


def identity(item: dict[str, Any]) -> tuple[Any, ...]:
    """What names an item of any list (a host's last_seen changes between two reads, its name does not)."""
    keys = ("id", "code", "circuit_id", "province", "commune", "host", "kind", "device", "revision")
    return tuple(item.get(k) for k in keys)
