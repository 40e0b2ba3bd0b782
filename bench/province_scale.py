"""Benchmark: a whole province of connections on this machine, and what each process pays for it.

Real Mosquitto, InfluxDB and collector on loopback, and ``commune-sim`` with
Tuyên Quang's 124 communes times ``BENCH_SCALE_HOSTS_PER_COMMUNE`` PCs (30: 3,720 connections,
each with its own client id and Last Will), reporting every ``BENCH_SCALE_INTERVAL_S`` (30 s, the
agent's default) from ``BENCH_SCALE_PROCESSES`` simulator processes. Figures, from one run:

- connect time: from the simulator's start until the broker holds every connection;
- held: the fewest connections the broker held at any sample of the measuring window, and the
  PCs the collector calls online at its end;
- CPU over ``BENCH_SCALE_WINDOW_S`` of steady reporting, as a share of one core, for the
  simulator (with its workers), broker, collector and InfluxDB, and the reports a second the
  collector took in that window.

Run: ``python -m bench.province_scale``. The recovery scenarios (``bench.recovery``) start the same
stack through ``ProvinceStack``.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from devtools.localstack import Influxd, Mosquitto, Process, free_port, http_get, wait_until

DATABASE = "province"
TOKEN = "bench-admin-token"


def setting(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


class ProvinceStack:
    """Broker, InfluxDB, collector and simulator in ``folder``, with their CPU time and counts."""

    def __init__(self, folder: Path, fleet: str = "") -> None:
        self.folder = folder
        self.broker = Mosquitto(folder / "broker")
        self.influxd = Influxd(folder / "influxd")
        self.http_port = free_port()
        self.config = folder / "collector.toml"
        self.fleet = fleet  # extra lines for [fleet]
        self.collector = self._collector()
        self.simulator: Process | None = None

    def _collector(self) -> Process:
        return Process(
            [sys.executable, "-m", "collector.cli", "serve", "-c", str(self.config)], self.folder, "collector"
        )

    def write_config(self) -> None:
        digest = hashlib.sha256(TOKEN.encode()).hexdigest()
        self.config.write_text(
            f'[mqtt]\nport = {self.broker.port}\nclient_id = "province-collector"\n'
            f'[influxdb]\nurl = "{self.influxd.url}"\ndatabase = "{DATABASE}"\n'
            f'[http]\nport = {self.http_port}\ntokens = [{{name = "bench", role = "admin", sha256 = "{digest}"}}]\n'
            f'[state]\npath = "{self.folder / "state.sqlite"}"\n[fleet]\n{self.fleet}\n'
        )

    def start(self) -> None:
        self.broker.start()
        self.influxd.start()
        self.influxd.create_database(DATABASE)
        self.start_collector()

    def start_collector(self) -> None:
        """Start a collector; each on an HTTP port free now (another may have taken the last one meanwhile)."""
        self.http_port = free_port()
        self.write_config()
        self.collector = self._collector()
        self.collector.start()
        wait_until(lambda: http_get(f"http://127.0.0.1:{self.http_port}/healthz")[0] == 200, 60, "collector")

    def simulate(self, hosts_per_commune: int, interval_s: float, processes: int, *extra: str) -> Process:
        self.simulator = Process(
            [sys.executable, "-m", "devtools.simulate.cli", "-c", str(self.config), "--fault-share", "0",
             "--hosts-per-commune", str(hosts_per_commune), "--interval", str(interval_s),
             "--processes", str(processes), *extra],
            self.folder, "simulate",
        )  # fmt: skip
        self.simulator.start()
        return self.simulator

    def processes(self) -> dict[str, Process | None]:
        return {"simulator": self.simulator, "mosquitto": self.broker, "collector": self.collector,
                "influxd": self.influxd}  # fmt: skip

    def cpu_s(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far by each process, a simulator's workers included."""
        out: dict[str, float] = {}
        for name, process in self.processes().items():
            if process is None or process.proc is None or not process.running():
                continue
            parent = psutil.Process(process.proc.pid)
            for each in (parent, *parent.children(recursive=True)):
                times = each.cpu_times()
                out[name] = out.get(name, 0.0) + times.user + times.system
        return out

    def connections(self) -> int:
        """MQTT connections the broker holds now (established TCP on its port, the collector's too)."""
        assert self.broker.proc is not None
        sockets = psutil.Process(self.broker.proc.pid).net_connections(kind="tcp")
        return sum(1 for s in sockets if s.status == psutil.CONN_ESTABLISHED and s.laddr.port == self.broker.port)

    def api(self, path: str) -> Any:
        """GET an API path; a list route's pages are followed (``Link: <...>; rel="next"``) and joined."""
        found: Any = None
        while path:
            request = urllib.request.Request(
                f"http://127.0.0.1:{self.http_port}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
            )
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    body, link = json.loads(response.read()), response.headers.get("Link", "")
            except urllib.error.HTTPError as exc:
                raise RuntimeError(f"GET {path} -> {exc.code} {exc.read()[:200]!r}") from None
            found = body if found is None else found + body
            path = link[1 : link.index(">")] if link.endswith('rel="next"') else ""
        return found

    def online(self) -> int:
        return sum(1 for host in self.api("/api/v1/hosts") if host["status"] == "online")

    def metric(self, name: str) -> float:
        status, body = http_get(f"http://127.0.0.1:{self.http_port}/metrics")
        if status != 200:
            return 0.0
        return next(
            (float(line.split()[-1]) for line in body.decode().splitlines() if line.startswith(name + " ")), 0.0
        )

    def stop(self) -> None:
        for process in (self.simulator, self.collector, self.influxd, self.broker):
            if process is not None:
                process.stop()


