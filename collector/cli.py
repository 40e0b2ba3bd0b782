"""``commune-collector`` command line. Each sub-command is a function registered in COMMANDS."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from collector import __version__
from collector.config import CollectorConfig, ConfigError, load_config
from collector.ingest.influx import InfluxClient, InfluxError
from collector.store import Store, StoreError
from common.logfmt import setup_logging, shown_url

if TYPE_CHECKING:
    from collector.registry.enroll import Enroller, Enrollment, Place

CommandFn = Callable[[CollectorConfig, argparse.Namespace], int]


def fail(message: object, status: int) -> int:
    """Says what failed in one line on stderr and gives the exit status: 2 when the call's words or files
    are off, 1 when a service or stored state failed."""
    print(f"commune-collector: {message}", file=sys.stderr)
    return status


def cmd_serve(config: CollectorConfig, _args: argparse.Namespace) -> int:
    from collector.service import CollectorService

    CollectorService(config).serve()
    return 0


def cmd_setup_influx(config: CollectorConfig, _args: argparse.Namespace) -> int:
    from collector.ingest.setup_influx import setup_influx

    client = InfluxClient(config.influxdb)
    try:
        for statement in setup_influx(client):
            print(statement)
    except InfluxError as exc:
        print(
            f"commune-collector: setting up InfluxDB at {shown_url(config.influxdb.url)} failed: {exc}", file=sys.stderr
        )
        return 1
    finally:
        client.close()
    return 0


def cmd_token(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.http.auth import Token, TokenStore, checked_scope
    from collector.registry.registry import Registry

    with Store(config.state.path) as state:
        store = TokenStore(state, [Token(t.name, t.role, t.sha256, t.scope()) for t in config.http.tokens])
        if args.action == "list":
            for token in store.tokens():
                print(f"{token.name}\t{token.role}" + (f"\t{token.scope}" if token.scope else ""))
            return 0
        if not args.name:
            return fail(f"token {args.action} needs --name", 2)
        if args.action == "revoke":
            if args.area or args.commune:
                return fail("token revoke takes --name only", 2)
            if not store.revoke(args.name):
                return fail(f"no stored token named {args.name!r}", 1)
            return 0
        try:
            scope = checked_scope(args.role, args.area or "", args.commune or "", Registry(state, "").areas())
        except ValueError as exc:
            return fail(exc, 2)
        try:
            secret = store.add(args.name, args.role, scope)
        except ValueError as exc:
            return fail(exc, 1)
        print(secret)
        seen = f", sees only {scope.replace(':', ' ')}" if scope else ""
        print(f"token {args.name!r} ({args.role}{seen}) stored as a hash; this is the only time it is shown",
              file=sys.stderr)  # fmt: skip
        return 0


def admin_of(config: CollectorConfig) -> Any:
    """The broker's dynamic-security admin, connected; DynsecError when it cannot be."""
    from collector.registry.dynsec import DynsecAdmin, DynsecError

    settings = config.enroll
    if not settings.admin_username:
        raise DynsecError("[enroll] admin_username is not set: this collector cannot administer the broker")
    admin = DynsecAdmin(
        config.mqtt, settings.admin_username, settings.admin_password.get_secret_value(), settings.response_timeout_s
    )
    admin.connect()
    return admin


