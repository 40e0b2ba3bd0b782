"""Benchmark: a province that survives its server going away, at full size.

The stack of ``bench.province_scale`` with the collector's defaults (90 s restart grace, 30 s
reports): 123 communes of Tuyên Quang × 30 virtual PCs (3,690 connections) and 20 real agents
with their spools, 16 of them beside virtual PCs and 4 alone in the 124th commune (the one whose
line gets cut). Two scenarios, one after the other:

- **Broker restart** (Mosquitto stopped, which sends every Last Will, and started again): the time
  until the broker holds every connection again and until the collector has heard from every PC
  since the restart; the ``host_offline`` and ``line_down`` alerts raised up to the end of the
  collector's grace after its own reconnect (expected: none).
- **Province server down** (collector, broker and InfluxDB stopped) for 30 minutes, then back,
  everyone reporting every 30 s: the issue's letter. Virtual PCs keep what they measure in their
  bounded spools as agents do (``devtools/simulate/pc.py``) and send it when back, so the returning
  server faces a province's backlog (3,690 × 60 rounds of metrics and probes, and the real agents'
  spools) and the broker holds what the collector cannot take yet. Figures: the time until no
  report measured before the return is pending anywhere (every real agent's spool, every virtual
  PC's), at the collector's real pace; reports lost (measured minus stored minus still pending, per
  real agent and per virtual PC); what the collector took a second meanwhile, its CPU, and the most
  the broker held (its memory, and reports published but not yet taken by the collector); the live
  state while the backlog drains, sampled every 2 s from the collector's API (no PC's ``last_seen``
  moved by a report older than ``[ingest] backlog_after_s``, every alert that fired); alerts raised
  (expected: one ``line_down``, for the commune whose 4 agents are killed as soon as they are back,
  in the middle of their drain).

``BENCH_RECOVERY_SCALE=10`` is the quick mode: a 180 s outage with the real agents reporting every
3 s, so their spools fill as in 30 minutes; the virtual PCs keep their 30 s (6 rounds spooled).

Run: ``python -m bench.recovery`` (about 40 minutes; the outage itself costs little CPU).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.province_scale import DATABASE, ProvinceStack, in_a_folder, setting
from collector.registry import units
from devtools.localstack import Process, wait_until

BACKLOG_AFTER_S = 300  # the collector's default [ingest] backlog_after_s

PER_COMMUNE = int(setting("BENCH_RECOVERY_PER_COMMUNE", 30))  # fewer for a quick look at the bench itself
COUNTS = "simulate-counts.json"  # the simulator's spools, then each virtual PC's counts
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


def listed(found: list[tuple[str, str, str]]) -> Any:
    """Alerts as they are when few; when many, how many of each rule and every ``line_down``."""
    if len(found) <= 20:
        return found
    rules = sorted({rule for rule, _c, _h in found})
    return {"count": len(found), "by_rule": {rule: sum(1 for a in found if a[0] == rule) for rule in rules},
            "line_down": [a for a in found if a[0] == "line_down"]}  # fmt: skip


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


class Watch:
    """The collector's live state while a backlog drains, sampled every 2 s: alerts that fired,
    PCs whose ``last_seen`` a report older than the backlog bound moved, the broker's and the
    collector's memory, and how far the collector's intake trailed what the virtual PCs published."""

    def __init__(self, stack: ProvinceStack, down: float, back: float) -> None:
        self.stack, self.down, self.back = stack, down, back
        self.fired: set[tuple[str, str, str]] = set()
        self.stale_last_seen: dict[str, float] = {}
        self.broker_rss, self.collector_rss, self.held = 0, 0, 0.0
        self.samples = 0
        self.published_at_back = published(stack)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(2):
            try:
                self.sample()
            except (RuntimeError, OSError, ValueError):  # the collector busy or between starts: next sample
                continue

    def sample(self) -> None:
        received = self.stack.metric("commune_collector_messages_received_total")
        sent = published(self.stack) - self.published_at_back
        self.held = max(self.held, sent - received)
        self.broker_rss = max(self.broker_rss, rss(self.stack.broker))
        self.collector_rss = max(self.collector_rss, rss(self.stack.collector))
        self.fired |= set(alerts(self.stack))
        for host in self.stack.api("/api/v1/hosts"):  # a report measured in the outage, backlog: never last_seen
            if self.down + 10 < host["last_seen"] < self.back - BACKLOG_AFTER_S - 10:
                self.stale_last_seen[f"{host['commune']}/{host['host']}"] = host["last_seen"]
        self.samples += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)


def rss(process: Process) -> int:
    return psutil.Process(process.proc.pid).memory_info().rss if process.proc and process.running() else 0


def progress(stack: ProvinceStack) -> dict[str, Any]:
    """The simulator's spools (``--counts-out``), written every 2 s."""
    path = stack.folder / COUNTS
    return json.loads(path.read_text()) if path.exists() else {}


