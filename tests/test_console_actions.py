""" "Test now" in the web console, in a real Chromium (Playwright) against a real collector, a real agent,
Mosquitto and InfluxDB: an admin presses a PC's speed-test button on its commune's page and the
request's page (reloading itself) shows the figure the agent measured; the request is audited under
the token's name; a viewer sees no button, and a button's form without its CSRF token is refused
with nothing sent."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from playwright.sync_api import Browser
from realservices import API_TOKEN, REPO, Collector, wait_until
from stack import Stack

from collector.store import Store

pytestmark = pytest.mark.services

DESKTOP = {"width": 1366, "height": 900}
SMALL_AGENT = {"download_sides": [350, 500], "download_count": 1, "upload_sizes": 2, "upload_count": 2, "threads": 2}


def state_of(collector: Collector) -> Path:
    return Path(collector.config_path).parent.parent / "state.sqlite"


def requests_made(collector: Collector) -> int:
    with Store(state_of(collector)) as store:
        return int(store.query("SELECT count(*) FROM action_requests")[0][0])


def test_a_speed_test_pressed_in_the_console_returns_a_figure_from_a_real_agent(
    own_stack: Stack, browser: Browser
) -> None:
    collector = own_stack.collector(fleet={"evaluate_interval_s": 1})
    assert collector.cli("registry", "import", str(REPO / "config/lines.example.csv")).returncode == 0
    collector.start()
    agent = own_stack.agent(host="pc-desk", speedtest={"modes": ["wan"], "wan_url": collector.url, **SMALL_AGENT})
    agent.start()
    wait_until(lambda: "connected" in agent.log() and collector.get_json("/api/v1/hosts"), 30, "agent known")

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{collector.url}/console/communes/02473")
    page.fill('input[name="token"]', API_TOKEN)
    page.click("#sign-in button")
    page.wait_for_load_state()
    wait_until(lambda: bool(page.reload()) and page.locator("#test-now").count() == 1, 30, "the commune's page")
    form = page.locator('form.test-now[data-host="pc-desk"]')
    assert form.locator("button").count() == 4  # the catalogue, nothing else
    form.locator('button[value="speedtest_now"]').click()
    page.wait_for_load_state()
    assert "/console/communes/02473/actions/" in page.url, page.url
    assert page.locator("#action").count() == 1, page.content()[-3000:]
    wait_until(
        lambda: page.locator("#action").get_attribute("data-state") not in ("pending", "accepted"),
        90,
        f"the result on the page\n{agent.log()}",
        interval_s=1,
    )  # the page reloads itself every 2 s while it waits
    assert page.locator("#action").get_attribute("data-state") == "done", page.content()
    figure = page.locator("#speedtest-result td.download").inner_text()
    assert figure.endswith("Mb/s") and float(figure.split()[0]) > 1, figure
    request_id = page.locator("#action").get_attribute("data-request")
    page.goto(f"{collector.url}/console/communes/02473")
    assert page.locator("#recent-actions tr[data-state=done]").count() == 1
    with sqlite3.connect(state_of(collector)) as db:
        entries = db.execute("SELECT actor, action, object FROM audit_log").fetchall()
    assert ("tests", "POST /console/communes/02473/actions", f"action_request:{request_id}") in entries, entries

    csrf = form.locator('input[name="csrf"]').get_attribute("value")
    assert csrf
    before = requests_made(collector)
    refused = page.request.post(f"{collector.url}/console/communes/02473/actions",
                                form={"host": "pc-desk", "action": "speedtest_now"})  # fmt: skip
    assert refused.status == 403 and "CSRF" in refused.text()
    unknown = page.request.post(f"{collector.url}/console/communes/02473/actions",
                                form={"csrf": csrf, "host": "pc-desk", "action": "reboot"})  # fmt: skip
    assert unknown.status == 400 and "reboot" in unknown.text()
    nobody = page.request.post(f"{collector.url}/console/communes/02473/actions",
                               form={"csrf": csrf, "host": "pc-nobody", "action": "probe_now"})  # fmt: skip
    assert nobody.status == 404 and "pc-nobody" in nobody.text()
    assert requests_made(collector) == before  # nothing sent
    context.close()

    viewer = collector.cli("token", "add", "--name", "xem", "--role", "viewer").stdout.strip()
    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    page.goto(f"{collector.url}/console/communes/02473")
    page.fill('input[name="token"]', viewer)
    page.click("#sign-in button")
    page.wait_for_load_state()
    assert page.locator("#test-now").count() == 1 and page.locator("form.test-now").count() == 0
    page.goto(f"{collector.url}/console/communes/02473/actions/{request_id}")  # a viewer reads the result
    assert page.locator("#action").get_attribute("data-state") == "done"
    context.close()
    assert "Traceback" not in collector.log() + agent.log()
