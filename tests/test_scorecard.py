"""The evidence behind every figure, on a real InfluxDB and a real collector: a small province
backfilled for 35 days (as ``test_report.py``), then last month's figures.

- every commune's evidence rows sum exactly to each figure the report prints (the XLSX), and the
  speed tests are the ones InfluxDB's own median is of;
- every issued item is a row (matched device, days seen, state and rule at the month's end) and the
  rows sum exactly to the printed equipment figure, which agrees with what the collector's own
  ``equipment`` points said at the month's end; each row's days are those its device's raw points were on;
- an exclusion recorded with ``commune-collector exclusion add`` moves the adjusted figure and the
  score, not the raw figure, and the report lists it with who recorded it;
- the commune with no agent is listed apart as "no data" with its reason, and is not ranked;
- ``GET /api/v1/communes/{code}/scorecard`` returns the report's numbers, 404 for a commune not
  registered or a month in the future (the message says which), 422 for a malformed one.
"""

from __future__ import annotations

import io
import json
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from realservices import API_TOKEN, REPO, Collector, Influxd, Mosquitto, free_port, http_get, write_toml

from collector.config import CollectorConfig
from collector.http.auth import digest
from collector.ingest.influx import InfluxClient
from collector.ingest.lineprotocol import Point, encode_point
from collector.ingest.setup_influx import ROLLUP_RP
from collector.registry.registry import HostKey, Registry
from collector.registry.units import display_name
from collector.reports import evidence as ev
from collector.reports.build import MonthlyReport, build
from collector.reports.figures import CommuneFigures
from collector.reports.render_xlsx import xlsx
from collector.reports.windows import WindowSums
from collector.store import Store
from devtools.backfill import backfill, only
from devtools.simulate import make_plan, register

ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
HEALTHY, DEAD, NO_AGENT = "00694", "00715", "00817"  # with seed 1: no fault, dead_line, no_agent
COMMUNES = [HEALTHY, DEAD, NO_AGENT, "00691", "00829", "00832"]  # and a degraded PC, a 4G uplink, a PC gone
HEAD_TOKEN = "commune-head-" + uuid.uuid4().hex


@pytest.fixture(scope="module")
def province(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("scorecard")
    database = f"t_{uuid.uuid4().hex[:10]}"
    sections: dict[str, dict[str, Any]] = {
        "influxdb": {"url": influxd.url, "database": database, "raw_retention": "400d"},
        "state": {"path": str(folder / "state.sqlite")},
    }
    config = CollectorConfig(**sections)
    plan = only(make_plan("08", 2, 1, 0.05), COMMUNES)
    assert plan.faults["no_agent"] == [NO_AGENT]
    register(plan, config)
    now = datetime.now(ZONE)
    this_month = datetime(now.year, now.month, 1, tzinfo=ZONE)
    end = min(now.timestamp(), (this_month + timedelta(days=4)).timestamp())
    assert backfill(config, plan, 35, 600, seed=1, end=end)["points"] > 0
    last = (this_month - timedelta(days=1)).strftime("%Y-%m")
    return {"config": config, "sections": sections, "folder": folder, "month": last, "plan": plan}


def report_of(province: dict[str, Any]) -> MonthlyReport:
    config: CollectorConfig = province["config"]
    store = Store(config.state.path)
    client = InfluxClient(config.influxdb)
    try:
        return build(
            client, store, Registry(store, config.state.default_area), config.report, province["month"], now=time.time()
        )
    finally:
        client.close()
        store.close()


def printed(report: MonthlyReport) -> dict[str, list[Any]]:
    """The communes' rows as the XLSX prints them, by commune name."""
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx(report)))["Xã"]
    rows = list(sheet.iter_rows(values_only=True))
    return {str(r[2]): list(r) for r in rows[3:] if r and r[2] and r[0] is not None}


