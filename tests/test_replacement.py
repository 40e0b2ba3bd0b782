"""The replacement list: the score as a pure function at its edges, the ranking, the evidence
read from a real InfluxDB's rollups over a month's office windows, and the monthly report's page."""

from __future__ import annotations

import io
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from realservices import Agent, Collector, Influxd, wait_until

from collector import vocabulary as words
from collector.config import CollectorConfig, FleetSettings, InfluxSettings, ReportSettings
from collector.ingest.influx import InfluxClient
from collector.ingest.setup_influx import setup_influx
from collector.localtime import Month
from collector.registry.registry import HostKey, Registry
from collector.registry.units import display_name
from collector.reports.build import hours_of
from collector.reports.make import make, replacement
from collector.reports.replacement import SCORE_PARTS, Evidence, figures, replacement_list, rows, score
from collector.store import Store
from devtools.backfill import backfill, only
from devtools.simulate.plan import make_plan, register

NOW = 1_796_000_000.0
YEAR_S = 365.25 * 86400


def test_each_part_gives_its_points_at_its_full_figure_and_never_more() -> None:
    for name, (points, full) in SCORE_PARTS.items():
        assert score({name: full}) == points
        assert score({name: full * 3}) == points
        assert score({name: full / 2}) == round(points / 2, 1)
    assert sum(points for points, _full in SCORE_PARTS.values()) == 100.0
    assert score({name: full for name, (_points, full) in SCORE_PARTS.items()}) == 100.0
    assert score({}) == 0.0 and score({"memory_short": -1.0}) == 0.0


def test_the_vocabulary_names_every_part_of_the_score_in_its_order() -> None:
    assert list(words.REPLACEMENT_EVIDENCE) == list(SCORE_PARTS)
    for name, (points, _full) in SCORE_PARTS.items():
        said = words.REPLACEMENT_EVIDENCE[name]
        assert said.vi and said.en and f"{points:g}" in words.REPLACEMENT_RULE.en


def test_figures_are_per_office_day_and_per_slot_and_a_pc_never_seen_has_no_age() -> None:
    e = Evidence("08", "02473", "pc-1", days={"2026-11-02", "2026-11-03"}, slots=100, cpu_slots=25,
                 memory_slots=10, busy_slots=18, reboots=1, first_seen=NOW - 4 * YEAR_S)  # fmt: skip
    assert figures(e, NOW) == {
        "disk_failing": 0.0, "hang_minutes_per_day": 45.0, "memory_short": 0.1, "cpu_saturated": 0.25,
        "reboots_per_day": 0.5, "age_years": 4.0,
    }  # fmt: skip
    assert figures(Evidence("08", "02473", "pc-2"), NOW)["age_years"] == 0.0


def test_the_list_puts_a_failing_disk_first_and_leaves_out_pcs_without_office_data() -> None:
    failing = Evidence("08", "02473", "pc-b", days={"d"}, slots=10, disk_failing=True)
    slow = Evidence("08", "02473", "pc-a", days={"d"}, slots=10, busy_slots=12)  # 60 minutes in one day
    quiet = Evidence("08", "02473", "pc-c", days={"d"}, slots=10)
    unseen = Evidence("08", "02473", "pc-d", disk_failing=True)
    listed = rows([quiet, slow, unseen, failing], NOW)
    assert [(r["host"], r["score"], r["days"]) for r in listed] == [
        ("pc-b", 40.0, 1),
        ("pc-a", 25.0, 1),
        ("pc-c", 0.0, 1),
    ]
    assert listed[0]["evidence"]["disk_failing"] == 1.0


