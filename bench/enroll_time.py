"""Benchmark: enrolling 500 hosts in bulk (``commune-collector enroll --from hosts.csv``) and 500 by
key (500 ``POST /api/v1/enroll``, one after another, through the agent's own urllib code), on a
real Mosquitto with the dynamic-security plugin and a real collector on loopback.

The reference, in the same run, is one ``commune-collector enroll`` of a single host (a process
that starts, reaches the broker and enrols one host: what the old way cost per host, before its
broker reload). Each figure is also given per host and as a ratio to that reference. At the end,
the plugin's own file must list every host, or the run is reported as failed.
Run: ``python -m bench.enroll_time``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from agent.enroll import request_enrollment
from devtools.localstack import Influxd, Mosquitto, Process, free_port, http_get, wait_until

REPO = Path(__file__).resolve().parent.parent
HOSTS = 500
ADMIN = ("dynsec-admin", "bench-admin-password")


def collector_config(folder: Path, broker_port: int, influxd: Influxd, http_port: int) -> Path:
    path = folder / "collector.toml"
    path.write_text(
        f'[mqtt]\nport = {broker_port}\nusername = "collector"\npassword = "bench-collector-password"\n'
        f'[influxdb]\nurl = "{influxd.url}"\n'
        f"[http]\nport = {http_port}\n"
        f'[state]\npath = "{folder / "state.sqlite"}"\n'
        f'[enroll]\nadmin_username = "{ADMIN[0]}"\nadmin_password = "{ADMIN[1]}"\nbroker_port = {broker_port}\n'
        f"failures_per_address = 1000\n"
    )
    return path


def cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "collector.cli", *args, "-c", str(config)],
        capture_output=True, text=True, cwd=REPO, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"commune-collector {' '.join(args[:2])} failed: {done.stderr[-500:]}")
    return done


def timed(work: Any) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def main() -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-enroll-") as name:
        folder = Path(name)
        influxd = Influxd(folder / "influxd")
        broker_port, http_port = free_port(), free_port()
        config = collector_config(folder, broker_port, influxd, http_port)
        cli(config, "registry", "import-areas", str(REPO / "config" / "areas.example.csv"))
        dynsec_file = folder / "broker" / "dynamic-security.json"
        cli(config, "dynsec-init", "--out", str(dynsec_file))
        broker = Mosquitto(folder / "broker", port=broker_port, allow_anonymous=False, dynsec_file=dynsec_file)
        collector = Process([sys.executable, "-m", "collector.cli", "serve", "-c", str(config)], folder, "collector")
        try:
            influxd.start()
            broker.start()
            collector.start()
            url = f"http://127.0.0.1:{http_port}"
            wait_until(lambda: http_get(f"{url}/healthz")[0] == 200, 60, "the collector")

            reference = ("enroll", "--province", "08", "--commune", "02215", "--host", "pc-reference")
            single_s = timed(lambda: cli(config, *reference, "--out", str(folder / "reference.toml")))
            rows = "".join(f"08,02536,pc-bulk-{n:03d}\n" for n in range(HOSTS))
            (folder / "hosts.csv").write_text("province,commune,host\n" + rows)
            bulk_s = timed(lambda: cli(config, "enroll", "--from", str(folder / "hosts.csv"),
                                       "--out-dir", str(folder / "configs")))  # fmt: skip
            key = cli(config, "enroll-key", "add", "--area", "yen-son", "--expires", "1d").stdout.strip()

            def by_key() -> None:
                for n in range(HOSTS):
                    request_enrollment(url, key, "08", "02473", f"pc-key-{n:03d}")

            key_s = timed(by_key)
            wait_until(lambda: len(json.loads(dynsec_file.read_text())["clients"]) >= 2 * HOSTS + 3, 30, "the file")
        finally:
            collector.stop()
            broker.stop()
            influxd.stop()
        users = {client["username"] for client in json.loads(dynsec_file.read_text())["clients"]}
    complete = {f"08-02536-pc-bulk-{n:03d}" for n in range(HOSTS)} | {f"08-02473-pc-key-{n:03d}" for n in range(HOSTS)}
    figures = {
        "hosts": HOSTS,
        "reference_one_host_cli_s": round(single_s, 3),
        "bulk_s": round(bulk_s, 2),
        "bulk_per_host_ms": round(1000 * bulk_s / HOSTS, 2),
        "bulk_vs_reference": round(bulk_s / single_s, 2),
        "by_key_s": round(key_s, 2),
        "by_key_per_host_ms": round(1000 * key_s / HOSTS, 2),
        "by_key_vs_reference": round(key_s / single_s, 2),
        "every_host_in_the_broker": complete <= users,
    }
    print(json.dumps(figures, indent=2))
    return figures


if __name__ == "__main__":
    main()
