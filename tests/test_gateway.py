"""The default route, one implementation per platform: Linux's ``/proc/net/route`` (recorded files,
and the real kernel's in network namespaces of the test's own) and Windows' ``route print -4``
(outputs recorded on real Windows PCs, each file citing where it comes from)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from agent.probes.gateway import DefaultRoute, linux_default_route
from agent.windows.route import active_routes, parse_default_route

REPO = Path(__file__).resolve().parent.parent
RECORDED = Path(__file__).resolve().parent / "recorded"


def recorded(path: Path) -> str:
    """A recorded output without its header (the ``#`` lines up to the first blank line)."""
    text = path.read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n")
    assert all(line.startswith("#") for line in header.splitlines()), f"{path} has no citing header"
    return body


def test_a_laptops_route_table_gives_its_default_route_listed_last(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    routes.write_text(recorded(RECORDED / "proc" / "net-route-laptop"))
    assert linux_default_route(routes) == DefaultRoute("192.168.8.1", "wlp4s0")


def test_the_default_route_with_the_lowest_metric_wins_and_a_down_one_is_ignored(tmp_path: Path) -> None:
    routes = tmp_path / "route"
    header = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    routes.write_text(
        header
        + "eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        + "wlan0\t00000000\t0100000A\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        + "tun0\t00000000\t00000000\t0002\t0\t0\t5\t00000000\t0\t0\t0\n"  # not up
    )
    assert linux_default_route(routes) == DefaultRoute("192.168.1.1", "eth0")
    routes.write_text(header + "ppp0\t00000000\t00000000\t0001\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert linux_default_route(routes) == DefaultRoute(None, "ppp0")  # a point-to-point line: no gateway
    routes.write_text(header)
    assert linux_default_route(routes) is None
    assert linux_default_route(tmp_path / "missing") is None


ROUTE_PRINT = RECORDED / "windows" / "route-print"


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("windows.txt", ("10.88.88.2", "10.88.88.149")),  # its persistent routes are not active routes
        ("windowsMultipleGateways.txt", ("10.21.38.1", "10.21.38.97")),  # metric 2 beats 50
        ("windowsLocalized2.txt", ("192.168.100.1", "192.168.100.80")),  # Spanish; an on-link "En vínculo" route
        ("windowsNoDefaultRoute.txt", None),
        ("ip-tool-route-print-4.txt", ("192.168.1.254", "192.168.1.9")),  # `route print -4`, as the agent runs it
    ],
)
def test_route_print_from_real_windows_pcs_gives_the_default_route(name: str, expected: object) -> None:
    assert parse_default_route(recorded(ROUTE_PRINT / name)) == expected


def test_route_print_active_routes_stop_before_the_persistent_ones() -> None:
    rows = active_routes(recorded(ROUTE_PRINT / "windows.txt"))
    assert [row[0] for row in rows] == ["0.0.0.0", "127.0.0.0", "127.0.0.1", "127.255.255.255"]
    assert rows[1] == ("127.0.0.0", "255.0.0.0", None, "127.0.0.1", 331)  # On-link: no gateway


def test_route_print_4_reads_every_active_route_and_never_the_persistent_default() -> None:
    rows = active_routes(recorded(ROUTE_PRINT / "ip-tool-route-print-4.txt"))
    assert len(rows) == 11 and rows[0] == ("0.0.0.0", "0.0.0.0", "192.168.1.254", "192.168.1.9", 26)
    assert rows[-1] == ("255.255.255.255", "255.255.255.255", None, "192.168.1.9", 281)
    assert [row for row in rows if row[0] == "0.0.0.0"] == [rows[0]]  # its persistent twin (metric 1) is not active


def test_route_print_with_windows_line_ends_parses_the_same() -> None:
    text = recorded(ROUTE_PRINT / "windowsMultipleGateways.txt")
    assert parse_default_route(text.replace("\n", "\r\n")) == ("10.21.38.1", "10.21.38.97")


def test_output_that_is_not_a_route_table_gives_no_route() -> None:
    assert parse_default_route("") is None
    assert parse_default_route("The requested operation requires elevation.\r\n") is None


READ_ROUTE = "import json; from agent.probes.gateway import linux_default_route as r; print(json.dumps(r()))"


def route_in_namespace(setup: str) -> object:
    """``linux_default_route()`` read by a Python in a new network namespace set up by ``setup``."""
    argv = ["unshare", "--net", "sh", "-c", f'{setup} exec "$0" -c "$1"', sys.executable, READ_ROUTE]
    done = subprocess.run(
        argv, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.services  # unshare, ip
def test_the_real_kernel_table_gives_the_lowest_metric_default_route() -> None:
    setup = "".join(
        f"ip link add {nic} type veth peer name {nic}p && ip link set {nic}p up && "
        f"ip addr add {net}.2/24 dev {nic} && ip link set {nic} up && "
        f"ip route add default via {net}.1 metric {metric} && "
        for nic, net, metric in (("office0", "10.200.0", 50), ("office1", "10.201.0", 10))
    )
    assert route_in_namespace(setup) == ["10.201.0.1", "office1"]
    assert route_in_namespace("ip link set lo up && ") is None
