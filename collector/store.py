"""The collector's state file: one SQLite file with one owner.

The registry, the alert manager, the notifier's outbox, the API tokens, the enrolment credentials
and the fleet's saved facts all live in this one file. ``Store`` opens it once (WAL, one
connection shared by the collector's threads under one lock, and a pool of query-only connections
for reads that must not wait behind a long write: ``read``), declares every table here, and
brings an older file up to date with versioned migrations kept in ``PRAGMA user_version``: each
migration runs once, in its own transaction, so a crash half-way leaves the file at the last
whole version. Rows written by older releases are upgraded by a migration, once, rather than
patched on every read. A file written by a newer release is refused rather than misread.

The write buffer (``collector/ingest/diskbuffer.py``) is a separate file with its own owner: it is
a bounded queue that may be thrown away, where this file is the collector's memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("commune_collector.store")
# How long a writer waits for another connection (a CLI import, a second collector starting) to
# finish; SQLite's default of 5 s is short on a loaded old server.
BUSY_TIMEOUT_S = 30.0

# Version 1: the tables as release 0.1.0 made them, each module its own ``CREATE TABLE IF NOT
# EXISTS``. Kept word for word, so that a 0.1.0 file (user_version 0) is adopted as it is and a new
# file gets exactly the same tables.
SCHEMA_V1 = (
    # the registry (collector/registry/registry.py)
    """CREATE TABLE IF NOT EXISTS areas (
    code TEXT PRIMARY KEY,
    name TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS commune_areas (
    commune TEXT PRIMARY KEY,
    area TEXT NOT NULL
)""",
    """CREATE TABLE IF NOT EXISTS lines (
    circuit_id TEXT PRIMARY KEY,
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    isp TEXT NOT NULL,
    contracted_down_mbps REAL NOT NULL,
    contracted_up_mbps REAL NOT NULL,
    install_date TEXT NOT NULL DEFAULT ''
)""",
    "CREATE INDEX IF NOT EXISTS lines_by_commune ON lines (commune)",
    """CREATE TABLE IF NOT EXISTS hosts (
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    host TEXT NOT NULL,
    first_seen REAL NOT NULL,
    last_seen REAL NOT NULL,
    status TEXT NOT NULL DEFAULT 'unknown',
    status_since REAL NOT NULL DEFAULT 0,
    agent_version TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (province, commune, host)
)""",
    # alerts and silences (collector/alerting/lifecycle.py): the body is the alert as JSON
    """CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    state TEXT NOT NULL,
    body TEXT NOT NULL
)""",
    "CREATE INDEX IF NOT EXISTS alerts_by_key ON alerts (key, state)",
    """CREATE TABLE IF NOT EXISTS silences (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    body TEXT NOT NULL
)""",
    # notifications waiting for their group (collector/alerting/notify.py)
    """CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    alert TEXT NOT NULL
)""",
    # API tokens made with ``commune-collector token add`` (collector/http/auth.py)
    """CREATE TABLE IF NOT EXISTS api_tokens (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    sha256 TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL
)""",
    # per-host MQTT users (collector/registry/enroll.py)
    """CREATE TABLE IF NOT EXISTS mqtt_credentials (
    username TEXT PRIMARY KEY,
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    host TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    enrolled_at REAL NOT NULL
)""",
    # facts about each host that span days (collector/fleet/)
    "CREATE TABLE IF NOT EXISTS fleet_state (host TEXT PRIMARY KEY, facts TEXT NOT NULL)",
)


def create_tables_v1(db: sqlite3.Connection) -> None:
    for statement in SCHEMA_V1:
        db.execute(statement)


# The fields of a stored alert as of version 2; a migration that changes them names its own set.
ALERT_FIELDS_V2 = (
    "id", "rule", "province", "area", "commune", "host", "severity", "summary_vi", "summary_en", "state",
    "started_at", "fired_at", "resolved_at", "flaps", "acked_by", "acked_at", "ack_comment", "firing_since",
    "told_firing",
)  # fmt: skip
OLDER_FLAP_THRESHOLD = 3  # the flap threshold of the releases that wrote alerts without told_firing


def upgraded_alert(raw: dict[str, Any]) -> dict[str, Any]:
    """An alert body of any older release in the version-2 form.

    Releases before ``told_firing`` held a firing back inside a silence or maintenance window
    (``message_owed``), after an ack, or when the alert came back flapping; such a firing was not
    told. Those without ``firing_since`` were in their first spell of firing. Fields no release
    of ours reads any more are dropped.
    """
    alert = {k: v for k, v in raw.items() if k in ALERT_FIELDS_V2}
    if "told_firing" not in alert:
        flaps = int(raw.get("flaps", 0))
        returned_quietly = flaps > 0 and (bool(raw.get("acked_at")) or flaps >= OLDER_FLAP_THRESHOLD)
        alert["told_firing"] = alert.get("state") == "firing" and not raw.get("message_owed") and not returned_quietly
    alert.setdefault("firing_since", alert.get("fired_at", 0.0))
    return {k: alert[k] for k in ALERT_FIELDS_V2 if k in alert}  # in the order an Alert is written


def upgrade_alert_rows(db: sqlite3.Connection) -> None:
    """Alerts (and alerts waiting in the outbox) written by releases before 0.1.0, upgraded once."""
    for table, column in (("alerts", "body"), ("outbox", "alert")):
        rows = db.execute(f"SELECT id, {column} FROM {table}").fetchall()
        for row_id, body in rows:
            raw = json.loads(body)
            alert = upgraded_alert(raw)
            if alert != raw:
                db.execute(f"UPDATE {table} SET {column} = ? WHERE id = ?", (json.dumps(alert), row_id))


def create_report_mail(db: sqlite3.Connection) -> None:
    """The monthly report e-mail sent for a month (collector/reports/mail.py): sent once, even across restarts."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS report_mail (month TEXT PRIMARY KEY, sent_at REAL NOT NULL, outcome TEXT NOT NULL)"
    )


