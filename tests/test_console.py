"""The web console in a real Chromium (Playwright, Debian's ``chromium``) against a real collector
with real agents behind it and real InfluxDB history: sign-in with an API token (a wrong one
refused), every page rendered at desktop and phone width, an admin acting (acknowledge, silence,
maintenance window, enrolment key) with each change in the audit log under the token's name,
uploads (a bad XLSX shows its row errors and imports nothing, a good one imports after its
confirmation), a viewer who cannot act and a form without its CSRF token refused."""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import ssl
from pathlib import Path

import httpx
from openpyxl import Workbook
from playwright.sync_api import Browser, BrowserContext, Page
from realservices import API_TOKEN, REPO, Collector, Program, wait_until
from stack import Stack
from test_tls import make_ca, make_server_cert

from collector.http.console import ROUTERS as CONSOLE_ROUTERS

DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}
SHOTS = os.environ.get("CONSOLE_SCREENSHOTS")  # a folder: keep the screenshots there (docs/assets is made so)
# The console's forms that change something, each sent above or below and found in the audit log
# (signing in or out and a preview change nothing; the preview's entry is "none").
AUDITED = {
    "/console/alerts/{alert_id}/ack",
    "/console/silences",
    "/console/silences/{silence_id}/end",
    "/console/enroll-keys",
    "/console/enroll-keys/{key_id}/revoke",
    "/console/imports/{pending_id}/confirm",
    "/console/communes/{code}/actions",  # its entry is checked in tests/test_console_actions.py
}


def state_of(collector: Collector) -> Path:
    return Path(collector.config_path).parent.parent / "state.sqlite"


def audit_rows(collector: Collector) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(state_of(collector)) as db:
        return db.execute("SELECT actor, origin, action, object FROM audit_log ORDER BY id").fetchall()


def sign_in(context: BrowserContext, collector: Collector, token: str, path: str = "/console") -> Page:
    page = context.new_page()
    page.goto(f"{collector.url}{path}")
    assert "/console/sign-in" in page.url  # no session: sent to sign in, then back
    page.fill('input[name="token"]', token)
    page.click("#sign-in button")
    page.wait_for_load_state()
    return page


def started(own_stack: Stack) -> Collector:
    """A collector with the example lines and areas and three agents in 02473, one of them killed (an
    open host_offline alert)."""
    collector = own_stack.collector(fleet={"restart_grace_s": 0, "evaluate_interval_s": 1},
                                    alerts={"for_s": {"host_offline": 0}})  # fmt: skip
    assert collector.cli("registry", "import", str(REPO / "config/lines.example.csv")).returncode == 0
    assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
    collector.start()
    *_, gone = own_stack.start_agents("02473", ["pc-1", "pc-2", "pc-gone"])
    wait_until(lambda: len(collector.get_json("/api/v1/hosts")) == 3, 30, "three hosts known")
    gone.kill()
    wait_until(lambda: collector.get_json("/api/v1/alerts?state=firing"), 30, "pc-gone's alert firing")
    wait_until(lambda: own_stack.query("SELECT hosts_online FROM commune WHERE commune = '02473' AND hosts_online = 2"),
               30, "commune points with two PCs online in InfluxDB")  # fmt: skip
    return collector


def shoot(page: Page, name: str, folder: Path) -> None:
    """A full-page screenshot at desktop and at phone width; the page never scrolls sideways on a phone."""
    for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
        page.set_viewport_size(size)
        shot = folder / f"console-{name}-{label}.png"
        page.screenshot(path=str(shot), full_page=True)
        assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 3000
        if label == "phone":
            wide = page.evaluate("document.documentElement.scrollWidth")
            assert wide <= PHONE["width"], f"{name} is {wide} px wide on a {PHONE['width']} px phone"
        if SHOTS:
            Path(SHOTS).mkdir(parents=True, exist_ok=True)
            shutil.copy(shot, Path(SHOTS) / shot.name)
    page.set_viewport_size(DESKTOP)


