"""``make demo`` (``python -m devtools.demo``): the whole stack and a simulated province start,
the printed status page shows all of Tuyên Quang's communes, the two real agents enrolled
themselves by area key and report under their own MQTT users, the broker refuses an anonymous
client and a PC publishing outside its own topics, the banner's own commands run as printed (one
more PC enrols by area key; once the history is backfilled, the monthly report is a PDF naming
the province's communes), and Ctrl-C stops every process. The history is 4 days here (the
demo's ``--days``; 35 by default) to keep the test short: the same path as ``make demo``'s."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import pytest
from realservices import REPO, http_get, wait_until
from test_enrollment import Client

from collector.registry.units import communes_of, display_name
from common.wire import report_topic

pytestmark = pytest.mark.services  # starts the whole demo stack


def leftovers(folder: Path) -> list[str]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(folder) in cmdline:
            found.append(cmdline)
    return found


def test_demo_starts_a_simulated_province_and_stops_everything(tmp_path: Path) -> None:
    out = tmp_path / "demo.out"
    with out.open("wb") as sink:
        demo = subprocess.Popen([sys.executable, "-m", "devtools.demo", "--days", "4"], cwd=tmp_path, stdout=sink,
                                stderr=subprocess.STDOUT, env=shell_env())  # fmt: skip
    try:
        wait_until(lambda: "Status page" in out.read_text(), 90, "the demo's banner")
        match = re.search(r"Status page +(http://127\.0\.0\.1:\d+/status)", out.read_text())
        assert match, out.read_text()

        def communes_shown() -> int:
            status, body = http_get(match[1])
            return len(re.findall(rb'data-commune="\d{5}"', body)) if status == 200 else 0

        wait_until(lambda: communes_shown() == 124, 60, f"124 communes on {match[1]}")
        simulate_log = tmp_path / ".demo/simulate/simulate.log"
        wait_until(lambda: '"communes": 124' in simulate_log.read_text(), 30, "the simulator's summary")
        assert "Traceback" not in simulate_log.read_text()
        enrolled_by_key(tmp_path / ".demo", out.read_text())
        banner_enrols_one_more_pc(tmp_path, out.read_text())
        banner_report_names_the_communes(tmp_path, out.read_text())
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=90)
        except subprocess.TimeoutExpired:
            demo.kill()
            code = None
    assert code == 0, out.read_text()[-2000:]
    assert leftovers(tmp_path) == []


def shell_env() -> dict[str, str]:
    """The environment a newcomer's shell has after ``make venv``: the console scripts on PATH."""
    scripts = str(Path(sys.executable).parent)
    return {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{scripts}:{os.environ.get('PATH', '')}"}


def run_as_printed(folder: Path, *commands: str) -> subprocess.CompletedProcess[str]:
    """Banner lines, pasted into bash as they are."""
    assert shutil.which("commune-collector", path=shell_env()["PATH"]), "console scripts missing"
    script = "set -e\n" + "\n".join(commands)
    return subprocess.run(["bash", "-c", script], cwd=folder, env=shell_env(), capture_output=True, text=True,
                          timeout=300, check=False)  # fmt: skip


def banner_enrols_one_more_pc(folder: Path, banner: str) -> None:
    """The banner's enrolment commands, copied by a newcomer once the simulated province is registered
    (it used to move 02473 out of area yen-son, so the key's area refused it: 403)."""
    key = re.search(r"^ +(KEY=\$\(commune-collector enroll-key add --area yen-son .*\))$", banner, re.M)
    enrol = re.search(r"^ +(commune-agent enroll --url \S+ --key \"\$KEY\" .* --commune 02473 .*)$", banner, re.M)
    assert key and enrol, banner
    done = run_as_printed(folder, key[1], enrol[1])
    assert done.returncode == 0, done.stderr
    out = re.search(r"--out (\S+)", enrol[1])
    assert out, enrol[1]
    mqtt = tomllib.loads((folder / out[1]).read_text())["mqtt"]
    assert mqtt["username"].startswith("08-02473-") and mqtt["password"]


def speed_test_now(api: str, token: str) -> None:
    """Test now from the desk on the demo: a real agent measures its line to the demo's collector
    (the demo points its agents' ``[speedtest] wan_url`` there) and the figure comes back."""
    base = f"{api}/api/v1/hosts/08/02473/pc-motcua-01/actions"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    request = urllib.request.Request(f"{base}/speedtest_now", data=b'{"mode": "wan"}', headers=headers)
    with urllib.request.urlopen(request, timeout=30) as answer:
        request_id = json.loads(answer.read())["id"]
    state: dict[str, Any] = {}

    def finished() -> bool:
        status, body = http_get(f"{base}/{request_id}", headers=headers)
        state.update(json.loads(body) if status == 200 else {})
        return state.get("state") not in (None, "pending", "accepted")

    wait_until(finished, 120, "the speed test asked from the desk")
    assert state["state"] == "done", state
    (result,) = state["result"]["speedtest"]
    assert result["mode"] == "wan" and result["ok"] == 1 and result["download_mbps"] > 1, state


def banner_report_names_the_communes(folder: Path, banner: str) -> None:
    """Once the backfill's log ends with its counts, the banner's report command writes the PDF, and
    it names the province's communes (it used to fail: the rollup timed out, then the windows the
    collector had summed before the history was there were kept empty)."""
    log = folder / ".demo" / "backfill" / "backfill.log"
    wait_until(lambda: '"points":' in log.read_text() or "failed" in log.read_text(), 600, "the backfill's counts")
    assert "failed" not in log.read_text() and "Traceback" not in log.read_text(), log.read_text()[-2000:]
    command = re.search(r"^ +(commune-collector report --month \d{4}-\d\d --format pdf --out (\S+) -c \S+)$",
                        banner, re.M)  # fmt: skip
    assert command, banner
    done = run_as_printed(folder, command[1])
    assert done.returncode == 0, done.stderr
    text = subprocess.run(["pdftotext", "-enc", "UTF-8", str(folder / command[2]), "-"], capture_output=True,
                          text=True, check=True).stdout  # fmt: skip
    words = " ".join(text.split())
    missing = [c.code for c in communes_of("08") if display_name(c.code) not in words]
    assert missing == [], missing


def enrolled_by_key(demo: Path, banner: str) -> None:
    """The demo's agents hold the users their keys got them, report under them, and the broker is closed."""
    assert "enroll-key add --area yen-son" in banner and "commune-agent enroll --url" in banner, banner
    token = re.search(r"Bearer (\S+)\"", banner)
    api = re.search(r"Collector API +(http://127\.0\.0\.1:\d+)/", banner)
    broker = re.search(r"MQTT broker +mqtt://127\.0\.0\.1:(\d+)", banner)
    assert token and api and broker, banner
    for commune, host in (("02473", "pc-motcua-01"), ("02536", "pc-ketoan-01")):
        config = demo / "agents" / host / "agent.toml"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        mqtt = tomllib.loads(config.read_text())["mqtt"]
        assert mqtt["username"] == f"08-{commune}-{host}" and mqtt["password"]

        def online(commune: str = commune, host: str = host) -> bool:
            status, body = http_get(
                f"{api[1]}/api/v1/communes/{commune}", headers={"Authorization": f"Bearer {token[1]}"}
            )
            return (
                status == 200
                and {"host": host, "online": True}.items()
                <= next((h for h in json.loads(body)["hosts"] if h["host"] == host), {}).items()
            )

        wait_until(online, 60, f"{host} online through its enrolled user")
    speed_test_now(api[1], token[1])
    anonymous = Client(int(broker[1]), None, None)
    assert anonymous.connack is not None and anonymous.connack.is_failure, anonymous.connack
    anonymous.close()
    mqtt = tomllib.loads((demo / "agents" / "pc-ketoan-01" / "agent.toml").read_text())["mqtt"]
    pc = Client(int(broker[1]), mqtt["username"], mqtt["password"])
    try:
        assert pc.connack is not None and not pc.connack.is_failure, pc.connack
        assert pc.publish(
            report_topic("08", "02473", "pc-motcua-01", "metrics"), b"{}"
        ).is_failure  # another PC's topic
    finally:
        pc.close()