def cmd_enroll(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.registry.csv_import import RegistryImportError, parse_hosts
    from collector.registry.dynsec import DynsecError
    from collector.registry.enroll import Enroller, EnrollError, checked_place
    from common.private_file import write_private

    if bool(args.from_csv) == bool(args.province or args.commune or args.host):
        return fail("enroll one host (--province, --commune, --host) or many (--from FILE --out-dir DIR)", 2)
    if args.from_csv and (not args.out_dir or args.rotate):
        return fail("--from needs --out-dir (and rotates nothing: rotate hosts one by one)", 2)
    with Store(config.state.path) as store:
        try:
            if args.from_csv:
                enroller = Enroller(store, config, broker=_no_broker)
                places = parse_hosts(Path(args.from_csv), enroller.enrolled)
            else:
                if not (args.province and args.commune and args.host):
                    return fail("enroll needs --province, --commune and --host", 2)
                places = [checked_place(args.province, args.commune, args.host)]
                Enroller(store, config, _no_broker).check(places[0], args.rotate)
        except (EnrollError, RegistryImportError) as exc:
            return fail(exc, 2)
        if args.out_dir and not writable_folder(Path(args.out_dir)):
            return fail(f"--out-dir {args.out_dir} cannot be created or written to", 2)
        try:
            admin = admin_of(config)
        except DynsecError as exc:
            return fail(exc, 1)
        try:
            enroller = Enroller(store, config, admin)
            if args.from_csv:
                return _enroll_many(enroller, places, Path(args.out_dir))
            enrollment = enroller.enroll(places[0], rotate=args.rotate)
        except DynsecError as exc:
            return fail(exc, 1)
        finally:
            admin.close()
    if args.out:
        write_private(Path(args.out), enrollment.agent_config)
        print(f"agent config for MQTT user {enrollment.username} written to {args.out}", file=sys.stderr)
    else:
        print(enrollment.agent_config)
    return 0


def writable_folder(folder: Path) -> bool:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return os.access(folder, os.W_OK)


def _enroll_many(enroller: Enroller, places: list[Place], out_dir: Path) -> int:
    """Bulk enrolment: each batch's configs are written as soon as the broker took it; when a batch
    fails, the hosts not enrolled go to ``not-enrolled.csv`` for a rerun, and the exit status is 1."""
    from collector.registry.enroll import BulkEnrollStopped
    from common.private_file import write_private

    def hand_out(enrollments: list[Enrollment]) -> None:
        for enrollment in enrollments:
            write_private(out_dir / f"{enrollment.username}.toml", enrollment.agent_config)

    try:
        enrolled = enroller.enroll_many(places, hand_out)
    except BulkEnrollStopped as stop:
        rest = out_dir / "not-enrolled.csv"
        rest.write_text("province,commune,host\n" + "".join(f"{p.province},{p.commune},{p.host}\n" for p in stop.left))
        stranded = f"; not taken off the broker again: {', '.join(stop.stranded[:10])}" if stop.stranded else ""
        return fail(
            f"{stop.enrolled} hosts enrolled (configs in {out_dir}), then a batch failed: {stop}{stranded}; "
            f"the {len(stop.left)} hosts not enrolled are in {rest}: rerun with --from {rest}",
            1,
        )
    print(f"{enrolled} hosts enrolled; their agent configs are in {out_dir}", file=sys.stderr)
    return 0


class _NoBroker:
    """For checks made before the broker is reached: any command would be a bug."""

    def run(self, commands: list[dict[str, Any]]) -> None:
        raise AssertionError(f"no broker for {len(commands)} commands")


_no_broker = _NoBroker()


def enroll_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--province", help="official province code, e.g. 08")
    parser.add_argument("--commune", help="official commune code, e.g. 02473")
    parser.add_argument("--host", help="the PC's name, e.g. pc-01")
    parser.add_argument("--rotate", action="store_true", help="give an enrolled host a new password (admins only)")
    parser.add_argument("--out", help="write the agent config here (mode 0600) instead of printing it")
    parser.add_argument("--from", dest="from_csv", help="CSV of hosts to enrol (columns province, commune, host)")
    parser.add_argument("--out-dir", help="with --from: folder for the agent configs (<user>.toml, mode 0600)")


def cmd_enroll_key(config: CollectorConfig, args: argparse.Namespace) -> int:
    import datetime as dt

    from collector.registry.enroll_keys import EnrollKeys, duration_s
    from collector.registry.registry import Registry

    with Store(config.state.path) as store:
        keys = EnrollKeys(store)
        if args.action == "list":
            print("id\tarea\texpires\tmax_hosts\thosts\tstate")
            for item in keys.all():
                expires = dt.datetime.fromtimestamp(item.expires_at, dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
                state = "revoked" if item.revoked_at else ("expired" if item.expires_at <= time.time() else "active")
                print(f"{item.id}\t{item.area}\t{expires}\t{item.max_hosts or '-'}\t{keys.hosts_of(item.id)}\t{state}")
            return 0
        if args.action == "revoke":
            if args.id is None:
                return fail("enroll-key revoke needs --id (see enroll-key list)", 2)
            return 0 if keys.revoke(args.id) else fail(f"no active enrolment key with id {args.id}", 1)
        if not args.area or not args.expires:
            return fail("enroll-key add needs --area and --expires (e.g. 30d)", 2)
        if args.area not in Registry(store, config.state.default_area).areas():
            return fail(f"no area {args.area[:64]!r} in the registry; import areas first (registry import-areas)", 2)
        if args.max_hosts is not None and args.max_hosts < 1:
            return fail(f"--max-hosts must be 1 or more, not {args.max_hosts}", 2)
        try:
            lifetime = duration_s(args.expires)
        except ValueError as exc:
            return fail(exc, 2)
        key_id, key = keys.add(args.area, lifetime, args.max_hosts)
    print(key)
    print(f"enrolment key {key_id} for area {args.area} stored as a hash; this is the only time it is shown",
          file=sys.stderr)  # fmt: skip
    return 0


def enroll_key_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "list", "revoke"))
    parser.add_argument("--area", help="add: the area whose communes the key may enrol hosts in")
    parser.add_argument("--expires", help="add: lifetime, e.g. 30d, 12h or 90m")
    parser.add_argument("--max-hosts", type=int, help="add: at most this many hosts (default: no limit)")
    parser.add_argument("--id", type=int, help="revoke: the key's id (enroll-key list)")


