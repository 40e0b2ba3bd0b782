"""A commune's line cut at its router, with real agents behind a real emulated line.

Two real agents run on the commune's office LAN (a network namespace; see ``emulated_line.py``) and
reach the province's broker only through the commune's router. The router drops everything it
forwards for longer than the collector's offline threshold (3 report intervals of 1 s), then
forwards again. The PCs kept running: they measured all along, their gateway answered and the WAN
and internet did not, and their spools deliver those reports once the line is back. So the cause is
``line``, with each PC's spooled reports as evidence, and the ``line_down`` resolve says so.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from emulated_line import INTERNET, WAN, EmulatedLine
from realservices import Agent, Collector, Mosquitto, WebhookReceiver, wait_until
from stack import Stack

COMMUNE = "02473"


@pytest.fixture
def line(own_broker: Mosquitto) -> Iterator[EmulatedLine]:
    emulated = EmulatedLine(own_broker.port)
    try:
        yield emulated
    finally:
        emulated.close()


def probe_cycles(agent: Agent) -> int:
    return len(re.findall(r"msg=cycle kind=probe", agent.log()))


def the_outage(collector: Collector) -> dict[str, Any]:
    found: list[dict[str, Any]] = collector.get_json(f"/api/v1/outages?commune={COMMUNE}")
    return found[0] if found else {}


def test_a_line_cut_at_the_router_is_a_line_outage_proven_by_each_pcs_spooled_reports(
    line: EmulatedLine, own_stack: Stack
) -> None:
    hook = WebhookReceiver()
    collector = own_stack.collector(
        fleet={"evaluate_interval_s": 0.5, "restart_grace_s": 0, "outage_decide_max_s": 120},
        notify={"group_wait_s": 0.5, "cause_wait_s": 120, "webhook_urls": [hook.url]},
    )
    collector.start()
    probe = {"interval_s": 2, "ping_count": 1, "timeout_s": 1, "gateway": True,
             "targets": [{"name": "province", "method": "ping", "address": WAN, "scope": "wan"},
                         {"name": "internet", "method": "ping", "address": INTERNET, "scope": "internet"}]}  # fmt: skip
    agents = [own_stack.agent(commune=COMMUNE, host=f"pc-{i}", mqtt={"host": WAN, "port": line.port, "keepalive_s": 5},
                         probe=probe, peripherals={"enabled": False}) for i in range(2)]  # fmt: skip
    try:
        for agent in agents:
            agent.argv = line.in_lan(agent.argv)
            agent.start()
        # an outage opens only for a commune whose PCs' metrics (their boot times) are in
        query = f"SELECT count(boot_time) FROM system WHERE commune = '{COMMUNE}' GROUP BY host"
        wait_until(lambda: len(own_stack.query(query)) == 2, 60, "metrics from both PCs through the line")

        line.cut()
        cut_at = time.time()
        wait_until(lambda: the_outage(collector).get("state") == "open", 30, "an open outage record")
        measured = [probe_cycles(agent) for agent in agents]
        wait_until(lambda: all(probe_cycles(a) >= n + 3 for a, n in zip(agents, measured, strict=True)), 30,
                   "probe rounds measured behind the cut line")  # fmt: skip
        restored_at = time.time()
        line.restore()

        wait_until(lambda: the_outage(collector).get("state") == "decided", 120,
                   f"a decision\n{collector.log()[-3000:]}")  # fmt: skip
        outage = the_outage(collector)
        wait_until(lambda: resolves(hook), 60, "the line_down resolve")
    finally:
        for agent in agents:
            agent.stop()
        hook.close()

    assert (outage["cause"], outage["confidence"], outage["reasons"]) == ("line", 1.0, ["every_host_agrees"])
    assert outage["start"] <= cut_at + 1 and outage["end"] >= restored_at
    for pc in outage["hosts"]:
        assert pc["reasons"] == ["measured_during_outage", "gateway_ok_outside_failed", "uptime_continuous"], pc
        assert pc["strong"] and pc["reports_during"] > 0 and pc["gateway_ok"] > 0 and pc["outside_failed"] > 0, pc
        assert abs(pc["boot_after"] - pc["boot_before"]) < 60, pc  # continuous uptime
        # the evidence is in InfluxDB as the PC measured it behind the cut line, delivered later
        inside = f"host = '{pc['host']}' AND time > {int(cut_at) + 2}s AND time < {int(restored_at) - 2}s"
        metrics = own_stack.query(f"SELECT count(cpu_percent) FROM system WHERE {inside}")
        assert metrics and metrics[0]["count"] > 0, pc["host"]
        probes = own_stack.query(f"SELECT max(ok), min(ok) FROM probe WHERE {inside} GROUP BY target")
        assert {(p["target"], p["max"], p["min"]) for p in probes} >= {("gateway", 1.0, 1.0),
                                                                      ("province", 0.0, 0.0),
                                                                      ("internet", 0.0, 0.0)}  # fmt: skip
    # the resolve states the cause, decided while it waited; no separate cause message was needed
    [told] = resolves(hook)
    assert told["summary_vi"].startswith("Xã Yên Sơn có kết nối trở lại sau 0 giờ ")
    assert "; nguyên nhân: đứt đường truyền (các máy vẫn chạy và đo được " in told["summary_vi"]
    assert "; cause: line cut (the PCs kept running and measured " in told["summary_en"]
    point = f"SELECT duration_s, cause FROM outage WHERE commune = '{COMMUNE}'"
    wait_until(lambda: bool(own_stack.query(point)), 30, "the outage point")
    assert own_stack.query(point)[0]["cause"] == "line"


def resolves(hook: WebhookReceiver) -> list[dict[str, Any]]:
    events = [e for _at, message in hook.received for e in message["events"]]
    return [e for e in events if e["rule"] == "line_down" and e["event"] in ("resolved", "cause")]
