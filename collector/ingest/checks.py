"""Turns one MQTT message into validated, enriched InfluxDB points, or a counted rejection.

Identity (province, commune, host) comes from the topic, which the broker's ACL ties to the
publisher's credentials; the area comes from the registry. Nothing in the message body ever
becomes a tag except the contract's labels, which are checked against a closed alphabet.

A numbered report (``seq``) seen before is a re-sent one: counted in ``reports_duplicate_total``
and kept from the observers (fleet state, alerts), which would take it for a new report. Its
lines are written all the same (the same points again) and it is acknowledged again: a wrong
guess can then cost nothing but a count.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from typing import Any, Final, NamedTuple

import msgspec
from msgspec import UNSET

from collector.config import IngestSettings
from collector.ingest import fastwire
from collector.ingest.hello import Hellos
from collector.ingest.lineprotocol import (
    KEY_RE,
    LineProtocolError,
    Point,
    encode_point,
    float_field_sets,
    series_head,
)
from collector.ingest.receipts import Receipt, Receipts
from collector.ingest.series_bounds import Dropped, HostBounds, SeriesBounds
from collector.registry import units
from collector.registry.registry import HostKey, Registry
from collector.selfmetrics import SelfMetrics
from common.wire import (
    MAX_SEQ,
    NUMBER,
    SECTIONS_BY_KIND,
    STREAM_RE,
    Report,
    WireError,
    parse_topic,
)
from common.wire import REJECT_REASONS as WIRE_REJECT_REASONS

log = logging.getLogger("commune_collector.ingest")

# Every reason a message can be rejected for: the contract's, and the three only the collector
# knows (a commune not in the official list, a province this collector does not take ([mqtt]
# provinces), a point that cannot be written safely); and every reason points are dropped from a
# message that is otherwise stored.
REJECT_REASONS: Final = (*WIRE_REJECT_REASONS, "unknown_commune", "foreign_province", "unsafe_point")
DROP_REASONS: Final = ("too_many_series",)


class Accepted(NamedTuple):
    """A report that passed every check, with where it came from and when it was received. A named
    tuple, not a frozen dataclass: one is made for every message, and a tuple is built faster."""

    host: HostKey
    area: str
    report: Report
    received_at: float
    ts: int
    dropped_points: int = 0  # points over the host's series bound, left out of InfluxDB
    live: bool = True  # measured within [ingest] backlog_after_s of its receipt: the PC is there now


class Handled(NamedTuple):
    """What became of one message: its lines (empty: nothing to store) and, for a numbered
    report, its receipt, to be marked stored with the lines (or acknowledged at once when
    ``lines`` is empty). A named tuple, as ``Accepted``."""

    lines: list[str]
    receipt: Receipt | None = None


Observer = Callable[[Accepted], None]
# An on-demand action's answer or result (``Report.demand``): its points carry this tag, so the
# monthly figures can leave them out, and the observers (fleet state, alerts) never see it.
ON_DEMAND_TAG: Final = "on_demand"
ON_DEMAND_VALUE: Final = "true"

# Topics whose checks are remembered (a province's 3,700 PCs send six kinds: 22,200); the cache
# is emptied when full, so a flood of invented hosts costs checks again, never memory.
MAX_SOURCES: Final = 65536
# Series heads remembered per topic: a host's labels (mounts, NICs...) are few and bounded by
# ``SeriesBounds``; a refused head is never remembered.
MAX_HEADS: Final = 256


class Source:
    """What a report topic says, checked once (shape, kind, province, official commune), and its
    host's series heads for the area they were made in: everything about a message that depends on
    its topic alone. Only accepted topics are kept, so a refused one is checked (and counted) again."""

    __slots__ = ("bounds", "host", "kind", "made")

    def __init__(self, kind: str, host: HostKey, bounds: HostBounds) -> None:
        self.kind = kind
        self.host = host
        self.bounds = bounds
        # the area the heads were made in, with the heads: one attribute, replaced whole, so a
        # thread never sees one area with another's heads
        self.made: tuple[str, dict[tuple[str, str | None], str]] = ("", {})

    def heads_in(self, area: str) -> dict[tuple[str, str | None], str]:
        """The heads made for ``area``; forgotten when the host's commune moved to another area."""
        made = self.made
        if made[0] != area:
            made = self.made = (area, {})
        return made[1]