def cmd_dynsec_init(config: CollectorConfig, args: argparse.Namespace) -> int:
    import json

    from collector.registry.dynsec import broker_document
    from collector.registry.enroll import host_logins
    from common.private_file import write_private

    settings = config.enroll
    out = Path(args.out)
    if not settings.admin_username or not settings.admin_password.get_secret_value():
        return fail("[enroll] admin_username and admin_password are needed: the file's admin is that user", 2)
    if out.exists() and not args.force:
        return fail(f"{out} exists; the broker may be using it (stop Mosquitto, then pass --force)", 2)
    mqtt = config.mqtt
    collector = (mqtt.username, mqtt.password.get_secret_value()) if mqtt.username else None
    with Store(config.state.path) as store:
        hosts = host_logins(store)
    try:
        document = broker_document(
            (settings.admin_username, settings.admin_password.get_secret_value()), collector, hosts
        )
    except ValueError as exc:
        return fail(f"a stored password hash cannot be carried over ({exc}); re-enrol that host", 1)
    write_private(out, json.dumps(document, indent=1) + "\n")
    print(f"{out}: the admin, {'the collector, ' if collector else ''}and {len(hosts)} enrolled hosts", file=sys.stderr)
    return 0


def dynsec_init_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="the plugin's file (plugin_opt_config_file), mode 0600")
    parser.add_argument("--force", action="store_true", help="replace an existing file (stop Mosquitto first)")


