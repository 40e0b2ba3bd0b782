"""``commune-sim``: a whole province of virtual agents over real MQTT.

``plan`` decides the province (communes, PCs, faults, equipment), ``pc`` what each virtual PC
publishes and how it acknowledges, ``transport`` how the PCs' connections reach the broker; this
module runs them on a schedule: a report round every interval, each PC at its own moment of the
round as real agents are (not all in the same second), speed tests and peripherals hourly (and
once more as the faults start). With ``processes`` above 1 the PCs are shared out among that many
worker processes, each with its own event loop, and their counts are added up.

Each PC keeps its reports in a bounded spool while it has no broker and drains it at its rate when
back (``pc.Spool``). With ``counts_out`` the simulator writes its spools' state to that file every
``PROGRESS_S`` (reports pending, when the oldest was measured) and, at the end, each PC's counts
(metrics reports made, still pending, dropped by the bound): what a benchmark compares with
InfluxDB.
"""

from __future__ import annotations

import functools
import json
import logging
import multiprocessing
import os
import queue
import random
import signal
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from collector.config import CollectorConfig
from devtools.simulate.pc import DRAIN_PER_S, SPOOL_MESSAGES, VirtualAgent
from devtools.simulate.plan import Plan, VirtualHost, make_plan, plan_json, register
from devtools.simulate.transport import FLUSH_S, Stop, Transport

log = logging.getLogger("devtools.simulate")
__all__ = ["Plan", "VirtualAgent", "VirtualHost", "make_plan", "plan_json", "register", "run"]
CONNECT_WAIT_S = 2.0  # before the first round: connections up, status and inventory out
SLICE_S = 0.1  # a round's PCs report in slices this long, spread over the interval
PROGRESS_S = 2.0  # how often the spools' state is written to ``counts_out``
COUNTS = ("hosts", "connected", "connections_lost", "connect_failures", "bytes_sent", "bytes_received",
          "acks_received", "reports_unacknowledged", "metrics_made", "reports_spool_dropped",
          "reports_resent")  # fmt: skip


@dataclass(frozen=True)
class Schedule:
    interval_s: float  # between a PC's reports
    fault_after_s: float  # the faults start this long after the start
    duration_s: float  # 0: until stopped
    seed: int
    outage_s: float = 60.0  # power cuts and office closings last this long from the faults' start
    spool_messages: int = SPOOL_MESSAGES  # each PC's spool bound
    drain_per_s: float = DRAIN_PER_S  # each PC's drain rate
    counts_out: str = ""  # file for the spools' state and each PC's counts ("": none)


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
    spool_messages: int = SPOOL_MESSAGES,
    drain_per_s: float = DRAIN_PER_S,
    counts_out: str = "",
) -> dict[str, Any]:
    """Publishes until ``stop`` is set or ``duration_s`` (0: forever) has passed; returns counts.
    Outage faults (power cut, office closed) last ``outage_s`` from the faults' start."""
    schedule = Schedule(interval_s, fault_after_s, duration_s, seed, outage_s, spool_messages, drain_per_s, counts_out)
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
        agent.spool.limit, agent.spool.drain_per_s = schedule.spool_messages, schedule.drain_per_s
        agent.link = transport.open(agent.client_id, agent.will, agent.on_connect, agent.on_ack)
        agent.relink = functools.partial(transport.open, agent.client_id, agent.will, agent.on_connect, agent.on_ack,
                                         at_once=True)  # fmt: skip
    progress = Progress(schedule.counts_out, agents)
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
                for agent in agents:
                    if agent.spool.outbox:
                        agent.drain()
                progress.note()
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
        progress.final()
    return {
        "cycles": cycles,
        "hosts": len(agents),
        "connected": connected,  # at the end of the last round
        "connections_lost": transport.lost,
        "connect_failures": transport.refused,
        "bytes_sent": sum(h.sent_bytes for h in hosts),
        "bytes_received": sum(h.received_bytes for h in hosts),
        "acks_received": sum(agent.acks for agent in agents),
        "reports_unacknowledged": sum(len(agent.spool.sent) for agent in agents if not agent.dropped),
        "metrics_made": sum(agent.spool.metrics_made for agent in agents),
        "reports_spool_dropped": sum(agent.spool.dropped for agent in agents),
        "reports_resent": sum(agent.spool.resent for agent in agents),
    }


class Progress:
    """The spools' state in ``path`` (written whole, then renamed, so a reader never sees half)."""

    def __init__(self, path: str, agents: list[VirtualAgent]) -> None:
        self.path, self.agents = path, agents
        self.next = 0.0

    def note(self) -> None:
        now = time.monotonic()
        if not self.path or now < self.next:
            return
        self.next = now + PROGRESS_S
        oldest = [t for t in (a.spool.oldest_pending() for a in self.agents) if t is not None]
        self._write({"final": False, "at": time.time(), "pending": sum(a.spool.pending() for a in self.agents),
                     "published": sum(a.spool.published for a in self.agents),
                     "oldest_pending": min(oldest, default=None)})  # fmt: skip

    def final(self) -> None:
        """Each PC's counts, once it has stopped: metrics reports made, still pending, dropped."""
        if not self.path:
            return
        per_pc = {
            f"{a.host.commune}/{a.host.host}": {
                "metrics_made": a.spool.metrics_made,
                "metrics_pending": a.spool.metrics_pending(),
                "metrics_dropped": a.spool.metrics_dropped,
            }
            for a in self.agents
        }
        self._write({"final": True, "at": time.time(), "per_pc": per_pc})

    def _write(self, data: dict[str, Any]) -> None:
        path = Path(self.path)
        part = path.with_name(path.name + ".part")
        part.write_text(json.dumps(data), encoding="utf-8")
        os.replace(part, path)


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
                replace(
                    schedule,
                    seed=schedule.seed * 1000 + n,
                    counts_out=f"{schedule.counts_out}.{n}" if schedule.counts_out else "",
                ),
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
