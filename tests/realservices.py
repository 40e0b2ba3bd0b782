"""Real collector and agent processes for the tests, on top of ``devtools.localstack``.

Mosquitto and influxd come from ``devtools.localstack`` (also used by ``make demo``).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from devtools.localstack import (  # noqa: F401 - re-exported for the tests
    Influxd,
    Mosquitto,
    Process,
    ProcessT,
    WebhookReceiver,
    free_port,
    http_get,
    merged,
    wait_until,
    write_toml,
)

REPO = Path(__file__).resolve().parent.parent
# Token the test collectors accept for every API call (admin). Use get_json/post_json, which send it.
API_TOKEN = "test-admin-token"


def running(service: ProcessT) -> Iterator[ProcessT]:
    """Starts a service for a fixture to hand over, and stops it when the fixture is torn down."""
    service.start()
    yield service
    service.stop()


SERVED_WAIT_S = 30.0  # how long a request to ``served_app`` may take


@contextmanager
def served_app(app: Any) -> Iterator[Callable[[str, str], tuple[int, str]]]:
    """``app`` served by uvicorn on a free loopback port, as the collector serves it; hands over a
    GET (path, token) that answers (status, body)."""
    import uvicorn  # here: the agent's tests under old Pythons import this module without the collector's packages

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    wait_until(lambda: server.started, SERVED_WAIT_S, "uvicorn")
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def get(path: str, token: str) -> tuple[int, str]:
        request = urllib.request.Request(base + path, headers={"Authorization": f"Bearer {token}"})
        try:
            with urllib.request.urlopen(request, timeout=SERVED_WAIT_S) as answer:
                return answer.status, answer.read().decode()
        except urllib.error.HTTPError as refused:
            return refused.code, refused.read().decode()

    try:
        yield get
    finally:
        server.should_exit = True
        thread.join(SERVED_WAIT_S)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def stopped_at_teardown(build: Callable[..., ProcessT]) -> Iterator[Callable[..., ProcessT]]:
    """Hands over ``build`` as a fixture's factory, and stops every process it built at teardown."""
    built: list[ProcessT] = []

    def factory(*args: Any, **kwargs: Any) -> ProcessT:
        process = build(*args, **kwargs)
        built.append(process)
        return process

    yield factory
    for process in built:
        process.stop()


class Program(Process):
    """One of this repository's programs, ``python -m <name>.cli <command>``, with a config file written
    from ``sections`` into its working folder (``<name>.toml``) and its log there (``<name>.log``)."""

    def __init__(
        self,
        workdir: Path,
        sections: dict[str, dict[str, Any]],
        name: str,
        command: str,
        log_level: str,
        python: str = sys.executable,
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.config_path = write_toml(workdir / f"{name}.toml", sections)
        super().__init__(
            [python, "-m", f"{name}.cli", command, "-c", str(self.config_path), "--log-level", log_level],
            workdir,
            name,
            env={**os.environ, "PYTHONPATH": str(REPO)},
        )


class Collector(Program):
    """A real ``commune-collector serve`` process."""

    def __init__(self, workdir: Path, sections: dict[str, dict[str, Any]]) -> None:
        self.http_port = sections["http"]["port"]
        super().__init__(workdir, sections, "collector", "serve", "INFO")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def start(self, healthy: bool = True) -> None:
        """Start and wait for /healthz: 200 when ``healthy``, else any answer."""
        super().start()
        wait_until(
            lambda: http_get(f"{self.url}/healthz")[0] in ((200,) if healthy else (200, 503)) or not self.running(),
            30,
            f"collector /healthz\n{self.log()}",
        )
        if not self.running():
            raise RuntimeError(f"collector exited early:\n{self.log()}")

    def get_json(self, path: str, headers: dict[str, str] | None = None) -> Any:
        """GET an API path with the test admin token; raises unless 200."""
        status, body = http_get(
            f"{self.url}{path}", headers={"Authorization": f"Bearer {API_TOKEN}", **(headers or {})}
        )
        if status != 200:
            raise RuntimeError(f"GET {path} -> {status} {body[:300]!r}")
        return json.loads(body)

    def post_json(self, path: str, payload: Any, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        """POST JSON to an API path with the test admin token; returns (status, decoded body or None)."""
        return self.send_json("POST", path, payload, headers)

    def send_json(
        self, method: str, path: str, payload: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        """Any method, with a JSON body unless ``payload`` is None; returns (status, decoded body or None)."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=None if payload is None else json.dumps(payload).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {API_TOKEN}", **(headers or {})},
            method=method,
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            status, body = exc.code, exc.read()
        return status, (json.loads(body) if body else None)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run ``commune-collector <args> -c <this collector's config>``."""
        return subprocess.run(
            [sys.executable, "-m", "collector.cli", *args, "-c", str(self.config_path)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=60,
            check=False,
        )

    def wait_hosts_online(self, commune: str, count: int, timeout_s: float = 30) -> None:
        """Wait until this collector counts ``count`` of ``commune``'s PCs online."""
        wait_until(
            lambda: any(
                c["commune"] == commune and c["hosts_online"] == count for c in self.get_json("/api/v1/communes")
            ),
            timeout_s,
            f"{count} PCs of {commune} online",
        )

    def metrics_text(self) -> str:
        status, body = http_get(f"{self.url}/metrics")
        assert status == 200, status
        return body.decode()

    def metric(self, name: str) -> float:
        """Value of a sample line (name with labels, as printed) in /metrics; 0 when absent."""
        for line in self.metrics_text().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[-1])
        return 0.0


DYNSEC_ADMIN = {"admin_username": "dynsec-admin", "admin_password": "dynsec-admin-secret-for-tests"}
"""The broker's dynamic-security admin in the tests' collector configs (``[enroll]``)."""


def dynsec_broker(collector: Collector, workdir: Path, port: int) -> Mosquitto:
    """A started Mosquitto with the dynamic-security file ``commune-collector dynsec-init`` writes
    from ``collector``'s config and state: only its admin, its MQTT user and enrolled hosts get in."""
    dynsec_file = workdir / "dynamic-security.json"
    done = collector.cli("dynsec-init", "--out", str(dynsec_file))
    if done.returncode != 0:
        raise RuntimeError(f"dynsec-init failed: {done.stderr}")
    broker = Mosquitto(workdir, port=port, allow_anonymous=False, dynsec_file=dynsec_file)
    broker.start()
    return broker


class Agent(Program):
    """A real ``commune-agent run`` process, by this Python or by ``python`` (an old one's venv)."""

    def __init__(self, workdir: Path, sections: dict[str, dict[str, Any]], python: str = sys.executable) -> None:
        super().__init__(workdir, sections, "agent", "run", "DEBUG", python)
