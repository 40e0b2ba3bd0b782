"""The agent runs on Python 3.8 and 3.9 (Ubuntu 20.04, Debian 11): its pure tests pass under them,
and a real agent run by each reports through the real broker and collector into InfluxDB.

The interpreters' venvs are ``.venv-py3.8`` and ``.venv-py3.9``, built by ``make old-pythons``
(which ``make test`` runs first) with only the agent's extra. The unit run is the old interpreter's
own pytest over every test module that imports the agent and not the collector, with the tier
plugin and ``-m "not services"``: the same pure tests as ``make test-fast``, without the conftest
(it needs the collector, so Python 3.11).
"""

from __future__ import annotations

import ast
import os
import subprocess
from pathlib import Path

import pytest
from realservices import wait_until
from stack import Stack

pytestmark = pytest.mark.services  # runs old interpreters

REPO = Path(__file__).resolve().parent.parent
TESTS = REPO / "tests"
OLD_PYTHONS = ("3.8", "3.9")


def old_python(version: str) -> Path:
    python = REPO / f".venv-py{version}" / "bin" / "python"
    assert python.exists(), f"{python} is missing: run `make old-pythons`"
    return python


def imported_roots(path: Path) -> set[str]:
    """Top-level names a module imports."""
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def helper_roots(path: Path, seen: frozenset[Path] = frozenset()) -> set[str]:
    """Top-level names imported by the helper modules of tests/ that a module imports, and by theirs."""
    roots: set[str] = set()
    for root in sorted(imported_roots(path)):
        helper = TESTS / f"{root}.py"
        if helper.exists() and helper not in seen:
            roots |= imported_roots(helper) | helper_roots(helper, seen | {path, helper})
    return roots


def agent_test_modules() -> list[Path]:
    """Test modules that import the agent (or the wire contract it shares) and nothing of the collector's."""
    chosen = []
    for path in sorted(TESTS.glob("test_*.py")):
        direct = imported_roots(path)
        needs_311 = direct & {"collector", "devtools", "bench"} or helper_roots(path) & {"collector", "tomllib"}
        if direct & {"agent", "common"} and not needs_311 and "tomllib" not in direct:
            chosen.append(path)
    return chosen


def test_the_old_python_unit_run_covers_the_agents_test_modules() -> None:
    names = {path.name for path in agent_test_modules()}
    assert {"test_agent_config.py", "test_probes.py", "test_spool.py", "test_system_collector.py"} <= names
    assert "test_fleet_rules.py" not in names and "test_old_pythons.py" not in names


@pytest.mark.parametrize("version", OLD_PYTHONS)
def test_the_agents_pure_tests_pass_under_an_old_python(version: str) -> None:
    argv = [str(old_python(version)), "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider"]
    argv += ["-p", "tiers", "-p", "psutil_fixtures", "-m", "not services"]
    argv += [str(path) for path in agent_test_modules()]
    env = {**os.environ, "PYTHONPATH": f"{TESTS}{os.pathsep}{REPO}"}
    done = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, f"Python {version}:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}"
    summary = done.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary
    assert int(summary.split(" passed")[0].split()[-1]) >= 100, summary


@pytest.mark.parametrize("version", OLD_PYTHONS)
def test_an_agent_on_an_old_python_reports_into_influxdb(version: str, stack: Stack) -> None:
    stack.started_collector()
    host = f"pc-py{version.replace('.', '')}"
    loopback = {"name": "loopback", "method": "ping", "address": "127.0.0.1", "scope": "wan"}
    agent = stack.agent(
        host=host, python=str(old_python(version)), probe={"interval_s": 1, "ping_count": 1, "targets": [loopback]}
    )
    agent.start()
    assert agent.proc is not None
    exe = os.path.realpath(f"/proc/{agent.proc.pid}/exe")
    assert Path(exe).name.startswith(f"python{version}"), exe
    where = f"WHERE host='{host}'"

    def stored(measurement: str, field: str) -> bool:
        return bool(stack.query(f'SELECT last("{field}") FROM "{measurement}" {where}'))

    for measurement, field in (("system", "mem_total_bytes"), ("inventory", "agent_version"), ("probe", "ok")):
        what = f"{measurement} from Python {version}"
        wait_until(lambda m=measurement, f=field: stored(m, f), 30, f"{what}\n{agent.log()}")
    probe = stack.query(f"SELECT last(ok) FROM probe {where} AND target='loopback'")
    assert probe[0]["last"] == 1.0
    assert "Traceback" not in agent.log()
