"""A collector and agents on one broker and one InfluxDB database: what most real-process tests start.

Written once here so a test asks for one fixture instead of listing ``make_collector``,
``make_agent``, a broker, ``influxd`` and ``database`` and passing ``mqtt={"port": ...}`` to each
process. The fixtures live in tests/conftest.py:

- ``stack``: on the session's Mosquitto (other tests' retained status messages are there too);
- ``own_stack``: on a broker of the test's own, for tests that count every host or must not see
  earlier tests' hosts.

API (every process is real; the fixtures stop them at teardown):

- ``stack.collector(**sections) -> Collector``: built, not started. ``sections`` merge over
  conftest's defaults section by section; ``[mqtt] port`` is the stack's broker unless given.
- ``stack.started_collector(**sections) -> Collector``: the same, started (waits for /healthz).
- ``stack.agent(commune="02473", host=None, province="08", python=sys.executable, **sections)
  -> Agent``: built, not started, reporting every second to the stack's broker.
- ``stack.start_agents(commune, hosts, **sections) -> list[Agent]``: one started agent per host.
- ``stack.query(influxql) -> list[dict]``: rows from the test's database.
- ``stack.stored_reports(host) -> int``: how many metrics reports of ``host`` are stored
  (``stored_reports(influxd, database, host)`` for another InfluxDB); ``stored_seconds(influxd,
  database, host)``: the seconds they were measured at, to account for each report by its time.
- ``stack.broker``, ``stack.influxd``, ``stack.database``.

With it, ``Collector.wait_hosts_online(commune, count)`` (tests/realservices.py) waits until the
collector counts that many of a commune's PCs online.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from realservices import Agent, Collector

from devtools.localstack import Influxd, Mosquitto, merged


@dataclass
class Stack:
    broker: Mosquitto
    influxd: Influxd
    database: str
    make_collector: Callable[..., Collector]
    make_agent: Callable[..., Agent]

    def on_broker(self, sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """``sections`` with ``[mqtt] port`` set to this stack's broker unless they name one."""
        return merged({"mqtt": {"port": self.broker.port}}, sections)

    def collector(self, **sections: dict[str, Any]) -> Collector:
        return self.make_collector(**self.on_broker(sections))

    def started_collector(self, **sections: dict[str, Any]) -> Collector:
        collector = self.collector(**sections)
        collector.start()
        return collector

    def agent(
        self,
        commune: str = "02473",
        host: str | None = None,
        province: str = "08",
        python: str = sys.executable,
        **sections: dict[str, Any],
    ) -> Agent:
        return self.make_agent(commune=commune, host=host, province=province, python=python, **self.on_broker(sections))

    def start_agents(self, commune: str, hosts: Iterable[str], **sections: dict[str, Any]) -> list[Agent]:
        agents = [self.make_agent(commune=commune, host=host, **self.on_broker(sections)) for host in hosts]
        for agent in agents:
            agent.start()
        return agents

    def query(self, influxql: str) -> list[dict[str, Any]]:
        return self.influxd.query(influxql, self.database)

    def stored_reports(self, host: str) -> int:
        """How many of ``host``'s metrics reports the test's database holds."""
        return stored_reports(self.influxd, self.database, host)


def stored_reports(influxd: Influxd, database: str, host: str) -> int:
    """How many of ``host``'s metrics reports ``database`` holds (one ``system`` point each)."""
    rows = influxd.query(f"SELECT count(cpu_percent) FROM system WHERE host = '{host}'", database)
    return int(rows[0]["count"]) if rows else 0


def stored_seconds(influxd: Influxd, database: str, host: str) -> set[int]:
    """The times (whole seconds, as the collector writes them) of ``host``'s stored metrics reports."""
    rows = influxd.query(f"SELECT cpu_percent FROM system WHERE host = '{host}'", database)
    return {int(row["time"]) for row in rows}
