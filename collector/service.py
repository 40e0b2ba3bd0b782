"""Wires the collector together: state file, registry, ingestor, writer, MQTT consumer and HTTP server."""

from __future__ import annotations

import functools
import logging
import signal
import sqlite3
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import uvicorn

from collector.actions import ActionDesk
from collector.alerting.conditions import ConditionSink
from collector.alerting.lifecycle import AlertManager
from collector.alerting.notify import Notifier
from collector.alerting.outage_notice import CauseTeller
from collector.audit import Actor, AuditBook
from collector.config import CollectorConfig, ConfigError
from collector.diskhealth import DiskHealth
from collector.fleet.history import CommuneHistory
from collector.fleet.outage_book import recent, record_json
from collector.fleet.outages import quiet_windows
from collector.fleet.state import FleetState
from collector.gckeeper import GcKeeper
from collector.http.app import build_app
from collector.http.auth import Token, TokenStore
from collector.http.deps import EnrollDesk, HttpParts
from collector.http.throttle import FailureLimiter, Throttle
from collector.http.uploads import UploadGate
from collector.ingest.acks import Acknowledger
from collector.ingest.bounds_state import BoundsKeeper
from collector.ingest.checks import Accepted, Ingestor
from collector.ingest.consumer import Consumer
from collector.ingest.diskbuffer import DiskBuffer
from collector.ingest.influx import InfluxClient, InfluxError
from collector.ingest.known_ids import KnownIdsHandout
from collector.ingest.lineprotocol import Point, encode_point
from collector.ingest.receipts import Receipts
from collector.ingest.setup_influx import ROLLUP_RP
from collector.ingest.writer import BatchWriter
from collector.registry.dynsec import DynsecAdmin
from collector.registry.enroll import Enroller
from collector.registry.enroll_keys import EnrollKeys
from collector.registry.exclusions import Exclusions
from collector.registry.known_ids import KnownIds
from collector.registry.registry import Registry
from collector.reports.mail import MonthlyMailer
from collector.reports.revisions import RevisionBook
from collector.reports.windows import WindowKeeper
from collector.selfmetrics import SelfMetrics
from collector.store import Store, StoreError
from common.fserrors import CANNOT_OPEN, DISK_FULL, IO_ERROR, READ_ONLY, error_class

log = logging.getLogger("commune_collector.service")

REGISTRY_FLUSH_S = 5.0
BOUNDS_PRUNE_S = 60.0  # how often hosts retired or long silent have their series bounds freed
KEEP_RETRY_S = 60.0  # outage points the long retention policy refused are tried again this often
KEEP_MAX = 10_000  # and at most this many wait (the oldest go first)
STATE_RETRY_S = 30.0
# How long a thread keeps the interpreter when another wants it (Python's default is 5 ms). At a
# nation's 1,667 reports a second the ingest, the evaluator and the writers all want it: a request
# needs it a few times and waited up to 5 ms behind each of them each time.
SWITCH_INTERVAL_S = 0.001
# Why a state file may be set aside for a copy in memory: the disk, not the file's content.
DISK_TROUBLE = (DISK_FULL, READ_ONLY, IO_ERROR, CANNOT_OPEN)


def open_state(path: str, disk: DiskHealth) -> tuple[Store, bool]:
    """The state file's store; on a full, read-only or failing disk, a copy of it in memory (and
    True), so the collector still starts and ingests. A file that is corrupt or newer than this
    release is refused (StoreError): its rows matter more than running."""
    try:
        return Store(path), False
    except StoreError as exc:
        cause = exc.__context__
        if cause is None or error_class(cause, Path(path).parent) not in DISK_TROUBLE:
            raise
        disk.failed("state", cause, "open")
        log.error(
            "state file cannot be opened; running with a copy of it in memory, written back when it opens",
            extra={"path": path, "detail": str(cause)[:200], "retry_s": STATE_RETRY_S},
        )
        return Store.memory_copy(path), True


