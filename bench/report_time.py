"""Benchmark: how long the monthly report takes, and its peak memory, for one province (124
communes of Tuyên Quang) and for a simulated nation (all 3,321 communes of the 34 provinces).

Real InfluxDB on loopback. A month of what the report reads is written into the 5-minute rollup
policy through the collector's line-protocol encoder: ``commune`` and ``agent`` status (2 PCs per
commune) for every office slot, a speed test per commune per working day, and a few alerts and
degraded PCs. The province gets a point every 5 minutes (as the rollups hold); the nation one every
30 minutes, which keeps the write within minutes on 2 cores: the report's work is one row per
commune (or PC) and office window whatever the density, so this understates only InfluxDB's scan.
Each report is a real ``commune-collector report`` process; time is wall clock, memory the peak of
the summed RSS of the process and its print workers (sampled every 50 ms), CPU the seconds the
report's processes used and, separately, those InfluxDB used meanwhile (wall time on a shared
machine depends on its load; CPU seconds much less). ``cold``: the first report of the month, with
no office window's sums kept in the state file yet (every window asked of InfluxDB); ``warm``: as
the collector has them, its ``WindowKeeper`` having summed each window after it ended (here: the
cold run before kept them). The XLSX of each is the report without the PDF's layout; the
reference, same run, is the province's warm XLSX. Goal: under 60 s and 1 GB for the nation.

Evidence (issue 27): the XLSX carries each commune's evidence rows (``reports/appendix.py``). Its
cost is measured against the same report without them (``--no-evidence``) in the same run, warm,
alternating, the best of ``EVIDENCE_RUNS`` each: time and peak memory, goal within 1.5×. Then a
real collector serves the scorecard of one commune (``GET /api/v1/communes/{code}/scorecard``)
over the same data and state file: ``SCORECARD_ASKS`` asks of random communes, one at a time,
p50 and p99 of the wall time (goal p99 under 300 ms with a nation's data).
Run: ``python -m bench.report_time`` (``BENCH_REPORT_NATION=0``: the province only).
"""

from __future__ import annotations

import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psutil

from collector.alerting.lifecycle import Alert, record
from collector.config import CollectorConfig
from collector.ingest.influx import InfluxClient
from collector.ingest.lineprotocol import Point, encode_point
from collector.ingest.setup_influx import ROLLUP_RP, setup_influx
from collector.localtime import Month
from collector.registry import units
from collector.registry.registry import Line, Registry
from collector.reports.build import hours_of
from collector.reports.windows import WindowSums
from collector.store import Store
from devtools.localstack import Influxd, Mosquitto, ServedCollector, http_get

REPO = Path(__file__).resolve().parent.parent
ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
BATCH = 5000
EVIDENCE_RUNS = 2
SCORECARD_ASKS = 300
TOKEN = "bench-viewer-token"


def last_month() -> Month:
    now = datetime.now(ZONE)
    return Month.of(datetime(now.year, now.month, 1, tzinfo=ZONE) - timedelta(days=1))


def register(config: CollectorConfig, communes: list[tuple[str, str]]) -> None:
    """Lines for every commune, one area per province."""
    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        registry.upsert_lines([Line(f"B-{p}-{c}", p, c, "VNPT", 100.0, 100.0, "2025-08-15") for p, c in communes])
        by_province: dict[str, list[str]] = {}
        for province, commune in communes:
            by_province.setdefault(province, []).append(commune)
        for province, codes in by_province.items():
            registry.set_area(f"P{province}", units.province_name(province) or province, codes)


