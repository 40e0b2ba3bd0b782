"""``make demo``: the whole stack on loopback in ./.demo: broker, InfluxDB, collector, two real agents
and a simulated province (``commune-collector simulate``: 124 communes with faults), with 35 days of
its history backfilled in the background for the dashboards and the monthly report.

Runs in the foreground until Ctrl-C, then stops everything it started. Data stays in ./.demo
between runs; delete that folder to start afresh.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

from devtools.localstack import Influxd, Mosquitto, Process, free_port, http_get, wait_until

DEMO_DIR = Path(".demo").resolve()
BACKFILL_DAYS = 35
DEMO_AGENTS = (("08", "02473", "pc-motcua-01"), ("08", "02536", "pc-ketoan-01"))


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def collector_config(broker: Mosquitto, influxd: Influxd, http_port: int) -> Path:
    return _write(
        DEMO_DIR / "collector" / "collector.toml",
        f'[mqtt]\nport = {broker.port}\n[influxdb]\nurl = "{influxd.url}"\ndatabase = "commune"\n'
        f'raw_retention = "40d"\n'  # the 35 days of backfilled history fit
        f'[http]\nport = {http_port}\n[state]\npath = "{DEMO_DIR / "collector" / "state.sqlite"}"\n',
    )


def agent_config(broker: Mosquitto, province: str, commune: str, host: str) -> Path:
    folder = DEMO_DIR / "agents" / host
    return _write(
        folder / "agent.toml",
        f'[identity]\nprovince = "{province}"\ncommune = "{commune}"\nhost = "{host}"\n'
        f"[mqtt]\nport = {broker.port}\n[collect]\ninterval_s = 10\n"
        f'[spool]\npath = "{folder / "spool.sqlite"}"\n',
    )


def demo_registry(config: Path) -> str:
    """Example lines and areas into the registry, and a fresh admin token for the API (printed)."""

    def cli(*args: str) -> str:
        command = [sys.executable, "-m", "collector.cli", *args, "-c", str(config)]
        return subprocess.run(command, check=False, capture_output=True, text=True).stdout.strip()

    examples = Path(__file__).resolve().parent.parent / "config"
    cli("registry", "import", str(examples / "lines.example.csv"))
    cli("registry", "import-areas", str(examples / "areas.example.csv"))
    cli("token", "revoke", "--name", "demo")
    return cli("token", "add", "--name", "demo", "--role", "admin")


def main() -> int:
    DEMO_DIR.mkdir(exist_ok=True)
    broker = Mosquitto(DEMO_DIR / "mosquitto")
    influxd = Influxd(DEMO_DIR / "influxdb")
    started: list[Process] = []
    try:
        for service in (broker, influxd):
            service.start()
            started.append(service)
        http_port = free_port()
        config = collector_config(broker, influxd, http_port)
        subprocess.run(
            [sys.executable, "-m", "collector.cli", "setup-influx", "-c", str(config)], check=True, capture_output=True
        )
        token = demo_registry(config)
        collector = Process(
            [sys.executable, "-m", "collector.cli", "serve", "-c", str(config)], config.parent, "collector"
        )
        collector.start()
        started.append(collector)
        wait_until(lambda: http_get(f"http://127.0.0.1:{http_port}/healthz")[0] == 200, 30, "collector")
        for province, commune, host in DEMO_AGENTS:
            path = agent_config(broker, province, commune, host)
            agent = Process([sys.executable, "-m", "agent.cli", "run", "-c", str(path)], path.parent, "agent")
            agent.start()
            started.append(agent)
        simulator = Process(
            [sys.executable, "-m", "collector.cli", "simulate", "-c", str(config), "--interval", "10",
             "--fault-after", "60", "--plan-out", str(DEMO_DIR / "simulated-province.json")],
            DEMO_DIR / "simulate", "simulate",  # not DEMO_DIR: its collector/ folder would shadow the package
        )  # fmt: skip
        simulator.workdir.mkdir(exist_ok=True)
        simulator.start()
        started.append(simulator)
        # A month of history for the dashboards and the monthly report: the same plan and seed as the
        # live simulator, at the rollups' 5 minutes, in the background and at a low priority so the
        # live demo starts at once (it takes minutes on 2 cores; its log says when it is done).
        backfill = Process(
            ["nice", "-n", "15", sys.executable, "-m", "collector.cli", "simulate", "-c", str(config),
             "--backfill-days", str(BACKFILL_DAYS), "--backfill-interval", "300"],
            DEMO_DIR / "backfill", "backfill",
        )  # fmt: skip
        backfill.workdir.mkdir(exist_ok=True)
        backfill.start()
        started.append(backfill)
        print(
            "\ncommune-monitor demo is running (Ctrl-C to stop)\n"
            f"  MQTT broker      mqtt://127.0.0.1:{broker.port}\n"
            f"  InfluxDB         {influxd.url}  (database 'commune', InfluxQL)\n"
            f"  Status page      http://127.0.0.1:{http_port}/status  (Tuyên Quang's 124 communes, simulated)\n"
            f"  Collector API    http://127.0.0.1:{http_port}/api/v1/communes  (admin token below)\n"
            f'                   curl -H "Authorization: Bearer {token}" http://127.0.0.1:{http_port}/api/v1/alerts\n'
            f"  Health, metrics  http://127.0.0.1:{http_port}/healthz  http://127.0.0.1:{http_port}/metrics\n"
            f"  Grafana          dashboards/ (see README, Grafana dashboards): provisioning files and\n"
            f"                   dashboards to load, or: commune-collector grafana sync -c {config}\n"
            f"  Faults injected  after 60 s; which communes and PCs: {DEMO_DIR}/simulated-province.json\n"
            f"  History          {BACKFILL_DAYS} days being backfilled in the background; done when\n"
            f"                   {DEMO_DIR}/backfill/backfill.log ends with its counts. Then:\n"
            f"                   commune-collector report --month YYYY-MM --format pdf --out r.pdf -c {config}\n"
            f"  Logs             {DEMO_DIR}/*/*.log\n",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
    finally:
        for process in reversed(started):
            process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
