"""The state file has one owner: a file written by release 0.1.0 is adopted and migrated, every row
intact and read by the collector's objects; opening twice changes nothing; a file from a newer
release, or one that is not a state file, is refused with a clear error naming it."""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

import pytest
from realservices import REPO, WebhookReceiver, wait_until, write_toml

from collector.alerting.lifecycle import Alert, AlertManager
from collector.alerting.notify import Notifier
from collector.config import AlertSettings, FleetSettings, NotifySettings
from collector.fleet.state import FleetState
from collector.http.auth import Token, TokenStore
from collector.registry.dynsec import broker_document
from collector.registry.enroll import host_logins
from collector.registry.registry import HostKey, Line, Registry
from collector.selfmetrics import SelfMetrics
from collector.store import ALERT_FIELDS_V2, SCHEMA_VERSION, Store, StoreError

RELEASE_FILE = Path(__file__).parent / "data" / "state-0.1.0.sqlite"
TABLES = ("areas", "commune_areas", "lines", "hosts", "alerts", "silences", "outbox", "api_tokens",
          "mqtt_credentials", "fleet_state")  # fmt: skip
T0 = 1_790_000_000.0  # the clock tests/data/make_state_0_1_0.py ran with


def raw(path: Path, sql: str) -> list[Any]:
    """Rows read straight from the file with a plain connection, bypassing the Store."""
    db = sqlite3.connect(path)
    try:
        return db.execute(sql).fetchall()
    finally:
        db.close()


def contents(path: Path) -> dict[str, list[Any]]:
    return {table: raw(path, f"SELECT * FROM {table} ORDER BY 1, 2") for table in TABLES}


