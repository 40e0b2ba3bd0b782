"""Turns one MQTT message into validated, enriched InfluxDB points, or a counted rejection.

Identity (province, commune, host) comes from the topic, which the broker's ACL ties to the
publisher's credentials; the area comes from the registry. Nothing in the message body ever
becomes a tag except the contract's labels, which are checked against a closed alphabet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Final

from collector.config import IngestSettings
from collector.ingest.lineprotocol import LineProtocolError, Point, encode_point
from collector.ingest.series_bounds import SeriesBounds
from collector.registry import units
from collector.registry.registry import HostKey, Registry
from collector.selfmetrics import SelfMetrics
from common.wire import REJECT_REASONS as WIRE_REJECT_REASONS
from common.wire import SECTIONS_BY_KIND, Report, WireError, decode_report, parse_topic

log = logging.getLogger("commune_collector.ingest")

# Every reason a message can be rejected for: the contract's, and the two only the collector
# knows (a commune not in the official list, a point that cannot be written safely); and every
# reason points are dropped from a message that is otherwise stored.
REJECT_REASONS: Final = (*WIRE_REJECT_REASONS, "unknown_commune", "unsafe_point")
DROP_REASONS: Final = ("too_many_series",)


@dataclass(frozen=True)
class Accepted:
    """A report that passed every check, with where it came from and when it was received."""

    host: HostKey
    area: str
    report: Report
    received_at: float
    ts: int
    dropped_points: int = 0  # points over the host's series bound, left out of InfluxDB


Observer = Callable[[Accepted], None]


class Ingestor:
    def __init__(self, registry: Registry, metrics: SelfMetrics, settings: IngestSettings) -> None:
        self.registry = registry
        self.metrics = metrics
        self.settings = settings
        self.bounds = SeriesBounds(settings.max_values_per_tag, settings.values_window_s)
        self.observers: list[Observer] = []
        metrics.declare_reasons(REJECT_REASONS, DROP_REASONS)

    def handle(self, topic: str, payload: bytes, received_at: float) -> list[str]:
        """Lines of line protocol for this message; empty when it was rejected (and counted)."""
        self.metrics.messages_received.inc()
        try:
            accepted = self._accept(topic, payload, received_at)
            points, dropped = self.bounds.admit(accepted.host, self.points(accepted), received_at)
            lines = [encode_point(point) for point in points]
        except WireError as exc:
            self.metrics.reject(exc.reason, exc.detail, topic)
            return []
        except LineProtocolError as exc:
            self.metrics.reject("unsafe_point", str(exc), topic)
            return []
        if dropped is not None:
            detail = (
                f"{dropped.points} point(s) with a new {dropped.tag} (e.g. {dropped.example!r}) dropped: the host holds"
                f" {self.bounds.max_values} {dropped.tag} values already ([ingest] max_values_per_tag)"
            )
            self.metrics.drop("too_many_series", dropped.points, detail, topic)
            accepted = replace(accepted, dropped_points=dropped.points)
        self._observe(accepted)
        self.metrics.messages_accepted.inc()
        return lines

    def _accept(self, topic: str, payload: bytes, received_at: float) -> Accepted:
        parsed = parse_topic(topic)
        if not units.is_official(parsed.province, parsed.commune):
            raise WireError(
                "unknown_commune", f"commune {parsed.commune} is not in province {parsed.province}'s official list"
            )
        report = decode_report(parsed.kind, payload)
        host = HostKey(parsed.province, parsed.commune, parsed.host)
        ts = self._timestamp(report.ts, received_at)
        agent_version = None
        if parsed.kind == "inventory":
            version = report.sections["inventory"][0].get("agent_version")
            agent_version = version if isinstance(version, str) else None
        status = report.state if parsed.kind == "status" else "online"
        is_new = self.registry.touch(host, received_at, status=status, agent_version=agent_version)
        if is_new:
            log.info("new host", extra={"province": host.province, "commune": host.commune, "host": host.host})
        return Accepted(host, self.registry.area_of(host.commune), report, received_at, ts)

    def _timestamp(self, ts: float, received_at: float) -> int:
        """The agent's timestamp, or the receive time when the agent's clock is implausible."""
        if ts > received_at + self.settings.max_clock_skew_s or ts < received_at - self.settings.max_age_s:
            self.metrics.clock_skew.inc()
            return int(received_at)
        return int(ts)

    def points(self, accepted: Accepted) -> list[Point]:
        base = {
            "province": accepted.host.province,
            "area": accepted.area,
            "commune": accepted.host.commune,
            "host": accepted.host.host,
        }
        specs = SECTIONS_BY_KIND[accepted.report.kind]
        points = []
        for name, items in accepted.report.sections.items():
            spec = specs[name]
            for item in items:
                tags = dict(base)
                fields = dict(item)
                if spec.label is not None:
                    tags[spec.label] = str(fields.pop(spec.label))
                for key in spec.tags:
                    tags[key] = str(fields.pop(key))
                if spec.measurement == "speedtest":
                    self._add_contract(accepted.host.commune, fields)
                if fields:
                    points.append(Point(spec.measurement, tags, fields, accepted.ts))
        return points

    def _add_contract(self, commune: str, fields: dict[str, float | str]) -> None:
        """Speed tests carry the line's contracted speeds so dashboards can show "% of contract"."""
        lines = self.registry.lines(commune)
        if not lines:
            return
        line = lines[0]  # a commune with two lines: the first by circuit id (documented)
        fields["contracted_down_mbps"] = line.contracted_down_mbps
        fields["contracted_up_mbps"] = line.contracted_up_mbps
        for direction, contracted in (("download", line.contracted_down_mbps), ("upload", line.contracted_up_mbps)):
            measured = fields.get(f"{direction}_mbps")
            if isinstance(measured, float) and contracted > 0:
                fields[f"{direction}_percent_of_contract"] = 100.0 * measured / contracted

    def _observe(self, accepted: Accepted) -> None:
        for observer in self.observers:
            try:
                observer(accepted)
            except Exception:  # an observer's bug must not drop the data
                log.exception("observer failed", extra={"observer": getattr(observer, "__name__", repr(observer))})