def create_equipment(db: sqlite3.Connection) -> None:
    """The equipment issued to communes (collector/registry/equipment.py), and the peripherals each
    commune's PCs were seen with (collector/fleet/persistence.py)."""
    db.execute(
        """CREATE TABLE IF NOT EXISTS equipment (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    province TEXT NOT NULL,
    commune TEXT NOT NULL,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    serial TEXT NOT NULL,
    holder TEXT NOT NULL,
    issued_on TEXT NOT NULL
)"""
    )
    db.execute("CREATE INDEX IF NOT EXISTS equipment_by_commune ON equipment (commune)")
    db.execute(
        """CREATE TABLE IF NOT EXISTS peripherals_seen (
    commune TEXT NOT NULL,
    device TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (commune, device)
)"""
    )


def create_outages(db: sqlite3.Connection) -> None:
    """Outage records of communes (collector/fleet/outage_book.py): one per dark spell, its cause once decided."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS outages (id INTEGER PRIMARY KEY, province TEXT NOT NULL, commune TEXT NOT NULL,"
        " start REAL NOT NULL, state TEXT NOT NULL, body TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS outages_start ON outages (start)")


def create_report_windows(db: sqlite3.Connection) -> None:
    """The monthly report's sums per past office window (collector/reports/windows.py): each window
    is asked of InfluxDB once, since its rollups no longer change."""
    db.execute("CREATE TABLE IF NOT EXISTS report_windows (kind TEXT NOT NULL, start INTEGER NOT NULL, "
               "end INTEGER NOT NULL, PRIMARY KEY (kind, start, end))")  # fmt: skip
    db.execute("CREATE TABLE IF NOT EXISTS report_slots (kind TEXT NOT NULL, start INTEGER NOT NULL, "
               "end INTEGER NOT NULL, commune TEXT NOT NULL, host TEXT NOT NULL, n REAL NOT NULL, a REAL NOT NULL, "
               "b REAL NOT NULL)")  # fmt: skip
    db.execute("CREATE INDEX IF NOT EXISTS report_slots_by_window ON report_slots (kind, start)")


def create_enroll_keys(db: sqlite3.Connection) -> None:
    """Enrolment keys (collector/registry/enroll_keys.py), kept as SHA-256 digests, and which key
    enrolled each host (NULL: an admin did, or the host predates keys)."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS enroll_keys (id INTEGER PRIMARY KEY, area TEXT NOT NULL,"
        " sha256 TEXT NOT NULL UNIQUE, created_at REAL NOT NULL, expires_at REAL NOT NULL,"
        " max_hosts INTEGER, revoked_at REAL)"
    )
    columns = {row[1] for row in db.execute("PRAGMA table_info(mqtt_credentials)")}
    if "enroll_key" not in columns:  # a file set back to an older version keeps its columns
        db.execute("ALTER TABLE mqtt_credentials ADD COLUMN enroll_key INTEGER")


