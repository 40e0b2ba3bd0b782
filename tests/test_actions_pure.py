"""On-demand actions without services: the wire's request and ``demand`` shapes, the agent's desk
(what it accepts and why it refuses), the collector's points for a result (tagged ``on_demand``,
kept from the fleet) and its desk's states (a late answer, another host's answer, no answer)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from agent.actions import Action, ActionDesk
from collector.actions import ActionDesk as CollectorDesk
from collector.config import IngestSettings
from collector.ingest import fastwire
from collector.ingest.checks import Accepted, Ingestor
from collector.registry.registry import HostKey, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import Store
from common.wire import (
    ACTIONS,
    Demand,
    WireError,
    action_request_payload,
    decode_action_request,
    decode_report,
    encode,
    report_topic,
)

NOW = time.time()
HOST = HostKey("08", "02473", "pc-01")


def request(action: str = "speedtest_now", request_id: str = "0123456789abcdef", **extra: Any) -> bytes:
    return encode({"v": 1, "ts": int(NOW), "id": request_id, "action": action, **extra})


def agent_desk(allow: list[str] | None = None, peripherals: bool = True) -> ActionDesk:
    made = Action(lambda _request: {"inventory": {"cpu_threads": 4}})
    actions: dict[str, Action | None] = dict.fromkeys(ACTIONS, made)
    if not peripherals:
        actions["peripherals_now"] = None
    return ActionDesk(list(ACTIONS) if allow is None else allow, actions)


def test_a_request_round_trips_and_a_mode_is_for_speed_tests_only() -> None:
    asked = decode_action_request(action_request_payload("0123456789abcdef", "speedtest_now", "wan", NOW))
    assert (asked.id, asked.action, asked.mode) == ("0123456789abcdef", "speedtest_now", "wan")
    with pytest.raises(WireError) as refused:
        decode_action_request(request("probe_now", mode="wan"))
    assert refused.value.reason == "bad_value"
    with pytest.raises(WireError) as unknown:
        decode_action_request(request("reboot_now"))
    assert unknown.value.reason == "unknown_kind"


@pytest.mark.parametrize(
    ("raw", "state", "reason"),
    [
        (request("inventory_now"), "accepted", ""),
        (request("speedtest_now", mode="internet"), "accepted", ""),
        (request("reboot_now"), "refused", "unknown_action"),  # not in the catalogue: no shell, no command
        (request("inventory_now", mode="wan"), "refused", "bad_request"),
        (request("inventory_now", shell="rm -rf /"), "accepted", ""),  # unknown fields are not arguments
        (request("peripherals_now"), "refused", "disabled"),
    ],
    # fixed ids: the payloads carry the time of import, and xdist's workers, importing a second
    # apart, would otherwise collect different tests (seen in a clean-clone run)
    ids=["inventory", "speedtest-internet", "unknown-action", "mode-not-taken", "unknown-field", "disabled"],
)
def test_the_agent_answers_each_request_accepted_or_refused_with_its_reason(
    raw: bytes, state: str, reason: str
) -> None:
    demand = agent_desk(peripherals=False).take(raw)
    assert demand is not None and demand["state"] == state and demand.get("reason", "") == reason, demand
    assert demand["id"] == "0123456789abcdef"


def test_an_action_outside_allow_is_refused_and_a_request_without_an_id_gets_no_answer() -> None:
    desk = agent_desk(allow=["inventory_now"])
    assert desk.take(request("speedtest_now")) == {
        "id": "0123456789abcdef", "action": "speedtest_now", "state": "refused", "reason": "not_allowed"
    }  # fmt: skip
    assert desk.take(b"not json") is None and desk.take(request(request_id="../../etc")) is None
    assert desk.refused == 3 and desk.accepted() == []
    assert agent_desk(allow=[]).take(request("inventory_now"))["reason"] == "not_allowed"  # type: ignore[index]


def test_the_same_action_twice_is_busy_until_the_first_has_finished() -> None:
    desk = agent_desk()
    assert desk.take(request("inventory_now"))["state"] == "accepted"  # type: ignore[index]
    again = desk.take(request("inventory_now", request_id="fedcba9876543210"))
    assert again is not None and again["reason"] == "busy"
    assert desk.take(request("probe_now", request_id="aaaaaaaaaaaaaaaa"))["state"] == "accepted"  # type: ignore[index]
    (first, second) = desk.accepted()
    assert (first.action, second.action) == ("inventory_now", "probe_now") and desk.accepted() == []
    desk.finished(first)
    assert desk.take(request("inventory_now", request_id="bbbbbbbbbbbbbbbb"))["state"] == "accepted"  # type: ignore[index]


def answer(kind: str, demand: dict[str, Any], **sections: Any) -> bytes:
    return encode({"v": 1, "ts": int(NOW) - 2, "demand": demand, **sections})


def test_an_answer_has_no_section_and_a_result_must_have_one() -> None:
    refused = {"id": "0123456789abcdef", "action": "speedtest_now", "state": "refused", "reason": "not_allowed"}
    report = decode_report("metrics", answer("metrics", refused))
    assert report.sections == {} and report.demand == Demand(
        "0123456789abcdef", "speedtest_now", "refused", "not_allowed"
    )
    assert fastwire.decode("metrics", answer("metrics", refused)) == report  # the contract's own way, same report
    done = {"id": "0123456789abcdef", "action": "speedtest_now", "state": "done"}
    with pytest.raises(WireError) as empty:
        decode_report("speedtest", answer("speedtest", done))
    assert empty.value.reason == "bad_shape"
    for bad in ({**done, "reason": "busy"}, {**refused, "reason": ""}, {**done, "id": "x y"}, {**done, "rm": 1}):
        with pytest.raises(WireError) as wrong:
            decode_report("speedtest", answer("speedtest", bad, speedtest=[{"mode": "wan", "ok": 1}]))
        assert wrong.value.reason == "bad_value", bad


def test_a_result_is_written_tagged_on_demand_with_its_request_and_kept_from_the_fleet() -> None:
    ingestor = Ingestor(Registry(Store(":memory:"), "unassigned"), SelfMetrics(), IngestSettings())
    observed: list[Accepted] = []
    demanded: list[Accepted] = []
    ingestor.observers.append(observed.append)
    ingestor.on_demand = demanded.append
    done = {"id": "0123456789abcdef", "action": "speedtest_now", "state": "done"}
    result = answer("speedtest", done, speedtest=[{"mode": "wan", "ok": 1, "download_mbps": 48.5}])
    (line,) = ingestor.handle(report_topic("08", "02473", "pc-01", "speedtest"), result, NOW)
    assert ",on_demand=true" in line.split(" ")[0] and 'request_id="0123456789abcdef"' in line, line
    scheduled = encode({"v": 1, "ts": int(NOW) - 1, "speedtest": [{"mode": "wan", "ok": 1, "download_mbps": 50}]})
    (plain,) = ingestor.handle(report_topic("08", "02473", "pc-01", "speedtest"), scheduled, NOW)
    assert "on_demand" not in plain and "request_id" not in plain
    assert [a.report.demand for a in demanded] == [Demand("0123456789abcdef", "speedtest_now", "done")]
    assert [a.report.demand for a in observed] == [None]  # the fleet (and so alerts) sees the scheduled one only


class Sent:
    """The MQTT client's publish as the desk calls it: what went out, and whether the broker took it."""

    def __init__(self, taken: bool = True) -> None:
        self.taken = taken
        self.messages: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, topic: str, payload: bytes) -> bool:
        self.messages.append((topic, json.loads(payload)))
        return self.taken


