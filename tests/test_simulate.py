"""``commune-sim``: Tuyên Quang's 124 communes of virtual agents over a real broker,
into a real collector and InfluxDB, with every injected fault seen by the fleet state."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from realservices import REPO, Collector, Influxd, Mosquitto, Process, wait_until

from collector.registry.units import display_name
from devtools.simulate import make_plan


def test_the_plan_covers_every_commune_of_the_province_with_each_fault() -> None:
    plan = make_plan("08", 2, seed=1)
    assert len(plan.lines) == 124 and len({h.commune for h in plan.hosts}) == 124 - len(plan.faults["no_agent"])
    assert all(plan.faults[name] for name in plan.faults), plan.faults
    assert sum(len(communes) for _name, communes in plan.areas.values()) == 124
    assert make_plan("08", 2, seed=1).faults == plan.faults  # a seed gives the same province again
    assert len(plan.equipment) == 3 * len({h.commune for h in plan.hosts})  # a scanner and two tokens each
    line_faults = {c for name in ("dead_line", "no_agent", "other_uplink", "lossy_line") for c in plan.faults[name]}
    assert not line_faults & set(plan.faults["token_unused"] + plan.faults["scanner_missing"])
    assert not line_faults & set(plan.faults["token_plugged_idle"])
    never_opened = {d for h in plan.hosts for d in h.never_opened}  # the variant: plugged in, never opened
    assert never_opened == {f"sim-token-SIM{c}T2" for c in plan.faults["token_plugged_idle"]}
    assert never_opened <= {d["device"] for h in plan.hosts for d in h.devices}
    with pytest.raises(ValueError, match="no communes"):
        make_plan("99", 2, seed=1)
    healthy = make_plan("08", 1, seed=1, fault_share=0)
    assert not any(healthy.faults.values()) and len(healthy.hosts) == 124
    with pytest.raises(ValueError, match=r"outside 0\.\.0\.25"):
        make_plan("08", 2, seed=1, fault_share=0.3)


def test_the_simulated_areas_agree_with_the_example_areas_and_have_real_names() -> None:
    """The demo imports config/areas.example.csv, then the simulator registers its plan: a commune of
    the examples stays in its example area (so an area key printed by the demo still covers it),
    and every area is named after a real place, as the status page shows it."""
    examples = list(csv.DictReader((REPO / "config" / "areas.example.csv").open(encoding="utf-8")))
    plan = make_plan("08", 2, seed=1)
    area_of = {c: code for code, (_name, communes) in plan.areas.items() for c in communes}
    for row in examples:
        assert area_of[row["commune"]] == row["area_code"], row
        assert plan.areas[row["area_code"]][0] == row["area_name"], row
    places = [display_name(c).split(" ", 1)[1] for c in area_of] + ["TP Tuyên Quang"]  # "Xã Yên Sơn" -> "Yên Sơn"
    for code, (name, communes) in plan.areas.items():
        assert communes and re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", code), code
        place = name.removeprefix("Khu vực ")
        assert name != place and any(p == place or p.startswith(f"{place} ") for p in places), name  # Hà Giang 1
    other = make_plan("04", 1, seed=1)  # any province: areas named after one of their communes
    names = {display_name(line.commune).split(" ", 1)[1] for line in other.lines}
    assert len(other.areas) > 1 and all(name.removeprefix("Khu vực ") in names for name, _ in other.areas.values())


@pytest.mark.services  # runs the console scripts
def test_commune_sim_is_a_program_of_its_own_and_says_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    config = tmp_path / "collector.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "state.sqlite"}"\n[influxdb]\nraw_retention = "30d"\n')
    sim = str(Path(sys.executable).parent / "commune-sim")
    for args, message in (
        (["--interval", "0"], "commune-sim: --interval must be more than 0 seconds, not 0.0"),
        (["--communes", "99999"], "commune-sim: commune(s) 99999 are not in province 08"),
        (["--backfill-days", "35"], "commune-sim: --backfill-days 35 is more than [influxdb] raw_retention 30d"),
    ):
        done = subprocess.run([sim, "-c", str(config), *args], capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 2 and done.stderr.splitlines()[-1].startswith(message), done.stderr
        assert "Traceback" not in done.stderr
    assert not (tmp_path / "state.sqlite").exists()  # nothing half-done: no registry written
    gone = subprocess.run([sys.executable, "-m", "collector.cli", "simulate", "-c", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert gone.returncode == 2 and "invalid choice: 'simulate'" in gone.stderr


def test_a_simulated_province_shows_every_fault_in_the_fleet_state(
    make_collector: Callable[..., Collector], own_broker: Mosquitto, influxd: Influxd, database: str, tmp_path: Path
) -> None:
    always_open = {"office_hours": ["00:00-24:00"], "workdays": [1, 2, 3, 4, 5, 6, 7]}  # no quiet time: no excuse
    fleet = {"restart_grace_s": 0, "evaluate_interval_s": 1, "disk_slow_minutes": 0}  # a slow disk at once
    collector = make_collector(mqtt={"port": own_broker.port}, fleet=fleet, report=always_open)
    collector.start()
    plan_file = tmp_path / "plan.json"
    simulator = Process(
        [sys.executable, "-m", "devtools.simulate.cli", "-c", str(collector.config_path), "--interval", "2",
         "--fault-after", "8", "--outage", "12", "--duration", "300", "--plan-out", str(plan_file),
         "--processes", "2"],
        tmp_path, "simulate",
    )  # fmt: skip
    simulator.start()
    try:
        wait_until(plan_file.exists, 30, "plan written")
        faults: dict[str, list[str]] = json.loads(plan_file.read_text())["faults"]

        def communes() -> dict[str, dict[str, Any]]:
            return {c["commune"]: c for c in collector.get_json("/api/v1/communes")}

        wait_until(lambda: len(communes()) == 124, 60, "all 124 communes known")

        def state_of(fault: str) -> set[str]:
            now = communes()
            return {now[c]["line_state"] for c in faults[fault]}

        def host_faults_seen() -> bool:
            hosts = {f"{h['province']}/{h['commune']}/{h['host']}": h for h in collector.get_json("/api/v1/hosts")}
            degraded = {
                f"{h['province']}/{h['commune']}/{h['host']}": h for h in collector.get_json("/api/v1/degraded")
            }
            return (
                all(hosts[h]["status"] == "offline" for h in faults["goes_offline"])
                and all("disk_full" in degraded.get(h, {}).get("reasons", []) for h in faults["disk_filling"])
                and all("old_hardware" in degraded.get(h, {}).get("reasons", []) for h in faults["old_hardware"])
                and all("disk_failing" in degraded.get(h, {}).get("reasons", []) for h in faults["disk_failing"])
                and all("disk_slow" in degraded.get(h, {}).get("reasons", []) for h in faults["disk_slow"])
            )

        wait_until(
            lambda: state_of("dead_line") == {"down"} and state_of("no_agent") == {"unused"}
            and state_of("other_uplink") == {"unused"} and state_of("lossy_line") == {"degraded"},
            90, "line faults seen",
        )  # fmt: skip
        wait_until(host_faults_seen, 90, "host faults seen")

        def decided(cause: str) -> dict[str, dict[str, Any]]:
            found = collector.get_json(f"/api/v1/outages?cause={cause}")
            return {o["commune"]: o for o in found if o["state"] == "decided"}

        # power cuts and office closings are over after 12 s: the PCs are back and the verdicts in
        wait_until(lambda: set(decided("power")) == set(faults["power_cut"])
                   and set(decided("office_closed")) == set(faults["office_closed"]), 90, "outages judged")  # fmt: skip
        for outage in decided("power").values():  # every PC booted again after the outage began
            assert outage["confidence"] == 1.0 and all(h["boot_after"] > outage["start"] for h in outage["hosts"])
            assert all(
                h["reasons"] == ["no_report_during_outage", "booted_after_outage_start"] for h in outage["hosts"]
            )
        for outage in decided("office_closed").values():  # shut down cleanly, in office hours
            assert outage["reasons"] == ["every_host_agrees"] and {h["offline_reason"] for h in outage["hosts"]} == {
                "stop"
            }
        assert not decided("line") and not decided(
            "unknown"
        )  # a dead line is still dark: nothing to judge yet  # a dead line is still dark

        def idle() -> dict[str, set[str]]:
            """Commune -> kinds with equipment unused or never seen, by the API."""
            out: dict[str, set[str]] = {}
            for item in collector.get_json("/api/v1/equipment"):
                if item["state"] in ("unused", "never_seen"):
                    out.setdefault(item["commune"], set()).add(item["kind"])
            return out

        expected_idle = {**{c: {"token"} for c in faults["token_unused"]},
                         **{c: {"scanner"} for c in faults["scanner_missing"]}}  # fmt: skip
        wait_until(lambda: idle() == expected_idle, 60, f"equipment faults seen: {expected_idle}")
        equipment = collector.get_json("/api/v1/equipment")
        in_use = [i for i in equipment if i["state"] == "in_use"]
        assert len(in_use) == len(equipment) - len(faults["token_unused"]) - len(faults["scanner_missing"])
        assert not [i for i in equipment if i["state"] == "unregistered"]
        # tokens are watched through PC/SC: those opened are in use by observed use; one plugged in and
        # never opened is judged by presence until the watch has covered the whole window (14 days)
        idle_tokens = {f"SIM{c}T2" for c in faults["token_plugged_idle"]}
        rules = {i["serial"]: i["rule"] for i in in_use if i["kind"] == "token"}
        assert idle_tokens and {rules[t] for t in idle_tokens} == {"presence"}
        assert {r for t, r in rules.items() if t not in idle_tokens} == {"pcsc"}
        unused_alerts = {a["commune"]: a["host"] for a in collector.get_json("/api/v1/alerts?state=firing")
                         if a["rule"] == "equipment_unused"}  # fmt: skip
        assert unused_alerts == {c: f"equipment:{next(iter(k))}" for c, k in expected_idle.items()}
        touched = {item.split("/")[-2] if "/" in item else item for items in faults.values() for item in items}
        healthy = [c for c in communes().values() if c["commune"] not in touched]
        assert healthy and all(c["line_state"] == "up" for c in healthy), [
            c for c in healthy if c["line_state"] != "up"
        ]
        points = influxd.query('SELECT count("temp_c") FROM "sensors"', database)
        assert points and points[0]["count"] > 100
        speed = influxd.query(
            'SELECT count("download_mbps"), mean("download_percent_of_contract") FROM "speedtest"', database
        )
        assert speed and speed[0]["count"] >= 100 and 60 < speed[0]["mean"] < 100
    finally:
        simulator.stop()
    assert "Traceback" not in simulator.log()
    result = json.loads(next(line for line in simulator.log().splitlines() if line.startswith('{"cycles"')))
    assert result["processes"] == 2 and result["hosts"] == len(json.loads(plan_file.read_text())["hosts_detail"])
    # every virtual PC is acknowledged like a real agent: at most its last round is still waiting
    assert result["acks_received"] >= result["hosts"] > 0
    assert result["reports_unacknowledged"] <= 3 * result["hosts"], result