def write_month(config: CollectorConfig, communes: list[tuple[str, str]], month: Month, step_s: int) -> int:
    """One month of rollups for the report to read; returns points written."""
    rng = random.Random(14)
    client = InfluxClient(config.influxdb)
    setup_influx(client)
    windows = hours_of(config.report).windows_of(month)
    batch: list[str] = []
    written = 0
    alerts: list[Alert] = []

    def put(point: Point) -> None:
        nonlocal written
        batch.append(encode_point(point))
        if len(batch) >= BATCH:
            client.write_lines(batch, retention_policy=ROLLUP_RP)
            written += len(batch)
            batch.clear()

    for province, commune in communes:
        kind = rng.choices(("up", "dead", "unused", "flaky"), (0.85, 0.05, 0.05, 0.05))[0]
        area = f"P{province}"
        tags = {"province": province, "area": area, "commune": commune}
        for window in windows:
            for ts in range(window.start, window.end, step_s):
                down = 1.0 if kind == "dead" or (kind == "flaky" and rng.random() < 0.2) else 0.0
                unused = 1.0 if kind == "unused" else 0.0
                put(Point("commune", tags, {"mean_line_down": down, "mean_line_unused": unused,
                                            "mean_hosts_online": 2.0 - 2 * down}, ts))  # fmt: skip
                for n in (1, 2):
                    online = 0.0 if down else 1.0
                    degraded = 1.0 if n == 2 and kind == "flaky" else 0.0
                    put(Point("agent", {**tags, "host": f"pc-{n:02d}"},
                              {"mean_online": online, "mean_degraded": degraded}, ts))  # fmt: skip
        for day in sorted({w.day for w in windows}):
            ts = next(w.start for w in windows if w.day == day) + 3600
            put(Point("speedtest", {**tags, "host": "pc-01", "mode": "wan"},
                      {"mean_download_percent_of_contract": rng.uniform(30, 97)}, ts))  # fmt: skip
        if kind != "up":  # an alert firing from the month's first morning, its record in the state file
            alert = {**tags, "host": "-", "rule": "line_down", "severity": "critical"}
            put(Point("alert", alert, {"mean_firing": 1.0}, windows[0].start + 600))
            alerts.append(Alert(0, "line_down", province, area, commune, "-", "critical", "mất kết nối", "line down",
                                "firing", windows[0].start + 600, windows[0].start + 600))  # fmt: skip
    client.write_lines(batch, retention_policy=ROLLUP_RP)
    written += len(batch)
    client.close()
    with Store(config.state.path) as store:
        for one in alerts:
            record(store, one)
    return written


def tree_rss(process: psutil.Process) -> int:
    """RSS of a process and its children (the PDF's print workers), bytes; 0 once it has gone."""
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.Error:
            continue
    return total


