"""``make demo``: the whole stack on loopback in ./.demo: broker, InfluxDB, collector, two real agents
and a simulated province (``commune-sim``: 124 communes with faults), with 35 days of its history
backfilled in the background (``commune-sim --backfill-days``) for the dashboards and the monthly
report. ``--days`` and ``--communes`` make the history shorter and the province smaller (the tests
use them); the banner prints the commands to run once the history is there, with the month to ask.

The broker is closed, as in production: Mosquitto's dynamic-security file comes from
``commune-collector dynsec-init`` (the admin and the collector's user; anonymous clients and
everything not granted are refused), and the two agents enrol themselves the way a commune PC
does: ``commune-collector enroll-key add --area ...`` makes a key for each area, then each agent
runs ``commune-agent enroll --url ... --key ...`` against the collector and receives its own MQTT
user, which may publish only its own topics. The banner prints the same two commands for one more
PC, ready to paste: the simulated province's areas agree with ``config/areas.example.csv``. The
simulated province is one more user, made live over ``$CONTROL/dynamic-security/v1``, that may
publish reports under province 08 only.

Runs in the foreground until Ctrl-C, then stops everything it started. Data stays in ./.demo
between runs (the secrets too, in files of mode 0600); delete that folder to start afresh.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

from collector.config import MqttSettings, ReportSettings, load_config
from collector.localtime import Month
from collector.registry.dynsec import DynsecAdmin, DynsecError, acl
from collector.reports.build import hours_of
from common.private_file import write_private
from common.wire import REPORT_KINDS, TOPIC_ROOT
from devtools.localstack import Influxd, Mosquitto, Process, free_port, http_get, wait_until

DEMO_DIR = Path(".demo").resolve()
BACKFILL_DAYS = 35
DEMO_PROVINCE = "08"
DEMO_AGENTS = (("yen-son", "02473", "pc-motcua-01"), ("son-duong", "02536", "pc-ketoan-01"))  # area, commune, host
ONE_MORE_PC = ("yen-son", "02473", "pc-motcua-02")  # the banner's enrolment, for the reader to paste
SIMULATOR_USER = "demo-simulated-province"
DYNSEC_ADMIN_USER = "dynsec-admin"
COLLECTOR_USER = "collector"


def _cli(program: str, *args: str) -> str:
    """``commune-collector ARGS`` or ``commune-agent ARGS`` (by module); its stdout; RuntimeError with stderr."""
    done = subprocess.run([sys.executable, "-m", program, *args], check=False, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{program} {args[0]} failed: {done.stderr.strip()[-500:]}")
    return done.stdout.strip()


def kept_secrets(config: Path) -> tuple[str, str]:
    """The collector's MQTT password and the broker admin's, from the last run's config, or new ones."""
    with contextlib.suppress(OSError, tomllib.TOMLDecodeError, KeyError):
        kept = tomllib.loads(config.read_text())
        return str(kept["mqtt"]["password"]), str(kept["enroll"]["admin_password"])
    return secrets.token_urlsafe(18), secrets.token_urlsafe(18)


def collector_config(
    path: Path, broker_port: int, influxd: Influxd, http_port: int, mqtt: tuple[str, str], admin_password: str = ""
) -> Path:
    """A config for ``commune-collector`` (mode 0600: it holds passwords); ``mqtt`` is its (user,
    password); with ``admin_password`` it administers the broker's users and enrols PCs."""
    enroll = (
        f'[enroll]\nadmin_username = "{DYNSEC_ADMIN_USER}"\nadmin_password = "{admin_password}"\n'
        f'broker_host = "127.0.0.1"\nbroker_port = {broker_port}\n'
    )
    write_private(
        path,
        f'[mqtt]\nport = {broker_port}\nusername = "{mqtt[0]}"\npassword = "{mqtt[1]}"\n'
        f'[influxdb]\nurl = "{influxd.url}"\ndatabase = "commune"\n'
        f'raw_retention = "40d"\n'  # the 35 days of backfilled history fit
        f'[http]\nport = {http_port}\n[state]\npath = "{DEMO_DIR / "collector" / "state.sqlite"}"\n'
        + (enroll if admin_password else ""),
    )
    return path


def demo_registry(config: Path) -> str:
    """Example lines and areas into the registry, and a fresh admin token for the API (printed)."""
    examples = Path(__file__).resolve().parent.parent / "config"
    _cli("collector.cli", "registry", "import", str(examples / "lines.example.csv"), "-c", str(config))
    _cli("collector.cli", "registry", "import-areas", str(examples / "areas.example.csv"), "-c", str(config))
    with contextlib.suppress(RuntimeError):  # none yet on the first run
        _cli("collector.cli", "token", "revoke", "--name", "demo", "-c", str(config))
    return _cli("collector.cli", "token", "add", "--name", "demo", "--role", "admin", "-c", str(config))


