"""The interface between fleet state and alerting: conditions that are true right now.

Fleet state (``collector/fleet/``) evaluates the fleet periodically and hands the full set
of active conditions to a ``ConditionSink``; the alert manager (``collector/alerting/lifecycle.py``)
diffs successive sets and owns the alert lifecycle (pending, firing, resolved), silences,
acknowledgements and notifications. This mirrors Prometheus (rules) and Alertmanager.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from collector import vocabulary
from collector.vocabulary import HOST_DEGRADED, HOST_OFFLINE, LINE_DEGRADED, LINE_DOWN, LINE_UNUSED

__all__ = [
    "HOST_DEGRADED",
    "HOST_OFFLINE",
    "LINE_DEGRADED",
    "LINE_DOWN",
    "LINE_UNUSED",
    "NO_HOST",
    "RULES",
    "SEVERITIES",
    "Condition",
    "ConditionSink",
]

# Rule names (also the ``rule`` tag of the ``alert`` measurement) and severities; their words
# are in the vocabulary.
RULES = tuple(vocabulary.RULES)
SEVERITIES = tuple(vocabulary.SEVERITIES)
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
