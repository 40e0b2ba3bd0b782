"""Issued equipment end to end, through the real broker, collector and InfluxDB: a token plugged in
(and unplugged again, as tokens are used) is in_use; one never plugged in is never_seen, raises one
equipment_unused alert and one message, and is in the API and the ``equipment`` points; what was
seen survives a collector restart. Peripherals reports are published with a real MQTT client, as an
agent does; days are simulated with issue dates in the past."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from realservices import Collector, http_get, wait_until
from stack import Stack
from test_fleet_alerts import Receivers, alerting_collector, receivers  # noqa: F401  (receivers: a fixture)

from common.wire import report_topic

COMMUNE = "02473"  # Xã Yên Sơn
ISSUED_ON = (dt.date.today() - dt.timedelta(days=60)).isoformat()


def publish(port: int, host: str, ts: float, items: list[dict[str, Any]]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"agent-{host}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    payload = json.dumps({"v": 1, "ts": int(ts), "peripherals": items}).encode()
    client.publish(report_topic("08", COMMUNE, host, "peripherals"), payload, qos=1).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def token(serial: str, present: float, last_seen: float) -> dict[str, Any]:
    return {"device": f"096e-0807-{serial}", "kind": "token", "vendor_id": "096e", "product_id": "0807",
            "serial": serial, "product": "ePass2003", "model": "Feitian ePass2003", "present": present,
            "minutes_today": 42.0, "first_seen_today": last_seen - 2520, "last_seen_today": last_seen}  # fmt: skip


def states(collector: Collector) -> dict[str, str]:
    return {item["serial"]: item["state"] for item in collector.get_json(f"/api/v1/equipment?commune={COMMUNE}")}


def test_a_token_used_daily_is_in_use_and_one_never_plugged_in_raises_one_equipment_unused_alert(
    own_stack: Stack,
    receivers: Receivers,  # noqa: F811
    tmp_path: Path,
) -> None:
    equipment = tmp_path / "equipment.csv"
    equipment.write_text(
        "commune,kind,model,serial,holder,issued_on\n"
        f"{COMMUNE},token,Feitian ePass2003,TOKDAILY,Chủ tịch UBND xã,{ISSUED_ON}\n"
        f"{COMMUNE},token,Feitian ePass2003,TOKNEVER,Phó Chủ tịch UBND xã,{ISSUED_ON}\n",
        encoding="utf-8",
    )
    collector = alerting_collector(own_stack, receivers)
    done = collector.cli("registry", "import-equipment", str(equipment))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: states(collector) == {"TOKDAILY": "never_seen", "TOKNEVER": "never_seen"}, 30, "registry")

    now = time.time()
    publish(own_stack.broker.port, "pc-01", now - 60, [token("TOKDAILY", 1.0, now - 60)])  # plugged in to sign
    publish(own_stack.broker.port, "pc-01", now, [token("TOKDAILY", 0.0, now - 30)])  # and taken out again: normal use
    wait_until(lambda: states(collector) == {"TOKDAILY": "in_use", "TOKNEVER": "never_seen"}, 30, "token seen")
    (never,) = collector.get_json(f"/api/v1/equipment?commune={COMMUNE}&state=never_seen")
    assert never["holder"] == "Phó Chủ tịch UBND xã" and never["device"] == "" and 59 <= never["days"] <= 61
    (used,) = collector.get_json("/api/v1/equipment?state=in_use")
    assert used["device"] == "096e-0807-TOKDAILY" and used["days"] < 1

    wait_until(lambda: receivers.events("equipment_unused", "firing"), 30, "the equipment_unused message")
    time.sleep(3)  # a second alert or message would have come by now
    alerts = [a for a in collector.get_json("/api/v1/alerts?state=firing") if a["rule"] == "equipment_unused"]
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert["commune"] == COMMUNE and alert["severity"] == "info" and alert["host"] == "equipment:token"
    assert alert["summary_vi"] == "Xã Yên Sơn: 1 chữ ký số được cấp chưa được sử dụng 14 ngày"
    messages = [m for m in receivers.webhook if any(e["rule"] == "equipment_unused" for e in m["events"])]
    assert len(messages) == 1 and len(receivers.events("equipment_unused", "firing")) == 1
    summary = collector.get_json(f"/api/v1/communes/{COMMUNE}")
    assert {item["serial"]: item["state"] for item in summary["equipment"]} == states(collector)

    status, page = http_get(f"{collector.url}/status")
    assert status == 200
    commune_row = re.search(rf'<tr data-commune="{COMMUNE}" data-level="(\w+)">(.*?)</tr>', page.decode(), re.S)
    assert commune_row is not None and commune_row.group(1) == "amber"  # idle equipment needs attention
    assert '<td class="equipment">2 / 1 / 1</td>' in commune_row.group(2)  # issued / in use / unused

    point = "SELECT last(issued) AS issued, last(seen) AS seen, last(unused) AS unused, last(never_seen) AS never, " \
            f"last(idle_items_vi) AS idle FROM equipment WHERE commune = '{COMMUNE}' AND kind = 'token'"  # fmt: skip
    wait_until(lambda: own_stack.query(point), 30, "equipment point")
    (row,) = own_stack.query(point)
    assert (row["issued"], row["seen"], row["unused"], row["never"]) == (2.0, 1.0, 1.0, 1.0)
    assert row["idle"].startswith("Phó Chủ tịch UBND xã (Feitian ePass2003): Chưa từng kết nối, ")
    stored = own_stack.query("SELECT present FROM peripheral WHERE device = '096e-0807-TOKDAILY'")
    assert [r["present"] for r in stored] == [1.0, 0.0]

    assert collector.stop() == 0  # what was seen is kept in the state file
    again = alerting_collector(own_stack, receivers)
    wait_until(lambda: states(again) == {"TOKDAILY": "in_use", "TOKNEVER": "never_seen"}, 30, "after restart")
    time.sleep(2)
    assert len(receivers.events("equipment_unused", "firing")) == 1  # the open alert was not raised again
