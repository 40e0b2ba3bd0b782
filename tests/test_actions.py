""" "Test now" from the desk, on real processes: a real agent, Mosquitto, a collector and InfluxDB.

The API sends an action on the host's ``cmd/action`` topic; the agent answers (accepted or refused)
and sends its result as a normal report tagged with the request; the collector writes it tagged
``on_demand`` and the monthly speed figure leaves it out (the rollup made by the continuous query's
own statement, then the report's own ``fetch``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from realservices import Agent, Collector, Influxd, wait_until

from collector.config import CollectorConfig
from collector.ingest.influx import InfluxClient
from collector.ingest.setup_influx import RAW_RP, ROLLUP_RP, setup_influx
from collector.registry.registry import Line, Registry
from collector.reports.gather import fetch
from collector.store import Store

pytestmark = pytest.mark.services

SMALL_AGENT = {"download_sides": [350, 500], "download_count": 1, "upload_sizes": 2, "upload_count": 2, "threads": 2}
BASE = "/api/v1/hosts/08/02473"


def state_of(collector: Collector) -> Path:
    return Path(collector.config_path).parent.parent / "state.sqlite"


def known(collector: Collector) -> set[str]:
    return {host["host"] for host in collector.get_json("/api/v1/hosts")}


def finished(collector: Collector, host: str, request_id: str, timeout_s: float, log: Callable[[], str]) -> Any:
    """The request once it is no longer pending or accepted (polled through the API)."""
    found: list[Any] = []

    def over() -> bool:
        answer = collector.get_json(f"{BASE}/{host}/actions/{request_id}")
        found[:] = [answer]
        return answer["state"] not in ("pending", "accepted")

    try:
        wait_until(over, timeout_s, f"the answer to {request_id}", interval_s=0.5)
    except TimeoutError:
        raise AssertionError(f"{found}\n{log()}") from None
    return found[0]


def started(make_collector: Callable[..., Collector], **sections: dict[str, Any]) -> Collector:
    collector = make_collector(**sections)
    with Store(state_of(collector)) as store:  # the commune's line, so speed tests carry % of contract
        Registry(store, "unassigned").upsert_lines([Line("VNPT-ACT-1", "08", "02473", "VNPT", 100.0, 50.0)])
    collector.start()
    return collector


def test_speedtest_now_returns_a_figure_from_a_real_agent_tagged_on_demand_and_audited(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent], influxd: Influxd, database: str
) -> None:
    collector = started(make_collector)
    agent = make_agent(host="pc-act", speedtest={"modes": ["wan"], "wan_url": collector.url, **SMALL_AGENT})
    agent.start()  # a plain PC, not the line probe: speedtest-cli is loaded at the first request
    wait_until(lambda: "pc-act" in known(collector), 30, f"host known\n{agent.log()}")
    wait_until(lambda: "connected" in agent.log(), 30, "agent connected")

    status, answer = collector.post_json(f"{BASE}/pc-act/actions/speedtest_now", {"mode": "wan"})
    assert status == 202 and answer["state"] == "accepted", answer  # the agent's answer, within answer_wait_s
    request_id = answer["id"]
    done = finished(collector, "pc-act", request_id, 90, agent.log)
    assert done["state"] == "done", done
    (result,) = done["result"]["speedtest"]
    assert result["mode"] == "wan" and result["ok"] == 1 and result["download_mbps"] > 1, done
    assert done["asked_by"] == "tests" and done["state_words"]["en"] == "Done"

    wait_until(lambda: bool(influxd.query("SELECT * FROM speedtest WHERE host = 'pc-act'", database)), 10, "point")
    rows = influxd.query("SELECT * FROM speedtest WHERE host = 'pc-act'", database)
    assert len(rows) == 1 and rows[0]["on_demand"] == "true" and rows[0]["request_id"] == request_id, rows
    assert float(rows[0]["download_percent_of_contract"]) > 0  # the line's contract, as a scheduled test
    with sqlite3.connect(state_of(collector)) as db:
        entries = db.execute("SELECT actor, action, object, commune FROM audit_log").fetchall()
    assert ("tests", f"POST {BASE}/pc-act/actions/speedtest_now", f"action_request:{request_id}", "02473") in entries, (
        entries
    )
    assert collector.get_json(f"{BASE}/pc-act/actions/{request_id}")["state"] == "done"  # read again: kept
    assert "Traceback" not in agent.log() + collector.log()


def test_an_action_outside_allow_is_refused_by_the_agent_and_bad_requests_change_nothing(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent], influxd: Influxd, database: str
) -> None:
    collector = started(make_collector)
    strict = make_agent(host="pc-strict", actions={"allow": ["inventory_now"]})
    # loopback carries this test's MQTT and HTTP: as "the line" it is always busy
    busy = make_agent(
        host="pc-busy",
        speedtest={"modes": ["wan"], "wan_url": collector.url, "busy_nic": "lo", "busy_threshold_mbps": 1e-6},
    )
    for agent in (strict, busy):
        agent.start()
    wait_until(lambda: known(collector) >= {"pc-strict", "pc-busy"}, 30, "hosts known")
    wait_until(lambda: "connected" in strict.log() and "connected" in busy.log(), 30, "agents connected")

    status, answer = collector.post_json(f"{BASE}/pc-strict/actions/speedtest_now", {})
    assert status == 409 and answer["state"] == "refused" and answer["reason"] == "not_allowed", answer
    assert "[actions] allow" in answer["detail"] and "không cho phép" in answer["detail"]
    assert collector.get_json(f"{BASE}/pc-strict/actions/{answer['id']}")["state"] == "refused"
    status, answer = collector.post_json(f"{BASE}/pc-strict/actions/inventory_now", {})
    assert status == 202, answer
    done = finished(collector, "pc-strict", answer["id"], 30, strict.log)
    assert done["state"] == "done" and done["result"]["inventory"][0]["cpu_threads"] > 0, done
    on_demand = "SELECT * FROM inventory WHERE host = 'pc-strict' AND on_demand = 'true'"
    wait_until(
        lambda: bool(influxd.query(on_demand, database)), 10, "the on-demand inventory point"
    )  # written in batches
    (point,) = influxd.query(on_demand, database)
    assert point["request_id"] == answer["id"]

    assert collector.post_json(f"{BASE}/nobody/actions/speedtest_now", {})[0] == 404
    status, answer = collector.post_json(f"{BASE}/pc-strict/actions/reboot_now", {})
    assert status == 400 and "speedtest_now" in answer["detail"], answer
    assert collector.post_json(f"{BASE}/pc-strict/actions/probe_now", {"mode": "wan"})[0] == 400
    assert collector.post_json(f"{BASE}/pc-strict/actions/rm%20-rf", {})[0] == 422  # not even a name

    status, answer = collector.post_json(f"{BASE}/pc-busy/actions/speedtest_now", {})
    assert status == 202, answer
    done = finished(collector, "pc-busy", answer["id"], 60, busy.log)
    assert done["result"]["speedtest"][0]["skipped"] == "line_busy", done  # the busy-line guard applies
    assert "Traceback" not in strict.log() + busy.log() + collector.log()


def test_a_stopped_agent_gives_no_answer_in_n_seconds(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent]
) -> None:
    collector = started(make_collector, actions={"answer_timeout_s": 5, "answer_wait_s": 0.5})
    agent = make_agent(host="pc-gone")
    agent.start()
    wait_until(lambda: "pc-gone" in known(collector), 30, "host known")
    agent.stop()

    status, answer = collector.post_json(f"{BASE}/pc-gone/actions/probe_now", {})
    assert status == 202 and answer["state"] == "pending", answer
    time.sleep(5.5)
    late = collector.get_json(f"{BASE}/pc-gone/actions/{answer['id']}")
    assert late["state"] == "no_answer" and late["state_words"]["en"] == "No answer in 5 s", late
    assert late["state_words"]["vi"] == "Không có trả lời sau 5 giây"
    status, missing = collector.send_json("GET", f"{BASE}/pc-gone/actions/0123456789abcdef")
    assert status == 404 and "0123456789abcdef" in missing["detail"]


def test_on_demand_results_are_not_counted_in_the_months_speed_figure(
    make_collector: Callable[..., Collector],
    make_agent: Callable[..., Agent],
    influxd: Influxd,
    database: str,
    tmp_path: Path,
) -> None:
    settings = CollectorConfig(influxdb={"url": influxd.url, "database": database}).influxdb
    client = InfluxClient(settings)
    setup_influx(client)  # raw is the default policy now, and rollup_5m exists
    collector = started(make_collector)
    agent = make_agent(host="pc-desk", speedtest={"modes": ["wan"], "wan_url": collector.url, **SMALL_AGENT})
    agent.start()
    wait_until(lambda: "pc-desk" in known(collector), 30, "host known")
    wait_until(lambda: "connected" in agent.log(), 30, "agent connected")
    status, answer = collector.post_json(f"{BASE}/pc-desk/actions/speedtest_now", {})
    assert status == 202, answer
    assert finished(collector, "pc-desk", answer["id"], 90, agent.log)["state"] == "done"
    wait_until(lambda: bool(influxd.query("SELECT * FROM speedtest WHERE host = 'pc-desk'", database)), 10, "point")
    (demanded,) = influxd.query(f"SELECT * FROM \"{RAW_RP}\".speedtest WHERE host = 'pc-desk'", database)
    assert demanded["on_demand"] == "true" and float(demanded["download_percent_of_contract"]) > 0

    # a scheduled test of the same commune in the same five minutes, as the line probe writes it
    at = int(demanded["time"]) - 1
    tags = "province=08,area=unassigned,commune=02473,host=pc-line,mode=wan"
    line = f"speedtest,{tags} download_percent_of_contract=42 {at}"
    client.write_lines([line])
    start, end = (at // 300) * 300 - 3600, (at // 300) * 300 + 3600
    client.query(  # the continuous query's own statement, over these minutes
        f'SELECT mean(*) INTO "{database}"."{ROLLUP_RP}"."speedtest" FROM "{database}"."{RAW_RP}"."speedtest" '
        f"WHERE time >= {start}s AND time < {end}s GROUP BY time(5m), *",
        method="POST",
    )
    rolled = influxd.query(f'SELECT * FROM "{ROLLUP_RP}".speedtest', database)
    assert {row.get("on_demand") or "" for row in rolled} == {"true", ""}, rolled  # the tag survives the rollup

    with Store(tmp_path / "report-state.sqlite") as store:
        fetched = fetch(client, store, [], start, end, now=time.time())
    # the on-demand test's figure is left out: the month's speed rows are the scheduled one's only
    assert {c: [row.percent for row in rows] for c, rows in fetched.speed_tests.items()} == {"02473": [42.0]}