def test_every_page_renders_and_an_admin_acts_through_the_console(
    own_stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    collector = started(own_stack)
    context = browser.new_context(viewport=DESKTOP)

    page = context.new_page()
    page.goto(f"{collector.url}/console/communes/02473")
    assert "/console/sign-in" in page.url
    page.fill('input[name="token"]', "cmt_not-a-token")
    response_status = []
    page.on("response", lambda r: response_status.append(r.status) if r.url.endswith("/console/sign-in") else None)
    page.click("#sign-in button")
    page.wait_for_load_state()
    assert response_status[-1] == 403
    assert "Mã truy cập không đúng" in page.locator("#sign-in-error").inner_text()
    assert "This API token is not known" in page.content()
    assert not [c for c in context.cookies() if c["name"] == "cm_session"]
    shoot(page, "sign-in", tmp_path)
    page.close()

    page = sign_in(context, collector, API_TOKEN, "/console/communes/02473")
    assert page.url.endswith("/console/communes/02473"), page.url
    [session] = [c for c in context.cookies() if c["name"] == "cm_session"]
    assert session["httpOnly"] and session["sameSite"] == "Strict" and not session["secure"]  # plain HTTP here
    assert page.locator("html").get_attribute("lang") == "vi"
    assert page.locator("#commune").get_attribute("data-commune") == "02473"
    pcs = page.locator("#pcs tr[data-host]").evaluate_all("r => r.map(e => [e.dataset.host, e.dataset.online])")
    assert pcs == [["pc-gone", "no"], ["pc-1", "yes"], ["pc-2", "yes"]]  # the offline PC first
    assert "VNPT" in page.locator("#line").inner_text() and "TQG-FTTH-02473-01" in page.locator("#line").inner_text()
    assert page.locator("#charts figure").count() == 4
    online = page.locator("#charts figure").first
    assert online.locator("polyline").count() == 1  # drawn from the commune points in InfluxDB
    assert online.locator("figcaption").inner_text().startswith("Số máy hoạt động")
    assert page.locator("#alerts tr[data-alert]").count() == 1
    assert page.locator("#actions").count() == 1  # where "test now" goes
    shoot(page, "commune", tmp_path)

    page.fill("#alerts form.ack input[name=comment]", "đang gọi xã")
    page.click("#alerts form.ack button")
    page.wait_for_load_state()
    assert page.url.endswith("/console/communes/02473")
    assert "tests" in page.locator("#alerts .acked").inner_text()
    [acked] = [r for r in audit_rows(collector) if r[2].startswith("POST /console/alerts/")]
    assert acked[:2] == ("tests", "127.0.0.1") and acked[3].startswith("alert_ack:")

    page.click("#lang-switch")
    page.wait_for_load_state()
    assert page.locator("html").get_attribute("lang") == "en" and "PCs online" in page.content()
    page.goto(f"{collector.url}/console")
    assert page.locator("html").get_attribute("lang") == "en"  # the choice is remembered
    page.goto(f"{collector.url}/console?lang=vi")
    assert page.locator('tr[data-commune="02473"]').count() == 1
    assert page.locator('section[data-area="yen-son"]').count() == 1
    shoot(page, "fleet", tmp_path)
    page.fill('input[name="q"]', "sơn dương")
    page.click("#filter button")
    page.wait_for_load_state()
    assert page.locator("tr[data-commune]").evaluate_all("r => r.map(e => e.dataset.commune)") == ["02536"]
    page.goto(f"{collector.url}/console?area=yen-son")
    assert page.locator("section[data-area]").evaluate_all("s => s.map(e => e.dataset.area)") == ["yen-son"]
    assert page.locator("select[name=area]").input_value() == "yen-son" and page.locator("#pager").count() == 0

    page.goto(f"{collector.url}/console/alerts")
    assert "tests" in page.locator("tr[data-alert]", has_text="pc-gone").inner_text()  # acknowledged above
    shoot(page, "alerts", tmp_path)

    page.goto(f"{collector.url}/console/silences")
    form = page.locator("#new-silence")
    form.locator("input[name=commune]").fill("02473")
    form.locator("input[name=hours]").fill("2")
    form.locator("input[name=comment]").fill("thay dây mạng")
    form.locator("button").click()
    page.wait_for_load_state()
    window = page.locator("#new-window")
    window.locator("select[name=area]").select_option("son-duong")
    window.locator("button").click()
    page.wait_for_load_state()
    rows = page.locator("tr[data-silence]")
    assert rows.evaluate_all("r => r.map(e => e.dataset.inForce)") == ["yes", "no"]  # now, and tomorrow's window
    silences = collector.get_json("/api/v1/silences")
    assert [s["matchers"] for s in silences] == [{"commune": "02473"}, {"area": "son-duong"}]
    assert silences[0]["author"] == "tests" and 7100 < silences[0]["ends_at"] - silences[0]["starts_at"] <= 7200
    shoot(page, "silences", tmp_path)
    rows.first.locator("button").click()
    page.wait_for_load_state()
    assert page.locator("tr[data-silence]").count() == 1  # ended: no longer in force
    actions = [r[2] for r in audit_rows(collector)]
    assert actions.count("POST /console/silences") == 2 and "POST /console/silences/1/end" in actions

    page.goto(f"{collector.url}/console/enroll-keys")
    page.locator("#new-key-form select[name=area]").select_option("yen-son")
    page.locator("#new-key-form input[name=max_hosts]").fill("5")
    page.locator("#new-key-form button").click()
    page.wait_for_load_state()
    key = page.locator("#new-key code").inner_text()
    assert key.startswith("cek_")
    assert page.locator('tr[data-key="1"]').get_attribute("data-state") == "valid"
    assert "0 / 5" in page.locator('tr[data-key="1"]').inner_text()
    shoot(page, "enroll-keys", tmp_path)
    page.goto(f"{collector.url}/console/enroll-keys")
    assert key not in page.content()  # shown once
    page.locator('tr[data-key="1"] button').click()
    page.wait_for_load_state()
    assert page.locator('tr[data-key="1"]').get_attribute("data-state") == "revoked"
    objects = [r[3] for r in audit_rows(collector)]
    by_console = [r for r in audit_rows(collector) if r[2].startswith("POST /console/")]
    assert objects.count("enroll_key:1") == 2 and {r[:2] for r in by_console} == {("tests", "127.0.0.1")}

    forms = {r.path for router in CONSOLE_ROUTERS for r in router.routes if "POST" in getattr(r, "methods", ())}
    assert forms == AUDITED | {"/console/sign-in", "/console/sign-out", "/console/imports"}, "a new form: audit it here"

    page.goto(f"{collector.url}/console/imports")
    shoot(page, "imports", tmp_path)
    page.click("#sign-out")
    page.wait_for_load_state()
    assert "/console/sign-in" in page.url
    page.goto(f"{collector.url}/console")
    assert "/console/sign-in" in page.url  # the session is gone
    context.close()


def sheet(path: Path, rows: list[list[object]]) -> Path:
    book = Workbook()
    for row in rows:
        book.active.append(row)  # type: ignore[union-attr]
    book.save(path)
    return path


LINE_HEADER = ["commune", "isp", "circuit_id", "contracted_down_mbps", "contracted_up_mbps", "installed_on"]


def test_a_bad_xlsx_shows_its_row_errors_and_imports_nothing_and_a_good_one_imports(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    collector = stack.started_collector()
    bad = sheet(tmp_path / "duong-truyen-sai.xlsx", [
        LINE_HEADER,
        [2473, "VNPT", "TQG-NEW-1", 100, 100, "2025-08-15"],
        [99999, "VNPT", "TQG-NEW-2", 100, 100, "2025-08-15"],  # no such commune
        ["02536", "Viettel", "TQG-NEW-3", "nhanh", 50, "2025-08-15"],  # a speed that is not a number
    ])  # fmt: skip
    import datetime as dt

    good = sheet(tmp_path / "duong-truyen.xlsx", [
        LINE_HEADER,
        [2473, "VNPT", "TQG-NEW-1", 100, 100, dt.datetime(2025, 8, 15)],  # a date cell, as Excel keeps it
        ["02536", "Viettel", "TQG-NEW-3", 80.0, 40, None],
    ])  # fmt: skip
    context = browser.new_context(viewport=DESKTOP)
    page = sign_in(context, collector, API_TOKEN, "/console/imports")
    page.select_option("#upload select[name=kind]", "lines")
    page.set_input_files("#upload input[type=file]", str(bad))
    page.click("#upload button")
    page.wait_for_load_state()
    problems = page.locator("#problems li.problem").all_inner_texts()
    assert problems == [  # the rows as the spreadsheet numbers them, in the page's language
        "dòng 3: mã xã '99999' không phải mã xã/phường chính thức",
        "dòng 4: contracted_down_mbps = 'nhanh' phải là số Mb/s lớn hơn 0",
    ], problems
    assert "chưa nhập gì" in page.locator("#problems").inner_text()
    assert page.locator("#confirm").count() == 0
    assert collector.get_json("/api/v1/lines") == []  # nothing imported, not even the good row
    shoot(page, "upload-errors", tmp_path)

    page.select_option("#upload select[name=kind]", "lines")
    page.set_input_files("#upload input[type=file]", str(good))
    page.click("#upload button")
    page.wait_for_load_state()
    assert "2 dòng sẵn sàng" in page.locator("#preview").inner_text()
    preview = page.locator("#preview-rows tbody tr").all_inner_texts()
    assert [row.split("\t") for row in preview] == [["02473", "VNPT", "TQG-NEW-1", "100", "100", "2025-08-15"],
                                                     ["02536", "Viettel", "TQG-NEW-3", "80", "40", ""]]  # fmt: skip
    assert collector.get_json("/api/v1/lines") == []  # a preview stores nothing
    confirm = f"{collector.url}{page.locator('#confirm').get_attribute('action')}"
    csrf = str(page.locator('#confirm input[name="csrf"]').get_attribute("value"))
    page.click("#confirm button")
    page.wait_for_load_state()
    assert "Đã nhập 2 dòng" in page.locator("#imported").inner_text()
    lines = {line["circuit_id"]: line for line in collector.get_json("/api/v1/lines")}
    assert set(lines) == {"TQG-NEW-1", "TQG-NEW-3"}
    assert lines["TQG-NEW-1"]["install_date"] == "2025-08-15" and lines["TQG-NEW-3"]["contracted_down_mbps"] == 80.0
    assert [r[3] for r in audit_rows(collector) if r[2].endswith("/confirm")] == ["line:TQG-NEW-1", "line:TQG-NEW-3"]
    audited = len(audit_rows(collector))
    again = page.request.post(confirm, form={"csrf": csrf})  # the same confirmation again: the preview is used up
    assert again.status == 404 and "Bản xem trước này không còn" in again.text()
    assert len(collector.get_json("/api/v1/lines")) == 2 and len(audit_rows(collector)) == audited

    equipment = tmp_path / "thiet-bi.csv"
    rows = "commune,kind,model,serial,holder,issued_on\n02473,token,Feitian ePass2003,A1,Chủ tịch UBND xã,2025-08-01\n"
    equipment.write_text(rows, encoding="utf-8")
    page.goto(f"{collector.url}/console/imports")
    page.select_option("#upload select[name=kind]", "equipment")
    page.set_input_files("#upload input[type=file]", str(equipment))
    page.click("#upload button")
    page.wait_for_load_state()
    page.click("#confirm button")
    page.wait_for_load_state()
    wait_until(lambda: [i["serial"] for i in collector.get_json("/api/v1/equipment?commune=02473")] == ["A1"], 30,
               "the uploaded equipment in the fleet")  # fmt: skip
    context.close()


def test_a_viewer_cannot_act_and_a_form_without_its_csrf_token_is_refused(
    stack: Stack, browser: Browser, tmp_path: Path
) -> None:
    collector = stack.started_collector()
    assert collector.cli("registry", "import", str(REPO / "config/lines.example.csv")).returncode == 0
    assert collector.cli("registry", "import-areas", str(REPO / "config/areas.example.csv")).returncode == 0
    scoped = collector.cli("token", "add", "--name", "xa", "--role", "viewer", "--commune", "02473").stdout.strip()
    context = browser.new_context(viewport=DESKTOP)
    page = sign_in(context, collector, scoped)
    wait_until(lambda: page.reload() and page.locator("tr[data-commune]").count() > 0, 30, "communes evaluated")
    assert page.locator("tr[data-commune]").evaluate_all("r => r.map(e => e.dataset.commune)") == ["02473"]
    page.goto(f"{collector.url}/console/communes/02536")  # another commune: as if it did not exist
    assert "02536" in page.locator("#refusal").inner_text()
    assert page.goto(f"{collector.url}/console/communes/02473").status == 200  # type: ignore[union-attr]
    for commune in ("02473", "02536"):
        made = collector.post_json("/api/v1/silences", {"matchers": {"commune": commune}, "duration_s": 600,
                                                        "author": "A"})  # fmt: skip
        assert made[0] == 201, made
    page.goto(f"{collector.url}/console/silences")
    assert page.locator("tr[data-silence]").all_inner_texts()[0].startswith("commune=02473")
    assert page.locator("tr[data-silence]").count() == 1  # not 02536's
    for silence in collector.get_json("/api/v1/silences"):
        assert collector.send_json("DELETE", f"/api/v1/silences/{silence['id']}")[0] == 200
    context.close()

    viewer = collector.cli("token", "add", "--name", "xem", "--role", "viewer").stdout.strip()
    context = browser.new_context(viewport=DESKTOP)
    page = sign_in(context, collector, viewer, "/console/silences")
    assert page.locator("#viewer-note").count() == 1 and page.locator("#new-silence").count() == 0
    page.goto(f"{collector.url}/console/imports")
    assert page.locator("#upload").count() == 0
    page.goto(f"{collector.url}/console/enroll-keys")
    assert page.locator("#new-key-form").count() == 0
    csrf = page.locator('header input[name="csrf"]').get_attribute("value")
    answer = page.request.post(f"{collector.url}/console/silences",
                               form={"csrf": str(csrf), "commune": "02473", "hours": "2"})  # fmt: skip
    assert answer.status == 403 and "chỉ được xem" in answer.text() and "may only view" in answer.text()
    assert collector.get_json("/api/v1/silences") == []
    before = len(audit_rows(collector))
    context.close()

    context = browser.new_context(viewport=DESKTOP)
    page = sign_in(context, collector, API_TOKEN, "/console/silences")
    answer = page.request.post(f"{collector.url}/console/silences", form={"commune": "02473", "hours": "2"})
    assert answer.status == 403 and "CSRF" in answer.text() and "nothing was changed" in answer.text()
    answer = page.request.post(f"{collector.url}/console/silences",
                               form={"csrf": "a-guess", "commune": "02473", "hours": "2"})  # fmt: skip
    assert answer.status == 403
    page.goto(f"{collector.url}/console/silences")
    csrf = page.locator('#new-silence input[name="csrf"]').get_attribute("value")
    for form, said in (({"commune": "02473", "hours": "5000"}, "2160"),  # past 90 days (the browser stops it too)
                       ({"commune": "2473", "hours": "2"}, "ít nhất một"),  # not a commune code
                       ({"hours": "2"}, "at least one"),  # silences everything: refused
                       ({"kind": "window", "area": "yen-son", "start": "2026-12-24 08:00", "end": "2026-12-24 07:00"},
                        "kết thúc sau bắt đầu")):  # fmt: skip
        answer = page.request.post(f"{collector.url}/console/silences", form={"csrf": str(csrf), **form})
        assert answer.status == 400 and said in answer.text(), (form, answer.status)
    page.goto(f"{collector.url}/console/communes/99999")
    assert "99999" in page.locator("#refusal").inner_text()
    assert collector.get_json("/api/v1/silences") == [] and len(audit_rows(collector)) == before
    context.close()

    signed_out = browser.new_context()
    answer = signed_out.request.post(f"{collector.url}/console/silences", form={"commune": "02473", "hours": "2"})
    assert answer.status == 401 and "Sign in again" in answer.text()
    signed_out.close()


def test_over_https_the_session_cookie_is_secure_httponly_and_strict(stack: Stack, tmp_path: Path) -> None:
    certs = tmp_path / "certs"
    certs.mkdir()
    make_ca(certs, "province-ca")
    make_server_cert(certs, "province-ca")
    collector = stack.collector(http={"tls_cert_file": str(certs / "server.crt"),
                                      "tls_key_file": str(certs / "server.key")})  # fmt: skip
    Program.start(collector)  # Collector.start polls plain HTTP
    trusting = ssl.create_default_context(cafile=str(certs / "province-ca.crt"))
    base = f"https://127.0.0.1:{collector.http_port}"
    with httpx.Client(base_url=base, verify=trusting, timeout=10) as client:
        wait_until(lambda: https_answers(client) or not collector.running(), 30, "collector on HTTPS")
        form = client.get("/console/sign-in")
        nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert nonce is not None and "secure" in form.headers["set-cookie"].lower()
        answer = client.post("/console/sign-in", data={"csrf": nonce.group(1), "token": API_TOKEN, "next": "/console"})
        assert answer.status_code == 303 and answer.headers["location"] == "/console"
        [session] = [c for c in answer.headers.get_list("set-cookie") if c.startswith("cm_session=")]
        attributes = {part.strip().split("=")[0].lower(): part for part in session.split(";")[1:]}
        assert {"secure", "httponly", "samesite", "path"} <= set(attributes), session
        assert attributes["samesite"].strip().lower() == "samesite=strict"
        assert client.get("/console").status_code == 200  # the secure cookie goes back over HTTPS


def https_answers(client: httpx.Client) -> bool:
    try:
        return client.get("/healthz").status_code in (200, 503)
    except httpx.HTTPError:
        return False


def test_ten_wrong_tokens_from_one_address_hold_its_sign_in_back(stack: Stack) -> None:
    collector = stack.started_collector()
    with httpx.Client(base_url=collector.url, timeout=10) as client:

        def attempt(token: str) -> httpx.Response:
            nonce = re.search(r'name="csrf" value="([^"]+)"', client.get("/console/sign-in").text)
            assert nonce is not None
            return client.post("/console/sign-in", data={"csrf": nonce.group(1), "token": token, "next": "/console"})

        page = client.get("/console/sign-in")
        assert page.headers["cache-control"] == "no-store" and page.headers["x-frame-options"] == "DENY"
        assert "script-src 'self';" in page.headers["content-security-policy"]  # files it serves, nothing inline
        assert [attempt(f"cmt_guess-{n}").status_code for n in range(10)] == [403] * 10
        held = attempt(API_TOKEN)  # even the right token waits: the address has used its tries
        assert held.status_code == 429 and "thử lại sau" in held.text and "try again in" in held.text
        assert "cm_session" not in client.cookies
