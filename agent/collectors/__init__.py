"""Registry of the agent's metric collectors: one module each, one line here to add one.

A collector has a ``section`` (a key of ``wire.SECTIONS_BY_KIND["metrics"]``) and a
``collect()`` that returns that section's value: a dict, or a list of labelled dicts.
Rate collectors keep the previous counters, so their first call reports no rates.
"""

from __future__ import annotations

from typing import Any, Protocol

from agent.collectors.disk import DiskCollector
from agent.collectors.io import IoCollector
from agent.collectors.net import NetCollector
from agent.collectors.sensors import SensorsCollector
from agent.collectors.system import SystemCollector


class Collector(Protocol):
    section: str

    def collect(self) -> Any: ...


METRIC_COLLECTORS: tuple[type[Collector], ...] = (
    SystemCollector,
    DiskCollector,
    NetCollector,
    SensorsCollector,
    IoCollector,
)


def make_metric_collectors(watch_paths: tuple[str, ...] = ()) -> list[Collector]:
    """Fresh instances of every registered metric collector; the disk collector always reports the
    filesystems holding ``watch_paths`` (the agent's own files)."""
    return [DiskCollector(watch_paths) if cls is DiskCollector else cls() for cls in METRIC_COLLECTORS]
