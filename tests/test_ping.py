"""The ping probe: in-process ICMP sockets (icmplib) where ``net.ipv4.ping_group_range`` allows
them, the system ``ping`` elsewhere, both reporting the same fields and which method ran.

Both methods run for real, each in a network namespace of its own (``unshare --net``) whose
``ping_group_range`` the test sets (the sysctl is per namespace), pinging that namespace's
loopback. The in-process run has process creation switched off, so a child ``ping`` would fail it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.probes.ping import summary
from common.wire import WireError, decode_report, encode

REPO = Path(__file__).resolve().parent.parent
EVERY_GROUP, NO_GROUP = "0 2147483647", "1 0"

PING_IN_NAMESPACE = """
import json, os, subprocess, sys
if sys.argv[1] == "no-children":
    def refuse(*args, **kwargs):
        raise AssertionError("a child process was started")
    subprocess.Popen = refuse
    os.fork = os.posix_spawn = os.posix_spawnp = refuse
from agent.probes.ping import ping
print(json.dumps(ping(sys.argv[2], 3, 1.0)))
"""


def python_in_namespace(
    script: str, args: list[str], group_range: str = EVERY_GROUP, echo_ignored: bool = False
) -> Any:
    """What ``script`` prints as JSON, run by a Python in a new network namespace whose loopback is
    up and whose ping group range is set."""
    setup = (
        f"ip link set lo up && echo '{group_range}' > /proc/sys/net/ipv4/ping_group_range"
        f" && echo {int(echo_ignored)} > /proc/sys/net/ipv4/icmp_echo_ignore_all"
    )
    argv = ["unshare", "--net", "sh", "-c", f'{setup} && exec "$0" -c "$@"', sys.executable, script, *args]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def ping_in_namespace(group_range: str, address: str, children: bool, echo_ignored: bool = False) -> dict[str, Any]:
    """One ping by a Python in a new network namespace whose loopback is up and whose range is set."""
    args = ["children" if children else "no-children", address]
    result: dict[str, Any] = python_in_namespace(PING_IN_NAMESPACE, args, group_range, echo_ignored)
    decode_report("probe", encode({"v": 1, "ts": 1.7e9, "probe": [{"target": "t", **result}]}))  # in the contract
    return result


@pytest.mark.services  # unshare, ip
def test_icmp_sockets_ping_in_process_where_the_group_range_allows_them() -> None:
    result = ping_in_namespace(EVERY_GROUP, "127.0.0.1", children=False)
    assert result["ping_method"] == "icmp" and result["ok"] == 1
    assert result["sent"] == 3 and result["received"] == 3 and result["loss_percent"] == 0
    assert 0 < result["rtt_min_ms"] <= result["rtt_avg_ms"] <= result["rtt_max_ms"]
    assert result["jitter_ms"] >= 0


PING_WITH_THE_CLOCK_STEPPED_BACK = """
import importlib, json, sys, time
ping_module = importlib.import_module("agent.probes.ping")  # the package's ``ping`` is the function
wall, back = time.time, [0.0]
time.time = lambda: wall() - back[0]
matched = ping_module._Echo.match
def match_then_step_back(echo, reply):
    matched(echo, reply)
    back[0] = 3600.0  # NTP steps the clock back an hour once the first reply is in
ping_module._Echo.match = match_then_step_back
started = time.monotonic()
result = ping_module.ping(sys.argv[1], 3, 1.0)
print(json.dumps({"received": result["received"], "took_s": time.monotonic() - started}))
"""


@pytest.mark.services  # unshare, ip
def test_a_wall_clock_stepped_back_during_a_round_does_not_stretch_its_waits() -> None:
    """The waits between echoes and for replies run on a monotonic clock: with the wall clock, the
    wait for the next 0.2 s tick became an hour (the run gives up after 60 s)."""
    done = python_in_namespace(PING_WITH_THE_CLOCK_STEPPED_BACK, ["127.0.0.1"])
    assert done["received"] == 3 and done["took_s"] < 30, done


@pytest.mark.services  # unshare, ip, ping
def test_the_system_ping_runs_where_icmp_sockets_are_not_permitted() -> None:
    result = ping_in_namespace(NO_GROUP, "127.0.0.1", children=True)
    assert result["ping_method"] == "system" and result["ok"] == 1
    assert result["sent"] == 3 and result["received"] == 3 and result["rtt_avg_ms"] > 0


@pytest.mark.services  # unshare, ip
def test_icmp_sockets_ping_ipv6_loopback_too() -> None:
    result = ping_in_namespace(EVERY_GROUP, "::1", children=False)
    assert result["ping_method"] == "icmp" and result["ok"] == 1 and result["received"] == 3


@pytest.mark.services  # unshare, ip, ping
@pytest.mark.parametrize(("group_range", "method"), [(EVERY_GROUP, "icmp"), (NO_GROUP, "system")])
def test_a_target_that_never_answers_gives_full_loss_and_timeout_by_either_method(
    group_range: str, method: str
) -> None:
    result = ping_in_namespace(group_range, "127.0.0.1", children=method == "system", echo_ignored=True)
    assert result["ping_method"] == method and result["ok"] == 0 and result["error"] == "timeout"
    assert result["sent"] == 3 and result["received"] == 0 and result["loss_percent"] == 100
    assert "rtt_avg_ms" not in result


PING_MANY_IN_NAMESPACE = """
import json, sys
from agent.probes.ping import ping_many
print(json.dumps(ping_many(["127.0.0.1", "127.0.0.2", "no-such-host.invalid", "127.0.0.1"], 3, 1.0)))
"""


@pytest.mark.services  # unshare, ip
def test_several_targets_pinged_together_each_get_their_own_replies() -> None:
    results = python_in_namespace(PING_MANY_IN_NAMESPACE, [])
    assert set(results) == {"127.0.0.1", "127.0.0.2", "no-such-host.invalid"}
    for address in ("127.0.0.1", "127.0.0.2"):
        assert results[address]["ping_method"] == "icmp" and results[address]["received"] == 3, results[address]
    assert results["no-such-host.invalid"]["error"] == "nxdomain"


ECHOES_SEEN_IN_NAMESPACE = """
import json, socket
from agent.probes.ping import PAYLOAD, ping_many
lookups = []
real_getaddrinfo = socket.getaddrinfo
def counting(host, *args, **kwargs):
    lookups.append(host)
    return real_getaddrinfo(host, *args, **kwargs)