def schema(path: Path) -> list[Any]:
    return raw(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")


@pytest.fixture
def release_file(tmp_path: Path) -> Path:
    """A copy of the state file release 0.1.0 wrote, so the test may migrate it."""
    copy = tmp_path / "state.sqlite"
    shutil.copyfile(RELEASE_FILE, copy)
    return copy


def test_a_state_file_of_release_0_1_0_is_adopted_with_every_row_kept(release_file: Path, tmp_path: Path) -> None:
    before = contents(release_file)
    assert raw(release_file, "PRAGMA user_version") == [(0,)]
    assert {table: len(rows) for table, rows in before.items()} == {
        "areas": 2, "commune_areas": 3, "lines": 2, "hosts": 4, "alerts": 3, "silences": 2, "outbox": 3,
        "api_tokens": 2, "mqtt_credentials": 2, "fleet_state": 3,
    }  # fmt: skip

    store = Store(release_file)
    assert store.version == SCHEMA_VERSION == 15  # 3: report_mail, 4: equipment, peripherals_seen, 5: outages,
    # 6: report_windows, report_slots, 7: enroll_keys, 8: known_ids, 9: series_bounds, 10: audit_log, audit_head,
    # 11: exclusions, exclusion_withdrawals, 12: report_revisions, 13: api_tokens.scope,
    # 14: action_requests, 15: report_slots_by_commune (an index)
    store.close()
    assert raw(release_file, "PRAGMA user_version") == [(SCHEMA_VERSION,)]
    after = contents(release_file)
    assert [row[-1] for row in after["mqtt_credentials"]] == [None, None]  # 6: enrolled by no key
    after["mqtt_credentials"] = [row[:-1] for row in after["mqtt_credentials"]]
    assert [row[-1] for row in after["api_tokens"]] == ["", ""]  # 13: 0.1.0's tokens see the whole province
    after["api_tokens"] = [row[:-1] for row in after["api_tokens"]]
    assert after == before  # 0.1.0 already wrote alerts in today's form: nothing to upgrade
    with Store(tmp_path / "new.sqlite"):
        pass
    assert schema(release_file) == schema(tmp_path / "new.sqlite")  # adopted: the same tables as a new file


def test_the_collectors_objects_read_a_migrated_0_1_0_file(release_file: Path, tmp_path: Path) -> None:
    dumped = contents(release_file)
    store = Store(release_file)

    registry = Registry(store, "unassigned")
    assert registry.areas() == {"minh-xuan": "Minh Xuân", "yen-son": "Yên Sơn"}
    assert registry.communes_by_area() == {"minh-xuan": ["02215"], "yen-son": ["02473", "02536"]}
    assert registry.lines() == [Line("VNPT-02473-01", "08", "02473", "VNPT", 100.0, 100.0, "2025-08-15"),
                                Line("VT-02536-01", "08", "02536", "Viettel", 80.0, 40.0, "")]  # fmt: skip
    hosts = {(h.key.commune, h.key.host): (h.first_seen, h.last_seen, h.status, h.agent_version)
             for h in registry.hosts()}  # fmt: skip
    assert hosts == {
        ("02473", "pc-01"): (T0 - 30, T0 + 110, "online", "0.1.0"),
        ("02473", "pc-02"): (T0 - 30, T0 + 110, "online", "0.1.0"),
        ("02536", "pc-03"): (T0 - 30, T0 + 110, "online", "0.1.0"),
        ("02215", "pc-old"): (T0 - 7200, T0 - 7200, "offline", ""),
    }

    manager = AlertManager(store, AlertSettings(), lambda _p: None, lambda _e: None)
    stored = {alert_id: json.loads(body) for alert_id, _key, _state, body in dumped["alerts"]}
    assert {a.id: asdict(a) for a in manager.alerts()} == stored  # every field of every alert
    assert sorted((a.rule, a.host, a.state) for a in manager.open.values()) == [
        ("host_offline", "pc-02", "firing"), ("line_down", "", "pending")]  # fmt: skip
    (acked,) = [a for a in manager.open.values() if a.host == "pc-02"]
    assert (acked.acked_by, acked.ack_comment, acked.told_firing) == ("Nguyễn Văn A", "đang xử lý", True)
    silences = [(s.matchers, s.starts_at, s.ends_at, s.author, s.comment) for s in manager.silences()]
    assert silences == [
        ({"commune": "02536"}, T0, T0 + 86400, "ops", "thay cáp quang"),
        ({"host": "pc-03", "rule": "host_offline"}, T0 - 86400, T0 - 3600, "ops", "đã hết hạn"),
    ]
    assert [s.id for s in manager.silences(T0)] == [1]  # the other one ended before T0

    tokens = TokenStore(store, [])
    assert tokens.tokens() == [Token(name, role, sha) for name, role, sha, _at in dumped["api_tokens"]]
    assert [t.name for t in tokens.tokens()] == ["grafana-viewer", "ops-admin"]

    # The hosts enrolled with 0.1.0's password file move into the dynamic-security plugin's file with
    # their very hashes (dynsec-init), so their agents' passwords keep working.
    plugin_file = broker_document(("admin", "admin-password"), None, host_logins(store))
    hosts_in_file = {c["username"]: c for c in plugin_file["clients"] if c["username"] != "admin"}
    assert {user: f"$7${c['iterations']}${c['salt']}${c['password']}" for user, c in hosts_in_file.items()} == {
        user: password_hash for user, _p, _c, _h, password_hash, _at in dumped["mqtt_credentials"]
    }
    roles = {role["rolename"]: role["acls"] for role in plugin_file["roles"]}
    assert {"acltype": "publishClientSend", "topic": "commune/v1/08/02536/pc-03/metrics", "allow": True,
            "priority": 0} in roles["host-08-02536-pc-03"]  # fmt: skip

    fleet = FleetState(store, registry, FleetSettings(), started_at=T0)
    saved = {("02473", "pc-01"), ("02473", "pc-02"), ("02536", "pc-03")}
    assert set(fleet.facts) == {HostKey("08", commune, host) for commune, host in saved}
    pc01 = fleet.facts[HostKey("08", "02473", "pc-01")]
    assert (pc01.last_report, pc01.disk_percent, pc01.temp_c, pc01.temp_limit_c, pc01.uplink) == (
        T0 + 100, 58.0, 61.0, 90.0, "eth0")  # fmt: skip
    assert (pc01.ram_bytes, pc01.cpu_cores, pc01.boot_time, pc01.reboots) == (4 * 2**30, 4.0, T0 + 50, [T0 + 90])
    assert pc01.samples == deque([(T0 + 95, 10.0, 35.0)]) and sum(pc01.traffic_by_day.values()) == 300000.0
    assert pc01.speedtest_percent == 72.0 and fleet.facts[HostKey("08", "02536", "pc-03")].speedtest_percent == 90.0
    store.close()


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    receiver = WebhookReceiver()
    yield receiver
    receiver.close()


def test_notifications_left_in_a_0_1_0_outbox_are_sent_after_the_upgrade(
    release_file: Path, webhook: WebhookReceiver
) -> None:
    dumped = contents(release_file)["outbox"]
    store = Store(release_file)
    notifier = Notifier(
        NotifySettings(group_wait_s=0, webhook_urls=[webhook.url]), store, Registry(store, "x"), SelfMetrics()
    )
    notifier.start()
    try:
        wait_until(lambda: raw(release_file, "SELECT count(*) FROM outbox") == [(0,)], 30, "outbox sent and emptied")
    finally:
        notifier.stop()
        store.close()
    received = [body for _at, body in webhook.received]
    events = [event for message in received for event in message["events"]]
    assert [(e["event"], e["id"], e["host"]) for e in events] == [("firing", 1, "pc-01"), ("firing", 3, "pc-02"),
                                                                  ("resolved", 1, "pc-01")]  # fmt: skip
    assert [{k: v for k, v in e.items() if k not in ("event", "key")} for e in events] == [
        json.loads(body) for _id, _kind, body in dumped
    ]
    assert {m["area_name"] for m in received} == {"Yên Sơn"}


def test_opening_a_state_file_twice_changes_nothing(release_file: Path) -> None:
    Store(release_file).close()
    once = (contents(release_file), schema(release_file), raw(release_file, "PRAGMA user_version"))
    again = Store(release_file)
    assert again.version == SCHEMA_VERSION
    again.close()
    assert (contents(release_file), schema(release_file), raw(release_file, "PRAGMA user_version")) == once


def test_alerts_of_releases_before_told_firing_are_upgraded_once_in_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store(path).close()
    old = {"id": 1, "rule": "host_offline", "province": "08", "area": "a", "commune": "02473", "host": "pc-old",
           "severity": "critical", "summary_vi": "v", "summary_en": "e", "state": "firing", "started_at": 10.0,
           "fired_at": 12.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "",
           "a_field_from_elsewhere": 1}  # fmt: skip
    rows = [
        old,
        {**old, "id": 2, "host": "pc-held", "message_owed": True},  # held back by a night window
        {**old, "id": 3, "host": "pc-acked", "flaps": 1, "acked_at": 11.0},  # came back after an ack
        {**old, "id": 4, "host": "pc-flap", "flaps": 3},  # came back flapping
        {**old, "id": 5, "host": "pc-few", "flaps": 2},  # came back, below the threshold: told
        {**old, "id": 6, "host": "pc-done", "state": "resolved", "resolved_at": 20.0},
    ]
    db = sqlite3.connect(path, isolation_level=None)
    for row in rows:
        db.execute("INSERT INTO alerts (id, key, state, body) VALUES (?, ?, ?, ?)",
                   (row["id"], f"host_offline|08|02473|{row['host']}", row["state"], json.dumps(row)))  # fmt: skip
    db.execute("INSERT INTO outbox (kind, alert) VALUES ('firing', ?)", (json.dumps(old),))
    db.execute("PRAGMA user_version = 0")  # a file of the releases before the store
    db.close()

    Store(path).close()
    upgraded = {body["host"]: body for body in (json.loads(b) for (b,) in raw(path, "SELECT body FROM alerts"))}
    assert {host: body["told_firing"] for host, body in upgraded.items()} == {
        "pc-old": True, "pc-held": False, "pc-acked": False, "pc-flap": False, "pc-few": True, "pc-done": False,
    }  # fmt: skip
    assert all(body["firing_since"] == 12.0 for body in upgraded.values())  # its first spell of firing
    assert all(list(body) == list(ALERT_FIELDS_V2) for body in upgraded.values())  # unknown fields dropped
    assert [json.loads(b)["told_firing"] for (b,) in raw(path, "SELECT alert FROM outbox")] == [True]
    assert list(ALERT_FIELDS_V2) == [f.name for f in fields(Alert)]  # the stored form is today's Alert

    upgraded_once = contents(path)
    Store(path).close()
    assert contents(path) == upgraded_once


@pytest.mark.services  # runs the collector's CLI
def test_a_state_file_of_a_newer_release_is_refused_and_left_as_it_is(release_file: Path, tmp_path: Path) -> None:
    db = sqlite3.connect(release_file)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()
    before = (contents(release_file), raw(release_file, "PRAGMA journal_mode"))
    with pytest.raises(StoreError) as refused:
        Store(release_file)
    message = str(refused.value)
    assert str(release_file) in message and f"version {SCHEMA_VERSION + 1}" in message
    assert f"the {SCHEMA_VERSION} this collector knows" in message and "newer release" in message
    assert (contents(release_file), raw(release_file, "PRAGMA journal_mode")) == before
    assert raw(release_file, "PRAGMA user_version") == [(SCHEMA_VERSION + 1,)]

    config = write_toml(tmp_path / "c.toml", {"state": {"path": str(release_file)}})
    for command in (["serve"], ["token", "list"]):
        result = subprocess.run([sys.executable, "-m", "collector.cli", *command, "-c", str(config)],
                                cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
        assert result.returncode == 2, result.stderr
        assert result.stderr.splitlines() == [f"commune-collector: {message}"]


@pytest.mark.services  # runs the collector's CLI
def test_a_file_that_is_not_a_state_file_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    path.write_bytes(b"this is a CSV export, not SQLite\n" * 200)
    with pytest.raises(StoreError, match=rf"state file {path} cannot be used: file is not a database"):
        Store(path)
    result = subprocess.run([sys.executable, "-m", "collector.cli", "token", "list", "-c",
                             str(write_toml(tmp_path / "c.toml", {"state": {"path": str(path)}}))],
                            cwd=REPO, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert result.returncode == 2 and len(result.stderr.splitlines()) == 1 and str(path) in result.stderr


def test_a_migration_that_fails_leaves_the_file_at_its_last_whole_version(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    Store(path).close()
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("INSERT INTO alerts (key, state, body) VALUES ('k', 'firing', '{\"id\": 1, \"state\": \"firing\"}')")
    db.execute("INSERT INTO alerts (key, state, body) VALUES ('k', 'firing', 'not json')")
    db.execute("PRAGMA user_version = 0")
    db.close()
    with pytest.raises(StoreError, match=r"migration to version 2 \(.*\) failed: .*stays at version 1"):
        Store(path)
    assert raw(path, "PRAGMA user_version") == [(1,)]  # version 1 was whole; version 2 rolled back
    assert raw(path, "SELECT body FROM alerts ORDER BY id") == [('{"id": 1, "state": "firing"}',), ("not json",)]


def test_collectors_opening_a_new_state_file_at_once_each_find_it_migrated(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    opened: list[int] = []
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            store = Store(path)
            opened.append(store.version)
            store.close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == [] and opened == [SCHEMA_VERSION] * 4
    assert raw(path, "PRAGMA user_version") == [(SCHEMA_VERSION,)]


def test_only_the_store_declares_the_state_files_tables(tmp_path: Path) -> None:
    """Other SQLite files (the write buffer) keep their own tables; none of the state file's are made elsewhere."""
    with Store(tmp_path / "new.sqlite"):
        pass
    tables = {name for (name,) in raw(tmp_path / "new.sqlite", "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables >= set(TABLES)  # every table of 0.1.0, and those later migrations added
    declared = re.compile(r"CREATE\s+(?:TABLE|INDEX)\s+(?:IF\s+NOT\s+EXISTS\s+)?(\w+)(?:\s+ON\s+(\w+))?", re.I)
    elsewhere: dict[str, list[str]] = {}
    for module in sorted((REPO / "collector").rglob("*.py")):
        if module.name == "store.py" and module.parent.name == "collector":
            continue
        names = {name for match in declared.finditer(module.read_text()) for name in match.groups() if name}
        if names & tables:
            elsewhere[str(module.relative_to(REPO))] = sorted(names & tables)
    assert elsewhere == {}


def test_a_flush_the_file_cannot_take_is_rolled_back_and_written_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    store = Store(path)
    registry = Registry(store, "unassigned")
    registry.touch(HostKey("08", "02473", "pc-first"), 100.0, status="online")
    assert registry.flush() == 1
    pages = store.query("PRAGMA page_count")[0][0]
    store.execute(f"PRAGMA max_page_count = {pages}")  # SQLite's own "database or disk is full" from here on
    for i in range(500):
        registry.touch(HostKey("08", "02473", f"pc-{i:03d}-{'x' * 40}"), 200.0 + i, status="online")
    with pytest.raises(sqlite3.OperationalError, match="full"):
        registry.flush()
    assert raw(path, "SELECT count(*) FROM hosts") == [(1,)]  # nothing half-written

    store.execute("PRAGMA max_page_count = 1000000")  # room again
    assert registry.flush() == 500  # the hosts the failed flush could not store
    assert registry.flush() == 0
    store.close()
    again = Registry(Store(path), "unassigned")
    assert len(again.hosts()) == 501
    assert again.host(HostKey("08", "02473", f"pc-499-{'x' * 40}")) is not None