def test_evidence_is_read_from_the_rollups_of_the_office_windows_only(influxd: Influxd) -> None:
    settings = ReportSettings()
    hours = hours_of(settings)
    month = Month(2026, 11)
    windows = hours.windows_of(month)
    first, second = windows[0], windows[2]  # the mornings of the first two office days
    start, end = hours.month_bounds(month)
    database = f"t_{uuid.uuid4().hex[:10]}"
    client = InfluxClient(InfluxSettings(url=influxd.url, database=database, raw_retention="400d"))
    setup_influx(client)

    def at(window_start: int, minute: int) -> int:
        return window_start + minute * 60

    def tags(host: str) -> str:
        return f"province=08,area=a,commune=02473,host={host}"

    rollup = []
    for minute in range(0, 60, 5):  # an hour of each of two mornings: 12 slots a morning
        for w in (first, second):
            rollup.append(
                f"system,{tags('pc-slow')} mean_cpu_percent=99,mean_mem_used_percent=50 {at(w.start, minute)}"
            )
            rollup.append(f"io,{tags('pc-slow')} mean_busy_percent=97 {at(w.start, minute)}")
            rollup.append(f"system,{tags('pc-disk')} mean_cpu_percent=5,mean_mem_used_percent=95 {at(w.start, minute)}")
    rollup.append(f"system,{tags('pc-slow')} mean_cpu_percent=99 {first.start - 3600}")  # before office hours
    rollup.append(f"io,{tags('pc-slow')} mean_busy_percent=99 {first.end + 60}")  # lunch
    rollup.append(
        f"disk_health,{tags('pc-disk')},disk=sda mean_reallocated_sectors=2,mean_pending_sectors=0 {first.start}"
    )
    rollup.append(
        f"disk_health,{tags('pc-slow')},disk=sda mean_reallocated_sectors=1,mean_health_passed=1 {first.start}"
    )
    client.write_lines(rollup, "rollup_5m")
    client.write_lines([f"system,{tags('pc-disk')} boot_time=1 {first.start}",
                        f"system,{tags('pc-disk')} boot_time=2 {second.start}"], "raw")  # fmt: skip

    with Store(":memory:") as store:
        registry = Registry(store, "unassigned")
        for host in ("pc-slow", "pc-disk", "pc-silent"):
            registry.touch(HostKey("08", "02473", host), time.time())
        listed = replacement_list(client, registry, FleetSettings(), windows, (start, end), now=end)
        assert replacement_list(client, registry, FleetSettings(), windows, (start, end), province="09") == []
        for missing in (f"{database}_none", database + "_raw"):  # no database; a database without rollups
            other = InfluxClient(InfluxSettings(url=influxd.url, database=missing))
            if missing.endswith("_raw"):
                other.query(f'CREATE DATABASE "{missing}"', method="POST")
            assert replacement_list(other, registry, FleetSettings(), windows, (start, end)) == []
            other.close()
    client.close()
    by_host = {r["host"]: r for r in listed}
    assert set(by_host) == {"pc-slow", "pc-disk"}  # pc-silent has no office data
    assert by_host["pc-disk"]["evidence"] == {
        "disk_failing": 1.0, "hang_minutes_per_day": 0.0, "memory_short": 1.0, "cpu_saturated": 0.0,
        "reboots_per_day": 0.5, "age_years": 0.0,
    }  # fmt: skip
    assert by_host["pc-slow"]["evidence"] == {
        "disk_failing": 0.0, "hang_minutes_per_day": 60.0, "memory_short": 0.0, "cpu_saturated": 1.0,
        "reboots_per_day": 0.0, "age_years": 0.0,
    }  # fmt: skip
    assert [r["host"] for r in listed] == ["pc-disk", "pc-slow"] and by_host["pc-disk"]["days"] == 2
    assert by_host["pc-disk"]["score"] == 40.0 + 10.0 + 2.5 and by_host["pc-slow"]["score"] == 25.0 + 10.0


def test_the_api_lists_a_reporting_pc_this_month_and_refuses_a_month_to_come(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent], influxd: Influxd, database: str
) -> None:
    always_open = {"office_hours": ["00:00-24:00"], "workdays": [1, 2, 3, 4, 5, 6, 7]}
    collector = make_collector(report=always_open)
    assert collector.cli("setup-influx").returncode == 0  # the rollups the list reads
    collector.start()
    make_agent(host="pc-list").start()
    assert collector.get_json("/api/v1/replacement?province=09") == []
    client = InfluxClient(InfluxSettings(url=influxd.url, database=database))

    def listed() -> bool:  # the rollup the continuous query would make at the next 5 minutes, made now
        client.query(f'SELECT mean(*) INTO "{database}"."rollup_5m"."system" FROM "{database}"."raw"."system" '
                     "WHERE time > now() - 1h GROUP BY time(5m), *", method="POST")  # fmt: skip
        return any(r["host"] == "pc-list" for r in collector.get_json("/api/v1/replacement"))

    wait_until(listed, 30, "listed")
    client.close()
    (row,) = [r for r in collector.get_json("/api/v1/replacement?province=08") if r["host"] == "pc-list"]
    assert row["days"] == 1 and set(row["evidence"]) == set(SCORE_PARTS) and 0 <= row["score"] <= 100
    status, body = collector.send_json("GET", "/api/v1/replacement?month=2999-01", None)
    assert status == 404 and "future" in body["detail"]


