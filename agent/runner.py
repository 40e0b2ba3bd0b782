"""The agent's main loop: collect on schedule, spool every report, drain the spool when connected.

Reports go through ``agent.outbox``, which never raises: a full or corrupt disk costs the spool,
not the agent.
"""

from __future__ import annotations

import logging
import queue
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from agent.actions import Action, ActionDesk
from agent.collectors import Collector, make_metric_collectors
from agent.collectors.inventory import collect_inventory
from agent.config import AgentConfig, PeripheralsConfig, extra_known_ids
from agent.diskhealth.job import DiskHealthJob, run_smartctl
from agent.outbox import Outbox
from agent.peripherals.classify import Known, KnownIds, shipped_known_ids
from agent.peripherals.pcsc import PcscWatch, load_scard
from agent.peripherals.smartcards import WithSmartcards
from agent.peripherals.source import UsbSource
from agent.peripherals.sysfs import SysfsSource
from agent.peripherals.tracker import PeripheralsTracker
from agent.peripherals.uevents import DeviceEvents
from agent.probes import ProbeBuilder
from agent.publisher import Publisher
from common.wire import (
    ACTION_KINDS,
    ANSWER_KIND,
    SCHEMA_VERSION,
    ActionRequest,
    KnownIdRow,
    compact,
    demand_envelope,
    encode,
    report_topic,
    stamp,
)

if sys.platform != "win32":
    import resource

log = logging.getLogger("commune_agent.runner")

IDLE_TICK_S = 0.25  # a backlog to drain at the rate limit
AWAIT_TICK_S = 5.0  # reports sent and waiting for an acknowledgement (which wakes the loop): re-sends coming due


@dataclass
class Job:
    """A report kind produced every ``interval_s`` seconds by ``build`` (the sections of the report)."""

    kind: str
    interval_s: float
    build: Callable[[], dict[str, Any]]
    background: bool = False  # slow jobs (probes, speed tests) run in their own thread
    next_due: float = 0.0
    running: bool = False
    kicked: bool = False  # run at the loop's next wake, off its grid (a USB device came or went)


class MetricsBuilder:
    """Runs every metric collector once and adds the agent's own footprint."""

    def __init__(self, spool: Outbox | None, interval_s: float, watch_paths: tuple[str, ...] = ()) -> None:
        self._collectors: list[Collector] = make_metric_collectors(watch_paths)
        self._spool = spool
        self._interval_s = interval_s
        self.last_cycle_ms = 0.0

    def __call__(self) -> dict[str, Any]:
        started = time.perf_counter()
        sections: dict[str, Any] = {}
        for collector in self._collectors:
            try:
                sections[collector.section] = collector.collect()
            except Exception:  # one broken collector must not stop the others
                log.exception("collector failed", extra={"collector": collector.section})
        cpu_s, rss_bytes = own_usage()
        sections["agent"] = {
            "cycle_ms": self.last_cycle_ms,
            "cpu_s": cpu_s,
            "rss_bytes": rss_bytes,
            "interval_s": self._interval_s,
        }
        if self._spool is not None:
            health = self._spool.health()
            sections["agent"].update(
                spool_depth=float(self._spool.depth()),
                spool_bytes=float(self._spool.size_bytes()),
                spool_dropped=float(self._spool.dropped()),
                spool_ok=1.0 if health.spool_ok else 0.0,
                spool_memory=float(health.memory),
                spool_memory_dropped=float(health.memory_dropped),
            )
            if health.error:
                sections["agent"]["spool_error"] = health.error
        self.last_cycle_ms = (time.perf_counter() - started) * 1000
        return {k: v for k, v in sections.items() if v not in ([], {})}


def next_run(due: float, interval_s: float, now: float) -> float:
    """A job's next run on its own grid, ``interval_s`` after the run that was due, not after the
    moment the loop woke: the jobs start together, so a 5 s poll, the 30 s metrics and the 60 s
    probes stay in step and share one wake of the loop instead of drifting apart. A loop late by
    more than an interval (a suspended PC) starts the grid again from ``now``."""
    following = due + interval_s
    return following if following > now else now + interval_s