def remember(heads: dict[tuple[str, str | None], str], measurement: str, label_value: str | None, head: str) -> str:
    """Keep a head with the others of its topic and area (all of them dropped when ``MAX_HEADS`` are kept)."""
    if len(heads) >= MAX_HEADS:
        heads.clear()
    heads[(measurement, label_value)] = head
    return head


def _fast_sections(kind: str) -> tuple[tuple[str, str, str | None, tuple[str, ...]], ...]:
    """(section, measurement, label, text fields) of a kind whose lines ``_fast_lines`` makes from
    its struct: its keys and labels plain names (so its JSON needs no escaping), no tag fields, no
    fields added."""
    sections = SECTIONS_BY_KIND[kind]
    for name, spec in sections.items():
        keys = [*spec.fields, *([spec.label] if spec.label else [])]
        if spec.tags or spec.measurement == "speedtest" or not all(KEY_RE.match(key) for key in keys):
            raise ValueError(f"section {name} of {kind} reports cannot be formatted from its struct")
    return tuple(
        (name, spec.measurement, spec.label, tuple(key for key, kind in spec.fields.items() if kind != NUMBER))
        for name, spec in sections.items()
    )


# The metrics report, every 30 s from every PC and nearly all the messages, is all numbers: its
# lines come straight from its struct. Other kinds (text fields, tag fields, contract figures added
# to speed tests) take ``points``' way, as do metrics reports holding a text (``spool_error``).
FAST_KINDS: Final = {"metrics": _fast_sections("metrics")}
_to_json = msgspec.json.encode


