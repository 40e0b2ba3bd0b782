"""``commune-sim``: the simulated province's own command line (a dev tool, so the collector never
imports it). It reads the collector's config (``-c collector.toml``: broker, InfluxDB, state file),
registers the province's areas, lines and equipment, then either publishes as a whole province of
virtual agents over MQTT until stopped, or, with ``--backfill-days``, writes that many days of
history into InfluxDB and exits (``devtools/backfill.py``).

Bad words or files: one line on stderr and exit status 2; InfluxDB failing: exit status 1.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from collector.config import CollectorConfig, ConfigError, load_config
from collector.ingest.influx import InfluxError
from collector.store import StoreError
from common.logfmt import setup_logging
from devtools.backfill import backfill, check, only
from devtools.simulate import Plan, make_plan, plan_json, register, run

PROG = "commune-sim"


def fail(message: object, status: int) -> int:
    print(f"{PROG}: {message}", file=sys.stderr)
    return status


def simulate(config: CollectorConfig, args: argparse.Namespace) -> int:
    try:
        if args.interval <= 0:
            raise ValueError(f"--interval must be more than 0 seconds, not {args.interval}")
        if args.processes < 1:
            raise ValueError(f"--processes must be at least 1, not {args.processes}")
        if args.spool_reports < 1 or args.drain_per_s <= 0:
            raise ValueError(f"--spool-reports ({args.spool_reports}) must be at least 1 and --drain-per-s "
                             f"({args.drain_per_s}) more than 0")  # fmt: skip
        plan = make_plan(args.province, args.hosts_per_commune, args.seed, args.fault_share)
        if args.communes:
            plan = only(plan, [c.strip() for c in args.communes.split(",") if c.strip()])
        if args.backfill_days:
            check(config, args.backfill_days, args.backfill_interval)  # before the registry is written
    except ValueError as exc:
        return fail(exc, 2)
    if not args.no_register:
        register(plan, config)
    if args.plan_out:
        Path(args.plan_out).write_text(plan_json(plan), encoding="utf-8")
    print(json.dumps(plan.summary(), ensure_ascii=False), flush=True)
    if args.backfill_days:
        return backfill_history(config, plan, args)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    result = run(config, plan, args.interval, args.fault_after, args.duration, stop, args.seed, args.processes,
                 args.outage, args.spool_reports, args.drain_per_s, args.counts_out or "")  # fmt: skip
    print(json.dumps(result), flush=True)
    return 0


def backfill_history(config: CollectorConfig, plan: Plan, args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = backfill(config, plan, args.backfill_days, args.backfill_interval, args.seed,
                          zone=config.report.timezone)  # fmt: skip
    except ValueError as exc:
        return fail(exc, 2)
    except InfluxError as exc:
        return fail(f"backfill into InfluxDB at {config.influxdb.url} failed: {exc}", 1)
    print(json.dumps(result), flush=True)
    return 0


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="A simulated province of commune PCs (a dev tool): live over MQTT, or its history."
    )
    parser.add_argument("-c", "--config", required=True, help="the collector's collector.toml (broker, InfluxDB)")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    parser.add_argument(
        "--backfill-days", type=float, default=0.0, help="write this many days of history into InfluxDB, then exit"
    )
    parser.add_argument(
        "--backfill-interval", type=int, default=30, help="seconds between backfilled reports (default 30, the agent's)"
    )
    parser.add_argument("--communes", help="only these communes of the province (comma-separated codes)")
    parser.add_argument("--province", default="08", help="official province code (default 08, Tuyên Quang)")
    parser.add_argument("--hosts-per-commune", type=int, default=2, help="PCs per commune (default 2)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between reports (default 10)")
    parser.add_argument("--fault-after", type=float, default=60.0, help="seconds before faults start (default 60)")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds to run; 0 (default) until stopped")
    parser.add_argument(
        "--outage", type=float, default=60.0, help="seconds a power cut or office closing lasts (default 60)"
    )
    parser.add_argument(
        "--fault-share", type=float, default=0.05, help="share of communes/PCs per fault, 0 to 0.25 (0.05)"
    )
    parser.add_argument("--seed", type=int, default=1, help="which communes and PCs get which fault")
    parser.add_argument("--plan-out", help="write the plan (hosts and their faults) to this JSON file")
    parser.add_argument("--no-register", action="store_true", help="do not write areas and lines to the registry")
    parser.add_argument(
        "--processes", type=int, default=1, help="worker processes sharing the virtual PCs, each one event loop (1)"
    )
    parser.add_argument(
        "--spool-reports", type=int, default=480, help="reports each PC keeps while it has no broker (480: 4 h at 30 s)"
    )
    parser.add_argument(
        "--drain-per-s",
        type=float,
        default=50.0,
        help="reports a second each PC sends from its spool (50, the agent's)",
    )
    parser.add_argument("--counts-out", help="write the spools' state every 2 s, and each PC's counts at the end, here")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = arguments().parse_args(argv)
    setup_logging(args.log_level)
    try:
        return simulate(load_config(args.config), args)
    except (StoreError, ConfigError) as exc:
        return fail(exc, 2)


if __name__ == "__main__":
    sys.exit(main())