def cli(province: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    path = write_toml(province["folder"] / "collector.toml", province["sections"])
    command = [sys.executable, "-m", "collector.cli", *args, "-c", str(path)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


def summed(c: CommuneFigures) -> dict[str, Any]:
    """A commune's figures summed here from its rows, by their definitions (not the report's code)."""
    line, pcs = c.evidence.line, c.evidence.pcs
    counted, up = sum(r.slots - r.unused - r.no_data for r in line), sum(r.up for r in line)
    counted_adj = sum((r.slots - r.unused - r.no_data) * (1 - r.excluded) for r in line)
    slots, online = sum(p.slots for p in pcs), sum(p.online for p in pcs)
    speeds = [s.percent for s in c.evidence.speed]
    return {
        "line": round(100 * up / counted, 1) if counted else None,
        "line_adjusted": round(100 * sum(r.up * (1 - r.excluded) for r in line) / counted_adj, 1)
        if counted_adj
        else None,
        "down_hours": round(sum(r.charged / r.slots * (r.end - r.start) for r in line if r.slots) / 3600, 1),
        "speed": round(statistics.median(speeds), 1) if speeds else None,
        "pcs_online": sum(1 for p in pcs if p.online > 0),
        "pcs_total": len(pcs),
        "pcs": round(100 * online / slots, 1) if slots else None,
        "pcs_adjusted": round(100 * sum(p.online_adjusted for p in pcs) / sum(p.slots_adjusted for p in pcs), 1)
        if sum(p.slots_adjusted for p in pcs)
        else None,
        "degraded": sum(1 for p in pcs if p.degraded_days > 0),
    }


def test_evidence_rows_sum_exactly_to_every_printed_figure_of_every_commune(
    province: dict[str, Any], influxd: Influxd
) -> None:
    report = report_of(province)
    rows = printed(report)
    assert len(report.figures.communes) == len(COMMUNES) - 1 and len(rows) == len(COMMUNES) - 1
    for c in report.figures.communes:
        row = rows[c.place.name]
        want = summed(c)
        got = {"line": row[4], "line_adjusted": row[16], "down_hours": row[5], "speed": row[6], "pcs_online": row[8],
               "pcs_total": row[9], "pcs": row[10], "pcs_adjusted": row[17],
               "degraded": len([x for x in (row[11] or "").split(";") if x])}  # fmt: skip
        assert got == want, c.place.commune
        assert (row[14], row[18]) == (c.score, c.score_raw)
        assert c.evidence.line and all(r.day.strftime("%Y-%m") == province["month"] for r in c.evidence.line)
    dead = next(c for c in report.figures.communes if c.place.commune == DEAD)
    assert dead.line_availability is not None and dead.line_availability < 100 and dead.down_hours > 0


def test_item_rows_sum_exactly_to_the_printed_equipment_figure_of_every_commune(
    province: dict[str, Any], influxd: Influxd
) -> None:
    report = report_of(province)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx(report)))["Thiết bị"]
    shown = {str(r[0]): (r[2], r[3]) for r in sheet.iter_rows(values_only=True) if r and isinstance(r[2], int)}
    start = min(r.start for c in report.figures.communes for r in c.evidence.line)
    first = datetime.fromtimestamp(start, ZONE)
    month_start = int(datetime(first.year, first.month, 1, tzinfo=ZONE).timestamp())
    month_end = int(datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=ZONE).timestamp())
    database = province["config"].influxdb.database
    said = {(str(r["commune"]), str(r["kind"])): (round(float(r["issued"])), round(float(r["seen"])))
            for r in influxd.query('SELECT last("issued") AS issued, last("seen") AS seen FROM "raw"."equipment" '
                                   f'WHERE time >= {month_start}s AND time < {month_end}s GROUP BY "commune", "kind"',
                                   database)}  # fmt: skip
    points = influxd.query('SELECT "present", "last_seen_today" FROM "raw"."peripheral" WHERE '
                           f'time >= {month_start}s AND time < {month_end}s GROUP BY "commune", "device"',
                           database)  # fmt: skip
    days: dict[tuple[str, str], set[Any]] = {}
    for p in points:
        if float(p.get("present") or 0) > 0 or float(p.get("last_seen_today") or 0) > 0:
            days.setdefault((str(p["commune"]), str(p["device"])), set()).add(
                datetime.fromtimestamp(int(p["time"]), ZONE).date()
            )
    every = [r for c in report.figures.communes for r in c.evidence.items]
    assert every and any(r.in_use for r in every) and any(r.device and r.days for r in every)
    for c in report.figures.communes:
        rows = c.evidence.items
        if not rows:
            assert c.place.name not in shown and not c.equipment
            continue
        assert shown[c.place.name] == (len(rows), sum(r.state == "in_use" for r in rows)), c.place.commune
        for k in c.equipment:
            mine = [r for r in rows if r.kind == k.kind]
            assert (k.issued, k.in_use) == (len(mine), sum(r.in_use for r in mine))
            assert (k.issued_adjusted, k.in_use_adjusted) == (k.issued, k.in_use)  # no item excluded
            assert said[(c.place.commune, k.kind)] == (k.issued, k.in_use), (c.place.commune, k.kind)
        for r in rows:
            assert r.rule in ("presence", "pcsc") and r.state in ("in_use", "plugged_idle", "unused", "never_seen",
                                                                  "not_yet_seen")  # fmt: skip
            assert set(r.days) == (days.get((c.place.commune, r.device), set()) if r.device else set())


