"""The monthly scorecard, end to end on a real InfluxDB: a small province backfilled for 35 days
(6 communes of Tuyên Quang, 2 PCs each, a report every 600 s: the figures are shares of office
time, so a coarser interval than the agents' 30 s changes none of them and keeps this test short),
then last month's report through ``commune-collector report`` in every format.

Every figure of three communes (healthy, dead line, unused) is checked against InfluxQL over the
raw points, computed here without the report's code; the PDF's text against the HTML's; the
XLSX's numbers against the HTML's (and so the PDF's); the monthly e-mail against a real SMTP
server across a restart; and each bad request gets one line and exit status 2.
"""

from __future__ import annotations

import email
import email.policy
import html.parser
import re
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from aiosmtpd.controller import Controller
from realservices import API_TOKEN, REPO, Collector, Influxd, Mosquitto, free_port, http_get, wait_until, write_toml

from collector.config import CollectorConfig
from collector.http.auth import digest
from collector.ingest.influx import InfluxClient
from collector.registry.registry import Registry
from collector.registry.units import display_name
from collector.reports.build import ReportError, build
from collector.reports.mail import due_month
from collector.reports.make import keep
from collector.reports.windows import WindowSums
from collector.store import Store
from collector.vocabulary import PERIPHERAL_KINDS
from devtools.backfill import backfill, only
from devtools.simulate import make_plan, register

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
OFFICE = ((7 * 60 + 30, 11 * 60 + 30), (13 * 60 + 30, 17 * 60))  # the default [report] office_hours
HEALTHY, DEAD, UNUSED = "00694", "00715", "00817"  # with seed 1: no fault, dead_line, no_agent
COMMUNES = [HEALTHY, DEAD, UNUSED, "00691", "00829", "00832"]  # and a degraded PC, a 4G uplink, a PC gone
NAMES = {code: display_name(code) for code in COMMUNES}  # Phường Hà Giang 1, Xã Lũng Cú, Xã Niêm Sơn...