@pytest.fixture(scope="module")
def week(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Three communes of a simulated province, one with a PC whose disk fails, one with a PC whose
    disk is so slow it hangs, one healthy, backfilled for the last 8 days of last month (every 600 s:
    the figures are shares of office time), so that a whole month is done whatever day it is."""
    whole = make_plan("08", 2, seed=1)
    failing, slow = whole.faults["disk_failing"][0], whole.faults["disk_slow"][0]
    healthy = next(c.commune for c in whole.lines if not any(h.fault for h in whole.hosts if h.commune == c.commune))
    plan = only(whole, sorted({failing.split("/")[1], slow.split("/")[1], healthy}))
    folder = tmp_path_factory.mktemp("replacement")
    config = CollectorConfig(influxdb={"url": influxd.url, "database": f"t_{uuid.uuid4().hex[:10]}",
                                       "raw_retention": "400d"},
                             state={"path": str(folder / "state.sqlite")}, report={"replacement_top": 2})  # fmt: skip
    register(plan, config)
    hours = hours_of(config.report)
    this_month = hours.month_of(time.time())
    end = float(hours.month_bounds(this_month)[0])
    backfill(config, plan, 8, 600, seed=1, end=end)
    return {"config": config, "plan": plan, "failing": failing, "slow": slow, "start": end - 8 * 86400, "end": end,
            "month": str(this_month.previous())}  # fmt: skip


def test_a_backfilled_week_puts_the_simulated_failing_and_slow_disks_at_the_top(week: dict[str, Any]) -> None:
    config, plan, failing, slow = week["config"], week["plan"], week["failing"], week["slow"]
    hours = hours_of(config.report)
    start, end = week["start"], week["end"]
    windows = [w for m in {hours.month_of(start), hours.month_of(end)} for w in hours.windows_of(m, until=end)]
    windows = [w for w in windows if w.start >= start]
    client = InfluxClient(config.influxdb)
    with Store(config.state.path) as store:
        listed = replacement_list(client, Registry(store, "unassigned"), config.fleet, windows, (int(start), int(end)))
    client.close()
    ranked = [f"{r['province']}/{r['commune']}/{r['host']}" for r in listed]
    assert set(ranked[:2]) == {failing, slow}, listed[:3]
    assert listed[ranked.index(failing)]["evidence"]["disk_failing"] == 1.0
    assert listed[ranked.index(slow)]["evidence"]["hang_minutes_per_day"] > 0
    assert len(ranked) == len(plan.hosts) - len(plan.faults["goes_offline"])


def test_the_monthly_report_lists_them_first_on_its_page_in_the_xlsx_and_the_pdf(week: dict[str, Any]) -> None:
    """The page of the month's report: each area's top ``replacement_top`` (2 here) of the API's own
    list, the faulty PCs first, in the XLSX as numbers and in the PDF's text, in Vietnamese."""
    config, failing, slow = week["config"], week["failing"], week["slow"]
    with Store(config.state.path) as store:
        registry = Registry(store, "unassigned")
        made = make(config, store, registry, week["month"], ["xlsx", "pdf"])
        api = replacement(config, registry, week["month"])
    areas = {r["commune"]: r["area"] for r in api}
    sheet = openpyxl.load_workbook(io.BytesIO(made["xlsx"]))["Máy cần thay thế"]
    cells = list(sheet.iter_rows(values_only=True))
    assert cells[1][0] == "Máy cần thay thế: 2 máy điểm cao nhất mỗi khu vực"
    assert cells[2][:6] == ("Khu vực", "Hạng", "Xã", "Máy", "Điểm thay thế", "Ngày làm việc có số liệu")
    rows = [r for r in cells[3:] if isinstance(r[1], int)]
    codes = {display_name(c): c for c in areas}
    shown = [(codes[r[2]], r[3], r[4]) for r in rows]
    expected = [(r["commune"], r["host"], r["score"]) for a in sorted(set(areas.values())) for r in
                [x for x in api if x["area"] == a][:2]]  # fmt: skip
    assert sorted(shown) == sorted(expected) and len(shown) < len(api)  # the API's figures, cut at 2 per area
    by_pc = {f"08/{codes[r[2]]}/{r[3]}": r for r in rows}
    assert by_pc[failing][1] == 1 and by_pc[failing][6] == "Có" and by_pc[failing][4] >= 40, by_pc[failing]
    same_area = areas[slow.split("/")[1]] == areas[failing.split("/")[1]]
    assert by_pc[slow][6] == "Không" and by_pc[slow][7] > 0 and by_pc[slow][1] == (2 if same_area else 1), by_pc[slow]
    for row in rows:  # per area, ranks 1, 2, ... in score order
        same = [r for r in rows if r[0] == row[0]]
        assert [r[1] for r in same] == list(range(1, len(same) + 1)) and [r[4] for r in same] == sorted(
            (r[4] for r in same), reverse=True
        )
    note = next(str(r[0]) for r in cells[3:] if str(r[0]).startswith("Điểm từ 0 đến 100"))
    counts = Counter(r["area"] for r in api)
    assert "Số máy được xếp hạng (có số liệu trong giờ làm việc): " in note
    for row in rows:
        assert f"{row[0]}: {counts[areas[codes[row[2]]]]}" in note, note

    path = Path(config.state.path).parent / "report.pdf"
    path.write_bytes(made["pdf"])
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    page = " ".join(text[text.index("Máy cần thay thế: 2") :].split())
    at = {pc: page.find(f"{display_name(pc.split('/')[1])} {pc.split('/')[2]}") for pc in by_pc}
    assert all(i >= 0 for i in at.values()), at
    assert [pc for pc, _ in sorted(at.items(), key=lambda x: x[1])] == [f"08/{c}/{h}" for c, h, _s in shown]
    words = set(page.split())  # the headers wrap in their cells: their words, in Vietnamese
    assert all(set(str(h).split()) <= words for h in cells[2]) and "Hangs" not in words and "Có" in words
