"""Runs the real Mosquitto and influxd on free loopback ports in a folder of their own, a
loopback webhook receiver that keeps what the collector's notifier posts, and (for the benches)
a served collector, agents and a group of processes stopped together.

Mosquitto always runs with the dynamic-security plugin, as in production. Given no file of the
plugin's, it gets one that lets every client (anonymous too) do anything: the open broker most
tests share. Given a file (``commune-collector dynsec-init`` writes one), only its users get in.

Used by ``make demo``, the tests and the benches. A missing binary is an error that says to run
``make demo`` or ``make test`` (which install it).
"""

from __future__ import annotations

import base64
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

BROKER_OPEN_FILES = 16384  # a province's connections and more, whatever the shell's ``ulimit -n``
_WORKER_PORT_BASE = 10000  # below the kernel's ephemeral range (32768-60999 on Debian)
_WORKER_PORT_SPAN = 2000
_handed_out: set[int] = set()
_block_start = random.randrange(_WORKER_PORT_SPAN)


def free_port() -> int:
    """A loopback port that nothing listens on now and that this process has not handed out before.

    A pytest-xdist worker (``PYTEST_XDIST_WORKER=gwN``) takes its ports from a block of its own below
    the ephemeral range, so parallel workers never hand out the same port and no outgoing
    connection takes one between the choice and the bind. It walks its block from a random place,
    so two test runs at once (two worktrees) do not hand out the same ports in the same order.
    Other processes ask the kernel.
    """
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker.startswith("gw") and worker[2:].isdigit():
        base = _WORKER_PORT_BASE + int(worker[2:]) * _WORKER_PORT_SPAN % (32768 - _WORKER_PORT_BASE)
        for step in range(_WORKER_PORT_SPAN):
            port = base + (_block_start + step) % _WORKER_PORT_SPAN
            if port not in _handed_out and _bindable(port):
                _handed_out.add(port)
                return port
        _handed_out.clear()  # a worker that used its whole block starts it again
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def require_binary(name: str, package: str) -> str:
    path = shutil.which(name) or next((p for p in (f"/usr/sbin/{name}", f"/usr/bin/{name}") if os.path.exists(p)), None)
    if path is None:
        raise RuntimeError(
            f"{name} is not installed (Debian package {package!r}); run `make test` or `make demo`, which install it"
        )
    return path


OPEN_DYNSEC = {
    "defaultACLAccess": dict.fromkeys(("publishClientSend", "publishClientReceive", "subscribe", "unsubscribe"), True),
    "clients": [],
    "groups": [],
    "roles": [],
}


def dynsec_plugin() -> str:
    """The dynamic-security plugin Debian's mosquitto package ships (its folder depends on the architecture)."""
    found = sorted(Path("/usr/lib").glob("*/mosquitto_dynamic_security.so")) + sorted(
        Path("/usr/lib").glob("mosquitto_dynamic_security.so")
    )
    if not found:
        raise RuntimeError(
            "mosquitto_dynamic_security.so is not installed (Debian package 'mosquitto'); run make test or make demo"
        )
    return str(found[0])


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, interval_s: float = 0.1) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s}s waiting for {what}")


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def http_get(url: str, timeout_s: float = 5.0, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return 0, b""


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + "}"
    return str(value)


def write_toml(path: Path, sections: dict[str, dict[str, Any]]) -> Path:
    lines = []
    for section, values in sections.items():
        lines.append(f"[{section}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in values.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def merged(sections: dict[str, dict[str, Any]], overrides: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``sections`` with ``overrides`` laid over them section by section (a key not overridden stays)."""
    result = {name: dict(values) for name, values in sections.items()}
    for name, values in overrides.items():
        result.setdefault(name, {}).update(values)
    return result


def open_files_at_least(wanted: int) -> Callable[[], None]:
    """For ``Popen(preexec_fn=...)``: the child may hold ``wanted`` files (sockets) open, as far
    as the hard limit allows; many systems start at a soft limit of 1,024."""

    def raise_limit() -> None:
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if soft != resource.RLIM_INFINITY and soft < target:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))

    return raise_limit


class Process:
    """A child process with its log file; ``stop`` sends SIGTERM, ``kill`` SIGKILL. With
    ``open_files`` the child's limit on open files is raised to that many (see ``open_files_at_least``)."""

    def __init__(
        self, argv: list[str], workdir: Path, name: str, env: dict[str, str] | None = None, open_files: int = 0
    ) -> None:
        self.argv = argv
        self.workdir = workdir
        self.name = name
        self.env = env
        self.open_files = open_files
        self.log_path = workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns the handle
        self.proc = subprocess.Popen(
            self.argv, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True,
            preexec_fn=open_files_at_least(self.open_files) if self.open_files else None,
        )  # fmt: skip
        log.close()

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class HttpService(Process):
    """A process serving HTTP on a loopback ``port``; ``start`` waits until ``ready_path`` answers
    ``ready_status``."""

    port: int
    ready_path = "/"
    ready_status = 200
    ready_timeout_s = 30.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_until(
            lambda: http_get(f"{self.url}{self.ready_path}")[0] == self.ready_status,
            self.ready_timeout_s,
            f"{self.name} {self.ready_path}\n{self.log()}",
        )