def test_speed_rows_are_the_tests_influxdbs_median_is_of(province: dict[str, Any], influxd: Influxd) -> None:
    report = report_of(province)
    start = min(r.start for c in report.figures.communes for r in c.evidence.line)
    first = datetime.fromtimestamp(start, ZONE)
    month_start = int(datetime(first.year, first.month, 1, tzinfo=ZONE).timestamp())
    month_end = int(datetime(first.year + first.month // 12, first.month % 12 + 1, 1, tzinfo=ZONE).timestamp())
    answer = influxd.query(
        'SELECT median("mean_download_percent_of_contract") AS p, count("mean_download_percent_of_contract") AS n '
        f'FROM "rollup_5m"."speedtest" WHERE time >= {month_start}s AND time < {month_end}s GROUP BY "commune"',
        province["config"].influxdb.database,
    )
    said = {str(r["commune"]): (round(float(r["p"]), 1), int(r["n"])) for r in answer if r.get("p") is not None}
    mine = {
        c.place.commune: (c.speed_percent, len(c.evidence.speed)) for c in report.figures.communes if c.evidence.speed
    }
    assert mine and mine == {k: v for k, v in said.items() if k in mine}


def test_an_exclusion_moves_the_adjusted_figure_and_not_the_raw_one_and_is_listed_with_who(
    province: dict[str, Any],
) -> None:
    before = report_of(province)
    # the commune and office day whose line was worst: excluding that day must raise its adjusted figure
    candidates = [(r.charged / r.counted, c.place.commune, r) for c in before.figures.communes
                  for r in c.evidence.line if r.counted > 0 and c.line_availability is not None
                  and 0 < c.line_availability < 100]  # fmt: skip
    assert candidates, "no commune with its line down part of the month"
    _share, code, day = max(candidates, key=lambda x: (x[0], x[1]))
    start = datetime.fromtimestamp(day.start, ZONE).replace(hour=0, minute=0)
    result = cli(province, "exclusion", "add", "--commune", code, "--line", "--from", start.date().isoformat(),
                 "--to", (start + timedelta(days=1)).date().isoformat(), "--reason", "repair", "--note",
                 "cáp quang bị đứt, nhà mạng sửa", "--by", "Anh C")  # fmt: skip
    assert result.returncode == 0, result.stderr
    after = report_of(province)
    old = next(c for c in before.figures.communes if c.place.commune == code)
    new = next(c for c in after.figures.communes if c.place.commune == code)
    assert new.line_availability == old.line_availability and new.score_raw == old.score_raw
    assert new.line_availability_adjusted is not None and old.line_availability_adjusted is not None
    assert new.line_availability_adjusted > old.line_availability_adjusted and new.score > old.score
    assert summed(new)["line_adjusted"] == new.line_availability_adjusted
    others = {c.place.commune: c.line_availability_adjusted for c in after.figures.communes if c.place.commune != code}
    assert others == {c.place.commune: c.line_availability_adjusted for c in before.figures.communes
                      if c.place.commune != code}  # fmt: skip
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx(after)))["Loại trừ"]
    listed = [r for r in sheet.iter_rows(min_row=4, values_only=True) if r and isinstance(r[0], int)]
    assert [(r[1], r[5], r[7]) for r in listed] == [(display_name(code), "sửa chữa", "Anh C")]
    assert listed[0][8] == round(sum(r.seconds for r in new.evidence.line if r.day == day.day) / 3600, 1)


