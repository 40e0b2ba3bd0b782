"""The status page at a nation's size: narrowed to an area and a level, and paged, instead of
3,321 rows at once. Pure tests on the rendering over a built fleet, and one against a real
collector that pages its lines and answers bad filters with one clear error."""

from __future__ import annotations

import csv
import random
import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st
from realservices import http_get, wait_until
from stack import Stack

from collector.fleet.rules import CommuneStatus
from collector.http.status_page import PAGE_ROWS, NoSuchPage, areas, level, render
from collector.registry import units

LINE_STATES = ("up", "up", "up", "degraded", "down", "unused")
ROW = re.compile(r'<tr data-commune="(\d{5})" data-level="(\w+)">')
SECTION = re.compile(r'<section data-area="([^"]+)" data-level="(\w+)">')


def fleet(count: int, seed: int, area_count: int = 7) -> list[CommuneStatus]:
    rng = random.Random(seed)
    communes = sorted(units._communes().values(), key=lambda c: c.code)[:count]
    return [
        CommuneStatus(c.province_code, f"area-{i % area_count}", c.code, 3, rng.choice((1, 3, 3)),
                      rng.choice((0, 0, 1)), rng.choice(LINE_STATES), 100.0, 0.0)
        for i, c in enumerate(communes)
    ]  # fmt: skip


def rows_of(html: str) -> list[tuple[str, str]]:
    return ROW.findall(html)


def every_page(communes: list[CommuneStatus], area: str | None = None, level: str | None = None) -> list[str]:
    pages, page = [], 1
    while True:
        try:
            pages.append(render(communes, {}, 0.0, area=area, level=level, page=page))
        except NoSuchPage:
            return pages
        page += 1


def unpaged_order(communes: list[CommuneStatus]) -> list[tuple[str, str]]:
    return [(r.code, r.level) for a in areas(communes, {}) for r in a.rows]


def test_a_nation_is_paged_and_every_commune_is_on_exactly_one_page_in_the_same_order() -> None:
    communes = fleet(3321, seed=1)
    pages = every_page(communes)
    assert len(pages) == -(-3321 // PAGE_ROWS) == 17
    assert all(len(rows_of(p)) == PAGE_ROWS for p in pages[:-1]) and len(rows_of(pages[-1])) == 3321 % PAGE_ROWS
    assert [row for p in pages for row in rows_of(p)] == unpaged_order(communes)
    first, last = pages[0], pages[-1]
    assert 'rel="next" href="/status?page=2"' in first and 'rel="prev"' not in first
    assert 'rel="prev" href="/status?page=16"' in last and 'rel="next"' not in last
    assert "Trang 1/17: 1–200 trên 3321 xã" in first
    counts = {level: sum(1 for _c, lv in unpaged_order(communes) if lv == level) for level in ("red", "amber")}
    assert f"Sự cố: {counts['red']} xã" in first and f"Sự cố: {counts['red']} xã" in last  # counts: not the page's


def test_an_area_and_a_level_narrow_the_page_and_its_links_keep_them() -> None:
    communes = fleet(3321, seed=2)
    pages = every_page(communes, area="area-3", level="red")
    want = [(code, lv) for code, lv in unpaged_order([c for c in communes if c.area == "area-3"]) if lv == "red"]
    assert 0 < len(want) <= PAGE_ROWS
    assert [row for p in pages for row in rows_of(p)] == want
    assert {area for area, _level in SECTION.findall(pages[0])} == {"area-3"}
    red_of_area3 = sum(1 for c in communes if c.area == "area-3" and level(c) == "red")
    assert f"Sự cố: {red_of_area3} xã" in pages[0]  # counts over the area chosen
    assert 'href="/status?area=area-3&amp;level=amber"' in pages[0]  # each count narrows to its level
    assert '<option value="area-3" selected>' in pages[0] and '<option value="red" selected>' in pages[0]
    greens = every_page(communes, level="green")
    assert len(greens) > 1 and 'href="/status?level=green&amp;page=2"' in greens[0]


def test_no_commune_matching_is_one_empty_page_and_a_page_past_the_last_is_refused() -> None:
    communes = fleet(50, seed=3)
    [page] = every_page(communes, area="nowhere")
    assert rows_of(page) == [] and 'id="none-match"' in page and "Trang 1/1: 0–0 trên 0 xã" in page
    try:
        render(communes, {}, 0.0, page=2)
    except NoSuchPage:
        pass
    else:
        raise AssertionError("page 2 of 50 communes was rendered")


@settings(max_examples=40, deadline=None)
@given(count=st.integers(0, 700), seed=st.integers(0, 10**6), areas_n=st.integers(1, 12),
       level=st.sampled_from([None, "red", "amber", "green"]))  # fmt: skip
def test_pages_cover_the_filtered_list_exactly_once(count: int, seed: int, areas_n: int, level: str | None) -> None:
    communes = fleet(count, seed, areas_n)
    rows = [row for p in every_page(communes, level=level) for row in rows_of(p)]
    assert rows == [(code, lv) for code, lv in unpaged_order(communes) if level is None or lv == level]


def test_a_real_collector_pages_its_communes_and_refuses_bad_filters(own_stack: Stack, tmp_path: Path) -> None:
    # a broker of its own: the session broker's retained statuses of other tests' PCs (02473, 02536
    # of province 08) would make the collector list those communes too
    collector = own_stack.started_collector(fleet={"restart_grace_s": 0, "evaluate_interval_s": 1})
    communes = [c.code for province in ("01", "08") for c in units.communes_of(province)][: PAGE_ROWS + 26]
    lines, areas_csv = tmp_path / "lines.csv", tmp_path / "areas.csv"
    with lines.open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["commune", "isp", "circuit_id", "contracted_down_mbps", "contracted_up_mbps", "installed_on"])
        rows.writerows([c, "VNPT", f"HN-{c}", 100, 100, "2025-08-15"] for c in communes)
    with areas_csv.open("w", newline="") as out:
        rows = csv.writer(out)
        rows.writerow(["area_code", "area_name", "commune"])
        rows.writerows(["north" if n % 2 else "south", "Khu vực Bắc" if n % 2 else "Khu vực Nam", c]
                       for n, c in enumerate(communes))  # fmt: skip
    assert collector.cli("registry", "import", str(lines)).returncode == 0
    assert collector.cli("registry", "import-areas", str(areas_csv)).returncode == 0

    def page(query: str) -> tuple[int, str]:
        status, body = http_get(f"{collector.url}/status{query}")
        return status, body.decode()

    def settled() -> bool:  # every line evaluated, in the areas just imported (read within a second or two)
        return len(rows_of(page("")[1])) == PAGE_ROWS and len(rows_of(page("?area=north")[1])) == len(communes) // 2

    wait_until(settled, 30, "the lines evaluated")
    status, first = page("")
    assert status == 200 and 'rel="next" href="/status?page=2"' in first
    status, second = page("?page=2")
    assert status == 200 and len(rows_of(second)) == 26
    assert sorted(code for p in (first, second) for code, _ in rows_of(p)) == sorted(communes)
    status, north = page("?area=north&level=amber")
    assert status == 200 and len(rows_of(north)) == len(communes) // 2  # unused lines are amber
    assert {area for area, _ in SECTION.findall(north)} == {"north"} and "Khu vực Bắc" in north
    assert rows_of(page("?level=red")[1]) == []
    status, missing = page("?area=north&page=3")
    assert status == 404 and "Không có trang này" in missing and 'href="/status?area=north"' in missing
    assert page("?level=purple")[0] == 422
    assert page("?page=0")[0] == 422
    assert page("?area=no%20spaces")[0] == 422
