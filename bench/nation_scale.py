"""Benchmark: how the cost grows with the fleet, N PCs of a nation through one collector (issue 32).

For each N of ``NATION_N`` (default 3,700, 30,000 and 100,000): a fresh Mosquitto, InfluxDB (with
the national settings ``NATIONAL_DATA``: the TSI index, a larger cache, no series or tag-value
limit) and collector on loopback; N virtual PCs spread over every one of the 3,321 communes of
``vietnam-provinces`` (PC ``pc-NN`` of commune i), one ``metrics`` report each per round, sent
through ``NATION_BRIDGES`` MQTT connections (default 4) standing in for the province bridges
(each carries the provinces whose index modulo the count is its own). The reports are built
before the clock starts (``collector_throughput.Publishers``: raw MQTT, QoS 1), each round paced
evenly over ``NATION_ROUND_S`` (default 30 s: real time, an agent's interval) and stamped with
its planned moment. One round warms the fleet (every PC known, its series made), then
``NATION_ROUNDS`` rounds (default 3) are measured with nothing else asked of the collector, then
one more round carries the API's requests. Figures per N, all from the same run:

- collector and InfluxDB CPU per report received in the measured rounds, and their ratio;
- fleet evaluation time per tick (the collector's ``fleet_evaluate_seconds``: mean and the
  longest bucket reached; its CPU time, ``fleet_evaluate_cpu_seconds_total``, the wall time
  waiting also for the GIL and the shared cores) and per save of the facts (``fleet_save_seconds``);
- collector RSS and InfluxDB RSS (the most seen while measuring), the state file's size (with
  its WAL), InfluxDB's exact series count and series per PC;
- p50/p99 of ``GET /status``, ``/api/v1/communes`` and one commune's ``/api/v1/communes/{code}``,
  ``NATION_REQUESTS`` of each (default 300: the p99 of 60 was the slowest request) spread over
  the last round, the reports still coming;
  and the same again over ``QUIET_SPAN_S`` once the reports have stopped (``api_ms_no_reports``:
  the evaluation ticks and the saves go on, the ingest and InfluxDB's writes do not);
- the load average (``uptime``) at the start and end of the measured rounds: the machine is shared.

With ``NATION_PROFILE=1`` the largest N's collector is sampled by ``py-spy`` over the measured
rounds; the functions holding most samples are printed (``profile``).

The curve is printed as JSON with each figure's ratio to the smallest N, and plotted against N into
``docs/assets/nation-scale.png`` (``NATION_PLOT`` to put it elsewhere). A run of the three sizes
takes about 13 minutes (100,000 PCs: 3,333 reports a second for 2.5 minutes, plus building
their reports); ``NATION_N=3700,30000`` for a quicker one.
Run: ``python -m bench.nation_scale``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from bench.collector_throughput import Plan, Publishers
from collector.registry import units
from common.wire import report_topic
from devtools.localstack import Influxd, Mosquitto, Process, free_port, http_get, wait_until

DATABASE = "nation"
TOKEN = "bench-nation-token"
PLOT = Path(__file__).resolve().parent.parent / "docs" / "assets" / "nation-scale.png"
# What a national InfluxDB 1.x needs ([data] of influxdb.conf; docs/en/nation-scale.md says why):
NATIONAL_DATA = (
    '  index-version = "tsi1"\n'  # the series index on disk, paged in as needed, not all in the heap
    '  cache-max-memory-size = "2g"\n'  # 1g (default) refuses writes when a compaction lags
    '  cache-snapshot-memory-size = "64m"\n'
    "  max-series-per-database = 0\n"  # default 1,000,000 would refuse new PCs' series past that
    "  max-values-per-tag = 0\n"  # default 100,000 would refuse the 100,001st host name
)
SPARE_ROUNDS = 3  # rounds planned beyond the warm one, for a loaded machine that takes longer to know every PC
EVALUATE_CPU = "commune_collector_fleet_evaluate_cpu_seconds_total"
GC_PAUSE = "commune_collector_gc_pause_seconds_total"
QUIET_AFTER_S = 5.0  # after the reports stop, before the API is asked again
QUIET_SPAN_S = 30.0  # the requests with no report coming are spread over this
EVALUATE_COUNT = "commune_collector_fleet_evaluate_seconds_count"
ROUTES = ("/status", "/api/v1/communes", "/api/v1/communes/{code}")


@dataclass(frozen=True)
class Settings:
    sizes: list[int]
    rounds: int
    round_s: float
    bridges: int
    requests: int
    profile: bool
    plot: Path

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ.get
        return cls(
            sizes=[int(n) for n in env("NATION_N", "3700,30000,100000").split(",") if n.strip()],
            rounds=int(env("NATION_ROUNDS", "3")),
            round_s=float(env("NATION_ROUND_S", "30")),
            bridges=int(env("NATION_BRIDGES", "4")),
            requests=int(env("NATION_REQUESTS", "300")),
            profile=env("NATION_PROFILE", "") not in ("", "0"),
            plot=Path(env("NATION_PLOT", str(PLOT))),
        )


def fleet(n: int) -> list[tuple[str, str, str]]:
    """N PCs over every commune in turn: (province, commune, host)."""
    communes = units.every_commune()
    return [(c.province_code, c.code, f"pc-{i // len(communes) + 1:02d}") for i, c in
            ((i, communes[i % len(communes)]) for i in range(n))]  # fmt: skip


def bridge_plans(hosts: list[tuple[str, str, str]], s: Settings, port: int, base_ts: float) -> list[Plan]:
    """One plan per bridge: its provinces' PCs, one report each per round, round r's k-th report
    stamped when it is due (``base_ts + r * round_s + k * round_s / PCs``)."""
    provinces = sorted({p for p, _c, _h in hosts})
    mine: list[list[tuple[str, str, str]]] = [[] for _ in range(s.bridges)]
    for host in hosts:
        mine[provinces.index(host[0]) % s.bridges].append(host)
    plans = []
    for index, own in enumerate(m for m in mine if m):
        step = s.round_s / len(own)
        items = [(report_topic(p, c, h, "metrics"), int(base_ts + r * s.round_s + k * step))
                 for r in range(1 + SPARE_ROUNDS + s.rounds + 1) for k, (p, c, h) in enumerate(own)]  # fmt: skip
        plans.append(Plan(index, port, items, len(own) / s.round_s, f"bridge{index}"))
    return plans


class NationStack:
    """Broker, InfluxDB with the national settings, and a collector, in ``folder``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.broker = Mosquitto(folder / "broker")
        self.influxd = Influxd(folder / "influxd", data=NATIONAL_DATA)
        self.http_port = free_port()
        self.collector: Process | None = None

    @property
    def state(self) -> Path:
        return self.folder / "state.sqlite"

    def start(self) -> None:
        self.broker.start()
        self.influxd.start()
        self.influxd.create_database(DATABASE)
        config = self.folder / "collector.toml"
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        config.write_text(
            f'[mqtt]\nport = {self.broker.port}\nclient_id = "national-collector"\n'
            f'[influxdb]\nurl = "{self.influxd.url}"\ndatabase = "{DATABASE}"\n'
            f'[http]\nport = {self.http_port}\ntokens = [{{name = "bench", role = "admin", sha256 = "{digest}"}}]\n'
            f'[state]\npath = "{self.state}"\n'
        )
        self.collector = Process([sys.executable, "-m", "collector.cli", "serve", "-c", str(config)], self.folder,
                                 "collector")  # fmt: skip
        self.collector.start()
        wait_until(lambda: http_get(f"{self.url}/healthz")[0] == 200, 60, "collector")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def pid(self, name: str) -> int:
        process = {"collector": self.collector, "influxd": self.influxd, "mosquitto": self.broker}[name]
        assert process is not None and process.proc is not None
        return int(process.proc.pid)

    def cpu_s(self) -> dict[str, float]:
        out = {}
        for name in ("collector", "influxd", "mosquitto"):
            times = psutil.Process(self.pid(name)).cpu_times()
            out[name] = times.user + times.system
        return out

    def rss(self, name: str) -> int:
        return int(psutil.Process(self.pid(name)).memory_info().rss)

    def metrics(self) -> dict[str, float]:
        status, body = http_get(f"{self.url}/metrics")
        found: dict[str, float] = {}
        for line in body.decode().splitlines() if status == 200 else []:
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                found[name] = float(value)
        return found

    def get(self, path: str) -> tuple[int, float]:
        """Status and seconds of one GET with the token."""
        request = urllib.request.Request(self.url + path, headers={"Authorization": f"Bearer {TOKEN}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=60) as response:
            response.read()
            status = response.status
        return status, time.perf_counter() - started

    def state_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.folder.glob("state.sqlite*"))

    def series(self) -> tuple[int | None, str]:
        """InfluxDB's series count of the database, exact when it answers within 10 minutes (it reads
        the whole index; slow on a loaded machine), else its estimate; and which it is."""
        for statement, kind in (("SHOW SERIES EXACT CARDINALITY", "exact"), ("SHOW SERIES CARDINALITY", "estimate")):
            query = urllib.parse.urlencode({"q": statement, "db": DATABASE})
            status, body = http_get(f"{self.influxd.url}/query?{query}", timeout_s=600)
            if status != 200:
                continue
            found = json.loads(body)["results"][0].get("series", [])
            return int(sum(row[-1] for serie in found for row in serie.get("values", []))), kind
        return None, "no answer"

    def stop(self) -> None:
        for process in (self.collector, self.influxd, self.broker):
            if process is not None:
                process.stop()


def wait_known(stack: NationStack, n: int, timeout_s: float) -> int:
    """Wait until the collector knows every PC (or ``timeout_s``); how many it knows then."""
    deadline = time.monotonic() + timeout_s
    known = 0
    while time.monotonic() < deadline:
        known = int(stack.metrics().get("commune_collector_known_hosts", 0))
        if known >= n:
            break
        time.sleep(2)
    return known


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else 0.0


class Prober(threading.Thread):
    """The API's three pages asked in turn, evenly over ``span_s``, each timed; the process RSS
    of the collector and InfluxDB sampled meanwhile."""

    def __init__(self, stack: NationStack, span_s: float, requests: int, commune: str) -> None:
        super().__init__(daemon=True)
        self.stack, self.span_s, self.requests, self.commune = stack, span_s, requests, commune
        self.times: dict[str, list[float]] = {route: [] for route in ROUTES}
        self.failed: Counter[str] = Counter()
        self.rss = {"collector": 0, "influxd": 0}

    def latencies(self) -> dict[str, dict[str, float]]:
        """Each route's p50, p99 and slowest in ms, with how many answered and how many failed."""
        return {
            route: {
                "p50": round(1000 * percentile(t, 0.5), 1),
                "p99": round(1000 * percentile(t, 0.99), 1),
                "max": round(1000 * max(t, default=0.0), 1),
                "n": len(t),
                "failed": self.failed[route],
            }
            for route, t in self.times.items()
        }

    def run(self) -> None:
        started = time.monotonic()
        for i in range(self.requests * len(ROUTES)):
            wait = started + i * self.span_s / (self.requests * len(ROUTES)) - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            route = ROUTES[i % len(ROUTES)]
            try:
                status, seconds = self.stack.get(route.format(code=self.commune))
            except OSError:
                status, seconds = 0, 0.0
            if status == 200:
                self.times[route].append(seconds)
            else:
                self.failed[route] += 1
            for name in self.rss:
                self.rss[name] = max(self.rss[name], self.stack.rss(name))


def evaluate_figures(before: dict[str, float], after: dict[str, float], name: str) -> dict[str, float]:
    """Mean seconds of one ``name`` (a histogram) between two scrapes, and the smallest bucket
    bound that holds every one of them."""
    prefix = f"commune_collector_{name}"
    count = after.get(f"{prefix}_count", 0.0) - before.get(f"{prefix}_count", 0.0)
    total = after.get(f"{prefix}_sum", 0.0) - before.get(f"{prefix}_sum", 0.0)
    bounds = sorted(
        (float(key.split('le="')[1].rstrip('"}')), after[key] - before.get(key, 0.0))
        for key in after
        if key.startswith(f"{prefix}_bucket") and "+Inf" not in key
    )
    longest = next((bound for bound, seen in bounds if seen >= count), float("inf")) if count else 0.0
    return {"count": count, "mean_s": round(total / count, 3) if count else 0.0, "all_within_s": longest}


def profile(pid: int, seconds: float, folder: Path) -> dict[str, Any]:
    """py-spy's samples of the collector over ``seconds``: the functions on most stacks (inclusive)
    and at the top of most (self), as shares of all samples."""
    out = folder / "profile.txt"
    run = subprocess.run(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "-d", str(int(seconds)),
         "-r", "50", "-f", "raw", "-o", str(out), "--nonblocking"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if run.returncode != 0 or not out.exists():
        return {"error": (run.stderr or run.stdout)[-500:]}
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in out.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        count = int(count_text)
        frames = [frame.split(" (")[0] + " (" + frame.split(" (")[1].split(":")[0].rsplit("/", 1)[-1] + ")"
                  if " (" in frame else frame for frame in stack.split(";")]  # fmt: skip
        total += count
        own[frames[-1]] += count
        for frame in set(frames):
            inclusive[frame] += count
    share = {name: round(100 * n / total, 1) for name, n in inclusive.most_common(40)}
    return {"samples": total, "inclusive_percent": share,
            "self_percent": {name: round(100 * n / total, 1) for name, n in own.most_common(25)}}  # fmt: skip


def run_one(n: int, s: Settings, folder: Path, with_profile: bool) -> dict[str, Any]:
    stack = NationStack(folder)
    try:
        stack.start()
        hosts = fleet(n)
        margin = 20 + n / 2500  # building every bridge's reports: about 40 s for 100,000 PCs
        base = time.time() + margin
        publishers = Publishers(bridge_plans(hosts, s, stack.broker.port, base))
        publishers.prepare()
        start = max(base, time.time() + 1)
        publishers.go(start)
        window_at = start + s.round_s  # after the warm round
        time.sleep(max(0.0, window_at - time.time()))
        known = wait_known(stack, n, (1 + SPARE_ROUNDS) * s.round_s)  # a loaded machine lags behind the warm round
        window_s = s.round_s * s.rounds  # from when every PC is known: the spare rounds keep reports coming
        metrics_before, cpu_before, load_before = stack.metrics(), stack.cpu_s(), load()
        t0 = time.monotonic()
        spied = profile(stack.pid("collector"), window_s * 0.9, folder) if with_profile else None
        rss = {"collector": 0, "influxd": 0}
        while time.monotonic() - t0 < window_s:  # the CPU window: nothing asked of the API
            rss = {name: max(rss[name], stack.rss(name)) for name in rss}
            time.sleep(min(2.0, max(0.0, window_s - (time.monotonic() - t0))))
        metrics_after, cpu_after, load_after = stack.metrics(), stack.cpu_s(), load()
        elapsed = time.monotonic() - t0
        prober = Prober(stack, s.round_s * 0.95, s.requests, hosts[len(hosts) // 2][1])
        prober.start()  # the last round: the API's pages asked while the reports keep coming
        prober.join(s.round_s + 300)
        publishers.stop()  # the spare rounds not needed
        time.sleep(QUIET_AFTER_S)  # what the broker still held, taken in
        stopped = Prober(stack, QUIET_SPAN_S, s.requests, hosts[len(hosts) // 2][1])
        stopped.start()  # the same requests with no report coming: the evaluator and the save still run
        stopped.join(QUIET_SPAN_S + 300)
        received = (
            metrics_after["commune_collector_messages_received_total"]
            - metrics_before["commune_collector_messages_received_total"]
        )
        cpu = {name: cpu_after[name] - cpu_before[name] for name in cpu_after}
        us = {name: round(1e6 * seconds / received, 1) for name, seconds in cpu.items()}
        series, series_kind = stack.series()
        figures: dict[str, Any] = {
            "pcs": n,
            "communes": len({c for _p, c, _h in hosts}),
            "bridges": min(s.bridges, len({p for p, _c, _h in hosts})),
            "known_at_window": known,
            "window_s": round(elapsed, 1),
            "reports_per_s": round(received / elapsed, 1),
            "reports_expected_per_s": round(n / s.round_s, 1),
            "cpu_us_per_report": us,
            "collector_over_influxd": round(us["collector"] / us["influxd"], 3) if us["influxd"] else None,
            "cpu_percent_of_one_core": {name: round(100 * c / elapsed, 1) for name, c in cpu.items()},
            "backlog_reports": metrics_after.get("commune_collector_reports_backlog_total", 0.0),
            "evaluate": evaluate_figures(metrics_before, metrics_after, "fleet_evaluate_seconds"),
            "evaluate_cpu_mean_s": round(
                (metrics_after.get(EVALUATE_CPU, 0.0) - metrics_before.get(EVALUATE_CPU, 0.0))
                / max(1.0, metrics_after.get(EVALUATE_COUNT, 0.0) - metrics_before.get(EVALUATE_COUNT, 0.0)),
                3,
            ),
            "save": evaluate_figures(metrics_before, metrics_after, "fleet_save_seconds"),
            "gc_full_collections": metrics_after.get('python_gc_collections_total{generation="2"}', 0.0)
            - metrics_before.get('python_gc_collections_total{generation="2"}', 0.0),
            "gc_pause_s": {  # the collector's whole process stops while it collects
                g: round(
                    metrics_after.get(f'{GC_PAUSE}{{generation="{g}"}}', 0.0)
                    - metrics_before.get(f'{GC_PAUSE}{{generation="{g}"}}', 0.0),
                    3,
                )
                for g in "012"
            },
            "collector_rss_mb": round(max(prober.rss["collector"], rss["collector"]) / 2**20, 1),
            "influxd_rss_mb": round(max(prober.rss["influxd"], rss["influxd"]) / 2**20, 1),
            "state_file_mb": round(stack.state_bytes() / 2**20, 2),
            "influx_series": series,
            "influx_series_count": series_kind,
            "series_per_pc": round(series / n, 2) if series else None,
            "api_ms": prober.latencies(),
            "api_ms_no_reports": stopped.latencies(),
            "load_before_after": [load_before, load_after],
        }
        if spied is not None:
            figures["profile"] = spied
        print(json.dumps(figures), flush=True)
        return figures
    finally:
        stack.stop()


def curve(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each figure against N, and as a ratio to the smallest N's."""
    first = runs[0]
    picks = {
        "collector_us_per_report": lambda r: r["cpu_us_per_report"]["collector"],
        "influxd_us_per_report": lambda r: r["cpu_us_per_report"]["influxd"],
        "collector_over_influxd": lambda r: r["collector_over_influxd"],
        "evaluate_mean_s": lambda r: r["evaluate"]["mean_s"],
        "evaluate_cpu_mean_s": lambda r: r.get("evaluate_cpu_mean_s"),
        "save_mean_s": lambda r: r["save"]["mean_s"],
        "collector_rss_mb": lambda r: r["collector_rss_mb"],
        "state_file_mb": lambda r: r["state_file_mb"],
        "influx_series": lambda r: r["influx_series"],
        "influxd_rss_mb": lambda r: r["influxd_rss_mb"],
        **{f"p99_ms {route}": (lambda r, route=route: r["api_ms"][route]["p99"]) for route in ROUTES},
    }
    out: dict[str, Any] = {"pcs": [r["pcs"] for r in runs]}
    for name, pick in picks.items():
        values = [pick(r) for r in runs]
        base = pick(first) or 0
        out[name] = {"values": values, "ratio_to_first": [round(v / base, 2) if base and v is not None else None
                                                          for v in values]}  # fmt: skip
    return out


def plot(found: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [name for name in found if name != "pcs"]
    columns = 4
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows))
    pcs = found["pcs"]
    for axis, name in zip(axes.flat, names, strict=False):
        axis.plot(pcs, found[name]["values"], marker="o")
        axis.set_xscale("log")
        axis.set_title(name, fontsize=9)
        axis.set_xlabel("PCs")
        axis.set_ylim(bottom=0)
        axis.grid(True, alpha=0.3)
    for axis in list(axes.flat)[len(names) :]:
        axis.axis("off")
    figure.suptitle("commune-monitor: one national collector, cost against PCs (bench/nation_scale.py)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=80)
    plt.close(figure)


def main() -> dict[str, Any]:
    s = Settings.from_env()
    runs = []
    for n in s.sizes:
        with tempfile.TemporaryDirectory(prefix=f"bench-nation-{n}-") as folder:
            runs.append(run_one(n, s, Path(folder), s.profile and n == max(s.sizes)))
    found = {"settings": {"rounds": s.rounds, "round_s": s.round_s, "bridges": s.bridges,
                          "requests_per_route": s.requests}, "runs": runs, "curve": curve(runs)}  # fmt: skip
    if len(runs) > 1:
        plot(found["curve"], s.plot)
        found["plot"] = str(s.plot)
    print(json.dumps(found["curve"], indent=2))
    return found


if __name__ == "__main__":
    main()
