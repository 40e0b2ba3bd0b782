"""Every administrative door writes to the audit log, on a real collector and its real state
file: each admin route of the API (read from its OpenAPI document) and each administrative CLI
command; a row edited or deleted with the sqlite3 shell is named by ``audit verify`` (exit 2)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from realservices import API_TOKEN, DYNSEC_ADMIN, Collector, dynsec_broker, free_port
from test_enrollment import COLLECTOR_PASSWORD, COLLECTOR_USER

from collector.alerting.lifecycle import Alert, record
from collector.cli import ADMINISTRATIVE, COMMANDS, READ_ONLY
from collector.registry.registry import HostKey, Registry
from collector.store import Store

REPO = Path(__file__).resolve().parent.parent
PUBLIC = {("POST", "/api/v1/enroll"), ("POST", "/speedtest/upload.php")}  # an agent's doors, not an admin's


def state_of(collector: Collector) -> Path:
    return Path(collector.config_path).parent.parent / "state.sqlite"


def audit_rows(collector: Collector) -> list[tuple[str, str, str, str]]:
    with sqlite3.connect(state_of(collector)) as db:
        return db.execute("SELECT actor, origin, action, object FROM audit_log ORDER BY id").fetchall()


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_admin_route_writes_an_entry_and_a_viewer_cannot_read_the_log(
    make_collector: Callable[..., Collector],
) -> None:
    collector = make_collector()
    with Store(state_of(collector)) as store:  # a known PC and an open alert, before the collector starts
        registry = Registry(store, "unassigned")
        for host in ("pc-01", "pc-02"):
            registry.touch(HostKey("08", "02473", host), time.time(), "online")
        registry.flush()
        alert_id = record(store, Alert(0, "host_offline", "08", "yen-son", "02473", "pc-02", "warning", "vi", "en",
                                       "firing", time.time() - 600, fired_at=time.time() - 300))  # fmt: skip
    collector.start()
    document = collector.get_json("/openapi.json")
    admin_routes = {(m.upper(), p) for p, item in document["paths"].items() for m in item if m in ("post", "delete",
                    "put", "patch")} - PUBLIC  # fmt: skip
    stamp = int(time.time())
    calls = [
        ("POST", "/api/v1/silences", {"matchers": {"commune": "02473"}, "duration_s": 600, "author": "A"}),
        ("DELETE", "/api/v1/silences/{silence_id}", None),
        ("POST", "/api/v1/alerts/{alert_id}/ack", {"by": "A", "comment": "đang xử lý"}),
        (
            "POST",
            "/api/v1/exclusions",
            {
                "commune": "02473",
                "scope": "host",
                "target": "pc-01",
                "from": "2026-11-03",
                "to": "2026-11-04",
                "reason": "repair",
                "note": "sửa",
                "by": "A",
            },
        ),
        ("POST", "/api/v1/exclusions/{exclusion_id}/withdraw", {"note": "nhầm", "by": "A"}),
        ("POST", "/api/v1/hosts/{province}/{commune}/{host}/speedtest", {}),
        ("POST", "/api/v1/hosts/{province}/{commune}/{host}/actions/{key}", {}),  # no agent: pending
        ("DELETE", "/api/v1/hosts/{province}/{commune}/{host}", None),
    ]
    assert {(m, p) for m, p, _ in calls} == admin_routes, "a new admin route: add its call here"
    made: dict[str, int | str] = {"alert_id": alert_id, "key": "probe_now"}
    for method, template, body in calls:
        before = len(audit_rows(collector))
        path = template.format(province="08", commune="02473", host="pc-01", **made)
        status, answer = collector.send_json(method, path, body)
        assert status < 300, (method, path, status, answer)
        if template == "/api/v1/silences":
            made["silence_id"] = answer["id"]
        if template == "/api/v1/exclusions":
            made["exclusion_id"] = answer["id"]
        written = audit_rows(collector)[before:]
        assert written, f"{method} {template} wrote no audit entry"
        assert all(r[0] == "tests" and r[1] == "127.0.0.1" and r[2] == f"{method} {path}" for r in written), written
    objects = [r[3] for r in audit_rows(collector)]
    assert objects[:3] == [f"silence:{made['silence_id']}"] * 2 + [f"alert_ack:{alert_id}"]
    assert f"exclusion:{made['exclusion_id']}" in objects and "host:08/02473/pc-01" in objects and "none" in objects
    assert any(o.startswith("action_request:") for o in objects)  # which request, for which commune
    assert collector.send_json("DELETE", "/api/v1/silences/999")[0] == 404  # refused: changes nothing, no entry
    assert len(audit_rows(collector)) == len(objects)

    good = {"commune": "02473", "scope": "host", "target": "pc-02", "from": "2026-11-03", "to": "2026-11-04",
            "reason": "repair", "note": "sửa", "by": "A"}  # fmt: skip
    for change, status in (({"commune": "02536"}, 404), ({"target": "pc-9"}, 404), ({"to": "2026-11-02"}, 409),
                           ({"reason": "vacation"}, 422), ({"note": "  "}, 422), ({"scope": "line"}, 409)):  # fmt: skip
        answer = collector.send_json("POST", "/api/v1/exclusions", {**good, **change})
        assert answer[0] == status and isinstance(answer[1]["detail"], (str, list)), (change, answer)
    assert collector.send_json("POST", "/api/v1/exclusions/999/withdraw", {"note": "x", "by": "A"})[0] == 404
    assert len(collector.get_json("/api/v1/exclusions")) == 1 and len(audit_rows(collector)) == len(objects)

    listed = collector.get_json("/api/v1/audit?object=exclusion&commune=02473")
    assert [e["object"] for e in listed] == [f"exclusion:{made['exclusion_id']}"]
    assert listed[0]["after"]["target"] == "pc-01" and listed[0]["before"] is None
    page = collector.send_json("GET", "/api/v1/audit?limit=2")
    assert page[0] == 200 and len(page[1]) == 2
    viewer = ok(collector.cli("token", "add", "--name", f"viewer-{stamp}", "--role", "viewer")).strip()
    assert collector.send_json("GET", "/api/v1/audit", headers={"Authorization": f"Bearer {viewer}"})[0] == 403
    withdrawn = collector.get_json("/api/v1/exclusions?commune=02473")
    assert withdrawn[0]["withdrawn"] and withdrawn[0]["withdrawal"]["by_name"] == "A"
    assert API_TOKEN not in json.dumps(collector.get_json("/api/v1/audit"))


def test_every_admin_command_writes_an_entry_and_a_tampered_row_is_found(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    assert set(ADMINISTRATIVE) | READ_ONLY == set(COMMANDS) and not set(ADMINISTRATIVE) & READ_ONLY
    port = free_port()
    collector = make_collector(
        mqtt={"port": port, "username": COLLECTOR_USER, "password": COLLECTOR_PASSWORD},
        enroll={**DYNSEC_ADMIN, "broker_port": port},
    )
    broker = dynsec_broker(collector, tmp_path / "broker", port)  # dynsec-init: the first command audited
    try:
        runs = [
            ("registry", "import-areas", str(REPO / "config/areas.example.csv")),
            ("registry", "import", str(REPO / "config/lines.example.csv")),
            ("registry", "import-equipment", str(REPO / "config/equipment.example.csv")),
            ("registry", "import-known-ids", str(REPO / "config/known_ids.example.csv")),
            ("token", "add", "--name", "grafana"),
            ("token", "revoke", "--name", "grafana"),
            ("enroll-key", "add", "--area", "yen-son", "--expires", "30d"),
            ("enroll-key", "revoke", "--id", "1"),
            ("enroll", "--province", "08", "--commune", "02473", "--host", "pc-01", "--out", str(tmp_path / "a.toml")),
            (
                "exclusion",
                "add",
                "--commune",
                "02473",
                "--line",
                "--from",
                "2026-11-03",
                "--to",
                "2026-11-04",
                "--reason",
                "disaster",
                "--note",
                "lũ",
                "--by",
                "Anh C",
            ),
            ("exclusion", "withdraw", "--id", "1", "--note", "nhầm", "--by", "Anh C"),
        ]
        assert {r[0] for r in runs} | {"dynsec-init"} == set(ADMINISTRATIVE)
        assert audit_rows(collector)[0][1:] == ("cli", "dynsec-init", "none")
        for run in runs:
            before = len(audit_rows(collector))
            ok(collector.cli(*run))
            written = audit_rows(collector)[before:]
            assert written and all((r[1] == "cli" and r[2].startswith(f"{run[0]} ")) or r[2] == run[0] for r in written)
            assert all(r[2].split()[0] == run[0] for r in written), (run, written)
    finally:
        broker.stop()
    objects = [r[3] for r in audit_rows(collector)]
    for kind in ("area:yen-son", "commune_area:02473", "line:TQG-FTTH-02473-01", "known_id:043d:01bd", "token:grafana",
                 "enroll_key:1", "enrolment:", "exclusion:1", "exclusion_withdrawal:1"):  # fmt: skip
        assert any(o.startswith(kind) for o in objects), kind
    assert ok(collector.cli("audit", "verify")).startswith(f"{len(objects)} audit entries")

    bad = collector.cli("exclusion", "add", "--commune", "02473", "--from", "2026-11-03", "--to", "2026-11-04",
                        "--reason", "vacation", "--note", "x", "--by", "A")  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1 and "vacation" in bad.stderr
    assert len(audit_rows(collector)) == len(objects)  # refused: nothing stored, nothing audited

    state = str(state_of(collector))
    shell = ["sqlite3", state]
    refused = subprocess.run([*shell, "UPDATE audit_log SET actor = 'x' WHERE id = 3;"], capture_output=True, text=True)
    assert refused.returncode != 0 and "append-only" in refused.stderr
    subprocess.run([*shell, "DROP TRIGGER audit_log_append_only; DROP TRIGGER audit_log_floor;"], check=True)
    line = objects.index("line:TQG-FTTH-02473-01") + 1  # its entry's id
    subprocess.run(
        [*shell, f"UPDATE audit_log SET after = replace(after, 'VNPT', 'FPT') WHERE id = {line};"], check=True
    )
    edited = collector.cli("audit", "verify")
    assert edited.returncode == 2 and f"audit entry {line} was changed" in edited.stderr, edited.stderr
    assert line > 3
    subprocess.run([*shell, "DELETE FROM audit_log WHERE id = 3;"], check=True)
    deleted = collector.cli("audit", "verify")
    assert deleted.returncode == 2 and "audit entry 3 is missing" in deleted.stderr, deleted.stderr


pytestmark = pytest.mark.services
