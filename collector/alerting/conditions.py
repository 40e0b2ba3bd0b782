"""The interface between fleet state and alerting: conditions that are true right now.

Fleet state (``collector/fleet/``) evaluates the fleet periodically and hands the full set
of active conditions to a ``ConditionSink``; the alert manager (``collector/alerting/lifecycle.py``)
diffs successive sets and owns the alert lifecycle (pending, firing, resolved), silences,
acknowledgements and notifications. This mirrors Prometheus (rules) and Alertmanager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

# Rule names (also the ``rule`` tag of the ``alert`` measurement).
HOST_OFFLINE = "host_offline"
LINE_DOWN = "line_down"
LINE_DEGRADED = "line_degraded"
HOST_DEGRADED = "host_degraded"
LINE_UNUSED = "line_unused"
RULES = (HOST_OFFLINE, LINE_DOWN, LINE_DEGRADED, HOST_DEGRADED, LINE_UNUSED)

SEVERITIES = ("critical", "warning", "info")
NO_HOST = "-"  # the host of a commune-level condition (a valid tag value)


@dataclass(frozen=True)
class Condition:
    """One rule true for one subject (a host, or a commune when ``host`` is NO_HOST)."""

    rule: str
    province: str
    area: str
    commune: str
    host: str
    severity: str
    summary_vi: str
    summary_en: str
    details: tuple[tuple[str, str], ...] = field(default=())

    @property
    def key(self) -> tuple[str, str, str, str]:
        """Identity for deduplication: the same rule on the same subject is one alert."""
        return (self.rule, self.province, self.commune, self.host)


class ConditionSink(Protocol):
    def update(self, active: list[Condition], now: float) -> None:
        """Receive every condition active at ``now``; a condition absent from the list is no longer true."""
