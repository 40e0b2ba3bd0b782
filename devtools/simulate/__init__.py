"""``commune-collector simulate``: a whole province of virtual agents over real MQTT.

``plan`` decides the province (communes, PCs, faults, equipment), ``pc`` what each virtual PC
publishes and how it acknowledges, ``transport`` how the PCs' connections reach the broker; this
module runs them on a schedule: a report round every interval, each PC at its own moment of the
round as real agents are (not all in the same second), speed tests and peripherals hourly (and
once more as the faults start). With ``processes`` above 1 the PCs are shared out among that many
worker processes, each with its own event loop, and their counts are added up.
"""

from __future__ import annotations

import functools
import logging
import multiprocessing
import queue
import random
import signal
import time
from dataclasses import dataclass, replace
from typing import Any

from collector.config import CollectorConfig
from devtools.simulate.pc import VirtualAgent
from devtools.simulate.plan import Plan, VirtualHost, make_plan, plan_json, register
from devtools.simulate.transport import FLUSH_S, Stop, Transport

log = logging.getLogger("devtools.simulate")
__all__ = ["Plan", "VirtualAgent", "VirtualHost", "make_plan", "plan_json", "register", "run"]
CONNECT_WAIT_S = 2.0  # before the first round: connections up, status and inventory out
SLICE_S = 0.1  # a round's PCs report in slices this long, spread over the interval
COUNTS = ("hosts", "connected", "connections_lost", "connect_failures", "bytes_sent", "bytes_received",
          "acks_received", "reports_unacknowledged")  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    interval_s: float  # between a PC's reports
    fault_after_s: float  # the faults start this long after the start
    duration_s: float  # 0: until stopped
    seed: int
    outage_s: float = 60.0  # power cuts and office closings last this long from the faults' start


def run(
    config: CollectorConfig,
    plan: Plan,
    interval_s: float,
    fault_after_s: float,
    duration_s: float,
    stop: Stop,
    seed: int = 1,
    processes: int = 1,
    outage_s: float = 60.0,
) -> dict[str, Any]:
    """Publishes until ``stop`` is set or ``duration_s`` (0: forever) has passed; returns counts.
    Outage faults (power cut, office closed) last ``outage_s`` from the faults' start."""
    schedule = Schedule(interval_s, fault_after_s, duration_s, seed, outage_s)
    if processes <= 1:
        return run_hosts(config, plan.hosts, schedule, stop)
    return run_processes(config, plan, schedule, stop, processes)


def run_hosts(config: CollectorConfig, hosts: list[VirtualHost], schedule: Schedule, stop: Stop) -> dict[str, Any]:
    """``hosts`` of the plan on one event loop, in this process."""
    interval_s, fault_after_s, duration_s = schedule.interval_s, schedule.fault_after_s, schedule.duration_s
    rng = random.Random(schedule.seed)
    started = time.time()
    for host in hosts:
        host.boot_time = started - rng.uniform(3600, 30 * 86400)
    agents = [VirtualAgent(host, random.Random(rng.random())) for host in hosts]
    transport = Transport(config.mqtt, stop, random.Random(rng.random()))
    for agent in agents:
        agent.link = transport.open(agent.client_id, agent.will, agent.connected, agent.on_ack)
        agent.relink = functools.partial(transport.open, agent.client_id, agent.will, agent.connected, agent.on_ack,
                                         at_once=True)  # fmt: skip
    slices = max(1, int(interval_s / SLICE_S))
    by_slice: list[list[VirtualAgent]] = [[] for _ in range(slices)]
    for agent in agents:
        by_slice[rng.randrange(slices)].append(agent)  # each PC's moment in the round
    transport.start()
    cycles, connected = 0, 0
    try:
        transport.wait(min(CONNECT_WAIT_S, interval_s))
        next_speedtest, next_peripherals, was_faulty = 0.0, 0.0, False
        while not stop.is_set():
            now = time.time()
            faulty = now - started >= fault_after_s
            outage_over = now - started >= fault_after_s + schedule.outage_s
            speedtests = now >= next_speedtest or (faulty and not was_faulty)  # and once more as faults start
            peripherals = now >= next_peripherals
            next_speedtest = now + 3600 if speedtests else next_speedtest
            next_peripherals = now + 3600 if peripherals else next_peripherals
            for n, group in enumerate(by_slice):
                transport.wait(now + n * interval_s / slices - time.time())
                for agent in group:
                    agent.tick(interval_s, faulty, outage_over)
                    if speedtests:
                        agent.speedtest(faulty)
                    if peripherals:
                        agent.peripherals(started)
            was_faulty = faulty
            cycles += 1
            connected = transport.connected()
            if duration_s and time.time() - started >= duration_s:
                break
            transport.wait(interval_s - (time.time() - now))
    finally:
        for agent in agents:
            agent.stop()
        transport.finish()
    return {
        "cycles": cycles,
        "hosts": len(agents),
        "connected": connected,  # at the end of the last round
        "connections_lost": transport.lost,
        "connect_failures": transport.refused,
        "bytes_sent": sum(h.sent_bytes for h in hosts),
        "bytes_received": sum(h.received_bytes for h in hosts),
        "acks_received": sum(agent.acks for agent in agents),
        "reports_unacknowledged": sum(len(agent.unacked) for agent in agents if not agent.dropped),
    }


def _worker(config: CollectorConfig, hosts: list[VirtualHost], schedule: Schedule, stop: Stop, results: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent tells the workers to stop through ``stop``
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    results.put(run_hosts(config, hosts, schedule, stop))


def run_processes(
    config: CollectorConfig, plan: Plan, schedule: Schedule, stop: Stop, processes: int
) -> dict[str, Any]:
    """The PCs shared out among ``processes`` forked workers; the counts added up."""
    context = multiprocessing.get_context("fork")
    shared_stop, results = context.Event(), context.Queue()
    workers = [
        context.Process(
            target=_worker,
            args=(
                config,
                plan.hosts[n::processes],
                replace(schedule, seed=schedule.seed * 1000 + n),
                shared_stop,
                results,
            ),
            name=f"simulate-{n}",
        )
        for n in range(processes)
    ]
    for worker in workers:
        worker.start()
    try:
        while not stop.is_set() and any(worker.is_alive() for worker in workers) and results.qsize() < processes:
            time.sleep(0.2)
    finally:
        shared_stop.set()
    parts = []
    for worker in workers:
        try:
            parts.append(results.get(timeout=FLUSH_S + 30))
        except queue.Empty:
            log.error("a simulator worker ended without its counts", extra={"worker": worker.name})
    for worker in workers:
        worker.join(10)
    if not parts:
        raise RuntimeError("no simulator worker returned its counts; see the log above")
    total: dict[str, Any] = {"cycles": min(part["cycles"] for part in parts), "processes": processes}
    total.update({key: sum(part[key] for part in parts) for key in COUNTS})
    return total
