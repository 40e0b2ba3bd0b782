"""Outages with real processes: real agents (reporting every second) and a real collector on a
broker of the test's own, a real InfluxDB, and a local webhook receiving the notifications.

Agents killed with SIGKILL and restarted leave the machine's boot time unchanged, so the cause must
not be ``power``: it is ``unknown``, with the reason, and a collector restarted during the outage
keeps the record. A clean stop of every PC inside a maintenance window is ``office_closed``, and
no cause message is sent.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from realservices import Agent, Collector, Influxd, Mosquitto, wait_until

COMMUNE = "02473"


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    received: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    server.shutdown()
    server.server_close()


def outages(collector: Collector) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = collector.get_json(f"/api/v1/outages?commune={COMMUNE}")
    return found


def start_commune(
    make_collector: Callable[..., Collector],
    make_agent: Callable[..., Agent],
    broker: Mosquitto,
    hook: str,
    influxd: Influxd,
    database: str,
    **extra: dict[str, Any],
) -> tuple[Collector, list[Agent]]:
    mqtt = {"port": broker.port}
    sections: dict[str, dict[str, Any]] = {
        "mqtt": mqtt,
        "fleet": {"evaluate_interval_s": 0.5, "restart_grace_s": 0, "outage_decide_max_s": 120},
        "notify": {"group_wait_s": 0.5, "webhook_urls": [hook]},
        **extra,
    }
    collector = make_collector(**sections)
    collector.start()
    agents = [make_agent(commune=COMMUNE, host=f"pc-{i}", mqtt=mqtt) for i in range(2)]
    for agent in agents:
        agent.start()
    wait_until(lambda: any(c["commune"] == COMMUNE and c["hosts_online"] == 2
                           for c in collector.get_json("/api/v1/communes")), 30, "both PCs online")  # fmt: skip
    # An outage opens only for a commune whose PCs have sent metrics (their boot times are the evidence):
    # "online" comes with the status message, before the first metrics report has been taken in.
    query = f"SELECT count(boot_time) FROM system WHERE commune = '{COMMUNE}' GROUP BY host"
    wait_until(lambda: len(influxd.query(query, database)) == 2, 30, "metrics from both PCs")
    return collector, agents


def test_agents_killed_and_restarted_are_unknown_and_a_collector_restart_keeps_the_record(
    make_collector: Callable[..., Collector],
    make_agent: Callable[..., Agent],
    own_broker: Mosquitto,
    influxd: Influxd,
    database: str,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    hook, received = webhook
    collector, agents = start_commune(make_collector, make_agent, own_broker, hook, influxd, database)
    for agent in agents:
        agent.kill()
    wait_until(lambda: [o for o in outages(collector) if o["state"] == "open"], 30, "an open outage record")
    [opened] = outages(collector)
    assert opened["start"] > 0 and all(h["boot_before"] > 0 for h in opened["hosts"])
    collector.stop()
    collector.start()
    [kept] = outages(collector)
    assert (kept["id"], kept["start"], kept["state"]) == (opened["id"], opened["start"], "open")
    for agent in agents:
        agent.start()
    wait_until(lambda: outages(collector)[0]["state"] == "decided", 60, f"a decision\n{collector.log()[-3000:]}")
    [decided] = outages(collector)
    assert decided["id"] == opened["id"]
    # the restart of an agent cannot change the machine's boot time: not a power cut, and no guess
    assert (decided["cause"], decided["confidence"], decided["reasons"]) == (
        "unknown", 0.0, ["agent_silent_boot_unchanged"])  # fmt: skip
    assert [h["reasons"] for h in decided["hosts"]] == [["agent_silent_boot_unchanged"]] * 2
    assert all(h["boot_before"] and abs(h["boot_after"] - h["boot_before"]) < 60 for h in decided["hosts"])
    assert all(h["offline_reason"] == "will" for h in decided["hosts"])  # the broker sent their Last Wills
    assert collector.get_json(f"/api/v1/communes/{COMMUNE}")["outages"][0]["id"] == opened["id"]
    assert collector.get_json("/api/v1/outages?cause=power") == []

    def told() -> list[tuple[str, str]]:
        return [
            (e["event"], e["summary_vi"]) for m in received for e in m["events"] if "nguyên nhân" in e["summary_vi"]
        ]

    wait_until(told, 30, "the cause message")
    # decided within [notify] cause_wait_s of the return: the line_down resolve itself states it
    [(event, summary)] = told()
    assert event == "resolved"
    assert summary.startswith("Xã Yên Sơn có kết nối trở lại sau 0 giờ 0 phút; nguyên nhân: chưa rõ (")
    query = f"SELECT duration_s, confidence, cause FROM outage WHERE commune = '{COMMUNE}'"
    wait_until(lambda: bool(influxd.query(query, database)), 30, "the outage point")
    [point] = influxd.query(query, database)
    assert point["cause"] == "unknown" and point["duration_s"] > 0


def test_a_clean_stop_of_every_pc_in_a_night_window_is_office_closed_and_tells_nobody(
    make_collector: Callable[..., Collector],
    make_agent: Callable[..., Agent],
    own_broker: Mosquitto,
    influxd: Influxd,
    database: str,
    webhook: tuple[str, list[dict[str, Any]]],
) -> None:
    hook, received = webhook
    night = {"maintenance": [{"time": "00:00-12:00"}, {"time": "12:00-00:00"}]}  # every minute is "night"
    collector, agents = start_commune(make_collector, make_agent, own_broker, hook, influxd, database, alerts=night)
    for agent in agents:
        assert agent.stop() == 0  # SIGTERM: the agent says offline, reason "stop", and disconnects
    wait_until(lambda: [o for o in outages(collector) if o["state"] == "open"], 30, "an open outage record")
    for agent in agents:
        agent.start()
    wait_until(lambda: outages(collector)[0]["state"] == "decided", 60, f"a decision\n{collector.log()[-3000:]}")
    [decided] = outages(collector)
    assert (decided["cause"], decided["reasons"]) == ("office_closed", ["quiet_hours"])
    assert all(h["offline_reason"] == "stop" and h["reasons"] == ["clean_stop"] for h in decided["hosts"])
    assert decided["cause_vi"] == "trụ sở đóng cửa"
    assert received == []  # neither line_down (held by the window) nor a cause message went out
