"""Benchmark: a province that survives its server going away, at full size.

The stack of ``bench.province_scale`` with the collector's defaults (90 s restart grace, 30 s
reports): 123 communes of Tuyên Quang × 30 virtual PCs (3,690 connections) and 20 real agents
with their spools, 16 of them beside virtual PCs and 4 alone in the 124th commune (the one whose
line gets cut). Two scenarios, one after the other:

- **Broker restart** (Mosquitto stopped, which sends every Last Will, and started again): the time
  until the broker holds every connection again and until the collector has heard from every PC
  since the restart; the ``host_offline`` and ``line_down`` alerts raised up to the end of the
  collector's grace after its own reconnect (expected: none).
- **Province server down** (collector, broker and InfluxDB stopped) for ``BENCH_RECOVERY_OUTAGE_S``
  (180 s), then back. The real agents report every ``BENCH_RECOVERY_AGENT_INTERVAL_S`` (3 s), so a
  180 s outage fills their spools with 60 rounds: what 30 minutes at the default 30 s leave.
  The virtual PCs keep their 30 s. Figures: the time until every real agent's spool holds no report
  measured before the server came back, at the collector's real pace; reports lost (measured minus
  stored minus still spooled, per agent); the messages a second the collector took meanwhile and
  its CPU; alerts raised (expected: one ``line_down``, for the commune whose 4 agents are killed
  as soon as they are back, in the middle of their drain).

Run: ``python -m bench.recovery``.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

from bench.province_scale import DATABASE, ProvinceStack, in_a_folder, setting
from collector.registry import units
from devtools.localstack import Process, wait_until

PER_COMMUNE = 30
SPREAD = 8  # communes with 2 real agents beside their virtual PCs


def agent_process(folder: Path, stack: ProvinceStack, commune: str, host: str, interval_s: float) -> Process:
    workdir = folder / host
    workdir.mkdir()
    (workdir / "agent.toml").write_text(
        f'[identity]\nprovince = "08"\ncommune = "{commune}"\nhost = "{host}"\n'
        f"[mqtt]\nport = {stack.broker.port}\n[collect]\ninterval_s = {interval_s}\n"
        f'[spool]\npath = "{workdir / "spool.sqlite"}"\n[probe]\ngateway = false\n[peripherals]\nenabled = false\n'
    )
    return Process([sys.executable, "-m", "agent.cli", "run", "-c", str(workdir / "agent.toml")], workdir, "agent")


def spooled_before(agent: Process, moment: float) -> int:
    with sqlite3.connect(agent.workdir / "spool.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE created < ?", (moment,)).fetchone()[0])


def spool_left(agent: Process) -> int:
    with sqlite3.connect(agent.workdir / "spool.sqlite") as db:
        return int(db.execute("SELECT count(*) FROM outbox WHERE topic LIKE '%/metrics'").fetchone()[0])


def measured(agent: Process) -> int:
    return agent.log().count("msg=cycle kind=metrics")


def stored(stack: ProvinceStack, host: str) -> int:
    rows = stack.influxd.query(f"SELECT count(cpu_percent) FROM system WHERE host = '{host}'", DATABASE)
    return int(rows[0]["count"]) if rows else 0


def heard_since(stack: ProvinceStack, moment: float, hosts: int, but: frozenset[str] = frozenset()) -> bool:
    found = [h for h in stack.api("/api/v1/hosts") if h["host"] not in but]
    return len(found) >= hosts and all(h["status"] == "online" and h["last_seen"] > moment for h in found)


def alerts(stack: ProvinceStack) -> list[tuple[str, str, str]]:
    return [(a["rule"], a["commune"], a["host"]) for a in stack.api("/api/v1/alerts")
            if a["rule"] in ("host_offline", "line_down")]  # fmt: skip


def broker_restart(stack: ProvinceStack, hosts: int) -> dict[str, Any]:
    before = set(alerts(stack))
    restarted = time.monotonic()
    wall = time.time()
    stack.broker.stop()
    stack.broker.start()
    wait_until(lambda: stack.connections() >= hosts + 1, 300, "every connection back", interval_s=1)
    connections_back_s = time.monotonic() - restarted
    wait_until(lambda: heard_since(stack, wall, hosts), 300, "every PC heard from", interval_s=2)
    heard_s = time.monotonic() - restarted
    time.sleep(max(0.0, 90 + 15 - (time.monotonic() - restarted)))  # past the collector's grace
    return {
        "connections_back_s": round(connections_back_s, 1),
        "every_pc_heard_from_s": round(heard_s, 1),
        "alerts_raised": sorted(set(alerts(stack)) - before),
    }


def server_down(stack: ProvinceStack, agents: dict[str, Process], cut: list[str], hosts: int) -> dict[str, Any]:
    outage_s = setting("BENCH_RECOVERY_OUTAGE_S", 180)
    before = set(alerts(stack))
    connects = {host: agents[host].log().count("msg=connected") for host in cut}
    stack.collector.stop()
    stack.broker.stop()
    stack.influxd.stop()
    time.sleep(outage_s)
    stack.influxd.start()
    stack.broker.start()
    back, back_mono = time.time(), time.monotonic()
    spooled = {host: spooled_before(agent, back) for host, agent in agents.items()}
    stack.start_collector()
    cpu_before, received_before = stack.cpu_s(), stack.metric("commune_collector_messages_received_total")
    wait_until(lambda: all(agents[h].log().count("msg=connected") > connects[h] for h in cut), 120, "cut back")
    cut_backlog = sum(spooled_before(agents[h], back) for h in cut)
    for host in cut:
        agents[host].kill()  # the line is cut in the middle of the drain
    live = [host for host in agents if host not in cut]
    wait_until(lambda: all(spooled_before(agents[h], back) == 0 for h in live), 900, "spools drained", interval_s=1)
    drained_s = time.monotonic() - back_mono
    cpu_after, received_after = stack.cpu_s(), stack.metric("commune_collector_messages_received_total")
    wait_until(lambda: heard_since(stack, back, hosts - len(cut), frozenset(cut)), 300, "every other PC back", 2)
    everyone_s = time.monotonic() - back_mono
    time.sleep(max(0.0, 90 + 30 - (time.monotonic() - back_mono)))  # past the grace: the cut counts now
    raised = sorted(set(alerts(stack)) - before)  # before the live agents stop (a clean stop says offline)
    for host in live:
        agents[host].stop()
    lost = {}
    for host, agent in agents.items():
        made, left = measured(agent), spool_left(agent)

        def accounted(host: str = host, made: int = made, left: int = left) -> bool:
            return stored(stack, host) + left >= made

        wait_until(accounted, 60, f"{host} stored", interval_s=1)
        lost[host] = made - stored(stack, host) - left
    elapsed = time.monotonic() - back_mono
    return {
        "outage_s": outage_s,
        "reports_spooled_per_agent": round(sum(spooled.values()) / len(spooled), 1),
        "cut_commune_backlog_when_cut": cut_backlog,
        "spools_drained_s": round(drained_s, 1),
        "every_other_pc_back_s": round(everyone_s, 1),
        "collector_messages_per_s_while_draining": round((received_after - received_before) / drained_s, 1),
        "cpu_percent_of_one_core_while_draining": {
            name: round(100 * (cpu_after[name] - cpu_before.get(name, 0.0)) / drained_s, 1) for name in cpu_after
        },
        "reports_lost": sum(max(0, n) for n in lost.values()),
        "alerts_raised": raised,
        "observed_s": round(elapsed),
    }


def run(folder: Path) -> dict[str, Any]:
    communes = [c.code for c in units.communes_of("08")]
    simulated, alone = communes[:-1], communes[-1]
    agent_interval_s = setting("BENCH_RECOVERY_AGENT_INTERVAL_S", 3)
    stack = ProvinceStack(folder)
    agents: dict[str, Process] = {}
    try:
        stack.start()
        stack.simulate(PER_COMMUNE, 30, 1, "--communes", ",".join(simulated))
        places = [(c, f"agent-{c}-{n}") for c in simulated[:SPREAD] for n in (1, 2)]
        places += [(alone, f"agent-{alone}-{n}") for n in range(1, 5)]
        for commune, host in places:
            agents[host] = agent_process(folder, stack, commune, host, agent_interval_s)
            agents[host].start()
        hosts = PER_COMMUNE * len(simulated) + len(agents)
        wait_until(lambda: heard_since(stack, 0, hosts), 300, f"{hosts} PCs online", interval_s=2)
        return {
            "virtual_pcs": PER_COMMUNE * len(simulated),
            "real_agents": len(agents),
            "broker_restart": broker_restart(stack, hosts),
            "server_down": server_down(stack, agents, [h for c, h in places if c == alone], hosts),
        }
    finally:
        for agent in agents.values():
            agent.stop()
        stack.stop()


def main() -> dict[str, Any]:
    return in_a_folder(run, "bench-recovery-")


if __name__ == "__main__":
    main()