def closed_broker(config: Path, port: int) -> Mosquitto:
    """Mosquitto with the dynamic-security file ``dynsec-init`` writes (once; the broker keeps it up to
    date afterwards): only the admin, the collector and enrolled hosts get in."""
    folder = DEMO_DIR / "broker"
    dynsec_file = folder / "dynamic-security.json"
    if not dynsec_file.exists():
        _cli("collector.cli", "dynsec-init", "--out", str(dynsec_file), "-c", str(config))
    return Mosquitto(folder, port=port, allow_anonymous=False, dynsec_file=dynsec_file)


def simulator_user(config: Path, port: int) -> str:
    """The simulated province's MQTT user, made live through the plugin's control topic: it may publish
    reports for any PC of province 08 and read their commands, nothing else. Returns its password."""
    password = secrets.token_urlsafe(18)
    settings = tomllib.loads(config.read_text())["enroll"]
    role = f"{SIMULATOR_USER}-role"
    base = f"{TOPIC_ROOT}/{DEMO_PROVINCE}/+/+"
    acls = [acl("publishClientSend", f"{base}/{kind}") for kind in REPORT_KINDS] + [
        acl("subscribePattern", f"{base}/cmd/#"),
        acl("publishClientReceive", f"{base}/cmd/#"),
    ]
    admin = DynsecAdmin(MqttSettings(port=port), settings["admin_username"], settings["admin_password"], 10.0)
    admin.start()
    try:
        with contextlib.suppress(DynsecError):  # made by an earlier run: made again, with a new password
            admin.run([{"command": "deleteClient", "username": SIMULATOR_USER}])
        with contextlib.suppress(DynsecError):
            admin.run([{"command": "deleteRole", "rolename": role}])
        admin.run(
            [
                {"command": "createRole", "rolename": role, "acls": acls},
                {"command": "createClient", "username": SIMULATOR_USER, "password": password,
                 "roles": [{"rolename": role}]},
            ]
        )  # fmt: skip
    finally:
        admin.close()
    return password


def enrolled_agent(config: Path, url: str, area: str, commune: str, host: str, broker_port: int) -> tuple[Path, str]:
    """Enrols one demo PC as a commune PC does (an area key, then ``commune-agent enroll``), once;
    later runs keep its config and only point it at this run's broker port. Returns the config and
    what was done, for the banner."""
    folder = DEMO_DIR / "agents" / host
    enrolled = folder / "enrolled.toml"
    done = f"{host}: enrolled in an earlier run ({enrolled})"
    if not enrolled.exists():
        folder.mkdir(parents=True, exist_ok=True)
        key = _cli("collector.cli", "enroll-key", "add", "--area", area, "--expires", "1d", "-c", str(config))
        _cli("agent.cli", "enroll", "--url", url, "--key", key, "--province", DEMO_PROVINCE, "--commune", commune,
             "--host", host, "--out", str(enrolled), "--insecure-http")  # fmt: skip
        done = (
            f"commune-collector enroll-key add --area {area} --expires 1d  ->  key {key[:6]}...\n"
            f"                   commune-agent enroll --url {url} --key {key[:6]}... --province {DEMO_PROVINCE}"
            f" --commune {commune} --host {host} --out {enrolled} --insecure-http"
        )
    text = re.sub(r"(?m)^port = \d+$", f"port = {broker_port}", enrolled.read_text())  # this run's broker
    text += f'\n[collect]\ninterval_s = 10\n[spool]\npath = "{folder / "spool.sqlite"}"\n'
    text += f'[speedtest]\nwan_url = "{url}"\n'  # "test now" measures to this collector, as to a province's
    write_private(folder / "agent.toml", text)
    return folder / "agent.toml", done


def report_month(settings: ReportSettings, days: float, now: float) -> Month:
    """The month whose office hours the backfilled ``days`` up to ``now`` cover most (the later on a
    tie): last month, whole, for the default 35 days."""
    hours = hours_of(settings)
    start = now - days * 86400
    month = hours.month_of(now)
    best, covered_best = month, -1.0
    while True:
        covered = sum(max(0.0, min(w.end, now) - max(w.start, start)) for w in hours.windows_of(month, until=now))
        if covered > covered_best:
            best, covered_best = month, covered
        if hours.month_bounds(month)[0] <= start:
            return best
        month = month.previous()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description="make demo: the whole stack.")
    parser.add_argument("--days", type=float, default=BACKFILL_DAYS, help=f"days of history (default {BACKFILL_DAYS})")
    parser.add_argument("--communes", help="only these communes of Tuyên Quang (comma-separated codes; default all)")
    return parser.parse_args()


