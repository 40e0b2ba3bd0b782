"""The speed-test report builder, run only by the agent whose ``role`` is ``line-probe``.

A test runs once per configured daily window (see ``schedule``), or when the collector asks for
one on the host's command topic. Before each test a guard skips it, and says why in the report
(``skipped``), when the line is busy with real work or the day's byte budget is spent. The
usage and the last run time are kept in a small JSON file so a restart neither repeats a test
nor forgets the day's bytes; when that file cannot be written (disk full, read-only) the usage is
kept in memory and the failure logged, and the agent goes on.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from agent.config import SpeedtestConfig
from agent.probes.gateway import default_interface
from agent.speedtests.measure import UPLOAD_SIZES, local_config, run_speedtest
from agent.speedtests.schedule import due

log = logging.getLogger("commune_agent.speedtest")

BUSY_SAMPLE_S = 1.0


class Usage:
    """Bytes used today and when the last test ran, persisted as JSON."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.day = ""
        self.bytes = 0.0
        self.last_run = time.time()  # a fresh install waits for the next window
        self.write_errors = 0
        try:
            saved = json.loads(path.read_text())
            self.day, self.bytes, self.last_run = str(saved["day"]), float(saved["bytes"]), float(saved["last_run"])
        except (OSError, ValueError, KeyError, TypeError):
            pass

    def today(self, now: float) -> float:
        day = dt.datetime.fromtimestamp(now).date().isoformat()
        return self.bytes if day == self.day else 0.0

    def record(self, now: float, used: float) -> None:
        day = dt.datetime.fromtimestamp(now).date().isoformat()
        self.bytes = (self.bytes if day == self.day else 0.0) + used
        self.day, self.last_run = day, now
        temporary = self.path.with_suffix(".tmp")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            temporary.write_text(json.dumps({"day": self.day, "bytes": self.bytes, "last_run": self.last_run}))
            temporary.replace(self.path)
        except OSError as exc:
            # a full or read-only disk costs the memory of today's usage across a restart, not the test
            self.write_errors += 1
            temporary.unlink(missing_ok=True)
            if self.write_errors == 1 or self.write_errors % 100 == 0:
                log.error(
                    "speed-test state file cannot be written; usage is kept in memory",
                    extra={"path": str(self.path), "error": str(exc)[:200], "failures": self.write_errors},
                )


def line_throughput_mbps(
    nic: str, sample_s: float = BUSY_SAMPLE_S, counters: Callable[..., dict[str, Any]] = psutil.net_io_counters
) -> float:
    """Receive plus transmit rate of ``nic`` over a short sample; 0 when the NIC is unknown. Divided by
    the time between the two readings, not by ``sample_s``: on a loaded PC the sleep lasts longer."""
    before, started = counters(pernic=True).get(nic), time.monotonic()
    time.sleep(sample_s)
    after = counters(pernic=True).get(nic)
    elapsed = time.monotonic() - started
    if before is None or after is None or elapsed <= 0:
        return 0.0
    moved = float(after.bytes_recv - before.bytes_recv + after.bytes_sent - before.bytes_sent)
    return moved * 8 / elapsed / 1e6


class SpeedtestJob:
    """The ``speedtest`` report builder: returns nothing until a test is due or requested."""

    def __init__(self, config: SpeedtestConfig, host: str, state_path: Path, requests: deque[str]) -> None:
        self._config = config
        self._host = host
        self._usage = Usage(state_path)
        self._requests = requests  # modes asked for by the collector ("" = the configured ones)
        self._settings = local_config(
            config.download_sides, config.download_count, UPLOAD_SIZES[: config.upload_sizes],
            config.upload_count, config.threads, config.length_s,
        )  # fmt: skip

    def __call__(self) -> dict[str, Any]:
        now = time.time()
        modes: list[str] = []
        while self._requests:
            asked = self._requests.popleft()
            modes += [asked] if asked else list(self._config.modes)
        if not modes and due(self._host, self._config.windows, self._usage.last_run, now):
            modes = list(self._config.modes)
        if not modes:
            return {}
        items = [self._one(mode) for mode in dict.fromkeys(modes)]
        return {"speedtest": items}

    def run_now(self, mode: str) -> dict[str, Any]:
        """One test now in ``mode`` ("" = the configured modes), guards included (``speedtest_now``)."""
        modes = [mode] if mode else list(self._config.modes)
        return {"speedtest": [self._one(one) for one in dict.fromkeys(modes)]}

    def _one(self, mode: str) -> dict[str, Any]:
        now = time.time()
        cap = self._config.daily_byte_cap_mb * 1e6
        if self._usage.today(now) >= cap:
            self._usage.record(now, 0)
            log.info("speed test skipped", extra={"mode": mode, "reason": "byte_cap"})
            return {"mode": mode, "ok": 0.0, "skipped": "byte_cap"}
        nic = self._config.busy_nic or default_interface() or ""
        busy = line_throughput_mbps(nic) if nic else 0.0
        if busy > self._config.busy_threshold_mbps:
            self._usage.record(now, 0)
            log.info("speed test skipped", extra={"mode": mode, "reason": "line_busy", "mbps": round(busy, 2)})
            return {"mode": mode, "ok": 0.0, "skipped": "line_busy"}
        result = run_speedtest(mode, self._config.wan_url, self._settings, self._config.timeout_s)
        self._usage.record(time.time(), float(result.get("bytes_used", 0.0)))
        log.info("speed test done", extra={"mode": mode, **{k: v for k, v in result.items() if k != "server"}})
        return {"mode": mode, **result}
