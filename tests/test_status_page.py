"""The collector's status page, rendered by a real headless Chromium (Debian's ``chromium``, driven
by Playwright): communes red/amber/green from real agents, problems first, in Vietnamese."""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Browser
from realservices import API_TOKEN, REPO, http_get, wait_until
from stack import Stack

from collector.fleet.state import CommuneStatus
from collector.http.status_page import render

COLOURS = {"red": "rgb(198, 40, 40)", "amber": "rgb(249, 168, 37)", "green": "rgb(46, 125, 50)"}


def test_status_page_shows_communes_red_amber_green_in_a_real_browser(
    own_stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    collector = own_stack.started_collector(fleet={"restart_grace_s": 0, "evaluate_interval_s": 1})
    assert collector.cli("registry", "import", str(REPO / "config/lines.example.csv")).returncode == 0
    assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
    [working] = own_stack.start_agents("02473", ["pc-ok"])
    [cut_off] = own_stack.start_agents("02536", ["pc-cut"])
    wait_until(lambda: len(collector.get_json("/api/v1/hosts")) == 2, 30, "both hosts known")
    cut_off.kill()  # the commune's only PC vanishes: its line is down
    wait_until(lambda: {c["commune"]: c["line_state"] for c in collector.get_json("/api/v1/communes")}.get("02536")
               == "down", 30, "line down")  # fmt: skip

    page = browser.new_page()
    response = page.goto(f"{collector.url}/status")
    assert response is not None and response.status == 200
    assert page.title().startswith("Tình trạng hệ thống: Tuyên Quang")
    assert page.locator("html").get_attribute("lang") == "vi"

    def commune_level(code: str) -> tuple[str, str]:
        row = page.locator(f'tr[data-commune="{code}"]')
        colour = row.locator(".level").evaluate("e => getComputedStyle(e).backgroundColor")
        return str(row.get_attribute("data-level")), str(colour)

    assert commune_level("02536") == ("red", COLOURS["red"])
    assert commune_level("02473") == ("green", COLOURS["green"])
    assert commune_level("00691") == ("amber", COLOURS["amber"])  # a line nobody uses
    assert "Mất kết nối mọi máy mất kết nối" in page.locator('tr[data-commune="02536"]').inner_text()
    assert "Không sử dụng" in page.locator('tr[data-commune="00691"]').inner_text()
    assert page.locator("#count-red").inner_text().endswith("Sự cố: 1 xã")

    levels = page.locator("section").evaluate_all("s => s.map(e => e.dataset.level)")
    order = {"red": 0, "amber": 1, "green": 2}
    assert levels == sorted(levels, key=order.__getitem__), levels  # areas with problems first
    for section in page.locator("section").all():
        rows = section.locator("tr[data-level]").evaluate_all("r => r.map(e => e.dataset.level)")
        assert rows == sorted(rows, key=order.__getitem__), rows
    shot = tmp_path / "status.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 5000
    page.close()
    working.stop()


def test_status_page_needs_a_token_when_not_public(stack: Stack) -> None:
    collector = stack.started_collector(http={"public_status_page": False})
    assert http_get(f"{collector.url}/status")[0] == 401
    status, body = http_get(f"{collector.url}/status", headers={"Authorization": f"Bearer {API_TOKEN}"})
    assert status == 200 and b"<html" in body


def test_reasons_are_vietnamese_and_names_are_escaped() -> None:
    commune = CommuneStatus("08", "KV1", "02473", 2, 2, 0, "degraded", 100.0, 0.0, ("loss 12.0%, rtt 220 ms",),
                            reasons_vi=("mất gói 12.0%, độ trễ 220 ms",))  # fmt: skip
    page = render([commune], {"KV1": "<script>alert(1)</script>"}, 0.0)
    assert "mất gói 12.0%, độ trễ 220 ms" in page and "Kém" in page
    assert "<script>" not in page and "&lt;script&gt;" in page
