"""A PC whose clock runs slow, with real processes: a real agent (its clock set back 30 s by the
test-only ``COMMUNE_TEST_CLOCK_SKEW_S``) on an emulated commune line (``emulated_line.py``), a real
broker and collector, ``[ingest] backlog_after_s`` 5 s. The collector learns the PC's clock offset
and judges backlog on the corrected age (``collector/fleet/clock.py``):

- across a collector restart the PC stays online and no ``host_offline`` is raised, although every
  report it sends is "older" than backlog_after_s by its own clock;
- what it measured while its line was cut, delivered when the line is back, is still backlog.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

import pytest
from emulated_line import WAN, EmulatedLine
from realservices import Agent, Collector, Mosquitto, wait_until
from stack import Stack
from test_faults import cycles, outbox

from common.wire import TEST_CLOCK_SKEW_ENV

pytestmark = pytest.mark.services

SKEW_S = -30  # the PC's clock is 30 s behind: six times backlog_after_s
HOST = "pc-slow"
BACKLOG = "commune_collector_reports_backlog_total"


@pytest.fixture
def slow_pc(own_broker: Mosquitto, own_stack: Stack) -> Iterator[tuple[EmulatedLine, Agent]]:
    """The PC behind its commune's emulated line, its clock 30 s slow; built, not started."""
    with contextlib.closing(EmulatedLine(own_broker.port)) as line:
        mqtt = {"host": WAN, "port": line.port, "keepalive_s": 5}
        spool = {"drain_per_s": 5, "ack_timeout_s": 5}
        agent = own_stack.agent(host=HOST, mqtt=mqtt, spool=spool, peripherals={"enabled": False})
        agent.argv = line.in_lan(agent.argv)
        agent.env = {**(agent.env or {}), TEST_CLOCK_SKEW_ENV: str(SKEW_S)}
        try:
            yield line, agent
        finally:
            agent.stop()


def collector(stack: Stack) -> Collector:
    made = stack.collector(
        ingest={"backlog_after_s": 5},
        fleet={"evaluate_interval_s": 0.5, "restart_grace_s": 3, "clock_settle_s": 6, "clock_jitter_s": 2},
        alerts={"for_s": {"host_offline": 1}},
    )
    made.start()
    return made


def the_pc(made: Collector) -> dict[str, Any]:
    return next((h for h in made.get_json("/api/v1/hosts") if h["host"] == HOST), {"last_seen": 0, "status": ""})


def heard_live(made: Collector, since: float) -> bool:
    """A live report from the PC came after ``since``, and just now: a report taken as backlog moves
    its last_seen only to its own ``ts``, 30 s behind, and its status only comes as it connects."""
    return the_pc(made)["last_seen"] > max(since, time.time() - 3)


def test_a_slow_clocked_pc_stays_online_across_a_collector_restart_and_its_line_cut_backlog_is_backlog(
    slow_pc: tuple[EmulatedLine, Agent], own_stack: Stack
) -> None:
    line, agent = slow_pc
    first = collector(own_stack)
    agent.start()
    learned = time.time() + 8  # its reports' lag has held for clock_settle_s: the offset is learned
    wait_until(lambda: heard_live(first, since=learned), 40, "the PC's reports count as live")
    counted = first.metric(BACKLOG)
    time.sleep(2)
    assert first.metric(BACKLOG) == counted  # its live reports are no backlog, 30 s slow as they are

    first.stop()
    time.sleep(6)  # longer than the offline threshold (3 intervals) and than backlog_after_s
    back = time.time()
    second = collector(own_stack)
    # past the grace and the offline threshold: a PC judged only on backlog would be offline now
    wait_until(lambda: heard_live(second, since=back + 3 + 3 + 2), 40, "live reports after the restart")
    assert the_pc(second)["status"] == "online"
    assert [a for a in second.get_json("/api/v1/alerts") if a["rule"] == "host_offline"] == []

    before = second.metric(BACKLOG)
    measured = cycles(agent)
    line.cut()
    wait_until(lambda: the_pc(second)["status"] == "offline", 30, "its Last Will")
    wait_until(lambda: cycles(agent) >= measured + 10, 30, "10 reports measured behind the cut line")
    behind = cycles(agent) - measured
    line.restore()
    spool = agent.workdir / "spool.sqlite"
    wait_until(lambda: the_pc(second)["status"] == "online", 30, "back online (its status)")
    wait_until(lambda: outbox(spool)[0] <= 2, 30, "its spool drained")
    # every metrics report measured more than backlog_after_s (+1 s of whole-second ts) before
    # the line came back is backlog, 30 s slow clock corrected; the other kinds may add to it
    wait_until(lambda: second.metric(BACKLOG) >= before + behind - 6, 10, "what it measured behind the cut")