def cmd_registry(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.registry.csv_import import RegistryImportError, import_areas, import_equipment, import_lines
    from collector.registry.equipment import Equipment
    from collector.registry.known_ids import KnownIds, KnownIdsImportError, import_known_ids
    from collector.registry.registry import Registry

    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        try:
            if args.action == "import":
                print(f"{import_lines(registry, Path(args.file))} lines imported from {args.file}")
            elif args.action == "import-equipment":
                count = import_equipment(Equipment(store), Path(args.file))
                print(f"{count} items of equipment imported from {args.file}")
            elif args.action == "import-known-ids":
                count = import_known_ids(KnownIds(store), Path(args.file))
                print(f"{count} known USB ids imported from {args.file}; agents get them on their next hello")
            else:
                print(f"{import_areas(registry, Path(args.file))} communes assigned to areas from {args.file}")
        except (RegistryImportError, KnownIdsImportError) as exc:
            return fail(exc, 2)
    return 0


def cmd_grafana(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.grafana import build, lint
    from collector.grafana.dashboards import all_dashboards
    from collector.grafana.provisioning import all_files

    out_dir = Path(args.out) if args.out else build.DEFAULT_DIR
    if args.action == "build" and not args.check:
        for path in build.write(out_dir):
            print(path)
        return 0
    if args.action in ("build", "lint"):
        problems = build.differences(out_dir) if args.action == "build" else lint.lint(all_dashboards(), all_files())
        for problem in problems:
            print(f"commune-collector: {problem}", file=sys.stderr)
        if problems and args.action == "build":
            print("run `commune-collector grafana build` and commit the result", file=sys.stderr)
        return 1 if problems else 0
    from collector.grafana.sync import SyncError, sync

    try:
        for action in sync(config, args.update_secrets):
            print(action)
    except SyncError as exc:
        return fail(exc, 1)
    return 0


def grafana_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("build", "lint", "sync"), help="write or check dashboards/, lint, or push")
    parser.add_argument("--check", action="store_true", help="build: fail if the committed files differ")
    parser.add_argument("--out", help="build: folder to write or check (default: the repository's dashboards/)")
    parser.add_argument(
        "--update-secrets", action="store_true", help="sync: send the InfluxDB password even if one is already set"
    )


def cmd_report(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.audit import cli_actor
    from collector.registry.registry import Registry
    from collector.reports.build import ReportError
    from collector.reports.make import make

    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per InfluxQL request is noise here
    out = Path(args.out)
    if not out.parent.is_dir():
        return fail(f"folder {out.parent} for --out does not exist; create it first", 2)
    with Store(config.state.path) as store:
        registry = Registry(store, config.state.default_area)
        try:
            made = make(config, store, registry, args.month, [args.format], args.area or "", actor=cli_actor(),
                        evidence=args.evidence)  # fmt: skip
            document = made[args.format]
        except ReportError as exc:
            return fail(exc, 2)
        except InfluxError as exc:
            return fail(f"InfluxDB at {config.influxdb.url} could not answer: {exc}", 1)
    out.write_bytes(document)
    print(f"{args.format} report for {args.month} written to {out} ({len(document)} bytes)", file=sys.stderr)
    return 0


def report_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--month", required=True, help="YYYY-MM, e.g. 2026-11 (this month counts up to now)")
    parser.add_argument("--area", help="one area's code (default: every area)")
    parser.add_argument("--format", default="pdf", help="pdf (default), xlsx or html")
    parser.add_argument("--out", required=True, help="file to write")
    parser.add_argument(
        "--evidence",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="with the evidence appendix, each commune's rows (default: in HTML and XLSX, not in the PDF)",
    )


def registry_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action",
        choices=("import", "import-areas", "import-equipment", "import-known-ids"),
        help="import lines, areas, equipment or known USB ids (handed to agents)",
    )
    parser.add_argument(
        "file",
        help="CSV file; see config/lines, areas, equipment and known_ids .example.csv",
    )


def cmd_exclusion(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.registry.exclusions import ExclusionError, Exclusions, iso, parse_time
    from collector.registry.registry import Registry

    with Store(config.state.path) as store:
        book = Exclusions(store, Registry(store, config.state.default_area), config.report.timezone)
        try:
            if args.action == "list":
                print("id\tcommune\tscope\ttarget\tfrom\tto\treason\tby\tstate")
                for e in book.all(frozenset({args.commune}) if args.commune else None):
                    state = f"withdrawn by {e.withdrawal.by_name}" if e.withdrawal else "in force"
                    print(f"{e.id}\t{e.commune}\t{e.scope}\t{e.target}\t{iso(e.start)}\t{iso(e.end)}\t{e.reason}\t"
                          f"{e.by_name}\t{state}")  # fmt: skip
                return 0
            if args.action == "withdraw":
                if args.id is None or args.note is None or args.by is None:
                    return fail("exclusion withdraw needs --id, --note (why) and --by", 2)
                book.withdraw(args.id, args.note, args.by)
                print(f"exclusion {args.id} withdrawn", file=sys.stderr)
                return 0
            missing = [f"--{n}" for n in ("commune", "from", "to", "reason", "note", "by") if getattr(args, n) is None]
            if missing:
                return fail(f"exclusion add needs {', '.join(missing)}", 2)
            if sum(bool(x) for x in (args.host, args.item, args.line)) > 1:
                return fail("exclusion add names at most one of --host, --item and --line", 2)
            scope, target = ("host", args.host) if args.host else ("item", args.item) if args.item else (
                ("line", "") if args.line else ("commune", ""))  # fmt: skip
            made = book.add(args.commune, scope, target, parse_time(getattr(args, "from"), book.zone),
                            parse_time(args.to, book.zone), args.reason, args.note, args.by)  # fmt: skip
        except ExclusionError as exc:
            return fail(exc, 2)
    print(made.id)
    print(f"exclusion {made.id} of {made.scope} {made.target or made.commune} stored", file=sys.stderr)
    return 0


def exclusion_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "withdraw", "list"))
    parser.add_argument("--commune", help="add, list: the commune's official code, e.g. 02473")
    parser.add_argument("--host", help="add: only this PC of the commune")
    parser.add_argument("--item", help="add: only the issued item with this serial")
    parser.add_argument("--line", action="store_true", help="add: only the commune's line")
    parser.add_argument("--from", help="add: start, ISO date or time (local time without an offset)")
    parser.add_argument("--to", help="add: end (not included), ISO date or time")
    parser.add_argument("--reason", help="add: repair, relocation, contract_change, holiday, disaster or other")
    parser.add_argument("--note", help="add: what happened; withdraw: why it is withdrawn")
    parser.add_argument("--by", help="add, withdraw: who decided it")
    parser.add_argument("--id", type=int, help="withdraw: the exclusion's id (exclusion list)")


def cmd_audit(config: CollectorConfig, args: argparse.Namespace) -> int:
    from collector.audit import verify

    with Store(config.state.path) as store:
        good, broken = verify(store)
    if broken is not None:
        return fail(f"{broken}; the {good} entries before it hold", 2)
    print(f"{good} audit entries, the chain holds")
    return 0