def test_the_commune_without_an_agent_is_no_data_listed_apart_and_unranked(province: dict[str, Any]) -> None:
    report = report_of(province)
    assert [n.place.commune for n in report.figures.no_data] == [NO_AGENT]
    assert report.figures.no_data[0].since is None  # never had an agent
    assert NO_AGENT not in {c.place.commune for c in report.figures.communes}
    assert sorted(c.rank for c in report.figures.communes) == list(range(1, len(COMMUNES)))
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx(report)))["Không có số liệu"]
    listed = [r for r in sheet.iter_rows(min_row=4, values_only=True) if r and r[0]]
    assert [(r[0], r[2]) for r in listed] == [(display_name(NO_AGENT), "chưa từng có phần mềm giám sát gửi số liệu")]


def test_api_scorecard_returns_the_reports_numbers(
    province: dict[str, Any], mosquitto: Mosquitto, tmp_path: Path
) -> None:
    sections = {
        **province["sections"],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": f"score-{uuid.uuid4().hex[:8]}"},
        "http": {"host": "127.0.0.1", "port": free_port(),
                 "tokens": [{"name": "t", "role": "viewer", "sha256": digest(API_TOKEN)},
                            {"name": "head", "role": "viewer", "sha256": digest(HEAD_TOKEN), "commune": HEALTHY}]},
    }  # fmt: skip
    collector = Collector(tmp_path / "api", sections)
    collector.start()
    try:
        report = report_of(province)
        auth = {"Authorization": f"Bearer {API_TOKEN}"}
        for c in report.figures.communes:
            status, body = http_get(f"{collector.url}/api/v1/communes/{c.place.commune}/scorecard?month="
                                    f"{province['month']}", headers=auth, timeout_s=60)  # fmt: skip
            assert status == 200, body
            card = json.loads(body)
            got = card["figures"]
            assert card["ranked"] and not card["no_data"]
            assert card["office_hours"]["windows"] == ["07:30-11:30", "13:30-17:00"]  # the rule the rows keep to
            assert (got["line_availability"], got["pc_availability"], got["score"]) == (
                {"raw": c.line_availability, "adjusted": c.line_availability_adjusted},
                {"raw": c.pc_availability, "adjusted": c.pc_availability_adjusted},
                {"raw": c.score_raw, "adjusted": c.score},
            ), c.place.commune
            assert (got["down_hours"], got["speed_percent"], got["pcs_total"], got["degraded_pcs"]) == (
                c.down_hours,
                c.speed_percent,
                c.pcs_total,
                len(c.degraded),
            )
            rows = card["evidence"]["line"]
            assert len(rows) == len(c.evidence.line)
            assert ev.percent(sum(r["up"] for r in rows), sum(r["counted"] for r in rows)) == c.line_availability
            assert [e["id"] for e in card["evidence"]["exclusions"]] == [e.id for e in c.evidence.exclusions]
            items = card["evidence"]["items"]
            assert [(i["serial"], i["device"], i["state"], i["rule"], i["days"]) for i in items] == [
                (r.serial, r.device, r.state, r.rule, [d.isoformat() for d in r.days]) for r in c.evidence.items
            ]
            assert [(k["kind"], k["issued"], k["in_use"]) for k in got["equipment"]] == [
                (k.kind, sum(i["kind"] == k.kind for i in items), sum(i["in_use"] for i in items
                                                                      if i["kind"] == k.kind))
                for k in c.equipment]  # fmt: skip
        status, body = http_get(f"{collector.url}/api/v1/communes/{NO_AGENT}/scorecard?month={province['month']}",
                                headers=auth, timeout_s=60)  # fmt: skip
        card = json.loads(body)
        assert status == 200 and card["no_data"] and not card["ranked"]
        assert card["reason"]["code"] == "no_agent_ever" and card["reason"]["en"] == "never had a reporting agent"
        month = province["month"]
        status, body = http_get(f"{collector.url}/api/v1/communes/00001/scorecard?month={month}", headers=auth)
        assert status == 404 and b"no registered line" in body
        assert http_get(f"{collector.url}/api/v1/communes/{HEALTHY}/scorecard?month=2026-13", headers=auth)[0] == 422
        status, body = http_get(f"{collector.url}/api/v1/communes/{HEALTHY}/scorecard?month=2999-01", headers=auth)
        assert status == 404 and b"in the future" in body
        assert http_get(f"{collector.url}/api/v1/communes/{HEALTHY}/scorecard?month={month}")[0] == 401
        head = {"Authorization": f"Bearer {HEAD_TOKEN}"}  # a commune head's token: its own scorecard only
        assert http_get(f"{collector.url}/api/v1/communes/{HEALTHY}/scorecard?month={month}", headers=head,
                        timeout_s=60)[0] == 200  # fmt: skip
        assert http_get(f"{collector.url}/api/v1/communes/{DEAD}/scorecard?month={month}", headers=head)[0] == 404
    finally:
        collector.stop()


