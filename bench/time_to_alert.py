"""Benchmark: time from a fault to the notification on a webhook, on real processes.

Broker, InfluxDB, a collector and real agents (report interval 10 s, the collector's defaults
otherwise) on loopback. Two faults, each timed from the moment it happens to the webhook
receiving the alert: an agent killed with SIGKILL (``host_offline``), and every PC of a
commune killed at once (``line_down``). Run: ``python -m bench.time_to_alert``.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from devtools.localstack import (
    AgentProcess,
    Influxd,
    Mosquitto,
    ProcessGroup,
    ServedCollector,
    WebhookReceiver,
    wait_until,
)

INTERVAL_S = 10
GROUP_WAIT_S = 30


def run(folder: Path) -> dict[str, float]:
    hook = WebhookReceiver()
    try:
        with ProcessGroup() as group:
            broker, influxd = group.start(Mosquitto(folder / "broker")), group.start(Influxd(folder / "influxd"))
            influxd.create_database("bench")
            notify = {"group_wait_s": GROUP_WAIT_S, "webhook_urls": [hook.url]}
            group.start(ServedCollector(folder, broker, influxd, "bench", fleet={"restart_grace_s": 0}, notify=notify))
            places = (("02473", "pc-a1"), ("02473", "pc-a2"), ("02536", "pc-b1"), ("02536", "pc-b2"))
            agents = {
                host: group.start(AgentProcess(folder, broker.port, commune, host, INTERVAL_S))
                for commune, host in places
            }
            time.sleep(INTERVAL_S + 5)  # every agent has reported

            def timed(rule: str, victims: list[str]) -> float:
                started = time.monotonic()
                for host in victims:
                    agents[host].kill()

                def firing() -> list[float]:
                    return [
                        at
                        for at, body in hook.received
                        for e in body["events"]
                        if (e["rule"], e["event"]) == (rule, "firing")
                    ]

                wait_until(lambda: bool(firing()), 300, rule)
                return firing()[0] - started

            return {
                "time_to_alert_killed_agent_s": round(timed("host_offline", ["pc-a1"]), 1),
                "time_to_alert_cut_commune_s": round(timed("line_down", ["pc-b1", "pc-b2"]), 1),
            }
    finally:
        hook.close()


def main() -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="bench-alert-") as folder:
        figures = run(Path(folder))
    print(f"time to alert, agent interval {INTERVAL_S} s, notification group wait {GROUP_WAIT_S} s:")
    for name, value in figures.items():
        print(f"  {name}: {value} s")
    return figures


if __name__ == "__main__":
    main()