socket.getaddrinfo = counting
seen = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)  # root: sees every ICMP packet
results = ping_many(["127.0.0.1", "127.0.0.2"], 4, 1.0)
seen.setblocking(False)
requests = []
while True:
    try:
        packet = seen.recv(2048)
    except BlockingIOError:
        break
    icmp = packet[(packet[0] & 0x0F) * 4:]
    if icmp[0] == 8:
        folded = sum(int.from_bytes(icmp[i:i + 2], "big") for i in range(0, len(icmp), 2))
        while folded > 0xFFFF:
            folded = (folded & 0xFFFF) + (folded >> 16)
        requests.append({"to": socket.inet_ntoa(packet[16:20]), "checksum_ok": folded == 0xFFFF,
                         "fixed_payload": icmp[8:] == PAYLOAD, "sequence": int.from_bytes(icmp[6:8], "big")})
print(json.dumps({"lookups": lookups, "requests": requests, "results": results}))
"""


@pytest.mark.services  # unshare, ip
def test_an_icmp_round_looks_each_target_up_once_and_sends_valid_echoes_with_the_fixed_payload() -> None:
    seen = python_in_namespace(ECHOES_SEEN_IN_NAMESPACE, [])
    assert sorted(seen["lookups"]) == ["127.0.0.1", "127.0.0.2"]  # once a round, not once per echo
    for address in ("127.0.0.1", "127.0.0.2"):
        assert seen["results"][address]["received"] == 4 and seen["results"][address]["loss_percent"] == 0
        sent = [request for request in seen["requests"] if request["to"] == address]
        assert sorted(request["sequence"] for request in sent) == [0, 1, 2, 3]
        assert all(request["checksum_ok"] and request["fixed_payload"] for request in sent), sent


@pytest.mark.services  # unshare, ip
def test_an_unknown_name_is_nxdomain_without_a_child_process() -> None:
    result = ping_in_namespace(EVERY_GROUP, "no-such-host.invalid", children=False)
    assert result == {**result, "ping_method": "icmp", "ok": 0, "error": "nxdomain"}


def test_jitter_is_the_standard_deviation_of_the_rtts_as_pings_mdev() -> None:
    # iputils: "rtt min/avg/max/mdev = 1.000/2.500/4.000/1.118 ms" for replies of 1, 2, 3 and 4 ms
    assert summary(5, [1.0, 2.0, 3.0, 4.0]) == {
        "sent": 5.0,
        "received": 4.0,
        "loss_percent": 20.0,
        "rtt_min_ms": 1.0,
        "rtt_avg_ms": 2.5,
        "rtt_max_ms": 4.0,
        "jitter_ms": pytest.approx(1.118, abs=0.001),
    }
    assert summary(3, []) == {"sent": 3.0, "received": 0.0, "loss_percent": 100.0}


def test_the_contract_accepts_only_the_two_ping_methods() -> None:
    item = {"target": "gateway", "method": "ping", "ok": 1.0}
    for method in ("icmp", "system"):
        report = decode_report("probe", encode({"v": 1, "ts": 1.7e9, "probe": [{**item, "ping_method": method}]}))
        assert report.sections["probe"][0]["ping_method"] == method
    old_agent = decode_report("probe", encode({"v": 1, "ts": 1.7e9, "probe": [item]}))
    assert "ping_method" not in old_agent.sections["probe"][0]
    with pytest.raises(WireError, match="ping_method"):
        decode_report("probe", encode({"v": 1, "ts": 1.7e9, "probe": [{**item, "ping_method": "raw"}]}))
