"""Outages with real processes: real agents (reporting every second) and a real collector on a
broker of the test's own, a real InfluxDB, and a local webhook receiving the notifications.

Agents killed with SIGKILL and restarted leave the machine's boot time unchanged, so the cause must
not be ``power``: it is ``unknown``, with the reason, and a collector restarted during the outage
keeps the record. A clean stop of every PC inside a maintenance window is ``office_closed``, and
no cause message is sent.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from realservices import Agent, Collector, WebhookReceiver, wait_until
from stack import Stack

from collector.config import InfluxSettings
from collector.ingest.influx import InfluxClient
from collector.reports.gather import fetch
from collector.store import Store

COMMUNE = "02473"


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def told(webhook: WebhookReceiver) -> list[dict[str, Any]]:
    """The notification messages posted so far."""
    return [body for _at, body in webhook.received]


def outages(collector: Collector) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = collector.get_json(f"/api/v1/outages?commune={COMMUNE}")
    return found


def start_commune(stack: Stack, webhook: WebhookReceiver, **extra: dict[str, Any]) -> tuple[Collector, list[Agent]]:
    sections: dict[str, dict[str, Any]] = {
        "fleet": {"evaluate_interval_s": 0.5, "restart_grace_s": 0, "outage_decide_max_s": 120},
        "notify": {"group_wait_s": 0.5, "webhook_urls": [webhook.url]},
        **extra,
    }
    collector = stack.collector(**sections)
    assert collector.cli("setup-influx").returncode == 0  # raw and rollup_5m: decided outages go to both
    collector.start()
    agents = stack.start_agents(COMMUNE, (f"pc-{i}" for i in range(2)))
    collector.wait_hosts_online(COMMUNE, 2)
    # An outage opens only for a commune whose PCs have sent metrics (their boot times are the evidence):
    # "online" comes with the status message, before the first metrics report has been taken in.
    query = f"SELECT count(boot_time) FROM system WHERE commune = '{COMMUNE}' GROUP BY host"
    wait_until(lambda: len(stack.query(query)) == 2, 30, "metrics from both PCs")
    return collector, agents


def test_agents_killed_and_restarted_are_unknown_and_a_collector_restart_keeps_the_record(
    own_stack: Stack, webhook: WebhookReceiver, tmp_path: Path
) -> None:
    collector, agents = start_commune(own_stack, webhook)
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

    def causes() -> list[tuple[str, str]]:
        return [
            (e["event"], e["summary_vi"])
            for m in told(webhook)
            for e in m["events"]
            if "nguyên nhân" in e["summary_vi"]
        ]

    wait_until(causes, 30, "the cause message")
    # decided within [notify] cause_wait_s of the return: the line_down resolve itself states it
    [(event, summary)] = causes()
    assert event == "resolved"
    assert summary.startswith("Xã Yên Sơn có kết nối trở lại sau 0 giờ 0 phút; nguyên nhân: chưa rõ (")
    query = f"SELECT duration_s, confidence, cause FROM outage WHERE commune = '{COMMUNE}'"
    wait_until(lambda: bool(own_stack.query(query)), 30, "the outage point")
    [point] = own_stack.query(query)
    assert point["cause"] == "unknown" and point["duration_s"] > 0
    # the monthly report reads outages from rollup_5m, kept 400 days (raw keeps 30), where the same point goes
    kept = query.replace("FROM outage", 'FROM "rollup_5m"."outage"')
    wait_until(lambda: bool(own_stack.query(kept)), 30, "the outage kept for the report")
    assert own_stack.query(kept) == [{**point, "_name": "outage"}]
    client = InfluxClient(InfluxSettings(url=own_stack.influxd.url, database=own_stack.database))
    try:
        with Store(tmp_path / "report-state.sqlite") as store:  # the report's own records: none needed here
            month = fetch(client, store, [], int(decided["start"]) - 86400, int(decided["end"]) + 86400)
    finally:
        client.close()
    assert [(o.commune, o.cause, o.start) for o in month.outages] == [(COMMUNE, "unknown", int(decided["start"]))]


def test_a_clean_stop_of_every_pc_in_a_night_window_is_office_closed_and_tells_nobody(
    own_stack: Stack, webhook: WebhookReceiver
) -> None:
    night = {"maintenance": [{"time": "00:00-12:00"}, {"time": "12:00-00:00"}]}  # every minute is "night"
    collector, agents = start_commune(own_stack, webhook, alerts=night)
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
    assert told(webhook) == []  # neither line_down (held by the window) nor a cause message went out