class Mosquitto(Process):
    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: str = "",
        allow_anonymous: bool = True,
        dynsec_file: Path | None = None,
    ) -> None:
        """``dynsec_file``: the plugin's file (its users and roles); none: a broker open to every client."""
        binary = require_binary("mosquitto", "mosquitto")
        self.port = port or free_port()
        workdir.mkdir(parents=True, exist_ok=True)
        if dynsec_file is None:
            dynsec_file = workdir / "dynamic-security.json"
            if not dynsec_file.exists():  # a restarted broker keeps what it had
                dynsec_file.write_text(json.dumps(OPEN_DYNSEC))
        self.dynsec_file = dynsec_file
        config = workdir / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\n"
            f"allow_anonymous {'true' if allow_anonymous else 'false'}\n"
            "persistence true\n"
            f"persistence_location {workdir}/\n"
            "max_queued_messages 1000000\n"
            "max_inflight_messages 100\n"
            "max_connections -1\n"  # a province is about 3,700 PCs: bounded by open files (below), not here
            "message_size_limit 16777216\n"
            "log_dest stdout\n"
            "log_type error\nlog_type warning\nlog_type notice\n"
            "user root\n"
            f"plugin {dynsec_plugin()}\nplugin_opt_config_file {dynsec_file}\n" + extra_config
        )
        super().__init__([binary, "-c", str(config)], workdir, "mosquitto", open_files=BROKER_OPEN_FILES)

    def start(self) -> None:
        super().start()
        wait_until(lambda: port_open(self.port), 10, f"mosquitto on port {self.port}\n{self.log()}")


class Influxd(HttpService):
    """influxd on loopback. With ``admin`` (user, password) it runs with ``auth-enabled = true`` and
    that admin user, and this class's own queries log in with HTTP Basic; ``http_log`` turns on
    InfluxDB's HTTP access log (one line per request, with its URL) in ``influxd.log``."""

    ready_path = "/ping"
    ready_status = 204

    def __init__(
        self, workdir: Path, admin: tuple[str, str] | None = None, http_log: bool = False, data: str = ""
    ) -> None:
        """``data``: lines for ``[data]`` instead of ``index-version = "inmem"`` (a national
        InfluxDB's settings, ``bench/nation_scale.py``)."""
        binary = require_binary("influxd", "influxdb")
        self.port = free_port()
        self.rpc_port = free_port()
        self.admin = admin
        workdir.mkdir(parents=True, exist_ok=True)
        config = workdir / "influxdb.conf"
        config.write_text(
            "reporting-disabled = true\n"
            f'bind-address = "127.0.0.1:{self.rpc_port}"\n'
            f'[meta]\n  dir = "{workdir}/meta"\n'
            f'[data]\n  dir = "{workdir}/data"\n  wal-dir = "{workdir}/wal"\n  query-log-enabled = false\n'
            + (data or '  index-version = "inmem"\n')
            + f'[http]\n  bind-address = "127.0.0.1:{self.port}"\n'
            f"  log-enabled = {'true' if http_log else 'false'}\n"
            f"  auth-enabled = {'true' if admin else 'false'}\n"
            "[continuous_queries]\n  enabled = true\n  log-enabled = false\n"
            "[monitor]\n  store-enabled = false\n"
        )
        super().__init__([binary, "-config", str(config)], workdir, "influxd")

    @property
    def headers(self) -> dict[str, str]:
        """The Basic ``Authorization`` header for the admin user (none without auth)."""
        if self.admin is None:
            return {}
        return {"Authorization": "Basic " + base64.b64encode(":".join(self.admin).encode()).decode()}

    def start(self) -> None:
        super().start()
        if self.admin is not None:
            # With auth on and no user yet, InfluxDB 1.x accepts one unauthenticated statement:
            # creating the first admin. After a restart the admin exists and that answers 401.
            user, password = self.admin
            try:
                self._post(f"CREATE USER \"{user}\" WITH PASSWORD '{password}' WITH ALL PRIVILEGES", with_auth=False)
            except urllib.error.HTTPError as exc:
                if exc.code != 401:
                    raise

    def query(self, influxql: str, database: str) -> list[dict[str, Any]]:
        """Rows of a single-statement InfluxQL answer (tags merged in); raises on an error."""
        params = urllib.parse.urlencode({"q": influxql, "db": database, "epoch": "s"})
        status, body = http_get(f"{self.url}/query?{params}", headers=self.headers)
        if status != 200:
            raise RuntimeError(f"query {influxql!r} -> {status} {body[:300]!r}")
        rows: list[dict[str, Any]] = []
        for result in json.loads(body)["results"]:
            if "error" in result:
                raise RuntimeError(f"query {influxql!r} -> {result['error']}")
            for series in result.get("series", []):
                for values in series.get("values", []):  # SHOW CONTINUOUS QUERIES lists empty databases too
                    row = dict(zip(series["columns"], values, strict=True))
                    rows.append({**series.get("tags", {}), "_name": series.get("name"), **row})
        return rows

    def create_database(self, database: str) -> None:
        self._post(f'CREATE DATABASE "{database}"')

    def drop_database(self, database: str) -> None:
        self._post(f'DROP DATABASE "{database}"')

    def _post(self, influxql: str, with_auth: bool = True) -> None:
        data = urllib.parse.urlencode({"q": influxql}).encode()
        request = urllib.request.Request(f"{self.url}/query", data=data, headers=self.headers if with_auth else {})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = json.loads(response.read())
        errors = [result["error"] for result in body.get("results", []) if "error" in result]
        if errors:
            raise RuntimeError(f"{influxql.split(' WITH PASSWORD')[0]!r} -> {errors[0]}")