def create_known_ids(db: sqlite3.Connection) -> None:
    """USB ids an area team imported (collector/registry/known_ids.py), handed to agents on their hello."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS known_ids (vendor_id TEXT NOT NULL, product_id TEXT NOT NULL, kind TEXT NOT NULL,"
        " model TEXT NOT NULL, line INTEGER NOT NULL, PRIMARY KEY (vendor_id, product_id))"
    )


def create_series_bounds(db: sqlite3.Connection) -> None:
    """Each host's agent-tag values with when each was last seen (collector/ingest/bounds_state.py)."""
    db.execute("CREATE TABLE IF NOT EXISTS series_bounds (host TEXT PRIMARY KEY, body TEXT NOT NULL)")


def same_rows(a: sqlite3.Connection, b: sqlite3.Connection) -> bool:
    """Whether two databases of the same schema hold the same rows in every table."""
    return all(table_rows(a, t) == table_rows(b, t) for t in user_tables(a))


def user_tables(db: sqlite3.Connection) -> list[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    return [str(name) for (name,) in rows]


def key_columns(db: sqlite3.Connection, table: str) -> list[str]:
    """The table's primary key columns, or ``rowid`` when it declares none."""
    info = db.execute(f"PRAGMA table_info({table})").fetchall()
    keys = [str(row[1]) for row in sorted(info, key=lambda row: int(row[5])) if int(row[5]) > 0]
    return keys or ["rowid"]


def table_rows(db: sqlite3.Connection, table: str) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Every row of ``table`` (``rowid`` first when the table has no key of its own), by its key."""
    keys = key_columns(db, table)
    cursor = db.execute(f"SELECT {'rowid, ' if keys == ['rowid'] else ''}* FROM {table}")
    names = [d[0] for d in cursor.description]
    at = [names.index(k) for k in keys]
    return {tuple(row[i] for i in at): tuple(row) for row in cursor}


def merge_changes(base: sqlite3.Connection, ours: sqlite3.Connection, target: Store) -> int:
    """Apply to ``target`` what changed in ``ours`` since ``base`` (rows added, changed, deleted),
    in one transaction; a row ``target`` changed too since ``base`` keeps the target's. How many
    of our changes gave way so."""
    gave_way = 0
    with target.transaction() as db:
        for table in user_tables(ours):
            keys = key_columns(ours, table)
            before, now, theirs = table_rows(base, table), table_rows(ours, table), table_rows(db, table)
            columns = [
                d[0]
                for d in ours.execute(
                    f"SELECT {'rowid, ' if keys == ['rowid'] else ''}* FROM {table} LIMIT 0"
                ).description
            ]
            match = " AND ".join(f"{k} = ?" for k in keys)
            for key in now.keys() | before.keys():
                if now.get(key) == before.get(key):
                    continue  # not changed by us
                if theirs.get(key) != before.get(key):
                    gave_way += 1
                    log.warning(
                        "state row changed by both; the file's kept", extra={"table": table, "key": str(key)[:100]}
                    )
                    continue
                if key not in now:
                    db.execute(f"DELETE FROM {table} WHERE {match}", key)
                else:
                    marks = ", ".join("?" * len(columns))
                    db.execute(f"INSERT OR REPLACE INTO {table} ({', '.join(columns)}) VALUES ({marks})", now[key])
    return gave_way


AUDIT_FLOOR_DAYS = 400  # the audit log keeps every entry at least this long; no setting lowers it


def create_audit_log(db: sqlite3.Connection) -> None:
    """The audit log of administrative changes (collector/audit.py): append-only and hash-chained.
    The file itself refuses to change an entry or to delete one younger than the floor."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit_log (id INTEGER PRIMARY KEY, ts REAL NOT NULL, actor TEXT NOT NULL,"
        " origin TEXT NOT NULL, action TEXT NOT NULL, object TEXT NOT NULL, commune TEXT NOT NULL,"
        " area TEXT NOT NULL, before TEXT, after TEXT, prev TEXT NOT NULL, hash TEXT NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS audit_by_commune ON audit_log (commune, id)")
    db.execute("CREATE INDEX IF NOT EXISTS audit_by_ts ON audit_log (ts)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS audit_head (one INTEGER PRIMARY KEY CHECK (one = 1), last_id INTEGER NOT NULL,"
        " last_hash TEXT NOT NULL, pruned_through INTEGER NOT NULL DEFAULT 0,"
        f" pruned_hash TEXT NOT NULL DEFAULT '{'0' * 64}')"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS audit_log_append_only BEFORE UPDATE ON audit_log"
        " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: an entry is never changed'); END"
    )
    db.execute(
        "CREATE TRIGGER IF NOT EXISTS audit_log_floor BEFORE DELETE ON audit_log"
        f" WHEN old.ts > CAST(strftime('%s', 'now') AS REAL) - {AUDIT_FLOOR_DAYS * 86400}"
        f" BEGIN SELECT RAISE(ABORT, 'audit entries are kept at least {AUDIT_FLOOR_DAYS} days'); END"
    )


