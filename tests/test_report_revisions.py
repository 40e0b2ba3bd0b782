"""Frozen months on a real InfluxDB and a real collector: last month backfilled for five communes
of Tuyên Quang (a sixth registered, its history still to come), reported (revision 1); made again
from the same inputs (still revision 1); an exclusion recorded late (revision 2, naming it); the
sixth commune's backlog written (revision 3: its figures new, "late data"). Revision 1 is still
served by the API exactly as it was frozen, every revision has its audit entry, and a month or a
revision that does not exist gets one clear error.
"""

from __future__ import annotations

import html.parser
import json
import re
import subprocess
import sys
import uuid
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from realservices import API_TOKEN, REPO, Collector, Influxd, Mosquitto, free_port, http_get, write_toml

from collector.config import CollectorConfig
from collector.http.auth import digest
from collector.reports.revisions import RevisionBook
from collector.store import Store
from devtools.backfill import backfill, only
from devtools.simulate import make_plan, register

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
DEAD, LATE = "00715", "00829"  # with seed 1: a dead line; a 4G uplink whose history comes late
COMMUNES = ["00694", DEAD, "00817", "00691", LATE, "00832"]
AUTH = {"Authorization": f"Bearer {API_TOKEN}"}


@pytest.fixture(scope="module")
def province(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Six communes registered, five backfilled for 35 days ending a few days into this month."""
    folder = tmp_path_factory.mktemp("revisions")
    sections: dict[str, dict[str, Any]] = {
        "influxdb": {"url": influxd.url, "database": f"t_{uuid.uuid4().hex[:10]}", "raw_retention": "400d"},
        "state": {"path": str(folder / "state.sqlite")},
    }
    config = CollectorConfig(**sections)
    plan = only(make_plan("08", 2, 1, 0.05), COMMUNES)
    register(plan, config)
    now = datetime.now(ZONE)
    this_month = datetime(now.year, now.month, 1, tzinfo=ZONE)
    end = min(now.timestamp(), (this_month + timedelta(days=4)).timestamp())
    assert backfill(config, only(plan, [c for c in COMMUNES if c != LATE]), 35, 600, seed=1, end=end)["points"] > 0
    month = (this_month - timedelta(days=1)).strftime("%Y-%m")
    return {"config": config, "plan": plan, "sections": sections, "folder": folder, "month": month, "end": end}


def cli(province: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = write_toml(province["folder"] / "collector.toml", province["sections"])
    command = [sys.executable, "-m", "collector.cli", *args, "-c", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def api(collector: Collector, path: str) -> tuple[int, Any]:
    status, body = http_get(f"{collector.url}{path}", headers=AUTH, timeout_s=120)  # a loaded machine: take time
    return status, json.loads(body)


def report(collector: Collector, month: str, fmt: str) -> bytes:
    status, body = http_get(f"{collector.url}/api/v1/reports/monthly?month={month}&format={fmt}", headers=AUTH,
                            timeout_s=300)  # fmt: skip
    assert status == 200, body[:500]
    return body


def revision_entries(province: dict[str, Any]) -> list[tuple[str, str, str, dict[str, Any]]]:
    with Store(province["sections"]["state"]["path"]) as store:
        rows = store.query("SELECT actor, origin, object, after FROM audit_log WHERE action = 'report revision' "
                           "ORDER BY id")  # fmt: skip
    return [(a, o, obj, json.loads(after)) for a, o, obj, after in rows]


def test_a_late_exclusion_and_a_late_backlog_make_revisions_and_revision_1_is_still_served(
    province: dict[str, Any], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    month, folder = province["month"], province["folder"]
    sections = {
        **province["sections"],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": f"rev-{uuid.uuid4().hex[:8]}"},
        "http": {"host": "127.0.0.1", "port": free_port(),
                 "tokens": [{"name": "leader-viewer", "role": "viewer", "sha256": digest(API_TOKEN)}]},
    }  # fmt: skip
    collector = Collector(tmp_path / "collector", sections)
    collector.start()
    try:
        # revision 1: the first report of the month, by the command line's user
        done = cli(province, "report", "--month", month, "--format", "html", "--out", str(folder / "r1.html"))
        assert done.returncode == 0, done.stderr
        assert "Bản số 1: chốt lúc" in (folder / "r1.html").read_text()
        status, first = api(collector, f"/api/v1/reports/{month}/revisions/1")
        assert status == 200 and first["revision"] == 1 and first["changes"] == [] and first["why"] == []
        assert set(first["figures"]) == set(COMMUNES) - {LATE}
        assert first["origin"] == "cli"

        # the same inputs: the same revision, whoever asks and in whatever format
        workbook = report(collector, month, "xlsx")
        (folder / "r1.xlsx").write_bytes(workbook)
        sheet = openpyxl.load_workbook(folder / "r1.xlsx")["Bản sửa đổi"]
        assert str(sheet["A2"].value).startswith("Bản số 1: chốt lúc")
        assert [r["revision"] for r in api(collector, f"/api/v1/reports/{month}/revisions")[1]] == [1]
        assert len(revision_entries(province)) == 1

        # an exclusion recorded after the month was frozen: revision 2 names it
        done = cli(province, "exclusion", "add", "--commune", DEAD, "--line", "--from", f"{month}-10", "--to",
                   f"{month}-13", "--reason", "repair", "--note", "cáp quang đứt", "--by", "Trần Văn B")  # fmt: skip
        assert done.returncode == 0, done.stderr
        exclusion = int(done.stdout.strip())
        page = report(collector, month, "html").decode()
        assert "Bản số 2: chốt lúc" in page and "do leader-viewer lập" in page
        assert f"thêm loại trừ số {exclusion} (Xã Lũng Cú, sửa chữa" in page and "do Trần Văn B ghi" in page
        status, second = api(collector, f"/api/v1/reports/{month}/revisions/2")
        assert status == 200 and second["made_by"] == "leader-viewer" and second["origin"] == "127.0.0.1"
        assert [w["cause"] for w in second["why"]] == ["exclusion_added"]
        assert second["why"][0]["exclusion"]["id"] == exclusion and second["why"][0]["exclusion"]["by"] == "Trần Văn B"
        assert [e["id"] for e in second["exclusions"]] == [exclusion]
        moved = {c["figure"]: (c["old"], c["new"]) for c in second["changes"] if c["commune"] == DEAD}
        old, new = moved["line_availability_adjusted"]  # the dead line's excluded days leave its adjusted figure
        assert new > old == first["figures"][DEAD]["line_availability"] and "line_availability" not in moved
        assert f"{old:.1f}".replace(".", ",") in page and f"{new:.1f}".replace(".", ",") in page  # the change list

        # the sixth commune's backlog arrives: revision 3, its figures new, "late data"
        late = only(province["plan"], [LATE])
        assert backfill(province["config"], late, 35, 600, seed=1, end=province["end"])["points"] > 0
        page = report(collector, month, "html").decode()
        assert "Bản số 3: chốt lúc" in page and "dữ liệu đến muộn (trạng thái đường truyền, trạng thái máy" in page
        status, third = api(collector, f"/api/v1/reports/{month}/revisions/3")
        assert status == 200 and [w["cause"] for w in third["why"]] == ["late_data"]
        assert {"communes", "pcs"} <= set(third["why"][0]["parts"])
        assert set(third["figures"]) == set(COMMUNES)
        new = [c for c in third["changes"] if c["commune"] == LATE]
        assert new == [{"commune": LATE, "name": third["figures"][LATE]["name"], "figure": "commune", "old": None,
                        "new": "listed"}]  # fmt: skip
        for change in third["changes"]:  # the others moved only in rank, the new commune taking its place
            assert change["commune"] == LATE or change["figure"] == "rank", change
        for code, figures in third["figures"].items():
            if code != LATE:
                assert {k: v for k, v in figures.items() if k != "rank"} == {
                    k: v for k, v in second["figures"][code].items() if k != "rank"}  # fmt: skip

        # every revision served; revision 1 exactly as it was frozen
        status, listed = api(collector, f"/api/v1/reports/{month}/revisions")
        assert status == 200 and [(r["revision"], r["made_by"]) for r in listed] == [
            (1, first["made_by"]), (2, "leader-viewer"), (3, "leader-viewer")]  # fmt: skip
        assert len({r["inputs"] for r in listed}) == 3
        assert api(collector, f"/api/v1/reports/{month}/revisions/1") == (200, first)
        assert api(collector, f"/api/v1/reports/{month}/revisions?limit=1")[1] == [listed[0]]

        # bad requests: one clear error each
        status, body = api(collector, "/api/v1/reports/2019-01/revisions")
        assert status == 404 and "no report of 2019-01 is frozen" in body["detail"]
        status, body = api(collector, f"/api/v1/reports/{month}/revisions/4")
        assert status == 404 and body["detail"] == f"{month} has no revision 4: its revisions are 1 to 3"
        status, body = api(collector, f"/api/v1/reports/{month}/revisions/0")
        assert status == 422 and "greater than or equal to 1" in json.dumps(body)
        assert api(collector, "/api/v1/reports/2026-13/revisions")[0] == 422
        assert api(collector, f"/api/v1/reports/{month}/revisions/1?area=KV99")[0] == 404
        assert http_get(f"{collector.url}/api/v1/reports/{month}/revisions")[0] == 401
    finally:
        collector.stop()

    # each revision once in the audit log, by who made it, and the chain holds
    entries = revision_entries(province)
    assert [(a, o, obj) for a, o, obj, _ in entries] == [
        (first["made_by"], "cli", f"report_revision:{month}/all/1"),
        ("leader-viewer", "127.0.0.1", f"report_revision:{month}/all/2"),
        ("leader-viewer", "127.0.0.1", f"report_revision:{month}/all/3"),
    ]
    assert entries[1][3]["figures_hash"] == second["figures_hash"] and entries[2][3]["changes"] == third["changes"]
    verified = cli(province, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    with Store(province["sections"]["state"]["path"]) as store:
        assert [r.number for r in RevisionBook(store).revisions(month)] == [1, 2, 3]


# ---- the evidence appendix ----


def sheet_rows(book: openpyxl.Workbook, name: str) -> list[list[Any]]:
    return [list(r) for r in book[name].iter_rows(min_row=4, values_only=True) if r and r[0] is not None]


def test_the_appendix_rows_add_up_to_each_figure_in_the_xlsx_and_the_pdf_has_them_only_on_request(
    province: dict[str, Any],
) -> None:
    month, folder = province["month"], province["folder"]
    paths = {}
    for name, fmt, flags in (("with", "xlsx", []), ("without", "xlsx", ["--no-evidence"]), ("pdf", "pdf", []),
                             ("pdf-evidence", "pdf", ["--evidence"]), ("html", "html", [])):  # fmt: skip
        paths[name] = folder / f"appendix-{name}.{fmt}"
        done = cli(province, "report", "--month", month, "--format", fmt, "--out", str(paths[name]), *flags)
        assert done.returncode == 0, done.stderr
    book = openpyxl.load_workbook(paths["with"])
    appendix = ["BC đường truyền", "BC sự cố", "BC máy", "BC tốc độ", "BC thiết bị"]
    assert book.sheetnames[-6:] == ["Bản sửa đổi", *appendix]
    assert not set(appendix) & set(openpyxl.load_workbook(paths["without"]).sheetnames)
    printed = {str(r[2]): r for r in sheet_rows(book, "Xã") if isinstance(r[0], int)}  # rank, ±, commune, area, ...
    assert len(printed) >= 4

    line: dict[str, list[list[Any]]] = {}
    for row in sheet_rows(book, "BC đường truyền"):
        if isinstance(row[2], int | float):
            line.setdefault(str(row[0]), []).append(row)
    pcs: dict[str, list[list[Any]]] = {}
    for row in sheet_rows(book, "BC máy"):
        if isinstance(row[2], int | float):
            pcs.setdefault(str(row[0]), []).append(row)
    for name, figures in printed.items():
        *rows, total = line[name]
        assert total[1] == "Cộng"
        for column in (2, 3, 4, 5, 6, 7, 8, 10, 11):  # slots, unused, down, excused, no data, counted, up, adjusted
            assert sum(r[column] for r in rows) == pytest.approx(total[column], abs=1e-6), (name, column)
        assert total[12] == round(100 * total[8] / total[7], 1) == figures[4], name  # raw, as printed
        assert total[13] == round(100 * total[11] / total[10], 1) == figures[16], name  # adjusted, as printed
        *machines, together = pcs[name]
        assert together[1] == "Cộng" and sum(m[3] for m in machines) == pytest.approx(together[3])
        assert together[10] == round(100 * together[3] / together[2], 1) == figures[10], name
    speed = {str(r[0]): r for r in sheet_rows(book, "BC tốc độ")}
    assert all(speed[n][2] == f[6] for n, f in printed.items() if f[6] is not None)

    title = "Phụ lục: bằng chứng đường truyền sẵn sàng"
    assert title in " ".join(pdf_words(paths["pdf-evidence"])) and title not in " ".join(pdf_words(paths["pdf"]))
    made_at = re.compile(r"\d\d:\d\d")  # made by separate runs, maybe a minute apart
    printed = Counter(w for w in pdf_words(paths["pdf-evidence"]) if not made_at.fullmatch(w))
    page = Counter(w for w in html_words(paths["html"]) if not made_at.fullmatch(w))
    assert printed == page and title in paths["html"].read_text()  # the PDF on request says what the HTML says


class Text(html.parser.HTMLParser):
    """The words a reader sees in the HTML report (its style, and so its numbers' look, aside)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.skipping = False

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        self.skipping = tag in ("style", "title")

    def handle_endtag(self, tag: str) -> None:
        self.skipping = False

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.words += data.split()


def html_words(path: Path) -> list[str]:
    parser = Text()
    parser.feed(path.read_text())
    return parser.words


def pdf_words(path: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True, check=True)
    return text.stdout.split()
