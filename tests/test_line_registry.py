"""The line registry: CSV import of lines and areas into a running collector (all or nothing, with
line numbers on errors), the lines API, area tags following the registry, and speed tests
enriched with the contracted speed."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from realservices import REPO, Agent, Collector, Influxd, wait_until

EXAMPLES = REPO / "config"


def registry_cli(collector: Collector, *args: str) -> subprocess.CompletedProcess[str]:
    return collector.cli("registry", *args)


def test_lines_import_into_a_running_collector_and_show_in_the_api(make_collector: Callable[..., Collector]) -> None:
    collector = make_collector()
    collector.start()
    done = registry_cli(collector, "import", str(EXAMPLES / "lines.example.csv"))
    assert done.returncode == 0, done.stderr
    assert "5 lines" in done.stdout

    lines = collector.get_json("/api/v1/lines")
    assert [line["commune"] for line in lines] == ["00691", "00721", "02215", "02473", "02536"]
    yen_son = collector.get_json("/api/v1/lines?commune=02473")
    assert yen_son == [
        {
            "circuit_id": "TQG-FTTH-02473-01",
            "province": "08",
            "commune": "02473",
            "commune_name": "Xã Yên Sơn",
            "area": "unassigned",
            "isp": "VNPT",
            "contracted_down_mbps": 100.0,
            "contracted_up_mbps": 100.0,
            "install_date": "2025-08-15",
        }
    ]
    again = registry_cli(collector, "import", str(EXAMPLES / "lines.example.csv"))
    assert again.returncode == 0 and len(collector.get_json("/api/v1/lines")) == 5  # idempotent by circuit id


def test_a_bad_csv_imports_nothing_and_names_every_bad_row(
    make_collector: Callable[..., Collector], tmp_path: Path
) -> None:
    collector = make_collector()
    collector.start()
    bad = tmp_path / "lines.csv"
    bad.write_text(
        "commune,isp,circuit_id,contracted_down_mbps,contracted_up_mbps,installed_on\n"
        "02473,VNPT,C-1,100,100,2025-08-15\n"
        "99999,VNPT,C-2,100,100,\n"
        "02536,Viettel,C-1,fast,-5,15/08/2025\n"
    )
    done = registry_cli(collector, "import", str(bad))
    assert done.returncode == 2
    for expected in ("line 3: commune '99999'", "line 4: circuit_id 'C-1' already on line 2",
                     "line 4: contracted_down_mbps = 'fast'", "line 4: contracted_up_mbps = '-5'",
                     "line 4: installed_on '15/08/2025'"):  # fmt: skip
        assert expected in done.stderr, done.stderr
    assert collector.get_json("/api/v1/lines") == []
    missing = tmp_path / "short.csv"
    missing.write_text("commune,isp\n02473,VNPT\n")
    done = registry_cli(collector, "import", str(missing))
    assert done.returncode == 2 and "missing column(s) circuit_id" in done.stderr


def test_areas_imported_while_running_tag_the_next_points_and_speed_tests_carry_the_contract(
    make_collector: Callable[..., Collector], make_agent: Callable[..., Agent], influxd: Influxd, database: str
) -> None:
    collector = make_collector(speedtest={"endpoint_rate_mbps": 20})
    collector.start()
    assert registry_cli(collector, "import", str(EXAMPLES / "lines.example.csv")).returncode == 0
    agent = make_agent(
        commune="02473",
        host="pc-registry",
        identity={"role": "line-probe"},
        speedtest={"modes": ["wan"], "wan_url": collector.url, "check_interval_s": 1, "download_sides": [350, 500],
                   "download_count": 2, "upload_sizes": 3, "upload_count": 4, "threads": 2},
    )  # fmt: skip
    agent.start()

    def area_tags() -> set[str]:
        rows = influxd.query("SHOW TAG VALUES FROM system WITH KEY = area WHERE host = 'pc-registry'", database)
        return {str(row["value"]) for row in rows}

    wait_until(lambda: area_tags() == {"unassigned"}, 30, "first points")
    done = registry_cli(collector, "import-areas", str(EXAMPLES / "areas.example.csv"))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: "yen-son" in area_tags(), 30, "area from the registry on new points")
    communes = {c["code"]: c for c in collector.get_json("/api/v1/areas")}
    assert communes["yen-son"] == {"code": "yen-son", "name": "Khu vực Yên Sơn", "communes": ["02473"]}

    assert collector.post_json("/api/v1/hosts/08/02473/pc-registry/speedtest", {"mode": "wan"})[0] == 202
    query = "SELECT * FROM speedtest WHERE host = 'pc-registry'"
    wait_until(lambda: influxd.query(query, database), 60, f"speed test\n{agent.log()}")
    (row,) = influxd.query(query, database)
    assert row.get("skipped") is None and row.get("download_mbps") is not None, row  # the test ran and measured
    assert row["contracted_down_mbps"] == 100 and row["contracted_up_mbps"] == 100 and row["area"] == "yen-son"
    assert 8 < float(row["download_percent_of_contract"]) < 24, row  # a 20 Mb/s line on a 100 Mb/s contract
    assert abs(float(row["download_percent_of_contract"]) - float(row["download_mbps"])) < 0.01