def create_exclusions(db: sqlite3.Connection) -> None:
    """Exclusions from the report's adjusted figures (collector/registry/exclusions.py), and their
    withdrawals: records, never changed; a withdrawal is a later record naming the exclusion."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS exclusions (id INTEGER PRIMARY KEY, province TEXT NOT NULL, commune TEXT NOT NULL,"
        " scope TEXT NOT NULL, target TEXT NOT NULL, start REAL NOT NULL, end REAL NOT NULL, reason TEXT NOT NULL,"
        " note TEXT NOT NULL, by_name TEXT NOT NULL, created_at REAL NOT NULL)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS exclusions_by_commune ON exclusions (commune, start)")
    db.execute(
        "CREATE TABLE IF NOT EXISTS exclusion_withdrawals (id INTEGER PRIMARY KEY,"
        " exclusion INTEGER NOT NULL UNIQUE REFERENCES exclusions (id), by_name TEXT NOT NULL, note TEXT NOT NULL,"
        " created_at REAL NOT NULL)"
    )
    for table in ("exclusions", "exclusion_withdrawals"):
        for event in ("UPDATE", "DELETE"):
            db.execute(
                f"CREATE TRIGGER IF NOT EXISTS {table}_no_{event.lower()} BEFORE {event} ON {table}"
                f" BEGIN SELECT RAISE(ABORT, '{table} are records: never changed, withdrawn by a later record'); END"
            )


def create_report_revisions(db: sqlite3.Connection) -> None:
    """Frozen months (collector/reports/revisions.py): each revision of a month's report, with its
    figures per commune, the hash of its inputs and what changed from the one before; records,
    never changed or removed."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS report_revisions (month TEXT NOT NULL, area TEXT NOT NULL, number INTEGER NOT NULL,"
        " inputs TEXT NOT NULL, parts TEXT NOT NULL, exclusions TEXT NOT NULL, figures TEXT NOT NULL,"
        " figures_hash TEXT NOT NULL, changes TEXT NOT NULL, why TEXT NOT NULL, made_at REAL NOT NULL,"
        " made_by TEXT NOT NULL, origin TEXT NOT NULL, PRIMARY KEY (month, area, number))"
    )
    for event in ("UPDATE", "DELETE"):
        db.execute(
            f"CREATE TRIGGER IF NOT EXISTS report_revisions_no_{event.lower()} BEFORE {event} ON report_revisions"
            " BEGIN SELECT RAISE(ABORT, 'report revisions are records: never changed, a change is a new revision');"
            " END"
        )