def audit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "action", choices=("verify",), help="check the hash chain; exit 2 naming the first broken entry"
    )


def token_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "list", "revoke"))
    parser.add_argument("--name", help="who or what the token is for, e.g. grafana or nguyen-van-a")
    parser.add_argument("--role", choices=("viewer", "admin"), default="viewer", help="default viewer")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument("--area", help="a viewer token that sees only this area (its code, as imported)")
    scope.add_argument("--commune", help="a viewer token that sees only this commune (official code, e.g. 02473)")


# name -> (help, function, extra-arguments hook)
COMMANDS: dict[str, tuple[str, CommandFn, Callable[[argparse.ArgumentParser], None] | None]] = {
    "serve": ("consume MQTT, write InfluxDB and serve the HTTP API until stopped", cmd_serve, None),
    "setup-influx": ("create the database, retention policies and rollup continuous queries", cmd_setup_influx, None),
    "enroll": (
        "issue hosts' MQTT users on the running broker (one, a CSV of many, or --rotate) and their configs",
        cmd_enroll,
        enroll_arguments,
    ),
    "enroll-key": ("add, list or revoke an area's enrolment keys", cmd_enroll_key, enroll_key_arguments),
    "dynsec-init": (
        "write Mosquitto's dynamic-security file: the admin, the collector, every enrolled host (migration)",
        cmd_dynsec_init,
        dynsec_init_arguments,
    ),
    "registry": (
        "import lines, areas or issued equipment from CSV or XLSX into the registry",
        cmd_registry,
        registry_arguments,
    ),
    "token": ("add, list or revoke HTTP API tokens (viewer reads, admin changes)", cmd_token, token_arguments),
    "report": ("make the leaders' monthly scorecard (PDF, XLSX or HTML)", cmd_report, report_arguments),
    "grafana": ("build, check or lint the dashboards, or sync them to Grafana", cmd_grafana, grafana_arguments),
    "exclusion": ("add, withdraw or list exclusions from the report's figures", cmd_exclusion, exclusion_arguments),
    "audit": ("verify the audit log's hash chain", cmd_audit, audit_arguments),
}
# The commands (and their actions; None: all) that change what the collector holds: each run goes
# to the audit log through ``audited``. Every command is in one of the two, so a new one is placed.
ADMINISTRATIVE: dict[str, frozenset[str] | None] = {
    "enroll": None,
    "enroll-key": frozenset({"add", "revoke"}),
    "dynsec-init": None,
    "registry": None,
    "token": frozenset({"add", "revoke"}),
    "exclusion": frozenset({"add", "withdraw"}),
}
READ_ONLY = frozenset({"serve", "setup-influx", "report", "grafana", "audit"})


def administrative(args: argparse.Namespace) -> bool:
    if args.command not in ADMINISTRATIVE:
        return False
    actions = ADMINISTRATIVE[args.command]
    return actions is None or getattr(args, "action", None) in actions


def audited(config: CollectorConfig, args: argparse.Namespace) -> int:
    """Run an administrative command and write what it changed to the audit log, by the CLI's user;
    a run that succeeded without changing stored rows (a broker file written) is one entry too."""
    from collector.audit import cli_actor, record, snapshot

    with Store(config.state.path) as store:
        before = snapshot(store)
        status = COMMANDS[args.command][1](config, args)
        action = " ".join(str(part) for part in (args.command, getattr(args, "action", ""), getattr(args, "file", ""))
                          if part)  # fmt: skip
        record(store, cli_actor(), action, before, time.time(), always=status == 0)
    return status


CONFIG_OPTIONAL = {"grafana"}  # build and lint need no config; sync reads [grafana] from it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="commune-collector", description="Central collector for commune-monitor.")
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (text, _fn, add_arguments) in COMMANDS.items():
        cmd = sub.add_parser(name, help=text)
        cmd.add_argument("-c", "--config", required=name not in CONFIG_OPTIONAL, help="path to collector.toml")
        cmd.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING or ERROR (default INFO)")
        if add_arguments is not None:
            add_arguments(cmd)
    args = parser.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config) if args.config else CollectorConfig()
    except ConfigError as exc:
        return fail(exc, 2)
    try:
        if administrative(args):
            return audited(config, args)
        return COMMANDS[args.command][1](config, args)
    except (StoreError, ConfigError) as exc:  # a state file or setting this release cannot use: say which and why
        return fail(exc, 2)


if __name__ == "__main__":
    sys.exit(main())