class _WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookReceiver

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append((time.monotonic(), body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


class WebhookReceiver(ThreadingHTTPServer):
    """A webhook endpoint on a free loopback port, serving from a thread once made: keeps every JSON
    body posted to it, with the monotonic time it came, and answers 204. ``close`` stops it."""

    def __init__(self) -> None:
        self.received: list[tuple[float, Any]] = []
        super().__init__(("127.0.0.1", 0), _WebhookHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/hook"

    def close(self) -> None:
        self.shutdown()
        self.server_close()


class ServedCollector(HttpService):
    """``commune-collector serve`` with its defaults but for ``sections`` (merged over the broker's
    port, the InfluxDB database, a free HTTP port and ``<folder>/state.sqlite``), its config
    written to ``<folder>/collector.toml``; ``start`` waits until /healthz answers 200."""

    ready_path = "/healthz"
    ready_timeout_s = 60.0

    def __init__(
        self, folder: Path, broker: Mosquitto, influxd: Influxd, database: str, **sections: dict[str, Any]
    ) -> None:
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        defaults: dict[str, dict[str, Any]] = {
            "mqtt": {"port": broker.port},
            "influxdb": {"url": influxd.url, "database": database},
            "http": {"port": self.port},
            "state": {"path": str(folder / "state.sqlite")},
        }
        self.config_path = write_toml(folder / "collector.toml", merged(defaults, sections))
        argv = [sys.executable, "-m", "collector.cli", "serve", "-c", str(self.config_path)]
        super().__init__(argv, folder, "collector")


class AgentProcess(Process):
    """``commune-agent run`` as one PC (``province``/``commune``/``host``) reporting to the broker on
    ``broker_port`` every ``interval_s``, in ``<folder>/<host>`` with its spool there and no gateway
    probe; ``sections`` are merged over that config (``<folder>/<host>/agent.toml``)."""

    def __init__(
        self,
        folder: Path,
        broker_port: int,
        commune: str,
        host: str,
        interval_s: float = 30,
        province: str = "08",
        **sections: dict[str, Any],
    ) -> None:
        workdir = folder / host
        workdir.mkdir(parents=True, exist_ok=True)
        defaults: dict[str, dict[str, Any]] = {
            "identity": {"province": province, "commune": commune, "host": host},
            "mqtt": {"port": broker_port},
            "collect": {"interval_s": interval_s},
            "spool": {"path": str(workdir / "spool.sqlite")},
            "probe": {"gateway": False},
        }
        self.config_path = write_toml(workdir / "agent.toml", merged(defaults, sections))
        super().__init__([sys.executable, "-m", "agent.cli", "run", "-c", str(self.config_path)], workdir, "agent")


ProcessT = TypeVar("ProcessT", bound=Process)


class ProcessGroup:
    """Processes started one by one and stopped together, the last started first (agents before the
    collector, the collector before its broker and InfluxDB). Use it as a context manager."""

    def __init__(self) -> None:
        self.processes: list[Process] = []

    def start(self, process: ProcessT) -> ProcessT:
        self.processes.append(process)
        process.start()
        return process

    def __enter__(self) -> ProcessGroup:
        return self

    def __exit__(self, *_exc: object) -> None:
        for process in reversed(self.processes):
            process.stop()
