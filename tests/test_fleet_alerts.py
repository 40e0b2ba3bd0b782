"""Fleet state and alerts with real processes: an agent killed with SIGKILL, a commune whose PCs
all go dark, degraded and old PCs, a line nobody uses. Notifications reach a real SMTP server
(aiosmtpd), a real HTTP webhook receiver and a real HTTP server speaking Telegram's Bot API."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from aiosmtpd.controller import Controller
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Collector, free_port, merged, wait_until
from stack import Stack

from collector.alerting.conditions import HOST_OFFLINE, Condition
from collector.alerting.lifecycle import AlertManager
from collector.config import AlertSettings
from collector.ingest.lineprotocol import Point
from collector.store import Store
from common.wire import encode, report_topic


@dataclass
class Receivers:
    webhook: list[dict[str, Any]] = field(default_factory=list)
    telegram: list[dict[str, Any]] = field(default_factory=list)
    mails: list[tuple[str, str]] = field(default_factory=list)
    http_port: int = 0
    smtp_port: int = 0

    def events(self, rule: str, kind: str, host: str | None = None) -> list[dict[str, Any]]:
        """Webhook events (hosts of earlier tests, known from their retained status, are filtered out by ``host``)."""
        found = [e for m in self.webhook for e in m["events"] if e["rule"] == rule and e["event"] == kind]
        return [e for e in found if host is None or e["host"] == host]


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    got = Receivers()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path.startswith("/bot") and self.path.endswith("/sendMessage"):
                got.telegram.append({"path": self.path, **body})
                answer = {"ok": True, "result": {"message_id": len(got.telegram)}}
            else:
                got.webhook.append(body)
                answer = {}
            data = json.dumps(answer).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *_args: object) -> None:
            pass

    class Mailbox:
        async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
            message = message_from_bytes(envelope.content)
            subject = str(make_header(decode_header(message["Subject"])))
            got.mails.append((subject, message.get_payload(decode=True).decode()))
            return "250 OK"

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    got.http_port = server.server_address[1]
    got.smtp_port = free_port()
    smtp = Controller(Mailbox(), hostname="127.0.0.1", port=got.smtp_port)
    smtp.start()
    yield got
    smtp.stop()
    server.shutdown()


def alerting_collector(stack: Stack, got: Receivers, **extra: dict[str, Any]) -> Collector:
    sections: dict[str, dict[str, Any]] = {
        "fleet": {"evaluate_interval_s": 0.5, "restart_grace_s": 0},
        "alerts": {"for_s": {"host_offline": 1}},  # agents here report every second
        "notify": {
            "group_wait_s": 1,
            "webhook_urls": [f"http://127.0.0.1:{got.http_port}/hook"],
            "smtp_host": "127.0.0.1",
            "smtp_port": got.smtp_port,
            "email_to": ["it@tuyenquang.example"],
            "telegram_api_url": f"http://127.0.0.1:{got.http_port}",
            "telegram_bot_token": "123:test-token",
            "telegram_chat_ids": ["-100200"],
        },
    }
    return stack.started_collector(**merged(sections, extra))


def firing(collector: Collector, rule: str) -> list[dict[str, Any]]:
    return [a for a in collector.get_json("/api/v1/alerts?state=firing") if a["rule"] == rule]


def test_agent_killed_with_sigkill_raises_host_offline_everywhere_and_resolves_on_return(
    stack: Stack, receivers: Receivers
) -> None:
    collector = alerting_collector(stack, receivers)
    agents = dict(zip(("pc-kill", "pc-stays"), stack.start_agents("02473", ("pc-kill", "pc-stays")), strict=True))
    collector.wait_hosts_online("02473", 2)

    agents["pc-kill"].kill()
    killed_at = time.monotonic()
    wait_until(lambda: receivers.events(HOST_OFFLINE, "firing", "pc-kill"), 30, "host_offline notification")
    print(f"time to alert (SIGKILL -> webhook): {time.monotonic() - killed_at:.1f} s")
    (event,) = receivers.events(HOST_OFFLINE, "firing", "pc-kill")
    assert event["commune"] == "02473" and event["severity"] == "critical"
    assert "pc-kill" in event["summary_vi"] and "Xã Yên Sơn" in event["summary_vi"]
    ours = {"pc-kill", "pc-stays"}
    assert [a["host"] for a in firing(collector, HOST_OFFLINE) if a["host"] in ours] == ["pc-kill"]
    wait_until(lambda: any("pc-kill" in body for _s, body in receivers.mails), 30, "e-mail")
    subject, body = next((s, b) for s, b in receivers.mails if "pc-kill" in b)
    assert "cảnh báo" in subject and "Máy pc-kill tại Xã Yên Sơn mất kết nối" in body
    wait_until(lambda: any("pc-kill" in m["text"] for m in receivers.telegram), 30, "telegram message")
    message = next(m for m in receivers.telegram if "pc-kill" in m["text"])
    assert message["path"] == "/bot123:test-token/sendMessage" and message["chat_id"] == "-100200"
    query = "SELECT last(online) FROM agent WHERE host = 'pc-kill'"
    wait_until(lambda: stack.query(query)[0]["last"] == 0, 30, "agent point online=0")
    alert_states = "SELECT state FROM alert WHERE host = 'pc-kill'"
    wait_until(lambda: "firing" in {row["state"] for row in stack.query(alert_states)}, 30, "firing point")
    assert "Traceback" not in collector.log()

    back = stack.agent(commune="02473", host="pc-kill")
    back.start()
    wait_until(lambda: receivers.events(HOST_OFFLINE, "resolved", "pc-kill"), 30, "resolved notification")
    assert [a for a in firing(collector, HOST_OFFLINE) if a["host"] in ours] == []
    assert receivers.events(HOST_OFFLINE, "firing", "pc-kill") == [event]  # nothing sent twice
    query = "SELECT last(state) FROM alert WHERE host = 'pc-kill'"
    wait_until(lambda: stack.query(query)[0]["last"] == "resolved", 30, "resolved alert point")


def test_a_commune_cut_off_raises_one_line_down_alert_not_one_per_pc(stack: Stack, receivers: Receivers) -> None:
    # host_offline waits 4 report intervals, as the default 90 s waits 3 of 30 s
    collector = alerting_collector(stack, receivers, alerts={"for_s": {"host_offline": 4}})
    agents = stack.start_agents("02536", (f"pc-cut-{i}" for i in range(3)))
    collector.wait_hosts_online("02536", 3)
    for agent in agents:  # a cut line is seen PC by PC, as each keepalive runs out
        agent.kill()
        time.sleep(1)
    # (retained status messages of earlier tests' agents may bring other communes along: look at 02536)
    wait_until(lambda: [e for e in receivers.events("line_down", "firing") if e["commune"] == "02536"], 30, "line down")
    time.sleep(2)  # anything else would have arrived by now
    (alert,) = [a for a in firing(collector, "line_down") if a["commune"] == "02536"]
    assert alert["host"] == "-" and alert["severity"] == "critical"
    assert [a for a in firing(collector, HOST_OFFLINE) if a["commune"] == "02536"] == []
    about_it = [m for m in receivers.webhook if any(e["commune"] == "02536" for e in m["events"])]
    assert len(about_it) == 1  # one message for the area, not one per PC
    assert [e["rule"] for e in about_it[0]["events"] if e["commune"] == "02536"] == ["line_down"]
    summary = collector.get_json("/api/v1/communes/02536")
    assert summary["line_state"] == "down" and summary["hosts_online"] == 0 and summary["hosts_total"] == 3
    query = "SELECT last(line_down), last(line_state_code) FROM commune WHERE commune = '02536'"
    wait_until(lambda: stack.query(query)[0]["last"] == 1, 30, "commune point")


def test_restarting_the_collector_raises_no_false_alert(own_stack: Stack, receivers: Receivers) -> None:
    # a broker of its own: earlier tests' retained "offline" in 02536 would make the line look down
    first = alerting_collector(own_stack, receivers, fleet={"restart_grace_s": 10})
    own_stack.start_agents("02536", ["pc-steady"])
    wait_until(lambda: any(h["host"] == "pc-steady" for h in first.get_json("/api/v1/hosts")), 30, "known")
    assert first.stop() == 0
    time.sleep(5)  # more than 3 report intervals without a collector
    second = alerting_collector(own_stack, receivers, fleet={"restart_grace_s": 10})
    wait_until(lambda: any(c["commune"] == "02536" and c["hosts_online"] >= 1
                           for c in second.get_json("/api/v1/communes")), 30, "online again")  # fmt: skip
    time.sleep(3)
    noise = [e for m in receivers.webhook for e in m["events"]
             if e["host"] == "pc-steady" or (e["commune"] == "02536" and e["rule"] == "line_down")]  # fmt: skip
    assert noise == []
    assert [a for a in second.get_json("/api/v1/alerts") if a["host"] == "pc-steady"] == []


def test_silences_and_acks_over_the_api_hold_a_firing_until_the_silence_is_deleted(
    own_stack: Stack, receivers: Receivers
) -> None:
    collector = alerting_collector(own_stack, receivers)
    hosts = ("pc-api-a", "pc-api-b", "pc-api-c")
    agents = dict(zip(hosts, own_stack.start_agents("02473", hosts), strict=True))
    collector.wait_hosts_online("02473", 3)

    silence = {"duration_s": 3600, "author": "Trần Thị B", "comment": "thay ổ cứng"}
    assert collector.post_json("/api/v1/silences", {**silence, "matchers": {"zone": "yen-son"}})[0] == 422
    assert collector.post_json("/api/v1/silences", {**silence, "matchers": {"rule": "host_ofline"}})[0] == 422
    status, created = collector.post_json("/api/v1/silences", {**silence, "matchers": {"host": "pc-api-b"}})
    assert status == 201 and created["matchers"] == {"host": "pc-api-b"}
    assert [s["id"] for s in collector.get_json("/api/v1/silences")] == [created["id"]]

    agents["pc-api-a"].kill()
    agents["pc-api-b"].kill()
    wait_until(lambda: receivers.events(HOST_OFFLINE, "firing", "pc-api-a"), 30, "pc-api-a told")
    wait_until(lambda: [a for a in firing(collector, HOST_OFFLINE) if a["host"] == "pc-api-b"], 30, "pc-api-b firing")
    time.sleep(2)  # two notification batches
    assert receivers.events(HOST_OFFLINE, "firing", "pc-api-b") == []

    assert collector.send_json("DELETE", f"/api/v1/silences/{created['id']}")[0] == 200
    assert collector.send_json("DELETE", f"/api/v1/silences/{created['id']}")[0] == 404
    assert collector.get_json("/api/v1/silences") == []
    wait_until(lambda: receivers.events(HOST_OFFLINE, "firing", "pc-api-b"), 30, "pc-api-b told after the silence")

    (alert,) = [a for a in firing(collector, HOST_OFFLINE) if a["host"] == "pc-api-a"]
    status, acked = collector.post_json(f"/api/v1/alerts/{alert['id']}/ack", {"by": "Trần Thị B", "comment": "đi sửa"})
    assert status == 200 and acked["acked_by"] == "Trần Thị B" and acked["id"] == alert["id"]
    assert collector.post_json("/api/v1/alerts/999999/ack", {"by": "Trần Thị B"})[0] == 404
    assert collector.post_json(f"/api/v1/alerts/{alert['id']}/ack", {"by": ""})[0] == 422
    back = own_stack.agent(commune="02473", host="pc-api-a")
    back.start()
    wait_until(lambda: receivers.events(HOST_OFFLINE, "resolved", "pc-api-a"), 30, "acked alert's end told")
    assert len(receivers.events(HOST_OFFLINE, "firing", "pc-api-a")) == 1
    assert len(receivers.events(HOST_OFFLINE, "firing", "pc-api-b")) == 1


def test_a_message_waiting_to_be_grouped_survives_a_collector_crash(
    own_stack: Stack, receivers: Receivers, tmp_path: Path
) -> None:
    collector = alerting_collector(own_stack, receivers, notify={"group_wait_s": 3600})
    agents = own_stack.start_agents("02473", ("pc-crash-a", "pc-crash-b"))
    collector.wait_hosts_online("02473", 2)
    agents[0].kill()
    wait_until(lambda: [a for a in firing(collector, HOST_OFFLINE) if a["host"] == "pc-crash-a" and a["told_firing"]],
               30, "firing handed to the notifier")  # fmt: skip
    collector.kill()  # while the message waits for its group
    assert receivers.events(HOST_OFFLINE, "firing", "pc-crash-a") == []

    alerting_collector(own_stack, receivers)
    wait_until(lambda: receivers.events(HOST_OFFLINE, "firing", "pc-crash-a"), 30, "message sent after the restart")
    state = sqlite3.connect(tmp_path / "state.sqlite")
    wait_until(lambda: state.execute("SELECT count(*) FROM outbox").fetchone()[0] == 0, 30, "outbox emptied")
    state.close()
    assert len(receivers.events(HOST_OFFLINE, "firing", "pc-crash-a")) == 1


def publish(port: int, commune: str, host: str, kind: str, body: dict[str, Any]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.publish(
        report_topic("08", commune, host, kind), encode({"v": 1, "ts": int(time.time()), **body}), qos=1
    ).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def test_degraded_pcs_and_unused_lines_are_listed_with_reasons(
    stack: Stack, receivers: Receivers, tmp_path: Path
) -> None:
    collector = alerting_collector(stack, receivers)
    lines = tmp_path / "lines.csv"
    lines.write_text("commune,isp,circuit_id,contracted_down_mbps,contracted_up_mbps,installed_on\n"
                     "00691,VNPT,L-00691,100,100,2025-09-01\n")  # fmt: skip
    assert collector.cli("registry", "import", str(lines)).returncode == 0
    publish(stack.broker.port, "02215", "pc-old", "inventory", {"inventory": {"ram_bytes": 2 * 2**30, "cpu_cores": 2}})
    publish(stack.broker.port, "02215", "pc-old", "metrics", {"system": {"cpu_percent": 5.0, "mem_used_percent": 40.0},
            "disk": [{"mount": "/", "used_percent": 96.0}], "agent": {"interval_s": 30}})  # fmt: skip

    def old() -> list[dict[str, Any]]:
        return [h for h in collector.get_json("/api/v1/degraded") if h["host"] == "pc-old"]

    # inventory and metrics are two messages; the fleet may evaluate between them
    wait_until(lambda: any("disk_full" in h["reasons"] for h in old()), 30, "degraded host with its metrics seen")
    (host,) = old()
    assert host["commune_name"] == "Phường Minh Xuân"
    assert host["reasons"] == ["disk_full", "old_hardware"]
    (unused,) = [u for u in collector.get_json("/api/v1/unused-lines") if u["commune"] == "00691"]
    assert unused["circuit_id"] == "L-00691" and unused["line_reasons"] == ["no_agent"]
    assert unused["days_unused"] > 300
    wait_until(lambda: receivers.events("line_unused", "firing"), 30, "line_unused notification")
    states = [c["line_state"] for c in collector.get_json("/api/v1/communes")]
    assert states == sorted(states, key=["down", "degraded", "unused", "unknown", "up"].index)  # problems first


# ---- the alert lifecycle on its own, with a real SQLite state file ----


def condition(host: str, commune: str = "02473") -> Condition:
    return Condition(HOST_OFFLINE, "08", "yen-son", commune, host, "critical", f"{host} vi", f"{host} en")


class Recorder:
    def __init__(self) -> None:
        self.points: list[Point] = []
        self.events: list[tuple[str, str]] = []

    def manager(self, path: Path, **settings: Any) -> AlertManager:
        return AlertManager(Store(path), AlertSettings(**settings), self.points.extend,
                            lambda events: self.events.extend((kind, a.host) for kind, a in events))  # fmt: skip


def test_lifecycle_for_duration_silence_ack_flapping_and_restart(tmp_path: Path) -> None:
    rec = Recorder()
    state = tmp_path / "state.sqlite"
    manager = rec.manager(state, for_s={"host_offline": 10}, flap_window_s=100, flap_threshold=2)
    manager.update([condition("pc-1")], 0)
    manager.update([condition("pc-1")], 5)
    assert rec.events == [] and manager.alerts("pending")[0].host == "pc-1"
    manager.update([condition("pc-1")], 10)
    assert rec.events == [("firing", "pc-1")]
    manager.update([], 20)
    assert rec.events[-1] == ("resolved", "pc-1")
    manager.update([condition("pc-1")], 30)  # back within the flap window: one flap, still told
    manager.update([], 40)
    manager.update([condition("pc-1")], 50)  # second flap: quiet from now on
    manager.update([], 60)
    assert rec.events == [("firing", "pc-1"), ("resolved", "pc-1"), ("firing", "pc-1"), ("resolved", "pc-1")]

    manager.add_silence({"commune": "02536"}, 0, 1000, "ops", "line works")
    manager.update([condition("pc-9", "02536"), condition("pc-2")], 200)
    manager.update([condition("pc-9", "02536"), condition("pc-2")], 210)
    assert ("firing", "pc-9") not in rec.events and ("firing", "pc-2") in rec.events
    assert {a.host for a in manager.alerts("firing")} == {"pc-9", "pc-2"}  # silenced is still known

    alert = next(a for a in manager.alerts("firing") if a.host == "pc-2")
    assert manager.ack(alert.id, "Nguyễn Văn A", "đang xử lý", 220) is not None
    restarted = rec.manager(state, for_s={"host_offline": 10})
    before = list(rec.events)
    restarted.update([condition("pc-9", "02536"), condition("pc-2")], 230)
    assert rec.events == before  # a restart does not send again
    restarted.update([condition("pc-9", "02536")], 240)
    assert rec.events == [*before, ("resolved", "pc-2")]
    restarted.update([condition("pc-9", "02536"), condition("pc-2")], 250)
    assert rec.events == [*before, ("resolved", "pc-2")]  # acknowledged: coming back right away is quiet
    assert {p.fields["state"] for p in rec.points} == {"pending", "firing", "resolved"}


def test_what_people_are_told_always_ends_with_the_truth(tmp_path: Path) -> None:
    """Holds, acks and flapping may delay or spare a message, never leave a wrong last word."""
    rec = Recorder()
    state = tmp_path / "state.sqlite"
    settings: dict[str, Any] = {"for_s": {"host_offline": 0}, "flap_window_s": 100, "flap_threshold": 2}
    manager = rec.manager(state, **settings)

    # held the whole time it flapped: nothing counted as a flap, told once the hold ends
    night = manager.add_silence({"host": "pc-night"}, 0, 1000, "ops", "night")
    for at in range(0, 620, 20):
        manager.update([condition("pc-night")] if at % 40 == 0 else [], at)
    manager.update([condition("pc-night")], 990)
    assert rec.events == []
    (held,) = [a for a in manager.alerts("firing") if a.host == "pc-night"]
    assert held.flaps == 0 and not held.told_firing
    manager.delete_silence(night.id)
    manager.update([condition("pc-night")], 1000)
    assert rec.events == [("firing", "pc-night")]
    assert [a.id for a in manager.alerts("firing") if a.host == "pc-night"] == [held.id]  # the same alert
    manager.update([], 1010)
    assert rec.events[-1] == ("resolved", "pc-night")

    # told, then silenced while being repaired: the repair is still told
    rec.events.clear()
    manager.update([condition("pc-fix")], 2000)
    manager.add_silence({"host": "pc-fix"}, 2005, 3000, "ops", "repairing")
    manager.update([], 2010)
    assert rec.events == [("firing", "pc-fix"), ("resolved", "pc-fix")]

    # acknowledged: back soon is quiet, and so is its next end
    rec.events.clear()
    manager.update([condition("pc-ack")], 3000)
    (acked,) = [a for a in manager.alerts("firing") if a.host == "pc-ack"]
    manager.ack(acked.id, "Trần Thị B", "đã biết", 3001)
    manager.update([], 3010)
    manager.update([condition("pc-ack")], 3020)
    manager.update([], 3030)
    assert rec.events == [("firing", "pc-ack"), ("resolved", "pc-ack")]
    manager.update([condition("pc-ack")], 3040)  # back, and this time for good: told after a flap window
    manager.update([condition("pc-ack")], 3139)
    assert rec.events == [("firing", "pc-ack"), ("resolved", "pc-ack")]
    manager.update([condition("pc-ack")], 3140)
    assert rec.events == [("firing", "pc-ack"), ("resolved", "pc-ack"), ("firing", "pc-ack")]
    manager.update([], 3150)  # its second return made it a flapping alert: its end waits a flap window
    manager.update([], 3249)
    assert rec.events[-1] == ("firing", "pc-ack")
    manager.update([], 3250)
    assert rec.events[-1] == ("resolved", "pc-ack")

    # flapping: after flap_threshold returns it is quiet; its firing is told once it stays up a flap
    # window, its end once it stays down one, even across a restart
    rec.events.clear()
    up, down = ("firing", "pc-flap"), ("resolved", "pc-flap")
    for at in (4000, 4020, 4040, 4060):
        manager.update([condition("pc-flap")], at)
        manager.update([], at + 10)
    assert rec.events == [up, down, up, down]
    for at in range(4080, 4200, 20):
        manager.update([condition("pc-flap")], at)
    assert rec.events == [up, down, up, down, up]
    manager.update([], 4200)
    manager.update([condition("pc-flap")], 4210)
    manager.update([], 4220)
    restarted = rec.manager(state, **settings)
    restarted.update([], 4300)
    assert rec.events == [up, down, up, down, up]
    restarted.update([], 4330)
    assert rec.events == [up, down, up, down, up, down]


def test_alerts_stored_by_an_older_version_load_and_end_as_told(tmp_path: Path) -> None:
    rec = Recorder()
    state = tmp_path / "state.sqlite"
    rec.manager(state, for_s={"host_offline": 0})  # creates the tables
    db = sqlite3.connect(state, isolation_level=None)
    old = {"id": 0, "rule": HOST_OFFLINE, "province": "08", "area": "yen-son", "commune": "02473", "host": "pc-old",
           "severity": "critical", "summary_vi": "v", "summary_en": "e", "state": "firing", "started_at": 10.0,
           "fired_at": 10.0, "resolved_at": 0.0, "flaps": 0, "acked_by": "", "acked_at": 0.0, "ack_comment": "",
           "a_field_from_elsewhere": 1}  # fmt: skip
    held = {**old, "host": "pc-held", "message_owed": True}  # fired inside a night window
    quiet = {**old, "host": "pc-quiet", "flaps": 3, "fired_at": 15.0}  # came back quietly, flapping
    with db:
        for row in (old, held, quiet):
            db.execute("INSERT INTO alerts (key, state, body) VALUES (?, 'firing', ?)",
                       (f"{HOST_OFFLINE}|08|02473|{row['host']}", json.dumps(row)))  # fmt: skip
    db.execute("PRAGMA user_version = 0")  # as every release before the store wrote it: migrated on the next open
    db.close()
    manager = rec.manager(state, for_s={"host_offline": 0}, flap_window_s=100, flap_threshold=3)
    manager.update([condition("pc-old"), condition("pc-held"), condition("pc-quiet")], 20)
    assert rec.events == [("firing", "pc-held")]  # pc-old's firing was sent by the older version
    manager.update([condition("pc-held"), condition("pc-quiet")], 30)
    assert rec.events == [("firing", "pc-held"), ("resolved", "pc-old")]
    manager.update([condition("pc-held"), condition("pc-quiet")], 115)  # flapping, up a flap window
    assert rec.events[2:] == [("firing", "pc-quiet")]
    (stored,) = [a for a in manager.alerts() if a.host == "pc-old"]
    assert stored.state == "resolved" and not stored.told_firing


def test_alerts_and_silences_long_over_are_forgotten(tmp_path: Path) -> None:
    rec = Recorder()
    manager = rec.manager(tmp_path / "state.sqlite", for_s={"host_offline": 0}, keep_resolved_days=1)
    manager.add_silence({"host": "pc-x"}, 0, 100, "ops", "")
    manager.update([condition("pc-gone"), condition("pc-open")], 0)
    manager.update([condition("pc-open")], 10)
    assert {a.host for a in manager.alerts()} == {"pc-gone", "pc-open"}
    manager.update([condition("pc-open")], 86400 + 9)  # pc-gone resolved 1 day ago, not more
    assert {a.host for a in manager.alerts()} == {"pc-gone", "pc-open"}
    assert manager.prune(86400 + 11) == 1
    assert [(a.host, a.state) for a in manager.alerts()] == [("pc-open", "firing")]
    assert len(manager.silences()) == 1  # ended at 100
    assert manager.prune(86400 + 101) == 0 and manager.silences() == []
    assert rec.events == [("firing", "pc-gone"), ("firing", "pc-open"), ("resolved", "pc-gone")]