def test_a_broker_outage_is_no_data_for_everyone_never_their_downtime(
    province: dict[str, Any], influxd: Influxd
) -> None:
    """A morning in which our broker was down: every PC offline and every commune with an agent dark
    at once (its outage decided ``unknown``), as the collector would have written it. That morning
    leaves every figure: each commune's rows without it give the same figures as before it."""
    config: CollectorConfig = province["config"]
    start, end = (int(datetime.strptime(province["month"], "%Y-%m").replace(tzinfo=ZONE).timestamp()),
                  int(time.time()))  # fmt: skip
    with Store(config.state.path) as store:  # the PCs as a collector that heard them all month has them
        registry = Registry(store, config.state.default_area)
        for h in province["plan"].hosts:
            if h.commune != NO_AGENT:
                registry.touch(HostKey(h.province, h.commune, h.host), start - 86400)
                registry.touch(HostKey(h.province, h.commune, h.host), end)
        registry.flush()
    before = report_of(province)
    healthy = next(c for c in before.figures.communes if c.place.commune == HEALTHY)
    morning = healthy.evidence.line[len(healthy.evidence.line) // 2]  # an office window mid-month
    communes = [c.place.commune for c in before.figures.communes]
    database = config.influxdb.database
    lines = []
    for measurement, down in (("commune", {"mean_line_down": 1.0, "mean_line_unused": 0.0, "mean_hosts_online": 0.0}),
                              ("agent", {"mean_online": 0.0, "mean_degraded": 0.0})):  # fmt: skip
        for r in influxd.query(f'SELECT * FROM "{ROLLUP_RP}"."{measurement}" WHERE time >= {morning.start}s AND '
                               f"time < {morning.end}s", database):  # fmt: skip
            if r["commune"] in communes:
                tags = {k: str(r[k]) for k in ("province", "area", "commune", "host") if r.get(k)}
                lines.append(encode_point(Point(measurement, tags, down, int(r["time"]))))
    for commune in communes:
        tags = {"province": "08", "area": "", "commune": commune, "cause": "unknown"}
        lines.append(encode_point(Point("outage", {k: v for k, v in tags.items() if v},
                                        {"end": float(morning.end + 60), "duration_s": float(morning.seconds + 120)},
                                        morning.start - 60)))  # fmt: skip
    client = InfluxClient(config.influxdb)
    try:
        client.write_lines(lines, retention_policy=ROLLUP_RP)
    finally:
        client.close()
    with Store(config.state.path) as store:
        WindowSums(store).forget(morning.start, morning.end)
    after = report_of(province)
    assert (
        after.figures.silence
        and after.figures.silence[0][0] <= morning.start < morning.end <= after.figures.silence[0][1]
    )
    for c in before.figures.communes:
        new = next(x for x in after.figures.communes if x.place.commune == c.place.commune)
        row = next(r for r in new.evidence.line if r.start == morning.start)
        assert row.no_data == row.slots and row.counted == 0 and row.charged == 0, c.place.commune
        rest = [r for r in c.evidence.line if r.start != morning.start]
        assert new.line_availability == ev.percent(sum(r.up for r in rest), sum(r.counted for r in rest))
        assert new.down_hours == ev.down_hours(rest), c.place.commune
        assert new.pc_availability is not None and c.pc_availability is not None
        assert new.pc_availability >= c.pc_availability  # the offline morning is not held against its PCs
    assert [n.place.commune for n in after.figures.no_data] == [NO_AGENT]
