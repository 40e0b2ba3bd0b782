"""``make demo`` (``python -m devtools.demo``): the whole stack and a simulated province start,
the printed status page shows all of Tuyên Quang's communes, and Ctrl-C stops every process."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from realservices import REPO, http_get, wait_until

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
        demo = subprocess.Popen([sys.executable, "-m", "devtools.demo"], cwd=tmp_path, stdout=sink,
                                stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    try:
        wait_until(lambda: "Status page" in out.read_text(), 90, "the demo's banner")
        match = re.search(r"Status page +(http://127\.0\.0\.1:\d+/status)", out.read_text())
        assert match, out.read_text()

        def communes_shown() -> int:
            status, body = http_get(match[1])
            return len(re.findall(rb'data-commune="\d{5}"', body)) if status == 200 else 0

        wait_until(lambda: communes_shown() == 124, 60, f"124 communes on {match[1]}")
        simulate_log = (tmp_path / ".demo/simulate/simulate.log").read_text()
        assert '"communes": 124' in simulate_log and "Traceback" not in simulate_log
    finally:
        demo.send_signal(signal.SIGINT)
        try:
            code = demo.wait(timeout=90)
        except subprocess.TimeoutExpired:
            demo.kill()
            code = None
    assert code == 0, out.read_text()[-2000:]
    assert leftovers(tmp_path) == []