@pytest.fixture(scope="module")
def province(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The small province backfilled once for every test here; ends a few days into this month so
    that last month is covered whole whatever day the test runs."""
    folder = tmp_path_factory.mktemp("report")
    database = f"t_{uuid.uuid4().hex[:10]}"
    sections: dict[str, dict[str, Any]] = {
        "influxdb": {"url": influxd.url, "database": database, "raw_retention": "400d"},
        "state": {"path": str(folder / "state.sqlite")},
    }
    config = CollectorConfig(**sections)
    plan = only(make_plan("08", 2, 1, 0.05), COMMUNES)
    assert plan.faults["dead_line"] == [DEAD] and plan.faults["no_agent"] == [UNUSED]
    register(plan, config)
    now = datetime.now(ZONE)
    this_month = datetime(now.year, now.month, 1, tzinfo=ZONE)
    end = min(now.timestamp(), (this_month + timedelta(days=4)).timestamp())
    result = backfill(config, plan, 35, 600, seed=1, end=end)
    assert result["points"] > 0
    last = (this_month - timedelta(days=1)).strftime("%Y-%m")
    return {"config": config, "sections": sections, "folder": folder, "database": database, "month": last,
            "start": result["start"], "end": int(end)}  # fmt: skip


def cli(province: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = write_toml(province["folder"] / "collector.toml", province["sections"])
    command = [sys.executable, "-m", "collector.cli", *args, "-c", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.fixture(scope="module")
def documents(province: dict[str, Any]) -> dict[str, Path]:
    out = {}
    for fmt in ("pdf", "xlsx", "html"):
        path = province["folder"] / f"report.{fmt}"
        result = cli(province, "report", "--month", province["month"], "--format", fmt, "--out", str(path))
        assert result.returncode == 0, result.stderr
        out[fmt] = path
    return out


# ---- the figures, independently from the raw points ----


def office_windows(month: str) -> list[tuple[date, int, int]]:
    year, number = (int(x) for x in month.split("-"))
    day = date(year, number, 1)
    out = []
    while day.month == number:
        if day.weekday() < 5:
            for a, b in OFFICE:
                midnight = datetime(day.year, day.month, day.day, tzinfo=ZONE)
                out.append((day, int((midnight + timedelta(minutes=a)).timestamp()),
                            int((midnight + timedelta(minutes=b)).timestamp())))  # fmt: skip
        day += timedelta(days=1)
    return out


def month_bounds(month: str) -> tuple[int, int]:
    year, number = (int(x) for x in month.split("-"))
    start = datetime(year, number, 1, tzinfo=ZONE)
    after = datetime(year + number // 12, number % 12 + 1, 1, tzinfo=ZONE)
    return int(start.timestamp()), int(after.timestamp())


def expected(influxd: Influxd, database: str, month: str, commune: str) -> dict[str, Any]:
    """A commune's figures from the raw points, by their definitions in docs/en/monthly-report.md."""
    start, end = month_bounds(month)
    windows = office_windows(month)
    where = f"\"commune\" = '{commune}' AND time >= {start}s AND time < {end}s"
    states = [
        (r["time"], r["line_state"])
        for r in influxd.query(f'SELECT "line_state" FROM "raw"."commune" WHERE {where}', database)
    ]
    hosts = influxd.query(
        f'SELECT "online", "degraded" FROM "raw"."agent" WHERE {where} AND "online" >= 0 GROUP BY "host"', database
    )
    speeds = influxd.query(
        f'SELECT median("download_percent_of_contract") FROM "raw"."speedtest" WHERE {where}', database
    )
    fired = influxd.query(
        f'SELECT "firing" FROM "raw"."alert" WHERE "commune" = \'{commune}\' AND time < {end}s', database
    )

    in_use = down = 0
    down_s = 0.0
    per_day: dict[date, list[int]] = defaultdict(lambda: [0, 0])  # points, unused points
    for day, a, b in windows:
        inside = [s for t, s in states if a <= t < b]
        if not inside:
            continue
        down += sum(1 for s in inside if s == "down")
        in_use += sum(1 for s in inside if s != "unused")
        down_s += (b - a) * sum(1 for s in inside if s == "down") / len(inside)
        per_day[day][0] += len(inside)
        per_day[day][1] += sum(1 for s in inside if s == "unused")
    office_days = len(per_day)
    unused_days = sum(1 for n, u in per_day.values() if u >= n / 2)

    online_points = total_points = 0
    by_host: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in hosts:
        if any(a <= row["time"] < b for _d, a, b in windows):
            by_host[row["host"]].append(row)
    for rows in by_host.values():
        online_points += sum(1 for r in rows if r["online"] == 1)
        total_points += len(rows)
    degraded = 0
    for rows in by_host.values():
        days: dict[date, list[int]] = defaultdict(lambda: [0, 0])
        for r in rows:
            d = datetime.fromtimestamp(r["time"], ZONE).date()
            days[d][0] += 1
            days[d][1] += int(r["degraded"] == 1)
        degraded += any(k >= n / 2 for n, k in days.values())

    alerts_fired = sum(1 for r in fired if r["firing"] == 1 and start <= r["time"] < end)
    alert_s = 0
    for r in fired:
        if r["firing"] == 1:  # the backfill's alerts stay open to the end of the range: to the second
            alert_s += sum(max(0, b - max(a, r["time"])) for _d, a, b in windows)

    line = round(100 * (in_use - down) / in_use, 1) if in_use else None
    speed = round(speeds[0]["median"], 1) if speeds else None
    pcs = round(100 * online_points / total_points, 1) if total_points else None
    used = 100 * (1 - unused_days / office_days) if office_days else 0.0
    score = round(0.4 * (line or 0) + 0.2 * min(100.0, speed or 0) + 0.2 * (pcs or 0) + 0.2 * used, 1)
    return {
        "line": line, "down_hours": round(down_s / 3600, 1), "speed": speed, "unused_days": unused_days,
        "pcs_online": sum(1 for rows in by_host.values() if any(r["online"] == 1 for r in rows)),
        "pcs_total": len(by_host), "pcs": pcs, "degraded": degraded, "alerts": alerts_fired,
        "alert_hours": round(alert_s / 3600, 1), "score": score,
    }  # fmt: skip


def test_backfill_writes_what_dashboards_and_report_read_with_pcs_off_at_night_and_weekends(
    province: dict[str, Any], influxd: Influxd
) -> None:
    database = province["database"]
    for measurement in (
        "system",
        "disk",
        "net",
        "sensors",
        "probe",
        "speedtest",
        "inventory",
        "agent",
        "commune",
        "alert",
    ):
        rows = influxd.query(f'SELECT count(*) FROM "raw"."{measurement}"', database)
        assert rows and any(v for k, v in rows[0].items() if k.startswith("count_")), measurement
    for measurement in ("system", "commune", "agent", "speedtest"):
        assert influxd.query(f'SELECT count(*) FROM "rollup_5m"."{measurement}"', database), measurement
    reports = [r["time"] for r in influxd.query('SELECT "cpu_percent" FROM "raw"."system"', database)]
    local = [datetime.fromtimestamp(t, ZONE) for t in reports]
    assert local and all(t.weekday() < 5 and 7 <= t.hour < 18 for t in local)  # offices switch PCs off
    end = province["end"]
    status = influxd.query(
        f'SELECT count("online") FROM "raw"."agent" WHERE time >= {end - 20 * 86400}s AND time < {end}s '
        "GROUP BY time(1d)",
        database,
    )
    assert len(status) >= 20 and all(r["count"] for r in status[1:-1])  # the collector's points: day and night


def commune_rows(path: Path) -> dict[str, list[Any]]:
    book = openpyxl.load_workbook(path)
    sheet = book["Xã"]
    rows = list(sheet.iter_rows(values_only=True))
    return {str(r[2]): list(r) for r in rows[3:] if r and r[2]}


def test_figures_of_a_healthy_a_dead_and_an_unused_commune_match_influxql_over_raw_points(
    province: dict[str, Any], documents: dict[str, Path], influxd: Influxd
) -> None:
    rows = commune_rows(documents["xlsx"])
    assert len(rows) == len(COMMUNES) - 1 and NAMES[UNUSED] not in rows  # no agent: no data, not ranked
    apart = list(openpyxl.load_workbook(documents["xlsx"])["Không có số liệu"].iter_rows(min_row=4, values_only=True))
    assert [(r[0], r[2]) for r in apart] == [(NAMES[UNUSED], "chưa từng có phần mềm giám sát gửi số liệu")]
    for code in (HEALTHY, DEAD):
        want = expected(influxd, province["database"], province["month"], code)
        row = rows[NAMES[code]]
        got = {"line": row[4], "down_hours": row[5], "speed": row[6], "unused_days": row[7], "pcs_online": row[8],
               "pcs_total": row[9], "pcs": row[10], "degraded": len([x for x in (row[11] or "").split(";") if x]),
               "alerts": row[12], "alert_hours": row[13], "score": row[14]}  # fmt: skip
        assert got == want, code
    dead, healthy, unused = (
        expected(influxd, province["database"], province["month"], c) for c in (DEAD, HEALTHY, UNUSED)
    )
    assert dead["down_hours"] > 0 and dead["line"] is not None and dead["line"] < 100  # the faults show
    assert healthy["line"] == 100.0 and healthy["down_hours"] == 0
    assert unused["line"] is None and unused["unused_days"] > 0 and unused["pcs_total"] == 0
    ranks = {name: row[0] for name, row in rows.items()}
    assert sorted(ranks.values()) == list(range(1, len(COMMUNES)))
    assert ranks[NAMES[HEALTHY]] < ranks[NAMES[DEAD]]


def equipment_said(influxd: Influxd, database: str, month: str, commune: str = "") -> dict[str, tuple[int, int]]:
    """Per kind, issued and in use as the last raw ``equipment`` point of the month said (summed
    over communes unless one is named)."""
    start, end = month_bounds(month)
    where = f"time >= {start}s AND time < {end}s" + (f" AND \"commune\" = '{commune}'" if commune else "")
    rows = influxd.query(f'SELECT last("issued") AS i, last("seen") AS s FROM "raw"."equipment" WHERE {where} '
                         'GROUP BY "commune", "kind"', database)  # fmt: skip
    out: dict[str, tuple[int, int]] = {}
    for r in rows:
        issued, seen = out.get(r["kind"], (0, 0))
        out[r["kind"]] = (issued + int(r["i"]), seen + int(r["s"]))
    return out


def has_office_hours(influxd: Influxd, database: str, month: str) -> bool:
    """Whether a month has a report: some commune point inside its office hours. A month without
    one (the history began on its last Saturday, or after its last office hour) has no report, so
    the next month's changes are empty rather than against a month nobody was shown."""
    start, end = month_bounds(month)
    rows = influxd.query(f'SELECT "line_state" FROM "raw"."commune" WHERE time >= {start}s AND time < {end}s', database)
    windows = office_windows(month)
    return any(a <= r["time"] < b for r in rows for _d, a, b in windows)


def equipment_judged(influxd: Influxd, database: str, month: str, commune: str) -> dict[str, tuple[int, int]]:
    """Per kind, the items plugged in but never opened and those judged by PC/SC, as the commune's
    last raw ``equipment`` point of the month said."""
    start, end = month_bounds(month)
    rows = influxd.query(f'SELECT last("plugged_idle") AS p, last("judged_pcsc") AS j FROM "raw"."equipment" '
                         f"WHERE time >= {start}s AND time < {end}s AND \"commune\" = '{commune}' "
                         'GROUP BY "kind"', database)  # fmt: skip
    return {r["kind"]: (int(r["p"] or 0), int(r["j"] or 0)) for r in rows}


def kind_words(kind: str, issued: int, seen: int, judged: tuple[int, int]) -> str:
    """As the report's equipment table says a kind: ``chữ ký số 2/2``, with what PC/SC judged."""
    said = f"{PERIPHERAL_KINDS[kind].vi} {seen}/{issued}"
    plugged_idle, pcsc = judged
    return f"{said} (cắm nhưng không được mở: {plugged_idle}; xét theo PC/SC: {pcsc})" if pcsc else said


def previous_month(month: str) -> str:
    year, number = (int(x) for x in month.split("-"))
    return f"{year - (number == 1):04d}-{(number - 2) % 12 + 1:02d}"


def test_equipment_issued_and_in_use_match_the_equipment_points_per_commune_area_and_in_all(
    province: dict[str, Any], documents: dict[str, Path], influxd: Influxd
) -> None:
    database, month = province["database"], province["month"]
    book = openpyxl.load_workbook(documents["xlsx"])
    kit = {str(r[0]): list(r[1:]) for r in book["Thiết bị"].iter_rows(min_row=4, values_only=True) if r[1]}
    compared = 0
    reported_before = has_office_hours(influxd, database, previous_month(month))
    for code in COMMUNES:
        now, before = (equipment_said(influxd, database, m, code) for m in (month, previous_month(month)))
        if not now:  # a commune without PCs was given nothing
            assert NAMES[code] not in kit
            continue
        issued, seen = sum(i for i, _s in now.values()), sum(s for _i, s in now.values())
        change = seen - sum(s for _i, s in before.values()) if before and reported_before else None
        judged = equipment_judged(influxd, database, month, code)
        kinds = "; ".join(kind_words(k, i, s, judged.get(k, (0, 0))) for k, (i, s) in sorted(now.items()))
        assert kit[NAMES[code]][1:] == [issued, seen, issued - seen, change, kinds], code
        compared += 1
    assert compared >= 4 and compared == len(kit)
    assert any(row[3] > 0 for row in kit.values())  # the seeded faults show: equipment left unused
    total = equipment_said(influxd, database, month)
    summary = {r[0]: r[1:] for r in book["Tóm tắt"].iter_rows(min_row=4, values_only=True)}
    assert summary["Thiết bị đã cấp"][0] == sum(i for i, _s in total.values()) > 0
    assert summary["Thiết bị đang dùng"][0] == sum(s for _i, s in total.values())
    assert any("xét theo PC/SC" in row[5] for row in kit.values())  # the simulated tokens are watched through PC/SC
    areas = list(book["Khu vực"].iter_rows(min_row=4, values_only=True))
    assert sum(r[10] for r in areas) == sum(i for i, _s in total.values())
    assert sum(r[11] for r in areas if r[11] is not None) == sum(s for _i, s in total.values())


def test_each_office_window_is_kept_once_and_the_collector_keeps_those_that_ended(
    province: dict[str, Any], documents: dict[str, Path]
) -> None:
    """Kept once summed, if it has history: one before or after the backfilled range has none (no
    collector wrote its status points), so it is asked again each time, never kept empty."""
    month = province["month"]

    def has_history(window: tuple[date, int, int]) -> bool:
        return window[2] > province["start"] and window[1] < province["end"]

    windows = [w for w in office_windows(month) + office_windows(previous_month(month)) if has_history(w)]
    with Store(province["config"].state.path) as store:  # the first report kept every window it summed
        kept = dict(store.query("SELECT kind, count(*) FROM report_windows GROUP BY kind"))
        assert kept == {"commune": len(windows), "agent": len(windows)}
        WindowSums(store).forget(0, time.time())
        now = time.time()
        this_month = [w for w in office_windows(datetime.now(ZONE).strftime("%Y-%m")) if w[2] <= now - 3600]
        assert keep(province["config"], store, now) == 2 * (len(office_windows(month)) + len(this_month))
        empty = [w for w in office_windows(month) + this_month if not has_history(w)]
        assert keep(province["config"], store, now) == 2 * len(empty)  # nothing new has ended: only those again


# ---- the clock pinned at a month boundary ----


def test_at_half_past_midnight_on_the_1st_the_months_are_vietnams_and_a_month_without_office_hours_has_no_report(
    influxd: Influxd, tmp_path: Path
) -> None:
    """The clock pinned at 00:30 on the 1st in Vietnam, which is 17:30 of the last day of last month
    in UTC, over a history that began after the last office hour of the month before last (the case
    of a backfill that began on its last Saturday): this month has no data yet rather than lying in
    the future, last month ends at local midnight, and its changes are empty because the month
    before has points but no office hour, so no report."""
    today = datetime.fromtimestamp(time.time() - 3600, ZONE)
    first = datetime(today.year, today.month, 1, tzinfo=ZONE)
    now = first.timestamp() + 1800
    assert datetime.fromtimestamp(now, UTC).month != first.month  # UTC says last month still
    this, last = first.strftime("%Y-%m"), (first - timedelta(days=1)).strftime("%Y-%m")
    before = previous_month(last)
    start = month_bounds(last)[0] - 6 * 3600  # 18:00 on the last day of the month before last
    database = f"t_{uuid.uuid4().hex[:10]}"
    config = CollectorConfig(influxdb={"url": influxd.url, "database": database, "raw_retention": "400d"},
                             state={"path": str(tmp_path / "state.sqlite")})  # fmt: skip
    plan = only(make_plan("08", 2, 1, 0.05), [HEALTHY])
    register(plan, config)
    backfill(config, plan, (now - start) / 86400, 600, seed=1, end=now)
    after_midnight = influxd.query(f'SELECT "issued" FROM "raw"."equipment" WHERE time >= {first.timestamp():.0f}s',
                                   database)  # fmt: skip
    assert after_midnight  # the collector spoke between local midnight and now: this month's, not last month's
    assert equipment_said(influxd, database, before, HEALTHY) and not has_office_hours(influxd, database, before)

    client = InfluxClient(config.influxdb)
    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        with pytest.raises(ReportError) as empty:
            build(client, store, registry, config.report, this, now=now)
        assert empty.value.missing, str(empty.value)  # no data yet, not "in the future"
        with pytest.raises(ReportError) as none:
            build(client, store, registry, config.report, before, now=now)
        assert none.value.missing, str(none.value)
        report = build(client, store, registry, config.report, last, now=now)
    client.close()
    assert report.until == int(first.timestamp()) == month_bounds(last)[1]
    (commune,) = report.figures.communes
    said = equipment_said(influxd, database, last, HEALTHY)
    assert [(k.kind, k.issued, k.in_use) for k in commune.equipment] == [
        (k, i, s) for k, (i, s) in sorted(said.items())
    ]
    assert commune.equipment_change is None and commune.score_change is None
    assert report.figures.total.changes.get("equipment_in_use") is None
    assert str(due_month(now, config)) == before  # the 1st's e-mail goes at 07:00 local
    assert str(due_month(first.timestamp() + 7 * 3600, config)) == last


# ---- one document in three formats ----


class TextOf(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.skip = 0
        self.rows: list[list[str]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.skip += tag in ("style", "title")
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        self.skip -= tag in ("style", "title")
        if tag in ("td", "th") and self.cell is not None:
            self.rows[-1].append(" ".join("".join(self.cell).split()))
            self.cell = None

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.words.extend(data.split())
            if self.cell is not None:
                self.cell.append(data)


def html_text(path: Path) -> TextOf:
    parser = TextOf()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def pdf_text(path: Path) -> str:
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip


def test_pdf_names_every_commune_with_its_diacritics_and_says_what_the_html_says(documents: dict[str, Path]) -> None:
    text = pdf_text(documents["pdf"])
    for name in NAMES.values():
        assert name in " ".join(text.split()), name
    assert "Chưa có dữ liệu cho mục này." in " ".join(text.split())  # outages and peripherals: no data yet
    made_at = re.compile(r"\d\d:\d\d")  # the two files were made by two runs, maybe a minute apart
    pdf_words = Counter(w for w in text.split() if not made_at.fullmatch(w))
    words = html_text(documents["html"]).words
    appendix = next(i for i in range(len(words)) if words[i : i + 2] == ["Phụ", "lục:"])  # in the PDF on request
    html_words = Counter(w for w in words[:appendix] if not made_at.fullmatch(w))
    assert pdf_words == html_words and sum(pdf_words.values()) > 300
    first_page = subprocess.run(["pdftoppm", "-r", "50", "-f", "1", "-l", "1", "-png", str(documents["pdf"])],
                                capture_output=True, check=True).stdout  # fmt: skip
    assert first_page.startswith(b"\x89PNG")


def test_xlsx_numbers_are_numbers_equal_to_the_pdf(documents: dict[str, Path]) -> None:
    rows = commune_rows(documents["xlsx"])
    page: dict[str, list[str]] = {}
    for r in html_text(documents["html"]).rows:  # the communes' table, before the replacement page's rows
        if len(r) > 2:
            page.setdefault(r[2], r)
    numbers = 0
    for name, row in rows.items():
        assert isinstance(row[0], int) and isinstance(row[14], int | float)  # rank, score: numbers, not text
        for value, shown in zip(row, page[name], strict=True):
            if isinstance(value, int | float):
                assert float(shown.replace("−", "-").replace(",", ".")) == value, (name, value, shown)
                numbers += 1
            elif value is None:  # no figure ("–"), or an empty text such as no degraded PC
                assert shown in ("–", ""), (name, shown)
            else:
                assert shown == value
    assert numbers >= len(COMMUNES) * 10
    book = openpyxl.load_workbook(documents["xlsx"])
    assert book.sheetnames == ["Tóm tắt", "Khu vực", "Xã", "Thiết bị", "Mất kết nối lâu", "Không dùng cả tháng",
                               "Máy suy giảm lâu", "Không có số liệu", "Loại trừ", "Máy cần thay thế",
                               "Bản sửa đổi", "BC đường truyền", "BC sự cố", "BC máy", "BC tốc độ",
                               "BC thiết bị"]  # fmt: skip
    summary = {r[0]: r[1] for r in book["Tóm tắt"].iter_rows(min_row=4, values_only=True)}
    assert summary["Số xã"] == len(COMMUNES) and isinstance(summary["Đường truyền sẵn sàng (%)"], int | float)


def test_english_report_when_the_language_is_en(province: dict[str, Any]) -> None:
    sections = {**province["sections"], "report": {"language": "en"}}
    path = write_toml(province["folder"] / "english.toml", sections)
    out = province["folder"] / "english.html"
    command = [sys.executable, "-m", "collector.cli", "report", "--month", province["month"], "--format", "html",
               "--out", str(out), "-c", str(path)]  # fmt: skip
    assert subprocess.run(command, capture_output=True, text=True, cwd=REPO).returncode == 0
    words = " ".join(html_text(out).words)
    assert "Line availability (%)" in words and "Commune digital transformation report" in words
    assert "Đường truyền" not in words and "Xã Lũng Cú" in words  # names stay as they are officially


@pytest.mark.parametrize(
    ("month", "area", "says"),
    [
        ("2019-01", "", "no data for 2019-01"),
        ("2999-01", "", "is in the future"),
        ("2026-13", "", "is not YYYY-MM"),
        ("last", "", "is not YYYY-MM"),
        ("", "KV99", "area 'KV99' is unknown"),
    ],
)
def test_bad_request_gets_one_line_and_exit_status_2(
    province: dict[str, Any], month: str, area: str, says: str
) -> None:
    args = [
        "report",
        "--month",
        month or province["month"],
        "--format",
        "pdf",
        "--out",
        str(province["folder"] / "x.pdf"),
    ]
    if area:
        args += ["--area", area]
    result = cli(province, *args)
    assert result.returncode == 2
    assert len(result.stderr.strip().splitlines()) == 1 and says in result.stderr, result.stderr
    assert not (province["folder"] / "x.pdf").exists()


# ---- the monthly e-mail ----


class Inbox:
    def __init__(self) -> None:
        self.messages: list[email.message.Message] = []

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:  # aiosmtpd's name
        self.messages.append(email.message_from_bytes(envelope.content, policy=email.policy.default))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    yield inbox, port
    controller.stop()


def served_sections(
    province: dict[str, Any], mosquitto: Mosquitto, **more: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """The province's collector config on the test broker, with an HTTP API a viewer token reads."""
    return {
        **province["sections"],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": f"report-{uuid.uuid4().hex[:8]}"},
        "http": {
            "host": "127.0.0.1",
            "port": free_port(),
            "tokens": [{"name": "t", "role": "viewer", "sha256": digest(API_TOKEN)}],
        },
        **more,
    }


def test_monthly_email_goes_once_with_pdf_and_xlsx_and_not_again_after_a_restart(
    province: dict[str, Any], smtp: tuple[Inbox, int], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    inbox, port = smtp
    sections = served_sections(
        province,
        mosquitto,
        notify={"smtp_host": "127.0.0.1", "smtp_port": port, "email_from": "monitor@tinh.example"},
        report={"email_to": ["lanh-dao@tinh.example"]},
    )
    collector = Collector(tmp_path / "collector", sections)
    collector.start()
    try:
        wait_until(lambda: len(inbox.messages) >= 1, 120, f"the monthly e-mail\n{collector.log()}")
        wait_until(lambda: "monthly report e-mail sent" in collector.log(), 30, "the record of sending")
    finally:
        collector.stop()
    month = str(due_month(time.time(), CollectorConfig(**sections)))
    message = inbox.messages[0]
    assert month in message["Subject"] and message["To"] == "lanh-dao@tinh.example"
    attachments = {part.get_filename(): part.get_payload(decode=True) for part in message.walk() if part.get_filename()}
    assert set(attachments) == {f"bao-cao-{month}.pdf", f"bao-cao-{month}.xlsx"}
    assert attachments[f"bao-cao-{month}.pdf"].startswith(b"%PDF") and attachments[f"bao-cao-{month}.xlsx"].startswith(
        b"PK"
    )

    again = Collector(tmp_path / "collector", sections)
    again.start()
    try:
        wait_until(
            lambda: again.log().count("monthly report e-mail already done") >= 1, 60, f"the check\n{again.log()}"
        )
    finally:
        again.stop()
    assert len(inbox.messages) == 1


def test_api_serves_the_report_to_a_viewer(province: dict[str, Any], mosquitto: Mosquitto, tmp_path: Path) -> None:
    sections = served_sections(province, mosquitto)
    collector = Collector(tmp_path / "api", sections)
    collector.start()
    try:
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        url = f"{collector.url}/api/v1/reports/monthly?month={province['month']}"
        status, body = http_get(f"{url}&format=xlsx", headers=auth, timeout_s=120)  # a loaded machine: take time
        assert status == 200 and body.startswith(b"PK")
        status, body = http_get(f"{url}&format=html", headers=auth, timeout_s=120)
        assert status == 200 and "Xã Lũng Cú" in body.decode()
        assert http_get(f"{collector.url}/api/v1/reports/monthly?month=2026-13", headers=auth)[0] == 422
        assert http_get(f"{collector.url}/api/v1/reports/monthly?month=2999-01", headers=auth)[0] == 404
        assert http_get(f"{collector.url}/api/v1/reports/monthly?month=2019-01", headers=auth)[0] == 404
        assert http_get(url)[0] == 401
    finally:
        collector.stop()
    assert re.search(r"level=error", collector.log()) is None, collector.log()