class Ingestor:
    def __init__(
        self,
        registry: Registry,
        metrics: SelfMetrics,
        settings: IngestSettings,
        receipts: Receipts | None = None,
        provinces: Collection[str] = (),
    ) -> None:
        self.registry = registry
        self.provinces = frozenset(provinces)  # empty: every province
        self.metrics = metrics
        self.settings = settings
        self.bounds = SeriesBounds(settings.max_values_per_tag, settings.values_window_s)
        self.receipts = receipts
        self.observers: list[Observer] = []
        self.on_demand: Observer | None = None  # answers and results of actions (collector/actions.py)
        self.clock_offset: Callable[[HostKey], float] = lambda _host: 0.0  # the fleet's learned clocks
        self._sources: dict[str, Source] = {}  # topic -> its checks and series heads
        self.hellos = Hellos()  # the service says whether it acknowledges ([mqtt] acks)
        metrics.declare_reasons(REJECT_REASONS, DROP_REASONS)

    def handle(self, topic: str, payload: bytes, received_at: float) -> list[str]:
        """Lines of line protocol for this message; empty when it was rejected (and counted)."""
        return self.handle_message(topic, payload, received_at).lines

    def handle_message(self, topic: str, payload: bytes, received_at: float) -> Handled:
        """Check, deduplicate and enrich one message (see ``Handled``)."""
        self.metrics.messages_received.inc()
        try:
            source = self._sources.get(topic) or self._source(topic)
            report, body = fastwire.decode_with_body(source.kind, payload)
            accepted = self._accept(source, report, received_at)
            made = None if body is None or source.kind not in FAST_KINDS else self._fast_lines(source, accepted, body)
            lines, dropped = self._lines(accepted) if made is None else made
        except WireError as exc:
            self.metrics.reject(exc.reason, exc.detail, topic)
            if exc.reason == "foreign_province":
                return Handled([])  # its own province's collector stores and acknowledges it
            return Handled([], self._refused_receipt(topic, payload))
        except LineProtocolError as exc:
            self.metrics.reject("unsafe_point", str(exc), topic)
            return Handled([], self._refused_receipt(topic, payload))
        if accepted.report.unknown:
            self.metrics.unknown(accepted.report.unknown, source.kind, topic)
        if dropped is not None:
            detail = (
                f"{dropped.points} point(s) with a new {dropped.tag} (e.g. {dropped.example!r}) dropped: the host holds"
                f" {self.bounds.max_values} {dropped.tag} values already ([ingest] max_values_per_tag)"
            )
            self.metrics.drop("too_many_series", dropped.points, detail, topic)
            accepted = accepted._replace(dropped_points=dropped.points)
        report = accepted.report
        receipt = None
        if self.receipts is not None and report.stream is not None:
            if report.seq is None:  # an online status naming its stream: answer with this collector's release
                if report.state == "online" and self.hellos.publish is not None:
                    self.hellos.answer(accepted.host, report.stream)  # [mqtt] acks off: no acknowledger
                elif report.state == "online":
                    self.receipts.hello(accepted.host, report.stream)  # the acknowledger answers
            else:
                receipt = Receipt(accepted.host, report.stream, report.seq)
                if not self.receipts.claim(receipt):
                    self.metrics.reports_duplicate.inc()
                    return Handled(lines, receipt)
        if report.demand is not None:
            self._demanded(accepted)
        else:
            self._observe(accepted)
        self.metrics.messages_accepted.inc()
        return Handled(lines, receipt)

    def free_bounds(self, hosts: Collection[HostKey]) -> None:
        """Free these hosts' series bounds, and the cached topics that hold them (a report from one
        of them later starts afresh)."""
        gone = set(hosts)
        self.bounds.free(gone)
        for topic, source in list(self._sources.items()):
            if source.host in gone:
                self._sources.pop(topic, None)

    def _source(self, topic: str) -> Source:
        """The checked facts of a topic not in the cache: checked now, and cached once accepted."""
        parsed = parse_topic(topic)
        if self.provinces and parsed.province not in self.provinces:
            raise WireError(
                "foreign_province", f"province {parsed.province} is not one of {', '.join(sorted(self.provinces))}"
            )
        if not units.is_official(parsed.province, parsed.commune):
            raise WireError(
                "unknown_commune", f"commune {parsed.commune} is not in province {parsed.province}'s official list"
            )
        if len(self._sources) >= MAX_SOURCES:
            self._sources.clear()
        host = HostKey(parsed.province, parsed.commune, parsed.host)
        source = self._sources[topic] = Source(parsed.kind, host, self.bounds.of(host))
        return source

    def _lines(self, accepted: Accepted) -> tuple[list[str], Dropped | None]:
        """The message's lines within the host's series bounds, and what the bounds dropped, by way
        of ``points`` (``_fast_lines`` makes the same for reports of numbers only)."""
        points, dropped = self.bounds.admit(accepted.host, self.points(accepted), accepted.received_at)
        return [encode_point(point) for point in points], dropped

    def _fast_lines(self, source: Source, accepted: Accepted, body: Any) -> tuple[list[str], Dropped | None] | None:
        """``_lines`` for a report of numbers only, straight from its decoded struct: its items'
        JSON (one C call) turned into fields, under the source's cached series heads. None when an
        item holds anything but numbers (a text field), which takes ``points``' way."""
        items: list[Any] = []
        measurements: list[str] = []
        labels: list[str | None] = []
        for name, measurement, label, texts in FAST_KINDS[source.kind]:
            value = getattr(body, name)
            if value is UNSET:
                continue
            for item in value if type(value) is list else (value,):
                for text in texts:
                    if getattr(item, text) is not None:
                        return None
                items.append(item)
                measurements.append(measurement)
                labels.append(label)
        if not items:
            return [], None
        field_sets = float_field_sets(_to_json(items), labels)
        if field_sets is None:
            return None
        now, area = accepted.received_at, accepted.area
        heads = source.heads_in(area)
        bounds = source.bounds
        stamp = f" {accepted.ts}"
        lines: list[str] = []
        refused: list[tuple[str, str]] = []
        with bounds.lock:
            for item, measurement, label, fields in zip(items, measurements, labels, field_sets, strict=True):
                if not fields:
                    continue  # an item holding no value makes no point, as in ``points``
                value = None
                if label is not None:
                    value = getattr(item, label)
                    known = bounds.values.get(label)
                    if known is not None and value in known:  # a known value, seen again: ``admit_locked``'s first case
                        known[value] = now
                    elif not bounds.admit_locked(label, value, now):
                        refused.append((label, value))
                        continue
                head = heads.get((measurement, value))
                if head is None:
                    head = remember(heads, measurement, value, self._head(source.host, area, measurement, label, value))
                lines.append(head + " " + fields + stamp)
            if refused:
                bounds.mark_drop(now)
        return lines, (Dropped(len(refused), *refused[0]) if refused else None)

    @staticmethod
    def _head(host: HostKey, area: str, measurement: str, label: str | None, value: str | None) -> str:
        """A series' head, checked and escaped (``lineprotocol.series_head``); raises for an unsafe one."""
        tags = {"province": host.province, "area": area, "commune": host.commune, "host": host.host}
        if label is not None and value is not None:
            tags[label] = value
        return series_head(measurement, tags)

    def _refused_receipt(self, topic: str, payload: bytes) -> Receipt | None:
        """A refused numbered report is acknowledged all the same, so its agent stops sending it."""
        if self.receipts is None:
            return None
        numbered = sequence_of(topic, payload)
        if numbered is not None:
            self.receipts.owe(numbered)
        return None

    def _accept(self, source: Source, report: Report, received_at: float) -> Accepted:
        host = source.host
        ts = report.ts
        if ts > received_at + self.settings.max_clock_skew_s or ts < received_at - self.settings.max_age_s:
            ts = self._skewed(received_at)
        ts = int(ts)
        agent_version = report.version  # an online status (hello) of 0.2.0 on says it
        if source.kind == "inventory" and "inventory" in report.sections:  # not a disk health report
            version = report.sections["inventory"][0].get("agent_version")
            agent_version = version if isinstance(version, str) else None
        elif report.state == "online":
            self.hellos.heard(host, report.version, report.caps)
        # a report from a backlog (a spool or the broker draining after an outage) says when its PC
        # was there, not that it is there now: it neither marks the PC online nor moves its last_seen
        # (the fleet state decides whether it keeps an online PC online: ``rules.backlog_counts``).
        # Its age is corrected for the PC's clock offset (``fleet/clock.py``): a slow clock is no backlog
        age = received_at - ts - self.clock_offset(host)
        live = source.kind == "status" or age <= self.settings.backlog_after_s
        if not live:
            self.metrics.reports_backlog.inc()
        status = report.state if source.kind == "status" else ("online" if live else None)
        is_new = self.registry.touch(host, received_at if live else ts, status=status, agent_version=agent_version)
        if is_new:
            log.info("new host", extra={"province": host.province, "commune": host.commune, "host": host.host})
        return Accepted(host, self.registry.area_of(host.commune), report, received_at, ts, live=live)

    def _skewed(self, received_at: float) -> int:
        """The receive time, for a report whose agent's clock is implausible (counted)."""
        self.metrics.clock_skew.inc()
        return int(received_at)

    def points(self, accepted: Accepted) -> list[Point]:
        base = {
            "province": accepted.host.province,
            "area": accepted.area,
            "commune": accepted.host.commune,
            "host": accepted.host.host,
        }
        demand = accepted.report.demand
        if demand is not None:
            base[ON_DEMAND_TAG] = ON_DEMAND_VALUE
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
                if fields and demand is not None:
                    fields["request_id"] = demand.id
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

    def _demanded(self, accepted: Accepted) -> None:
        if self.on_demand is None:
            return
        try:
            self.on_demand(accepted)
        except Exception:  # the desk's bug must not drop the data
            log.exception("on-demand answer not recorded", extra={"host": accepted.host.host})

    def _observe(self, accepted: Accepted) -> None:
        for observer in self.observers:
            try:
                observer(accepted)
            except Exception:  # an observer's bug must not drop the data
                log.exception("observer failed", extra={"observer": getattr(observer, "__name__", repr(observer))})


def sequence_of(topic: str, payload: bytes) -> Receipt | None:
    """The host, stream and seq of a message the contract refused, when they can be read at all."""
    try:
        parsed = parse_topic(topic)
        body = json.loads(payload)
    except (WireError, ValueError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    stream, seq = body.get("stream"), body.get("seq")
    if (
        not isinstance(stream, str)
        or not STREAM_RE.fullmatch(stream)
        or type(seq) is not int
        or not 1 <= seq <= MAX_SEQ
    ):
        return None
    return Receipt(HostKey(parsed.province, parsed.commune, parsed.host), stream, seq)