def run_report(
    config_path: Path, month: Month, fmt: str, out: Path, influxd: psutil.Process, *flags: str
) -> dict[str, float]:
    """Wall time, the peak of the summed RSS of the report process and its workers (sampled every
    50 ms), the CPU seconds they used and those InfluxDB used meanwhile."""
    started = time.perf_counter()
    children_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    influx_before = sum(influxd.cpu_times()[:2])
    command = [sys.executable, "-m", "collector.cli", "report", "-c", str(config_path), "--month", str(month),
               "--format", fmt, "--out", str(out), *flags]  # fmt: skip
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    watched = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(watched))
        time.sleep(0.05)
    seconds = time.perf_counter() - started
    if child.returncode != 0:
        raise RuntimeError(f"report failed: {child.stderr.read().decode() if child.stderr else ''}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the report and the workers it waited for
    cpu = after.ru_utime + after.ru_stime - children_before.ru_utime - children_before.ru_stime
    influx_cpu = sum(influxd.cpu_times()[:2]) - influx_before
    return {"seconds": round(seconds, 2), "peak_rss_mb": round(peak / 2**20, 1), "bytes": float(out.stat().st_size),
            "cpu_s": round(cpu, 1), "influxdb_cpu_s": round(influx_cpu, 1)}  # fmt: skip


def scenario(influxd: Influxd, folder: Path, name: str, communes: list[tuple[str, str]], step_s: int,
             formats: tuple[str, ...]) -> dict[str, Any]:  # fmt: skip
    sections = {"influxdb": {"url": influxd.url, "database": f"bench_{name}"},
                "state": {"path": str(folder / f"{name}.sqlite")}}  # fmt: skip
    config = CollectorConfig(**sections)
    path = folder / f"{name}.toml"
    path.write_text(f'[influxdb]\nurl = "{influxd.url}"\ndatabase = "bench_{name}"\n'
                    f'[state]\npath = "{folder / f"{name}.sqlite"}"\n')  # fmt: skip
    register(config, communes)
    month = last_month()
    started = time.perf_counter()
    points = write_month(config, communes, month, step_s)
    out: dict[str, Any] = {"communes": len(communes), "points": points, "slot_s": step_s,
                           "write_s": round(time.perf_counter() - started, 1)}  # fmt: skip
    server = psutil.Process(influxd.proc.pid if influxd.proc else 0)
    for fmt in formats:  # each in a fresh process, from nothing kept
        with Store(config.state.path) as store:
            WindowSums(store).forget(0, time.time())
        out[f"{fmt}_cold"] = run_report(path, month, fmt, folder / f"{name}.{fmt}", server)
    for fmt in (*formats, "html"):  # the windows kept by the cold runs, as the collector keeps them
        out[f"{fmt}_warm"] = run_report(path, month, fmt, folder / f"{name}.{fmt}", server)
    out.update(evidence_cost(path, month, folder / f"{name}-evidence.xlsx", server))
    out["scorecard"] = scorecard_latency(influxd, folder / f"{name}-served", sections, month,
                                         [c for _p, c in communes])  # fmt: skip
    return out


def evidence_cost(path: Path, month: Month, out: Path, server: psutil.Process) -> dict[str, Any]:
    """The warm XLSX with the evidence appendix against without it, alternating, the best of each."""
    runs: dict[str, list[dict[str, float]]] = {"with": [], "without": []}
    for _ in range(EVIDENCE_RUNS):
        runs["without"].append(run_report(path, month, "xlsx", out, server, "--no-evidence"))
        runs["with"].append(run_report(path, month, "xlsx", out, server, "--evidence"))
    best = {k: {"seconds": min(r["seconds"] for r in v), "peak_rss_mb": min(r["peak_rss_mb"] for r in v),
                "bytes": v[-1]["bytes"]} for k, v in runs.items()}  # fmt: skip
    return {
        "xlsx_without_evidence": best["without"],
        "xlsx_with_evidence": best["with"],
        "evidence_time_ratio": round(best["with"]["seconds"] / best["without"]["seconds"], 2),
        "evidence_memory_ratio": round(best["with"]["peak_rss_mb"] / best["without"]["peak_rss_mb"], 2),
    }


def scorecard_latency(
    influxd: Influxd, folder: Path, sections: dict[str, dict[str, Any]], month: Month, communes: list[str]
) -> dict[str, float]:
    """p50 and p99 (ms) of one commune's scorecard from a real collector over the scenario's data."""
    import hashlib

    broker = Mosquitto(folder / "broker")
    broker.start()
    token = {"name": "bench", "role": "viewer", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}
    served = ServedCollector(folder, broker, influxd, sections["influxdb"]["database"], state=sections["state"],
                             http={"tokens": [token]})  # fmt: skip
    served.start()
    rng = random.Random(27)
    seconds = []
    try:
        for code in rng.choices(communes, k=SCORECARD_ASKS):
            url = f"{served.url}/api/v1/communes/{code}/scorecard?month={month}"
            started = time.perf_counter()
            status, body = http_get(url, timeout_s=30, headers={"Authorization": f"Bearer {TOKEN}"})
            seconds.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"scorecard of {code}: {status} {body[:300]!r}")
    finally:
        served.stop()
        broker.stop()
    seconds.sort()
    return {"asks": float(len(seconds)), "p50_ms": round(1000 * seconds[len(seconds) // 2], 1),
            "p99_ms": round(1000 * seconds[int(len(seconds) * 0.99) - 1], 1),
            "max_ms": round(1000 * seconds[-1], 1)}  # fmt: skip


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        folder = Path(tmp)
        influxd = Influxd(folder / "influxd")
        influxd.start()
        try:
            province = [("08", c.code) for c in units.communes_of("08")]
            nation = [(p, c.code) for p in _provinces() for c in units.communes_of(p)]
            figures = {"province": scenario(influxd, folder, "province", province, 300, ("xlsx", "pdf"))}
            if os.environ.get("BENCH_REPORT_NATION", "1") != "0":  # 0: the province only (minutes, not a quarter hour)
                figures["nation"] = scenario(influxd, folder, "nation", nation, 1800, ("xlsx", "pdf"))
        finally:
            influxd.stop()
    reference = figures["province"]["xlsx_warm"]["seconds"]
    for name in [n for n in ("province", "nation") if n in figures]:
        for run in ("pdf_cold", "pdf_warm"):
            figures[f"{name}_{run}_vs_province_xlsx_warm"] = round(figures[name][run]["seconds"] / reference, 1)
    print(figures)
    return figures


def _provinces() -> list[str]:
    from vietnam_provinces import Province

    return sorted(f"{int(p.code):02d}" for p in Province.iter_all())


if __name__ == "__main__":
    main()