class CollectorService:
    def __init__(self, config: CollectorConfig) -> None:
        self.config = config
        self.metrics = SelfMetrics()
        settings = config.influxdb
        buffer_path = settings.buffer_path or str(Path(config.state.path).with_name("write-buffer.sqlite"))
        receipts_path = str(Path(config.state.path).with_name("receipts.sqlite"))
        self.disk = DiskHealth(
            self.metrics, {"buffer": buffer_path, "state": config.state.path, "receipts": receipts_path}
        )
        self.store, self.state_in_memory = open_state(config.state.path, self.disk)
        self._state_retry_at = 0.0
        self.registry = Registry(self.store, config.state.default_area)
        configured = [Token(t.name, t.role, t.sha256, t.scope()) for t in config.http.tokens]
        self.tokens = TokenStore(self.store, configured)
        self.influx = InfluxClient(config.influxdb)
        self.receipts = Receipts(
            receipts_path,
            config.ingest.max_age_s,
            lambda exc, doing: self.disk.failed("receipts", exc, doing),
            lambda: self.disk.succeeded("receipts"),
        )
        self.ingestor = Ingestor(self.registry, self.metrics, config.ingest, self.receipts, config.mqtt.provinces)
        self.bounds = BoundsKeeper(self.store, self.ingestor.bounds, config.fleet.forget_after_days * 86400)
        self.bounds.restore()
        self._bounds_pruned_at = 0.0
        if not config.mqtt.acks:  # the answer to each hello and the hello log say this collector does not acknowledge
            self.ingestor.hellos.caps = tuple(cap for cap in self.ingestor.hellos.caps if cap != "acks")
        self.writer = BatchWriter(
            self.influx,
            self.metrics,
            settings.batch_size,
            settings.flush_interval_s,
            settings.queue_max_points,
            DiskBuffer(buffer_path, settings.buffer_max_mb * 1024 * 1024, self.disk),
            settings.writes_in_flight,
        )
        self.consumer = Consumer(config.mqtt, self.ingestor, self.writer, self.receipts)
        if not config.mqtt.acks:  # no acknowledger: hellos are answered as they come
            self.ingestor.hellos.publish = self.consumer.publish_command
        self.acknowledger = Acknowledger(
            self.receipts, self.consumer.publish_command, self.metrics, config.mqtt.ack_interval_s
        )
        self.writer.after_batch.append(self.receipts.commit)  # receipts are durable before any ack leaves
        if config.mqtt.acks:
            self.writer.after_batch.append(self.acknowledger.notify)
        self.metrics.ack_streams.set_function(lambda: float(self.receipts.streams()))
        quiet = quiet_windows(config.report, config.alerts)
        self.zone = quiet.office.zone if quiet.office else None  # the hours shown in outage messages
        self.fleet = FleetState(self.store, self.registry, config.fleet, quiet=quiet)
        self.ingestor.observers.append(self.fleet.observe)
        self.known_ids = KnownIdsHandout(KnownIds(self.store).rows, self.consumer.publish_command)
        self.ingestor.observers.append(self.known_ids.observe)  # imported USB ids, to each agent on its hello
        self.ingestor.clock_offset = self.fleet.clock_offset  # backlog is judged on clock-corrected age
        self.actions = ActionDesk(
            self.store, self.consumer.publish_command, config.actions.answer_timeout_s, config.actions.keep_days
        )
        self.ingestor.on_demand = self._answered  # answers and results of actions: never the fleet's
        self.consumer.on_lost.append(self.fleet.lost_broker)  # a broker restart: the grace of our own restart
        self.consumer.on_regained.append(self.fleet.regained_broker)
        self.notifier = Notifier(config.notify, self.store, self.registry, self.metrics)
        self.teller = CauseTeller(self.notifier, self.fleet.awaiting_cause, config.notify.cause_wait_s, self.zone)
        self.alerts = AlertManager(self.store, config.alerts, self.write_points, self.teller.submit)
        self.condition_sinks: list[ConditionSink] = [self.alerts]
        self.report_mail = MonthlyMailer(config, self.store, self.registry)
        self.report_windows = WindowKeeper(self.keep_report_windows)
        self._kept: list[str] = []  # outage points waiting for the long retention policy
        self._keep_at = 0.0
        self.gc_keeper = GcKeeper(self.metrics.gc_pause_seconds)  # the facts frozen out of full collections
        self._switch_interval = sys.getswitchinterval()  # Python's, given back at ``stop``
        self._evaluator = threading.Thread(target=self._evaluate_loop, name="fleet-evaluator", daemon=True)
        self.stopping = threading.Event()
        self._flusher = threading.Thread(target=self._flush_loop, name="registry-flush", daemon=True)
        self.metrics.known_hosts.set_function(lambda: float(self.registry.count()))
        self.dynsec: DynsecAdmin | None = None
        self.enroll_desk = self._enroll_desk()

    def _enroll_desk(self) -> EnrollDesk | None:
        """Self-enrolment, when ``[enroll] admin_username`` lets this collector administer the broker."""
        settings = self.config.enroll
        if not settings.admin_username:
            return None
        try:
            ca_pem = Path(settings.ca_pem_file).read_text(encoding="utf-8") if settings.ca_pem_file else ""
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"[enroll] ca_pem_file {settings.ca_pem_file} cannot be read: {exc}") from None
        self.dynsec = DynsecAdmin(
            self.config.mqtt,
            settings.admin_username,
            settings.admin_password.get_secret_value(),
            settings.response_timeout_s,
        )
        return EnrollDesk(
            EnrollKeys(self.store),
            Enroller(self.store, self.config, self.dynsec),
            self.registry,
            FailureLimiter(settings.failures_per_address, settings.failure_refill_s),
            settings,
            ca_pem,
        )

    def start(self) -> None:
        if self.dynsec is not None:
            self.dynsec.start()
        self.writer.start()
        self.notifier.start()
        self.consumer.start()
        if self.config.mqtt.acks:
            self.acknowledger.start()
        self._flusher.start()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.gc_keeper.start()
        self._evaluator.start()
        self.report_mail.start()
        self.report_windows.start()

    def stop(self) -> None:
        self.stopping.set()
        self._evaluator.join(10)
        self.gc_keeper.stop()
        sys.setswitchinterval(self._switch_interval)
        self.report_mail.stop()
        self.report_windows.stop()
        self.consumer.pause()
        self._writing_state("fleet save", self.fleet.save)
        self.notifier.stop()
        self.writer.stop()
        if self.config.mqtt.acks:
            self.acknowledger.stop()  # what the writer stored last is acknowledged before disconnecting
        self.consumer.stop()
        if self.dynsec is not None:
            self.dynsec.close()
        self.receipts.close()
        self._writing_state("registry flush", self.registry.flush)
        self._writing_state("series bounds", lambda: self.bounds.save(time.time()), proves=False)
        self.influx.close()
        self.store.close()

    def health(self) -> dict[str, bool]:
        """What /healthz reports: can the collector reach its broker and InfluxDB now."""
        return {"mqtt": self.consumer.connected.is_set(), "influxdb": self.influx.ping()}

    def http_parts(self) -> HttpParts:
        """The narrow objects the HTTP layer receives; it never sees this service."""
        uploads = UploadGate(self.config.speedtest.max_concurrent_uploads, self.config.speedtest.upload_idle_s)
        self.metrics.speedtest_uploads_active.set_function(lambda: float(uploads.active))
        return HttpParts(
            registry=self.registry,
            snapshots=lambda: self.fleet.snapshot,
            alerts=self.alerts,
            tokens=self.tokens,
            metrics=self.metrics,
            health=self.health,
            disk=self.disk,
            commands=self.consumer,
            throttle=Throttle(self.config.speedtest.endpoint_rate_mbps),
            public_status_page=self.config.http.public_status_page,
            reports=self.monthly_report,
            replacement=self.replacement,
            scorecard=self.scorecard,
            outages=self.outages,
            uploads=uploads,
            enroll=self.enroll_desk,
            audit=AuditBook(self.store),
            exclusions=Exclusions(self.store, self.registry, self.config.report.timezone),
            revisions=RevisionBook(self.store),
            history=CommuneHistory(self.influx.query),
            enroll_keys=self.enroll_desk.keys if self.enroll_desk else EnrollKeys(self.store),
            equipment=self.fleet.issued,
            actions=self.actions,
            action_wait_s=self.config.actions.answer_wait_s,
        )

    def _answered(self, accepted: Accepted) -> None:
        """An agent's answer to an action, or its result (the ingestor's thread)."""
        demand = accepted.report.demand
        if demand is not None and not self.actions.answered(accepted.host, demand, accepted.report.sections):
            log.warning("an action answer names no request of this host", extra={"host": accepted.host.host})

    def outages(self, since: float, commune: str | None) -> list[dict[str, Any]]:
        return [record_json(r) for r in recent(self.store, since, commune, limit=None)]

    def monthly_report(self, month: str, fmt: str, area: str, actor: Actor, evidence: bool | None) -> bytes:
        from collector.reports.make import make

        return make(self.config, self.store, self.registry, month, [fmt], area, actor=actor, evidence=evidence)[fmt]

    def scorecard(self, code: str, month: str) -> dict[str, Any]:
        from collector.reports.make import scorecard

        return scorecard(self.config, self.store, self.registry, code, month)

    def replacement(self, month: str, province: str, area: str) -> list[dict[str, Any]]:
        from collector.reports.make import replacement

        return replacement(self.config, self.registry, month, province, area)

    def keep_report_windows(self, now: float) -> int:
        from collector.reports.make import keep

        return keep(self.config, self.store, now)

    def write_points(self, points: list[Point]) -> None:
        self.writer.put([encode_point(point) for point in points])

    def _evaluate_loop(self) -> None:
        """Derive fleet state, hand the conditions to alerting, write the status points."""
        settings = self.config.fleet
        next_points = next_save = 0.0
        while not self.stopping.wait(settings.evaluate_interval_s):
            now = time.time()
            try:
                cpu_before = time.thread_time()
                with self.metrics.fleet_evaluate_seconds.time():
                    snapshot = self.fleet.evaluate(now)
                self.metrics.fleet_evaluate_cpu_seconds.inc(time.thread_time() - cpu_before)
                self.gc_keeper.after_tick(len(snapshot.hosts))
                for sink in self.condition_sinks:
                    update = functools.partial(sink.update, snapshot.conditions, now)
                    self._writing_state("alerts", update, proves=False)
                tell = functools.partial(self.teller.tell, self.fleet.take_decided(), now)
                self._writing_state("outage notice", tell, proves=False)
                if now >= next_points:
                    next_points = now + self.config.ingest.status_interval_s
                    self.write_points(self.fleet.points(snapshot, now))
                self._keep_outages(now)
                if now >= next_save:
                    next_save = now + settings.save_interval_s
                    with self.metrics.fleet_save_seconds.time():
                        self._writing_state("fleet save", self.fleet.save)
                    prune = functools.partial(AuditBook(self.store).prune, now, self.config.audit.retention_days)
                    self._writing_state("audit prune", prune, proves=False)
            except Exception:
                log.exception("fleet evaluation failed")

    def _keep_outages(self, now: float) -> None:
        """Each decided outage point goes to the long retention policy too: the monthly report reads
        outages there, since the raw one keeps only ``raw_retention`` (30 days) and a report of an
        older month would charge its power cuts to the line. Refused (InfluxDB down, ``setup-influx``
        not run): tried again every ``KEEP_RETRY_S``."""
        self._kept = (self._kept + [encode_point(p) for p in self.fleet.take_kept()])[-KEEP_MAX:]
        if not self._kept or now < self._keep_at:
            return
        try:
            self.influx.write_lines(self._kept, ROLLUP_RP)
        except InfluxError as exc:
            self._keep_at = now + KEEP_RETRY_S
            why = {"rp": ROLLUP_RP, "points": len(self._kept), "error": str(exc)[:200], "retry_s": KEEP_RETRY_S}
            log.warning("outage points not kept", extra=why)
            return
        self._kept = []

    def _writing_state(self, doing: str, write: Callable[[], object], proves: bool = True) -> None:
        """Run a step that writes the state file; a full disk is counted and logged, and the loop goes
        on. A step that ``proves`` the file writable (it always writes) clears an earlier failure."""
        try:
            written = write()
        except (sqlite3.OperationalError, OSError) as exc:
            self.disk.failed("state", exc, doing)
            return
        if proves and written != 0 and not self.state_in_memory:
            self.disk.succeeded("state")

    def _flush_loop(self) -> None:
        while not self.stopping.wait(REGISTRY_FLUSH_S):
            try:
                self._writing_state("registry flush", self.registry.flush)
                self._writing_state("series bounds", self._keep_series_bounds, proves=False)
                self._retry_state_file()
            except Exception:
                log.exception("registry flush failed")

    def _keep_series_bounds(self) -> int:
        """Free the series bounds of hosts retired or silent past [fleet] forget_after_days (once a
        minute), then save the hosts' whose values changed."""
        now = time.time()
        if now - self._bounds_pruned_at >= BOUNDS_PRUNE_S:
            self._bounds_pruned_at = now
            gone = self.bounds.to_free(now, {record.key for record in self.registry.hosts()})
            if gone:
                self.ingestor.free_bounds(gone)
                self.bounds.forget(gone)
                log.info("series bounds freed", extra={"hosts": len(gone)})
        return self.bounds.save(now)

    def _retry_state_file(self) -> None:
        """While the state is held in memory, try the file every STATE_RETRY_S; when it opens, the
        state kept in memory is written into it and used from then on."""
        if not self.state_in_memory or time.monotonic() < self._state_retry_at:
            return
        self._state_retry_at = time.monotonic() + STATE_RETRY_S
        try:
            self.store.move_to(self.config.state.path)
        except StoreError as exc:
            self.disk.failed("state", exc.__context__ or exc, "open")
            return
        self.state_in_memory = False
        self.disk.succeeded("state")
        log.warning("state file opened again; the state kept in memory is in it", extra={"path": self.store.path})

    def serve(self) -> None:
        """Run until SIGTERM/SIGINT (uvicorn handles the signals), then stop cleanly."""
        http = self.config.http
        server = uvicorn.Server(
            uvicorn.Config(
                build_app(self.http_parts()),
                host=http.host,
                port=http.port,
                log_config=None,
                access_log=False,
                ssl_certfile=http.tls_cert_file or None,
                ssl_keyfile=http.tls_key_file or None,
            )
        )
        # uvicorn re-raises the signal it caught once it has shut down; it lands here instead,
        # so the queued points are flushed by stop() rather than lost to the default handler.
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: self.stopping.set())
        self.start()
        log.info("serving", extra={"http": f"{http.host}:{http.port}", "https": bool(http.tls_cert_file)})
        try:
            server.run()
        finally:
            self.stop()