def run(folder: Path) -> dict[str, Any]:
    per_commune = int(setting("BENCH_SCALE_HOSTS_PER_COMMUNE", 30))
    interval_s = setting("BENCH_SCALE_INTERVAL_S", 30)
    processes = int(setting("BENCH_SCALE_PROCESSES", 1))
    window_s = setting("BENCH_SCALE_WINDOW_S", 60)
    hosts = 124 * per_commune
    stack = ProvinceStack(folder)
    try:
        stack.start()
        started = time.monotonic()
        stack.simulate(per_commune, interval_s, processes)
        wait_until(lambda: stack.connections() >= hosts + 1, 300, f"{hosts} connections", interval_s=1)
        connect_s = time.monotonic() - started
        wait_until(lambda: stack.online() >= hosts, 2 * interval_s + 60, "every PC online", interval_s=2)
        time.sleep(interval_s)  # one round in steady state before measuring
        cpu_before, received_before, t0 = (
            stack.cpu_s(),
            stack.metric("commune_collector_messages_received_total"),
            time.monotonic(),
        )
        held = hosts + 1
        while time.monotonic() - t0 < window_s:
            held = min(held, stack.connections())
            time.sleep(2)
        cpu_after, received_after = stack.cpu_s(), stack.metric("commune_collector_messages_received_total")
        elapsed = time.monotonic() - t0
        return {
            "hosts": hosts,
            "simulator_processes": processes,
            "interval_s": interval_s,
            "connect_all_s": round(connect_s, 1),
            "connections_held_min": held - 1,  # less the collector's own
            "online_at_collector": stack.online(),
            "reports_per_s": round((received_after - received_before) / elapsed, 1),
            "cpu_percent_of_one_core": {
                name: round(100 * (cpu_after[name] - cpu_before.get(name, 0.0)) / elapsed, 1) for name in cpu_after
            },
            "window_s": round(elapsed),
        }
    finally:
        stack.stop()


def in_a_folder(run: Callable[[Path], dict[str, Any]], prefix: str) -> dict[str, Any]:
    """Run a benchmark in a temporary folder and print its figures as JSON."""
    with tempfile.TemporaryDirectory(prefix=prefix) as folder:
        figures = run(Path(folder))
    print(json.dumps(figures, indent=2))
    return figures


def main() -> dict[str, Any]:
    return in_a_folder(run, "bench-scale-")


if __name__ == "__main__":
    main()
