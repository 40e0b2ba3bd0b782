"""Line-quality probes against real loopback targets: the system ping, the system resolver and a
real HTTP server. Failures are data with an error class; results reach InfluxDB as ``probe``.
(The gateway probe is off here: tests send nothing beyond loopback.)"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from realservices import free_port, wait_until
from stack import Stack

from agent.config import ConfigError, config_from_dict
from agent.probes import ProbeBuilder
from agent.probes.gateway import linux_default_route
from agent.runner import build_report
from common.wire import decode_report, encode


class Portal(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        status = 500 if self.path == "/broken" else 200
        body = b"portal"
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def portal() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Portal)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def targets(portal: str) -> list[dict[str, str]]:
    return [
        {"name": "loopback", "method": "ping", "address": "127.0.0.1", "scope": "wan"},
        {"name": "no-such-host", "method": "ping", "address": "no-such-host.invalid", "scope": "internet"},
        {"name": "dns-localhost", "method": "dns", "address": "localhost", "scope": "internet"},
        {"name": "dns-missing", "method": "dns", "address": "no-such-name.invalid", "scope": "internet"},
        {"name": "portal", "method": "http", "address": f"{portal}/", "scope": "wan"},
        {"name": "portal-broken", "method": "http", "address": f"{portal}/broken", "scope": "wan"},
        {"name": "closed-port", "method": "http", "address": f"http://127.0.0.1:{free_port()}/", "scope": "wan"},
    ]


@pytest.mark.services  # runs the system ping
def test_probes_measure_real_targets_and_turn_failures_into_data(portal: str) -> None:
    config = config_from_dict(
        {
            "identity": {"province": "08", "commune": "02473", "host": "pc-probe"},
            "probe": {"gateway": False, "ping_count": 3, "timeout_s": 2, "targets": targets(portal)},
        }
    )
    sections = ProbeBuilder(config.probe)()
    report = decode_report("probe", encode(build_report(sections)))  # the contract accepts it
    items = {item["target"]: item for item in report.sections["probe"]}

    loopback = items["loopback"]
    assert loopback["ok"] == 1 and loopback["sent"] == 3 and loopback["received"] == 3
    assert loopback["loss_percent"] == 0 and 0 < loopback["rtt_avg_ms"] < 100 and loopback["jitter_ms"] >= 0
    assert loopback["scope"] == "wan" and loopback["method"] == "ping"
    assert items["no-such-host"]["ok"] == 0 and items["no-such-host"]["error"] == "nxdomain"
    assert items["dns-localhost"]["ok"] == 1 and items["dns-localhost"]["duration_ms"] >= 0
    assert items["dns-missing"]["ok"] == 0 and items["dns-missing"]["error"] == "nxdomain"
    assert items["portal"]["ok"] == 1 and items["portal"]["status_code"] == 200
    assert items["portal-broken"]["ok"] == 0 and items["portal-broken"]["status_code"] == 500
    assert items["portal-broken"]["error"] == "http_status"
    assert items["closed-port"]["ok"] == 0 and items["closed-port"]["error"] == "refused"


def test_default_gateway_is_read_from_the_route_table(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    routes.write_text(
        "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
        "eth0\t0000A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
        "eth0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    )
    route = linux_default_route(routes)
    assert route is not None and route.gateway == "192.168.1.1"
    routes.write_text("Iface\tDestination\tGateway \tFlags\n")
    assert linux_default_route(routes) is None


@pytest.mark.parametrize(
    "target",
    [
        {"name": "x", "method": "smoke", "address": "a", "scope": "wan"},
        {"name": "x", "method": "ping", "address": "a", "scope": "moon"},
        {"name": "bad name", "method": "ping", "address": "a", "scope": "wan"},
        {"name": "gateway", "method": "ping", "address": "a", "scope": "wan"},
        {"name": "x", "method": "http", "address": "ftp://a", "scope": "wan"},
        {"name": "x", "method": "ping", "address": "a"},
    ],
)
def test_bad_probe_targets_are_clear_config_errors(target: dict[str, str]) -> None:
    with pytest.raises(ConfigError, match=r"\[probe\] targets\[0\]"):
        config_from_dict({"identity": {"province": "08", "commune": "02473"}, "probe": {"targets": [target]}})


def test_probe_points_reach_influxdb_tagged_by_target(portal: str, stack: Stack) -> None:
    stack.started_collector()
    agent = stack.agent(
        host="pc-probes",
        probe={"interval_s": 1, "gateway": False, "ping_count": 2, "timeout_s": 2, "targets": targets(portal)},
    )
    agent.start()

    def rows() -> dict[str, dict[str, object]]:
        found = stack.query(
            "SELECT last(ok) AS ok, last(error) AS error, last(scope) AS scope, last(ping_method) AS ping_method "
            "FROM probe WHERE host = 'pc-probes' GROUP BY target"
        )
        return {str(row["target"]): row for row in found}

    wait_until(lambda: len(rows()) == 7, 60, f"probe points for every target\n{agent.log()}")
    found = rows()
    assert found["portal"]["ok"] == 1 and found["portal"]["scope"] == "wan"
    assert found["dns-missing"]["ok"] == 0 and found["dns-missing"]["error"] == "nxdomain"
    assert found["closed-port"]["error"] == "refused"
    assert found["loopback"]["ping_method"] == expected_ping_method()
    assert agent.running()


def expected_ping_method() -> str:
    """``icmp`` where this process's group may open ICMP sockets (``net.ipv4.ping_group_range``), else ``system``."""
    low, high = (int(n) for n in Path("/proc/sys/net/ipv4/ping_group_range").read_text().split())
    return "icmp" if low <= os.getgid() <= high else "system"