def own_usage() -> tuple[float, float]:
    """This process's CPU seconds and peak resident bytes."""
    if sys.platform == "win32":  # no getrusage there
        process = psutil.Process()
        times = process.cpu_times()
        return times.user + times.system, float(process.memory_info().peak_wset)
    else:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime, float(usage.ru_maxrss * 1024)


def build_report(sections: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Wrap sections in the wire envelope."""
    return {"v": SCHEMA_VERSION, "ts": stamp(now), **sections}


def default_jobs(config: AgentConfig, spool: Outbox | None) -> list[Job]:
    interval = config.collect.interval_s
    jobs = [
        Job("metrics", interval, MetricsBuilder(spool, interval, (str(Path(config.spool.path).parent),))),
        Job("inventory", config.collect.inventory_interval_s, lambda: {"inventory": collect_inventory()}),
        Job("probe", config.probe.interval_s, ProbeBuilder(config.probe), background=True),
    ]
    if config.peripherals.enabled:
        jobs.append(peripherals_job(config))
    if config.disk_health.enabled and sys.platform in ("linux", "win32"):
        jobs.append(disk_health_job(config))
    return jobs


def disk_health_job(config: AgentConfig) -> Job:
    """Each disk's S.M.A.R.T. at start and every ``[disk_health] interval_s``, sent as an
    ``inventory`` report of its own (its thread: smartctl may wait for a disk to spin up). On
    Windows from WMI (agent/windows/diskhealth.py, which Linux never imports)."""
    settings = config.disk_health
    if sys.platform == "win32":
        from agent.windows.diskhealth import WmiDiskHealth

        return Job("inventory", settings.interval_s, WmiDiskHealth(), background=True)
    job = DiskHealthJob(run_smartctl(settings.smartctl, settings.timeout_s), settings.sysfs_root)
    return Job("inventory", settings.interval_s, job, background=True)


def peripherals_job(config: AgentConfig) -> Job:
    """Lists the USB devices every ``poll_interval_s`` (or at each kernel event: ``AgentRunner``); a
    report only on a plug, an unplug or hourly."""
    settings = config.peripherals
    known = {**shipped_known_ids(), **extra_known_ids(settings)}
    tracker = PeripheralsTracker(usb_source(settings), known, settings.report_interval_s)
    scard = load_scard() if settings.pcsc else None
    if scard is None:
        return Job("peripherals", settings.poll_interval_s, tracker)
    watch = PcscWatch(scard, settings.pcsc_poll_s)
    return Job("peripherals", settings.poll_interval_s, WithSmartcards(tracker, watch))


def usb_source(settings: PeripheralsConfig) -> UsbSource:
    """sysfs on Linux; WMI on Windows (agent/peripherals/wmi.py, which Linux never imports)."""
    if sys.platform == "win32":
        from agent.peripherals.wmi import WmiSource

        return WmiSource()
    return SysfsSource(settings.sysfs_root)


class AgentRunner:
    """Owns the spool, the publisher and the jobs; ``run`` blocks until ``stop`` is set."""

    def __init__(self, config: AgentConfig) -> None:
        self.config = config
        self.spool = Outbox(config.spool)
        self.publisher = Publisher(config, self.spool)
        self.jobs = default_jobs(config, self.spool)
        if config.identity.role == "line-probe":
            self.jobs.append(speedtest_job(config, self.publisher.speedtest_requests))
        self._finished: queue.Queue[tuple[Job, dict[str, Any]]] = queue.Queue()
        self._peripherals = next((job for job in self.jobs if job.kind == "peripherals"), None)
        build = None if self._peripherals is None else self._peripherals.build
        self.pcsc = build.watch if isinstance(build, WithSmartcards) else None  # started and closed by ``run``
        if self.pcsc is not None:  # the hello says so: pyscard loaded, so this PC's readers are watched
            self.publisher.caps = (*self.publisher.caps, "pcsc")
        tracker = build.tracker if isinstance(build, WithSmartcards) else build
        self._tracker = tracker if isinstance(tracker, PeripheralsTracker) else None
        self._known_at_start: KnownIds = {} if self._tracker is None else self._tracker.known
        if self._tracker is not None:
            self.publisher.on_known_ids = self.use_known_ids
        self.usb_events = self._listen_for_usb_devices()
        ident = config.identity
        self._topics = {
            job.kind: report_topic(ident.province, ident.commune, ident.host, job.kind) for job in self.jobs
        }
        self._demanded: queue.Queue[tuple[ActionRequest, dict[str, Any]]] = queue.Queue()  # results of actions
        self._speedtest_now: Any = None  # the speed-test builder of ``speedtest_now``, made at its first request
        self.actions = ActionDesk(config.actions.allow, self._catalogue())
        self.publisher.on_action = self.actions.take

    def _catalogue(self) -> dict[str, Action | None]:
        """Each action's builder: the jobs' own where they have one (None: turned off here)."""
        probe = next((job.build for job in self.jobs if job.kind == "probe"), None)
        tracker = self._tracker
        return {
            "speedtest_now": Action(self._run_speedtest_now),
            "probe_now": None if probe is None else Action(lambda _request: probe()),
            "inventory_now": Action(lambda _request: {"inventory": collect_inventory()}),
            # on the main loop, where the peripherals job polls the same tracker
            "peripherals_now": None if tracker is None else Action(lambda _request: tracker.report_now(), False),
        }

    def _run_speedtest_now(self, request: ActionRequest) -> dict[str, Any]:
        """A speed test now: the line-probe's own job (its byte budget and state file), or on any other
        PC one made at the first request (speedtest-cli is loaded only then)."""
        if self._speedtest_now is None:
            scheduled = next((job.build for job in self.jobs if job.kind == "speedtest"), None)
            self._speedtest_now = scheduled or speedtest_job(self.config, deque()).build
        return dict(self._speedtest_now.run_now(request.mode))

    def _listen_for_usb_devices(self) -> DeviceEvents | None:
        """With the kernel's USB events (Linux), the peripherals job runs at each device change and
        otherwise only every ``rescan_interval_s``: each listing was a wake of the whole agent."""
        settings, job = self.config.peripherals, self._peripherals
        if job is None or not settings.events or sys.platform != "linux":
            return None

        events = DeviceEvents.open(self.kick_peripherals)
        if events is not None:
            job.interval_s = settings.rescan_interval_s
        return events

    def use_known_ids(self, rows: list[KnownIdRow]) -> None:
        """Known USB ids the collector handed over (paho's thread): over the shipped ones, under the
        config's ``extra_ids``, replacing those handed over before; the devices are classified again now."""
        handed = {(vendor, product): Known(kind, model) for vendor, product, kind, model in rows}
        local = extra_known_ids(self.config.peripherals)
        if self._tracker is not None:
            self._tracker.use_known({**self._known_at_start, **handed, **local})
        self.kick_peripherals()

    def kick_peripherals(self) -> None:
        """List the USB devices at the loop's next wake, now (any thread)."""
        if self._peripherals is not None:
            self._peripherals.kicked = True  # before the wake: a wake the loop clears has the kick set already
        self.publisher.wake.set()

    def add_job(self, job: Job) -> None:
        ident = self.config.identity
        self.jobs.append(job)
        self._topics[job.kind] = report_topic(ident.province, ident.commune, ident.host, job.kind)

    def run(self, stop: threading.Event) -> None:
        self.publisher.start()
        rate = self.config.spool.drain_per_s
        tokens, last = rate, time.monotonic()
        wake = self.publisher.wake  # connected, a PUBACK or an ack to settle, a background job done, or stop

        def wake_on_stop() -> None:
            stop.wait()
            wake.set()

        threading.Thread(target=wake_on_stop, name="stop-watch", daemon=True).start()
        if self.usb_events is not None:
            self.usb_events.start()
        if self.pcsc is not None:
            self.pcsc.start()
        try:
            while not stop.is_set():
                now = time.monotonic()
                for job in self.jobs:
                    due = now >= job.next_due
                    if (due or job.kicked) and not job.running:
                        job.kicked = False
                        if due:
                            job.next_due = next_run(job.next_due, job.interval_s, now)
                        self._run_job(job)
                while not self._finished.empty():
                    job, sections = self._finished.get()
                    job.running = False
                    self._spool_report(job, sections)
                for request in self.actions.accepted():
                    self._start_action(request)
                while not self._demanded.empty():
                    self._spool_result(*self._demanded.get())
                tokens = min(rate, tokens + (now - last) * rate)
                last = now
                tokens -= self.publisher.drain(int(tokens))
                # a running background job wakes the loop when it finishes (``_finish``), so it needs no tick
                idle_due = [job.next_due for job in self.jobs if not job.running]
                wait = min(idle_due, default=time.monotonic() + AWAIT_TICK_S) - time.monotonic()
                if self.publisher.busy():
                    wait = min(wait, IDLE_TICK_S)  # backlog or PUBACKs to settle
                elif self.spool.size_bytes() > 0:
                    wait = min(wait, AWAIT_TICK_S)
                wake.wait(max(0.0, wait))
                wake.clear()
        finally:
            if self.usb_events is not None:
                self.usb_events.close()
            if self.pcsc is not None:
                self.pcsc.close()
            self.publisher.stop()
            self.spool.close()

    def _run_job(self, job: Job) -> None:
        if not job.background:
            measured_at = time.time()  # one report per interval gets one second of its own
            self._spool_report(job, build_sections(job), measured_at)
            return
        job.running = True
        threading.Thread(target=self._finish, args=(job,), name=f"job-{job.kind}", daemon=True).start()

    def _finish(self, job: Job) -> None:
        """A background job's thread: hands its report to the loop, then wakes it (put before set, so
        a wake the loop clears has its report already queued)."""
        self._finished.put((job, build_sections(job)))
        self.publisher.wake.set()

    def _start_action(self, request: ActionRequest) -> None:
        action = self.actions.action(request)
        if not action.background:
            self._spool_result(request, build_action(action, request))
            return

        def run() -> None:
            self._demanded.put((request, build_action(action, request)))
            self.publisher.wake.set()

        threading.Thread(target=run, name=f"action-{request.action}", daemon=True).start()

    def _spool_result(self, request: ActionRequest, sections: dict[str, Any]) -> None:
        """An action's result, a report of its kind tagged with the request (``done``); an action that
        made none is answered ``failed``."""
        ident = self.config.identity
        if sections:
            kind, demand = ACTION_KINDS[request.action], demand_envelope(request.id, request.action, "done")
        else:
            kind, demand = ANSWER_KIND, demand_envelope(request.id, request.action, "failed", "no_result")
        payload = encode(compact({"v": SCHEMA_VERSION, "ts": stamp(), "demand": demand, **sections}))
        self.spool.put(report_topic(ident.province, ident.commune, ident.host, kind), payload)
        self.actions.finished(request)
        log.info("action done", extra={"action": request.action, "request": request.id, "sections": len(sections)})

    def _spool_report(self, job: Job, sections: dict[str, Any], measured_at: float | None = None) -> None:
        if not sections:
            return
        payload = encode(compact(build_report(sections, measured_at)))
        self.spool.put(self._topics[job.kind], payload)
        log.debug(
            "cycle",
            extra={"kind": job.kind, "bytes": len(payload), "spool_depth": self.spool.depth()},
        )


def speedtest_job(config: AgentConfig, requests: deque[str]) -> Job:
    # imported here: speedtest-cli (and the XML parser it loads) is about 0.8 MB of a PC agent's
    # memory, and only a line-probe runs speed tests
    from agent.speedtests.job import SpeedtestJob

    settings = config.speedtest
    state = Path(settings.state_path or Path(config.spool.path).with_name("speedtest.json"))
    builder = SpeedtestJob(settings, config.identity.host, state, requests)
    return Job("speedtest", settings.check_interval_s, builder, background=True)


def build_action(action: Action, request: ActionRequest) -> dict[str, Any]:
    try:
        return action.build(request)
    except Exception:  # a broken action must not stop the agent; it is answered "failed"
        log.exception("action failed", extra={"action": request.action})
        return {}


def build_sections(job: Job) -> dict[str, Any]:
    try:
        return job.build()
    except Exception:  # a broken job must not stop the agent
        log.exception("job failed", extra={"kind": job.kind})
        return {}


def collect_once(config: AgentConfig) -> dict[str, Any]:
    """One round of every job's report, keyed by kind, without connecting to anything."""
    built: dict[str, dict[str, Any]] = {}
    for job in default_jobs(config, None):  # two jobs may share a kind (inventory and disk health)
        built.setdefault(job.kind, {}).update(build_sections(job))
    return {kind: build_report(sections) for kind, sections in built.items() if sections}