def add_token_scope(db: sqlite3.Connection) -> None:
    """A viewer token's scope (collector/http/auth.py): "" for the whole province, else ``area:CODE``
    or ``commune:CODE``. Tokens made before keep seeing the whole province."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(api_tokens)")}
    if "scope" not in columns:  # a file set back to an older version has it already
        db.execute("ALTER TABLE api_tokens ADD COLUMN scope TEXT NOT NULL DEFAULT ''")


def create_action_requests(db: sqlite3.Connection) -> None:
    """On-demand actions asked of agents (collector/actions.py): who asked, the agent's answer, its result."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS action_requests (id TEXT PRIMARY KEY, province TEXT NOT NULL,"
        " commune TEXT NOT NULL, host TEXT NOT NULL, action TEXT NOT NULL, mode TEXT NOT NULL,"
        " asked_by TEXT NOT NULL, asked_at REAL NOT NULL, state TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',"
        " answered_at REAL, result TEXT)"
    )
    db.execute("CREATE INDEX IF NOT EXISTS action_requests_by_time ON action_requests (asked_at)")


def index_report_slots_by_commune(db: sqlite3.Connection) -> None:
    """One commune's kept window sums read without the nation's (the API's scorecard of a commune)."""
    db.execute("CREATE INDEX IF NOT EXISTS report_slots_by_commune ON report_slots (kind, commune, start)")


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    apply: Callable[[sqlite3.Connection], None]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "the tables of release 0.1.0", create_tables_v1),
    Migration(2, "alerts of older releases get told_firing and firing_since", upgrade_alert_rows),
    Migration(3, "the monthly report e-mail's record of months sent", create_report_mail),
    Migration(4, "issued equipment and the peripherals seen per commune", create_equipment),
    Migration(5, "outage records of communes, with their cause", create_outages),
    Migration(6, "the monthly report's sums per past office window", create_report_windows),
    Migration(7, "enrolment keys, and the key that enrolled each host", create_enroll_keys),
    Migration(8, "USB ids imported for the agents (registry import-known-ids)", create_known_ids),
    Migration(9, "the series bounds per host, kept across restarts", create_series_bounds),
    Migration(10, "the audit log of administrative changes, append-only and hash-chained", create_audit_log),
    Migration(11, "exclusions from the report's figures and their withdrawals, never changed", create_exclusions),
    Migration(12, "frozen months: each revision of a month's report, never changed", create_report_revisions),
    Migration(13, "API tokens may be scoped to one area or one commune", add_token_scope),
    Migration(14, "on-demand actions asked of agents, their answers and results", create_action_requests),
    Migration(
        15, "the kept report sums indexed by commune, for one commune's scorecard", index_report_slots_by_commune
    ),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


class StoreError(RuntimeError):
    """The state file cannot be used; the message names the file and what to do."""


