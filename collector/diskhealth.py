"""Which of the collector's files cannot be written now, and how often writes to them failed.

A full disk on the province server must not stop ingest to InfluxDB, and must not go unseen. The
parts that write files (the disk buffer, the state file, API changes stored in it) report each
failure here and each success after one: failures are counted (``disk_errors_<file>_total`` in
``/metrics``), logged once per change of state with the error class, and ``/healthz`` shows every
file that is failing now.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from collector.selfmetrics import SelfMetrics
from common.fserrors import error_class

log = logging.getLogger("commune_collector.disk")

FILES = ("buffer", "state", "receipts")  # the write buffer, the state file, agents' numbered reports


@dataclass
class FileHealth:
    path: str
    ok: bool = True
    error: str = ""  # one of common.fserrors.ERROR_CLASSES while failing
    errors: int = 0  # failed writes since the collector started


class DiskHealth:
    def __init__(self, metrics: SelfMetrics, paths: dict[str, str]) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        self._files = {name: FileHealth(path) for name, path in paths.items() if name in FILES}

    def failed(self, name: str, exc: BaseException, doing: str) -> str:
        """Count a failed write to file ``name``; returns the error class."""
        state = self._files[name]
        error = error_class(exc, Path(state.path).parent)
        self._metrics.disk_errors[name].inc()
        with self._lock:
            state.errors += 1
            changed = state.ok or state.error != error
            state.ok, state.error = False, error
        if changed:
            log.error(
                "cannot write a collector file; going on without it",
                extra={"file": name, "path": state.path, "error": error, "doing": doing, "detail": str(exc)[:200]},
            )
        return error

    def succeeded(self, name: str) -> None:
        """A write to ``name`` worked: clear its failure, saying so once."""
        state = self._files[name]
        with self._lock:
            if state.ok:
                return
            state.ok, state.error = True, ""
        log.warning("collector file written again", extra={"file": name, "path": state.path})

    def ok(self) -> bool:
        with self._lock:
            return all(state.ok for state in self._files.values())

    def report(self) -> dict[str, dict[str, object]]:
        """For ``/healthz``: each file's state and failure count."""
        with self._lock:
            return {
                name: {"ok": state.ok, "error": state.error, "errors": state.errors}
                for name, state in self._files.items()
            }