def published(stack: ProvinceStack) -> float:
    return float(progress(stack).get("published", 0))


def virtual_drained(stack: ProvinceStack, back: float) -> bool:
    """No virtual PC holds a report measured before ``back`` (from a state written since ``back``)."""
    state = progress(stack)
    oldest = state.get("oldest_pending")
    return bool(state) and state["at"] > back + 5 and (oldest is None or oldest >= back)


def virtual_lost(stack: ProvinceStack) -> dict[str, Any]:
    """Each virtual PC's metrics reports made, against InfluxDB's ``system`` points and what it still held."""
    state = progress(stack)
    if not state.get("final"):
        raise RuntimeError("the simulator wrote no final counts; see simulate.log")
    per_pc = state["per_pc"]

    def counted() -> dict[str, int]:
        rows = stack.influxd.query("SELECT count(cpu_percent) FROM system WHERE host =~ /^pc-/ GROUP BY commune, host",
                                   DATABASE)  # fmt: skip
        return {f"{row['commune']}/{row['host']}": int(row["count"]) for row in rows}

    def missing(stored: dict[str, int]) -> dict[str, int]:
        return {
            pc: n["metrics_made"] - n["metrics_pending"] - n["metrics_dropped"] - stored.get(pc, 0)
            for pc, n in per_pc.items()
            if stored.get(pc, 0) + n["metrics_pending"] + n["metrics_dropped"] < n["metrics_made"]
        }

    with contextlib.suppress(TimeoutError):  # what is still missing then is counted below
        wait_until(lambda: not missing(counted()), 120, "every virtual PC's reports stored", interval_s=5)
    stored = counted()
    return {
        "virtual_metrics_made": sum(n["metrics_made"] for n in per_pc.values()),
        "virtual_metrics_stored": sum(stored.values()),
        "virtual_metrics_pending_at_stop": sum(n["metrics_pending"] for n in per_pc.values()),
        "virtual_metrics_dropped_by_spool_bound": sum(n["metrics_dropped"] for n in per_pc.values()),
        "virtual_metrics_lost": sum(missing(stored).values()),
        "virtual_pcs_with_loss": len(missing(stored)),
    }


@contextlib.contextmanager
def ports_held(ports: list[int]) -> Iterator[None]:
    """Keep the stopped server's ports bound (not listening: a PC's connect is refused, as by a
    stopped server) so that no other process on a shared machine takes them during a long outage."""
    held = []
    try:
        for port in ports:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", port))
            held.append(sock)
        yield
    finally:
        for sock in held:
            sock.close()