class Store:
    """The state file's one connection, its lock and its migrations.

    Every module that keeps state receives the Store and runs its statements through
    ``execute``/``executemany``/``query`` (each under the lock) or ``transaction`` (several
    statements, all or nothing). ``lock`` is re-entrant, so a caller may hold it around a few calls.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self.lock = threading.RLock()
        self._baseline: sqlite3.Connection | None = None  # a memory copy's rows as the file had them
        self._moves = 0
        # ``read``'s connections not in use, each with the ``_moves`` it was opened at
        self._idle_readers: list[tuple[sqlite3.Connection, int]] = []
        self._readers_lock = threading.Lock()
        self._closed = False
        try:
            if self.path != ":memory:":
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"state file {self.path} cannot be opened: {exc}") from None
        try:
            self._refuse_newer(self._user_version())  # before anything is written to it
            self._switch_to_wal()
            self._db.execute("PRAGMA synchronous=NORMAL")
            self.version = self._migrate()
        except sqlite3.DatabaseError as exc:
            self._db.close()
            raise StoreError(f"state file {self.path} cannot be used: {exc}") from None
        except StoreError:
            self._db.close()
            raise

    def _switch_to_wal(self) -> None:
        """WAL mode, waiting while another connection switches the same new file (SQLite answers
        "database is locked" at once there, without its busy timeout)."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _user_version(self) -> int:
        return int(self._db.execute("PRAGMA user_version").fetchone()[0])

    def _refuse_newer(self, found: int) -> None:
        if found > SCHEMA_VERSION:
            raise StoreError(
                f"state file {self.path} has schema version {found}, newer than the {SCHEMA_VERSION} this "
                "collector knows: it was written by a newer release; run that release, or restore a backup"
            )

    def _migrate(self) -> int:
        """Apply the migrations the file has not had yet, each in its own transaction; the version reached."""
        found = self._user_version()
        self._refuse_newer(found)
        for migration in MIGRATIONS:
            if found >= migration.version:
                continue
            with self.transaction() as db:
                found = self._user_version()  # another process may have migrated meanwhile
                self._refuse_newer(found)
                if found >= migration.version:
                    continue
                try:
                    migration.apply(db)
                except (sqlite3.DatabaseError, ValueError, TypeError, KeyError) as exc:  # e.g. a row that is not JSON
                    raise StoreError(
                        f"state file {self.path}: migration to version {migration.version} ({migration.what}) "
                        f"failed: {exc!r}; the file stays at version {found}"
                    ) from None
                db.execute(f"PRAGMA user_version = {migration.version:d}")
                found = migration.version
            log.info("state file migrated", extra={"path": self.path, "version": found, "what": migration.what})
        return found

    @classmethod
    def memory_copy(cls, path: str | Path) -> Store:
        """A store in memory holding a copy of the file at ``path``, read without writing anything
        next to it, or empty when there is no readable file. For running on while the file cannot
        be opened for writing (a full or read-only disk): ``move_to`` writes it back later."""
        store = cls(":memory:")
        if not Path(path).is_file():
            return store
        try:
            source = sqlite3.connect(Path(path).resolve().as_uri() + "?immutable=1", uri=True)
            try:
                with store.lock:
                    source.backup(store._db)
            finally:
                source.close()
            store.version = store._migrate()  # a copy of an older file is brought up to date
        except sqlite3.Error as exc:
            log.error("state file cannot be read either; starting from an empty state", extra={"detail": str(exc)})
            store = cls(":memory:")
        store._baseline = sqlite3.connect(":memory:", check_same_thread=False)
        with store.lock:
            store._db.backup(store._baseline)  # as the file was: what changed since is ours or another's
        return store

    def move_to(self, path: str | Path) -> None:
        """Write this store's rows into the file at ``path`` and use that file from now on; raises
        StoreError (and changes nothing) when the file cannot be opened or written.

        A copy made by ``memory_copy`` writes back only what changed in it since the copy, so what
        another process (``commune-collector registry import-...``) wrote to the file meanwhile is
        kept; a row both changed keeps the file's version (logged). Without a copy's baseline, or
        when the file has not changed, every row is copied over."""
        target = Store(path)
        with self.lock:
            try:
                if self._baseline is None or same_rows(self._baseline, target._db):
                    self._db.backup(target._db)
                else:
                    kept = merge_changes(self._baseline, self._db, target)
                    log.warning("state file was changed while the collector ran from a copy; its changes are kept",
                                extra={"path": str(path), "rows_both_changed": kept})  # fmt: skip
            except sqlite3.Error as exc:
                target.close()
                raise StoreError(f"state file {path} cannot be written: {exc}") from exc
            self._db.close()
            if self._baseline is not None:
                self._baseline.close()
            self._db, self.path, self._baseline = target._db, target.path, None
            self._moves += 1

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Hold the lock and a write transaction; commit on success, roll back on any error."""
        with self.lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # SQLite may have rolled back already (e.g. on a full disk)
                    with contextlib.suppress(sqlite3.Error):  # the first error is the one to report
                        self._db.execute("ROLLBACK")
                raise

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        with self.lock:
            return self._db.execute(sql, params)

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> sqlite3.Cursor:
        with self.lock:
            return self._db.executemany(sql, rows)

    def upsert(self, table: str, keys: Sequence[str], values: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """Write ``rows`` (the ``keys`` columns, then the ``values`` columns) in one transaction; a row
        whose keys are there already gets the new values. Table and column names are the code's own."""
        columns = ", ".join([*keys, *values])
        marks = ", ".join("?" * (len(keys) + len(values)))
        updates = ", ".join(f"{name} = excluded.{name}" for name in values)
        sql = f"INSERT INTO {table} ({columns}) VALUES ({marks}) ON CONFLICT({', '.join(keys)}) DO UPDATE SET {updates}"
        with self.transaction() as db:
            db.executemany(sql, rows)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a SELECT (or a PRAGMA that answers)."""
        with self.lock:
            return self._db.execute(sql, params).fetchall()

    def read(self, sql: str, params: Sequence[Any] = ()) -> list[Any]:
        """Every row of a SELECT as the file was at its last commit, without waiting for ``lock``.

        For the API's hot reads (the token check, areas, lines, outages): a request must not wait
        behind a long write on the store's connection, such as the fleet save's chunks or the
        registry's flush. WAL lets query-only connections read beside it. Each read takes an idle
        one, or opens one when none is idle, so no reader waits for another either; there are never
        more than the reads that ran at once. A read does not see a write its caller has not
        committed yet, so code inside ``transaction`` uses ``query``. A store in memory (no file)
        reads through ``query``."""
        if self.path == ":memory:":
            return self.query(sql, params)
        reader, moves = self._take_reader()
        try:
            return reader.execute(sql, params).fetchall()
        finally:
            with self._readers_lock:
                if self._closed or moves != self._moves:
                    reader.close()
                else:
                    self._idle_readers.append((reader, moves))

    def _take_reader(self) -> tuple[sqlite3.Connection, int]:
        """An idle reader of the file as it is now, or a new one: never one that makes a file where
        there is none (a state file removed under the collector is an error, not a new empty file)."""
        with self._readers_lock:
            if self._closed:
                raise sqlite3.ProgrammingError("Cannot operate on a closed database.")
            while self._idle_readers:
                reader, moves = self._idle_readers.pop()
                if moves == self._moves:
                    return reader, moves
                reader.close()  # opened before a move to another file
            moves, uri = self._moves, Path(self.path).resolve().as_uri() + "?mode=rw"
        reader = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_S, check_same_thread=False, isolation_level=None)
        reader.execute("PRAGMA query_only = ON")
        return reader, moves

    def data_version(self) -> int:
        """Changes when another connection (e.g. ``commune-collector registry``) commits to the file,
        and when a copy in memory moves to its file (``move_to``)."""
        return int(self.query("PRAGMA data_version")[0][0]) + (self._moves << 32)

    def close(self) -> None:
        with self.lock:
            self._db.close()
        with self._readers_lock:
            self._closed = True  # a read then raises, as ``query`` would; one running closes its reader after
            for reader, _moves in self._idle_readers:
                reader.close()
            self._idle_readers.clear()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