def main() -> int:
    args = arguments()
    province = ["--communes", args.communes] if args.communes else []
    DEMO_DIR.mkdir(exist_ok=True)
    influxd = Influxd(DEMO_DIR / "influxdb")
    broker_port, http_port = free_port(), free_port()
    started: list[Process] = []
    try:
        influxd.start()
        started.append(influxd)
        config = DEMO_DIR / "collector" / "collector.toml"
        password, admin_password = kept_secrets(config)
        collector_config(config, broker_port, influxd, http_port, (COLLECTOR_USER, password), admin_password)
        _cli("collector.cli", "setup-influx", "-c", str(config))
        token = demo_registry(config)
        broker = closed_broker(config, broker_port)
        broker.start()
        started.append(broker)
        collector = Process(
            [sys.executable, "-m", "collector.cli", "serve", "-c", str(config)], config.parent, "collector"
        )
        collector.start()
        started.append(collector)
        url = f"http://127.0.0.1:{http_port}"
        wait_until(lambda: http_get(f"{url}/healthz")[0] == 200, 30, "collector")
        enrolments = []
        for area, commune, host in DEMO_AGENTS:
            path, done = enrolled_agent(config, url, area, commune, host, broker_port)
            enrolments.append(done)
            agent = Process([sys.executable, "-m", "agent.cli", "run", "-c", str(path)], path.parent, "agent")
            agent.start()
            started.append(agent)
        simulate_config = collector_config(
            DEMO_DIR / "simulate" / "simulate.toml", broker_port, influxd, http_port,
            (SIMULATOR_USER, simulator_user(config, broker_port)),
        )  # fmt: skip
        simulator = Process(
            [sys.executable, "-m", "devtools.simulate.cli", "-c", str(simulate_config), "--interval", "10",
             "--fault-after", "60", "--plan-out", str(DEMO_DIR / "simulated-province.json"), *province],
            DEMO_DIR / "simulate", "simulate",  # not DEMO_DIR: its collector/ folder would shadow the package
        )  # fmt: skip
        simulator.start()
        started.append(simulator)
        # A month of history for the dashboards and the monthly report: the same plan and seed as the
        # live simulator, at the rollups' 5 minutes, in the background and at a low priority so the
        # live demo starts at once (it takes minutes on 2 cores; its log says when it is done).
        backfill = Process(
            ["nice", "-n", "15", sys.executable, "-m", "devtools.simulate.cli", "-c", str(config),
             "--backfill-days", str(args.days), "--backfill-interval", "300", *province],
            DEMO_DIR / "backfill", "backfill",
        )  # fmt: skip
        backfill.workdir.mkdir(exist_ok=True)
        backfill.start()
        started.append(backfill)
        month = report_month(load_config(config).report, args.days, time.time())
        area, commune, host = ONE_MORE_PC
        print(
            "\ncommune-monitor demo is running (Ctrl-C to stop)\n"
            f"  MQTT broker      mqtt://127.0.0.1:{broker_port}  (dynamic security: no anonymous client;\n"
            f"                   each PC publishes only its own topics; {broker.dynsec_file})\n"
            f"  Enrolment        the two real agents enrolled themselves by area key:\n"
            + "".join(f"                   {line}\n" for line in enrolments)
            + f"  Enrol a PC       one more PC of area {area}, the same way (paste into bash):\n"
            f"                   KEY=$(commune-collector enroll-key add --area {area} --expires 1d -c {config})\n"
            f'                   commune-agent enroll --url {url} --key "$KEY" --province {DEMO_PROVINCE}'
            f" --commune {commune} --host {host} --out {DEMO_DIR / 'agents' / f'{host}.toml'} --insecure-http\n"
            + f"  InfluxDB         {influxd.url}  (database 'commune', InfluxQL)\n"
            f"  Status page      {url}/status  (Tuyên Quang's communes by area, simulated)\n"
            f"  Collector API    {url}/api/v1/communes  (admin token below)\n"
            f'                   curl -H "Authorization: Bearer {token}" {url}/api/v1/alerts\n'
            f"  Health, metrics  {url}/healthz  {url}/metrics\n"
            f"  Grafana          dashboards/ (see docs/en/grafana.md): provisioning files and\n"
            f"                   dashboards to load, or: commune-collector grafana sync -c {config}\n"
            f"  Faults injected  after 60 s; which communes and PCs: {DEMO_DIR}/simulated-province.json\n"
            f"  History          {args.days:g} days being backfilled in the background; done when\n"
            f"                   {DEMO_DIR}/backfill/backfill.log ends with its counts. Then the leaders' scorecard:\n"
            f"                   commune-collector report --month {month} --format pdf"
            f" --out {DEMO_DIR / f'scorecard-{month}.pdf'} -c {config}\n"
            f"  Logs             {DEMO_DIR}/*/*.log\n",
            flush=True,
        )
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        signal.signal(signal.SIGINT, lambda *_: stop.set())
        stop.wait()
    except (RuntimeError, TimeoutError) as exc:  # a step failed (DynsecError too): say which, stop the rest
        print(f"commune-monitor demo: {exc}", file=sys.stderr)
        return 1
    finally:
        for process in reversed(started):
            process.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
