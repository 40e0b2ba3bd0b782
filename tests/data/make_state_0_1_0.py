"""Writes tests/data/state-0.1.0.sqlite: a state file populated by release 0.1.0's own code (commit ef31661).

Run it with that release checked out, not with this tree ($TREE) (its modules have moved on since):

    git worktree add /tmp/release-0.1.0 ef31661
    cd /tmp/release-0.1.0 && $TREE/.venv/bin/python $TREE/tests/data/make_state_0_1_0.py state-0.1.0.sqlite

Every table gets rows through the release's objects (registry, fleet, alert manager, notifier outbox,
token store, enrolment), never by hand, and the file is kept as it is: it is what that release leaves on
disk. (It is kept as the SQLite file, not as a text dump: a dump repeats collector/store.py's version-1
schema line by line, and the file is the thing the store must adopt.)
"""

from __future__ import annotations

import shutil
import sqlite3
import sys
import tempfile
from pathlib import Path

from collector.alerting.conditions import HOST_OFFLINE, LINE_DOWN, Condition
from collector.alerting.lifecycle import AlertManager, Event
from collector.alerting.notify import Notifier
from collector.config import AlertSettings, CollectorConfig, FleetSettings, IngestSettings, NotifySettings
from collector.fleet.state import FleetState
from collector.http.auth import TokenStore
from collector.ingest.checks import Ingestor
from collector.registry.enroll import Enroller
from collector.registry.registry import HostKey, Line, Registry, open_database
from collector.selfmetrics import SelfMetrics
from common.wire import encode, report_topic

T0 = 1_790_000_000.0  # 2026-09-21, a fixed clock so the rows are the same on every run


def populate(path: Path, work: Path) -> None:
    db = open_database(path)
    registry = Registry(db, "unassigned")
    registry.set_area("yen-son", "Yên Sơn", ["02473", "02536"])
    registry.set_area("minh-xuan", "Minh Xuân", ["02215"])
    registry.upsert_lines([
        Line("VNPT-02473-01", "08", "02473", "VNPT", 100.0, 100.0, "2025-08-15"),
        Line("VT-02536-01", "08", "02536", "Viettel", 80.0, 40.0, ""),
    ])  # fmt: skip
    ingestor = Ingestor(registry, SelfMetrics(), IngestSettings(max_clock_skew_s=10**9))
    fleet = FleetState(registry, FleetSettings(), started_at=T0 - 3600)
    ingestor.observers.append(fleet.observe)
    for host, commune in (("pc-01", "02473"), ("pc-02", "02473"), ("pc-03", "02536")):

        def send(kind: str, ts: float, body: dict[str, object], host: str = host, commune: str = commune) -> None:
            ingestor.handle(report_topic("08", commune, host, kind), encode({"v": 1, "ts": int(ts), **body}), ts)

        send("inventory", T0 - 30, {"inventory": {"ram_bytes": 4 * 2**30, "cpu_cores": 4, "agent_version": "0.1.0"}})
        for step in range(4):
            boot = T0 - 86400 if step < 3 else T0 + 50  # rebooted before the last report
            send("metrics", T0 + step * 30, {"system": {"cpu_percent": 12.5, "mem_used_percent": 40.0,
                 "boot_time": boot}, "disk": [{"mount": "/", "used_percent": 55.0 + step}],
                 "net": [{"nic": "eth0", "rx_bytes_per_s": 2000.0, "tx_bytes_per_s": 500.0, "default_route": 1}],
                 "sensors": [{"sensor": "cpu", "temp_c": 61.0, "temp_high_c": 90.0}],
                 "agent": {"interval_s": 30}})  # fmt: skip
        send("probe", T0 + 95, {"probe": [{"target": "gw", "scope": "gateway", "method": "ping", "ok": 1,
             "loss_percent": 0.0, "rtt_avg_ms": 1.5}, {"target": "wan", "scope": "wan", "method": "ping", "ok": 1,
             "loss_percent": 10.0, "rtt_avg_ms": 35.0}]})  # fmt: skip
        send("speedtest", T0 + 100, {"speedtest": [{"mode": "wan", "ok": 1, "download_mbps": 72.0,
             "upload_mbps": 30.0}]})  # fmt: skip
        send("status", T0 + 110, {"state": "online"})
    registry.touch(HostKey("08", "02215", "pc-old"), T0 - 7200, status="offline")
    registry.flush()
    fleet.save()

    events: list[Event] = []
    notifier = Notifier(NotifySettings(), registry, SelfMetrics())  # never started: submitted rows stay queued
    settings = AlertSettings(for_s={HOST_OFFLINE: 0, LINE_DOWN: 60}, flap_window_s=100, flap_threshold=3)

    def tell(new: list[Event]) -> None:
        events.extend(new)
        notifier.submit(new)

    manager = AlertManager(registry, settings, lambda _points: None, tell)

    def offline(host: str, commune: str = "02473") -> Condition:
        return Condition(HOST_OFFLINE, "08", "yen-son", commune, host, "critical", f"Máy {host} mất kết nối",
                         f"{host} is offline")  # fmt: skip

    down = Condition(LINE_DOWN, "08", "yen-son", "02536", "", "critical", "Đường truyền mất kết nối", "Line down")
    manager.update([offline("pc-01"), down], T0)  # pc-01 fires at once, the line is pending
    manager.update([offline("pc-01"), offline("pc-02"), down], T0 + 10)
    (acked,) = [a for a in manager.alerts("firing") if a.host == "pc-02"]
    manager.ack(acked.id, "Nguyễn Văn A", "đang xử lý", T0 + 20)
    manager.update([offline("pc-02"), down], T0 + 30)  # pc-01 resolved
    manager.add_silence({"commune": "02536"}, T0, T0 + 86400, "ops", "thay cáp quang")
    manager.add_silence({"host": "pc-03", "rule": HOST_OFFLINE}, T0 - 86400, T0 - 3600, "ops", "đã hết hạn")

    tokens = TokenStore(db, [], registry.lock)
    tokens.add("grafana-viewer", "viewer")
    tokens.add("ops-admin", "admin")

    config = CollectorConfig.model_validate({"enroll": {"password_file": str(work / "passwd"),
                                                        "acl_file": str(work / "acl")}})  # fmt: skip
    enroller = Enroller(db, config, registry.lock)
    enroller.enroll("08", "02473", "pc-01")
    enroller.enroll("8", "2536", "pc-03")
    db.close()
    print(f"{len(events)} notifications queued in the outbox", file=sys.stderr)


def main() -> int:
    out = Path(sys.argv[1])
    with tempfile.TemporaryDirectory() as folder:
        state = Path(folder) / "state.sqlite"
        populate(state, Path(folder))
        with sqlite3.connect(state) as db:
            assert db.execute("PRAGMA user_version").fetchone()[0] == 0  # 0.1.0 knew no schema versions
            db.execute("VACUUM")  # one file, no journal or free pages left over
        out.unlink(missing_ok=True)
        shutil.copyfile(state, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
