"""``commune-agent`` command line: ``run`` in the foreground, ``once`` to print one round as JSON,
``enroll`` to enrol this PC with an area's key and write its config."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from agent import __version__
from agent.config import ConfigError, load_config
from agent.runner import AgentRunner, collect_once
from common.logfmt import setup_logging


def main(argv: list[str] | None = None) -> int:
    if started_by_service_manager(sys.argv[1:] if argv is None else argv, sys.platform, hasattr(sys, "frozen")):
        from agent.windows.service import host_service  # pywin32: Windows only

        return host_service()
    parser = argparse.ArgumentParser(prog="commune-agent", description="Commune PC health and line-quality agent.")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("run", "run in the foreground until stopped (for systemd)"),
        ("once", "collect one round and print it as JSON; connects to nothing"),
    ):
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("-c", "--config", required=True, help="path to agent.toml")
        cmd.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    service = sub.add_parser("service", help="Windows only: install, remove, start or stop the agent's service")
    service.add_argument("action", choices=("install", "remove", "start", "stop"))

    enroll = sub.add_parser("enroll", help="enrol this PC with an area's key and write its config (mode 0600)")
    enroll.add_argument("--url", required=True, help="the collector's address, e.g. https://monitor.example:8080")
    enroll.add_argument("--key", required=True, help="the area's enrolment key (commune-collector enroll-key add)")
    enroll.add_argument("--province", required=True, help="official province code, e.g. 08")
    enroll.add_argument("--commune", required=True, help="official commune code, e.g. 02473")
    enroll.add_argument("--host", help="this PC's name (default: its hostname)")
    enroll.add_argument("--out", required=True, help="the agent config to write, e.g. /etc/commune-agent/agent.toml")
    enroll.add_argument("--ca-file", default="", help="CA certificate (PEM) to verify the collector's HTTPS with")
    enroll.add_argument(
        "--insecure-http", action="store_true", help="allow an http:// URL: the key and password cross in cleartext"
    )
    enroll.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
    args = parser.parse_args(argv)
    if args.command == "service":
        return windows_service(args.action)
    setup_logging(args.log_level)
    if args.command == "enroll":
        return cmd_enroll(args)
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"commune-agent: {exc}", file=sys.stderr)
        return 2
    if args.command == "once":
        json.dump(collect_once(config), sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    AgentRunner(config).run(stop)
    return 0


def started_by_service_manager(argv: list[str], platform: str, frozen: bool) -> bool:
    """The single-file exe on Windows with no arguments: how the service manager starts the exe that
    ``service install`` registered (a Python install is hosted by pywin32's pythonservice.exe instead)."""
    return platform == "win32" and frozen and not argv


def windows_service(action: str) -> int:
    if sys.platform != "win32":
        print("commune-agent: service is for Windows; on Linux run systemd/install-agent.sh", file=sys.stderr)
        return 2
    from agent.windows.service import handle  # pywin32: Windows only

    return handle(action)


def cmd_enroll(args: argparse.Namespace) -> int:
    from pathlib import Path

    from agent.enroll import EnrollFailed, default_host, enroll, url_refusal

    refusal = url_refusal(args.url, args.insecure_http, args.ca_file)
    if refusal:
        print(f"commune-agent: {refusal}", file=sys.stderr)
        return 2
    try:
        place = (args.province, args.commune, args.host or default_host())
        username = enroll(args.url, args.key, *place, Path(args.out), args.ca_file)
    except EnrollFailed as exc:
        print(f"commune-agent: {exc}", file=sys.stderr)
        return 2
    print(f"enrolled as MQTT user {username}; config written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