def server_down(
    stack: ProvinceStack, agents: dict[str, Process], cut: list[str], hosts: int, outage_s: float
) -> dict[str, Any]:
    before = set(alerts(stack))
    connects = {host: agents[host].log().count("msg=connected") for host in cut}
    down = time.time()
    stack.collector.stop()
    stack.broker.stop()
    stack.influxd.stop()
    with ports_held([stack.broker.port, stack.influxd.port, stack.influxd.rpc_port]):
        time.sleep(outage_s)
    virtual_backlog = progress(stack).get("pending", 0)
    stack.influxd.start()
    stack.broker.start()
    back, back_mono = time.time(), time.monotonic()
    spooled = {host: spooled_before(agent, back) for host, agent in agents.items()}
    stack.start_collector()
    watch = Watch(stack, down, back)
    cpu_before, received_before = stack.cpu_s(), stack.metric("commune_collector_messages_received_total")
    wait_until(lambda: all(agents[h].log().count("msg=connected") > connects[h] for h in cut), 120, "cut back")
    cut_backlog = sum(spooled_before(agents[h], back) for h in cut)
    for host in cut:
        agents[host].kill()  # the line is cut in the middle of the drain
    live = [host for host in agents if host not in cut]
    wait_until(lambda: all(spooled_before(agents[h], back) == 0 for h in live), 1800, "spools drained", interval_s=1)
    agents_drained_s = time.monotonic() - back_mono
    wait_until(lambda: virtual_drained(stack, back), 1800, "virtual PCs drained", interval_s=1)
    drained_s = time.monotonic() - back_mono
    cpu_after, received_after = stack.cpu_s(), stack.metric("commune_collector_messages_received_total")
    wait_until(lambda: heard_since(stack, back, hosts - len(cut), frozenset(cut)), 300, "every other PC back", 2)
    everyone_s = time.monotonic() - back_mono
    # past the grace, which lasts 90 s beyond the last backlog report ([fleet] grace_while_draining_max_s):
    # the cut commune's Wills count now, and a PC still silent would be offline
    time.sleep(max(0.0, 90 + 30 - (time.monotonic() - back_mono - drained_s)))
    watch.stop()
    raised = sorted(set(alerts(stack)) - before)  # before the live agents stop (a clean stop says offline)
    for host in live:
        agents[host].stop()
    assert stack.simulator is not None
    stack.simulator.stop()  # it writes each virtual PC's counts as it ends
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
        "virtual_reports_pending_at_return": virtual_backlog,
        "cut_commune_backlog_when_cut": cut_backlog,
        "agent_spools_drained_s": round(agents_drained_s, 1),
        "everything_drained_s": round(drained_s, 1),
        "every_other_pc_back_s": round(everyone_s, 1),
        "collector_messages_per_s_while_draining": round((received_after - received_before) / drained_s, 1),
        "cpu_percent_of_one_core_while_draining": {
            name: round(100 * (cpu_after[name] - cpu_before.get(name, 0.0)) / drained_s, 1) for name in cpu_after
        },
        "broker_held_most_reports": round(watch.held),
        "broker_rss_peak_mb": round(watch.broker_rss / 2**20, 1),
        "collector_rss_peak_mb": round(watch.collector_rss / 2**20, 1),
        "live_state_samples": watch.samples,
        "last_seen_moved_by_backlog": len(watch.stale_last_seen),
        "alerts_fired_while_draining": listed(sorted(watch.fired - before)),
        "reports_lost": sum(max(0, n) for n in lost.values()),
        **virtual_lost(stack),
        "alerts_raised": listed(raised),  # every page of /api/v1/alerts
        "observed_s": round(elapsed),
    }


def run(folder: Path) -> dict[str, Any]:
    communes = [c.code for c in units.communes_of("08")]
    simulated, alone = communes[:-1], communes[-1]
    scale = setting("BENCH_RECOVERY_SCALE", 1)
    outage_s, agent_interval_s = 1800 / scale, 30 / scale
    stack = ProvinceStack(folder)
    agents: dict[str, Process] = {}
    try:
        stack.start()
        stack.simulate(PER_COMMUNE, 30, 1, "--communes", ",".join(simulated), "--counts-out", str(folder / COUNTS))
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
            "load_average": [round(x, 2) for x in psutil.getloadavg()],
            "server_down": server_down(stack, agents, [h for c, h in places if c == alone], hosts, outage_s),
            "load_average_after": [round(x, 2) for x in psutil.getloadavg()],
        }
    finally:
        for agent in agents.values():
            agent.stop()
        stack.stop()


def main() -> dict[str, Any]:
    return in_a_folder(run, "bench-recovery-")


if __name__ == "__main__":
    main()
