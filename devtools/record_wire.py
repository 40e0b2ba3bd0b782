"""Records what a released agent publishes, for the tests that replay history (tests/test_wire_history.py).

The release is built by ``devtools.releases`` (a git worktree of its commit, a venv of its own)
and run, unchanged, against a real Mosquitto on loopback as a commune's line-probe PC: metrics
every second, its inventory, probes (a ping, a DNS lookup, an HTTP check that answers and one that
cannot connect), two speed tests asked for by command (measured against a Speedtest Mini
served here), then a clean stop (its ``offline`` status). Every
message on ``commune/v1/#`` is kept, in order, with its topic and its exact payload, in
``tests/data/wire/<version>/messages.jsonl``.

Run ``python -m devtools.record_wire [VERSION]`` to record it again (about a minute).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from common.version import PREVIOUS
from devtools.localstack import Mosquitto, Process, wait_until, write_toml
from devtools.releases import REPO, Release, build

DATA = REPO / "tests" / "data" / "wire"
PROVINCE, COMMUNE, HOST = "08", "02473", "pc-recorded"
METRICS_WANTED = 3
IMAGE = re.compile(r"^/speedtest/random(\d+)x(\d+)\.jpg")


class MiniHandler(BaseHTTPRequestHandler):
    """The Speedtest Mini protocol speedtest-cli speaks (docs FIELD-NOTES): index, latency, images, upload."""

    protocol_version = "HTTP/1.0"  # the server closes each connection, as the client expects

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        image = IMAGE.match(path)
        if image:
            self._answer(b"\xff" * (2 * int(image.group(1)) * int(image.group(2))), "image/jpeg")
        elif path.endswith("/latency.txt"):
            self._answer(b"test=test\n")
        elif path.endswith("/upload.php"):
            self._answer(b"size=500000")
        else:
            self._answer(b'speedtest mini\nupload_extension: "php"\n')

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = len(self.rfile.read(length))
        self._answer(f"size={received}".encode())

    def _answer(self, body: bytes, kind: str = "text/plain") -> None:
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


def agent_config(workdir: Path, broker_port: int, mini_url: str) -> dict[str, dict[str, Any]]:
    """The release's agent as a line-probe PC; only options every release so far knows."""
    return {
        "identity": {"province": PROVINCE, "commune": COMMUNE, "host": HOST, "role": "line-probe"},
        "mqtt": {"host": "127.0.0.1", "port": broker_port},
        "collect": {"interval_s": 1},
        "spool": {"path": str(workdir / "spool.sqlite")},
        "probe": {
            "interval_s": 5,
            "ping_count": 2,
            "timeout_s": 2,
            "gateway": False,
            "targets": [
                {"name": "loopback", "method": "ping", "address": "127.0.0.1", "scope": "wan"},
                {"name": "resolver", "method": "dns", "address": "localhost", "scope": "internet"},
                {"name": "mini", "method": "http", "address": f"{mini_url}/speedtest/latency.txt", "scope": "wan"},
                {"name": "closed", "method": "http", "address": "http://127.0.0.1:9/", "scope": "wan"},
            ],
        },
        "speedtest": {
            "modes": ["wan"],
            "wan_url": mini_url,
            "windows": [],
            "busy_threshold_mbps": 100000.0,
            "daily_byte_cap_mb": 0.3,
            "check_interval_s": 1,
            "download_sides": [350],
            "download_count": 1,
            "upload_sizes": 1,
            "upload_count": 1,
            "threads": 1,
            "length_s": 2,
        },
    }


def more_than(count: Callable[[], dict[str, int]], kind: str, wanted: int) -> bool:
    return count().get(kind, 0) > wanted


def record(release: Release, workdir: Path, timeout_s: float = 90.0) -> list[dict[str, Any]]:
    """Run the release's agent until it has sent every kind it sends, stop it, and return what it published."""
    captured: list[dict[str, Any]] = []
    lock = threading.Lock()
    broker = Mosquitto(workdir / "broker")
    broker.start()
    mini = ThreadingHTTPServer(("127.0.0.1", 0), MiniHandler)
    threading.Thread(target=mini.serve_forever, daemon=True).start()
    listener = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="wire-recorder")

    def keep(_c: Any, _u: Any, message: mqtt.MQTTMessage) -> None:
        if message.topic.count("/") != 5:
            return  # a command sent here, not a report
        with lock:
            captured.append({"topic": message.topic, "payload": bytes(message.payload).decode()})

    listener.on_message = keep
    listener.connect("127.0.0.1", broker.port)
    listener.subscribe("commune/v1/#", qos=1)
    listener.loop_start()
    config = write_toml(
        workdir / "agent.toml", agent_config(workdir, broker.port, f"http://127.0.0.1:{mini.server_port}")
    )
    agent = Process(
        [str(release.python), "-m", "agent.cli", "run", "-c", str(config), "--log-level", "DEBUG"],
        workdir,
        "agent",
        env=release.env(),
    )
    try:
        agent.start()
        command = f"commune/v1/{PROVINCE}/{COMMUNE}/{HOST}/cmd/speedtest"

        def kinds() -> dict[str, int]:
            with lock:
                found: dict[str, int] = {}
                for message in captured:
                    kind = message["topic"].rsplit("/", 1)[1]
                    found[kind] = found.get(kind, 0) + 1
                return found

        wait_until(lambda: kinds().get("status", 0) >= 1, 30, f"the agent's online status\n{agent.log()}")
        for asked in range(2):  # two speed tests asked for, one after the other
            listener.publish(command, json.dumps({"v": 1, "ts": int(time.time()), "mode": "wan"}), qos=1)
            wait_until(partial(more_than, kinds, "speedtest", asked), 60, f"a speed test\n{agent.log()}")
        wait_until(
            lambda: kinds().get("metrics", 0) >= METRICS_WANTED and kinds().get("probe", 0) >= 1
            and kinds().get("inventory", 0) >= 1,
            timeout_s,
            f"metrics, probe and inventory reports\n{agent.log()}",
        )  # fmt: skip
        agent.stop()
        wait_until(lambda: kinds().get("status", 0) >= 2, 10, f"the agent's offline status\n{agent.log()}")
        time.sleep(0.5)
    finally:
        agent.stop()
        listener.loop_stop()
        listener.disconnect()
        mini.shutdown()
        broker.stop()
    with lock:
        return list(captured)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.record_wire", description=__doc__.split("\n\n")[0])
    parser.add_argument("version", nargs="?", default=PREVIOUS, help=f"the release to record (default {PREVIOUS})")
    args = parser.parse_args(argv)
    release = build(args.version)
    with tempfile.TemporaryDirectory(prefix="record-wire-") as tmp:
        messages = record(release, Path(tmp))
    out = DATA / args.version / "messages.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(m, ensure_ascii=False) + "\n" for m in messages))
    print(f"{len(messages)} messages from {args.version} ({release.commit[:12]}) -> {out.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