def test_the_collectors_desk_keeps_each_request_and_its_answers_in_order() -> None:
    clock = [NOW]
    sent = Sent()
    desk = CollectorDesk(Store(":memory:"), sent, 60.0, 30.0, lambda: clock[0])
    asked = desk.ask(HOST, "speedtest_now", "wan", "tests")
    assert asked is not None and asked.state(NOW) == "pending" and asked.asked_by == "tests"
    ((topic, body),) = sent.messages
    assert topic == "commune/v1/08/02473/pc-01/cmd/action" and body["id"] == asked.id and body["mode"] == "wan"

    other = HostKey("08", "02473", "pc-02")
    assert not desk.answered(other, Demand(asked.id, "speedtest_now", "done"), {})  # another host's: nothing
    assert desk.answered(HOST, Demand(asked.id, "speedtest_now", "done"), {"speedtest": [{"download_mbps": 48.0}]})
    assert not desk.answered(HOST, Demand(asked.id, "speedtest_now", "accepted"), {})  # late: never back
    found = desk.get(HOST, asked.id)
    assert (
        found is not None
        and found.state(NOW + 3600) == "done"
        and found.result == {"speedtest": [{"download_mbps": 48.0}]}
    )

    silent = desk.ask(HOST, "probe_now", "", "tests")
    assert silent is not None and silent.state(NOW + 59) == "pending" and silent.state(NOW + 61) == "no_answer"
    assert desk.wait_answer(HOST, silent.id, 0.05) == silent  # no answer within the wait: as it stands
    assert desk.get(other, silent.id) is None

    clock[0] = NOW + 31 * 86400  # a month on: old requests go as a new one comes
    assert desk.ask(HOST, "inventory_now", "", "tests") is not None and desk.get(HOST, asked.id) is None
    assert CollectorDesk(Store(":memory:"), Sent(taken=False), 60, 30).ask(HOST, "probe_now", "", "t") is None
