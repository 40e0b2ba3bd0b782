"""Benchmark: the CPU the PC/SC watch costs the agent per 30 s cycle when nothing changes, as a ratio to
the metrics cycle measured in the same run.

A real pcscd (Debian's, in namespaces of its own, tests/pcscservice.py) with the vpcd virtual reader
and a vicc card in it: two readers, one with a card nobody opens. The agent's ``PcscWatch`` runs at
its default ``pcsc_poll_s`` for ``BENCH_PCSC_S`` seconds (default 120); its thread's CPU is the
kernel's per-thread account (``/proc/self/task/<tid>/schedstat``, nanoseconds), taken over the whole
window after a warm-up, per 30 s. The reference is the agent's metrics cycle (``MetricsBuilder``),
run every 30 s in the same window and timed with ``time.thread_time``. pcscd's own CPU in the window
is printed beside it: the service's, not the agent's. Needs root. Run: ``python -m bench.pcsc_cpu``.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from pcscservice import Pcscd, socket_path  # a helper of tests/

from agent.config import CollectConfig, PeripheralsConfig
from agent.peripherals.pcsc import PcscWatch, load_scard
from agent.runner import MetricsBuilder

DURATION_S = float(os.environ.get("BENCH_PCSC_S", "120"))
WARMUP_S = 5.0
CYCLE_S = CollectConfig().interval_s
POLL_S = PeripheralsConfig().pcsc_poll_s


def thread_cpu_ns(tid: int) -> int:
    return int(Path(f"/proc/self/task/{tid}/schedstat").read_text().split()[0])


def run() -> dict[str, float]:
    socket_path()
    scard = load_scard()
    if scard is None:
        raise SystemExit("pyscard is missing: make venv installs it (the pcsc extra)")
    with tempfile.TemporaryDirectory() as work:
        service = Pcscd(Path(work))
        try:
            service.card()
            watch = PcscWatch(scard, POLL_S)
            watch.start()
            time.sleep(WARMUP_S)
            tid = watch._thread.native_id
            assert tid is not None
            metrics = MetricsBuilder(None, CYCLE_S)
            metrics()
            pcscd = psutil.Process(service.process.pid)
            looks, watch_ns, pcscd_cpu = watch.looks, thread_cpu_ns(tid), sum(pcscd.cpu_times()[:2])
            started = time.monotonic()
            cycles = []
            while time.monotonic() - started < DURATION_S:
                before = time.thread_time()
                metrics()
                cycles.append((time.thread_time() - before) * 1000)
                time.sleep(min(CYCLE_S, max(0.0, DURATION_S - (time.monotonic() - started))))
            elapsed = time.monotonic() - started
            watch_ms = (thread_cpu_ns(tid) - watch_ns) / 1e6
            pcscd_ms = (sum(pcscd.cpu_times()[:2]) - pcscd_cpu) * 1000
            looked = watch.looks - looks
            available, readers = watch.take()
            watch.close()
        finally:
            service.stop()
    if not available or not any(r.card_present for r in readers):
        raise SystemExit("the watch did not see the virtual card: the figures would measure nothing")
    per_cycle = watch_ms * CYCLE_S / elapsed
    cycle = statistics.fmean(cycles)
    return {
        "seconds": round(elapsed, 1),
        "poll_s": POLL_S,
        "looks": float(looked),
        "watch_cpu_ms_per_cycle": round(per_cycle, 4),
        "watch_cpu_us_per_look": round(watch_ms * 1000 / max(1, looked), 1),
        "metrics_cycle_cpu_ms": round(cycle, 3),
        "watch_to_metrics_cycle_ratio": round(per_cycle / cycle, 4),
        "pcscd_cpu_ms_per_cycle": round(pcscd_ms * CYCLE_S / elapsed, 4),
    }


def report(result: dict[str, float]) -> None:
    print(
        f"PC/SC watch over {result['seconds']:g} s (a look every {result['poll_s']:g} s, {result['looks']:g} looks,"
        f" nothing changing): {result['watch_cpu_ms_per_cycle']:.4f} ms of CPU per {CYCLE_S:g} s cycle"
        f" ({result['watch_cpu_us_per_look']:.1f} µs a look); a metrics cycle {result['metrics_cycle_cpu_ms']:.3f} ms"
        f" (ratio {result['watch_to_metrics_cycle_ratio']:.4f}); pcscd itself"
        f" {result['pcscd_cpu_ms_per_cycle']:.4f} ms per cycle"
    )


def main() -> dict[str, float]:
    result = run()
    report(result)
    return result


if __name__ == "__main__":
    main()
