"""``commune-collector simulate``: a whole province of virtual agents over real MQTT.

``plan`` decides the province (communes, PCs, faults, equipment), ``pc`` what each virtual PC
publishes and how it acknowledges, ``transport`` how the PCs' connections reach the broker; this
module runs them on a schedule: a report round every interval, speed tests and peripherals hourly
(and once more as the faults start).
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from collector.config import CollectorConfig
from devtools.simulate.pc import VirtualAgent
from devtools.simulate.plan import Plan, VirtualHost, make_plan, plan_json, register
from devtools.simulate.transport import Transport

__all__ = ["Plan", "VirtualAgent", "VirtualHost", "make_plan", "plan_json", "register", "run"]


def run(
    config: CollectorConfig,
    plan: Plan,
    interval_s: float,
    fault_after_s: float,
    duration_s: float,
    stop: threading.Event,
    seed: int = 1,
) -> dict[str, Any]:
    """Publishes until ``stop`` is set or ``duration_s`` (0: forever) has passed; returns counts."""
    rng = random.Random(seed)
    started = time.time()
    for host in plan.hosts:
        host.boot_time = started - rng.uniform(3600, 30 * 86400)
    agents = [VirtualAgent(host, random.Random(rng.random())) for host in plan.hosts]
    transport = Transport(config.mqtt, stop)
    for agent in agents:
        agent.link = transport.open(agent.client_id, agent.will, agent.connected, agent.on_ack)
    transport.start()
    cycles = 0
    try:
        transport.wait(min(2.0, interval_s))  # connections up, status and inventory out
        next_speedtest, next_peripherals, was_faulty = 0.0, 0.0, False
        while not stop.is_set():
            now = time.time()
            faulty = now - started >= fault_after_s
            for agent in agents:
                agent.tick(interval_s, faulty)
            if now >= next_speedtest or (faulty and not was_faulty):  # and once more as the faults start
                for agent in agents:
                    agent.speedtest(faulty)
                next_speedtest = now + 3600
            if now >= next_peripherals:
                for agent in agents:
                    agent.peripherals(started)
                next_peripherals = now + 3600
            was_faulty = faulty
            cycles += 1
            if duration_s and time.time() - started >= duration_s:
                break
            transport.wait(interval_s - (time.time() - now))
    finally:
        for agent in agents:
            agent.stop()
    return {
        "cycles": cycles,
        "hosts": len(agents),
        "bytes_sent": sum(h.sent_bytes for h in plan.hosts),
        "bytes_received": sum(h.received_bytes for h in plan.hosts),
        "acks_received": sum(agent.acks for agent in agents),
        "reports_unacknowledged": sum(len(agent.unacked) for agent in agents if not agent.dropped),
    }
