"""The service units and the agent installer: the installer builds a venv holding only the agent
(no server packages), the installed agent runs, and systemd accepts both hardened units."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from realservices import REPO

pytestmark = pytest.mark.services  # builds a venv, runs the agent and systemd-analyze

SERVER_PACKAGES = {"fastapi", "uvicorn", "httpx", "pydantic", "pydantic-settings", "starlette", "vietnam-provinces"}


def verify(unit: Path) -> subprocess.CompletedProcess[str]:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run `make test`, which installs Debian's systemd"
    return subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True, timeout=60, check=False)


def interpreter(version: str) -> Path:
    """A real Python ``version`` (pyenv's, else ``pythonX.Y`` on PATH), as ``make old-pythons`` finds it."""
    found = subprocess.run(["pyenv", "prefix", version], capture_output=True, text=True, check=False)
    python = Path(found.stdout.strip()) / "bin" / f"python{version}" if found.returncode == 0 else None
    if python is None or not python.exists():
        python = Path(shutil.which(f"python{version}") or f"/missing/python{version}")
    assert python.exists(), f"Python {version} is missing: pyenv install {version}"
    return python


def install_agent(tmp_path: Path, python3: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``install-agent.sh`` with ``python3`` on PATH being the given interpreter: the PC's system Python."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    (bin_dir / "python3").symlink_to(python3)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    argv = ["sh", str(REPO / "systemd" / "install-agent.sh"), "--prefix", str(tmp_path / "root"), *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600, check=False)


def test_install_agent_refuses_a_python_older_than_3_8_and_says_what_to_install(tmp_path: Path) -> None:
    done = install_agent(tmp_path, interpreter("3.6"))
    assert done.returncode == 1
    assert "needs Python 3.8 or newer, and python3 here is 3.6" in done.stderr
    assert "apt-get install python3.8 python3.8-venv" in done.stderr and "PYTHON=" in done.stderr
    assert not (tmp_path / "root" / "opt").exists()  # nothing installed


def test_install_agent_builds_an_agent_only_venv_and_a_unit_systemd_accepts(tmp_path: Path) -> None:
    config = tmp_path / "pc-01.toml"
    config.write_text(
        '[identity]\nprovince = "08"\ncommune = "02473"\nhost = "pc-01"\n'
        f'[spool]\npath = "{tmp_path}/spool.sqlite"\n[probe]\ngateway = false\n'
    )
    prefix = tmp_path / "root"
    done = install_agent(tmp_path, interpreter("3.8"), "--config", str(config))  # Ubuntu 20.04's python3
    assert done.returncode == 0, done.stderr
    venv = prefix / "opt" / "commune-agent" / "venv"
    assert "version = 3.8." in (venv / "pyvenv.cfg").read_text()  # built by the system's python3, here 3.8
    listed = subprocess.run([str(venv / "bin" / "pip"), "list", "--format=json"], capture_output=True, text=True,
                            check=True)  # fmt: skip
    installed = {package["name"].lower() for package in json.loads(listed.stdout)}
    assert {"psutil", "paho-mqtt", "speedtest-cli", "icmplib", "tomli", "commune-monitor"} <= installed  # tomli: 3.8
    assert not installed & SERVER_PACKAGES, installed & SERVER_PACKAGES

    installed_config = prefix / "etc" / "commune-agent" / "agent.toml"
    assert oct(installed_config.stat().st_mode & 0o777) == "0o640"
    once = subprocess.run([str(venv / "bin" / "commune-agent"), "once", "-c", str(installed_config)],
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout)["metrics"]["system"]["mem_total_bytes"] > 0

    unit = prefix / "etc" / "systemd" / "system" / "commune-agent.service"
    assert f"ExecStart={venv}/bin/commune-agent run -c {installed_config}" in unit.read_text()
    result = verify(unit)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr


def test_collector_unit_is_hardened_and_valid(tmp_path: Path) -> None:
    text = (REPO / "systemd" / "commune-collector.service").read_text()
    for setting in ("ProtectSystem=strict", "NoNewPrivileges=true", "StateDirectory=commune-collector",
                    "User=commune-collector", "Restart=on-failure", "CapabilityBoundingSet=\n"):  # fmt: skip
        assert setting in text, setting
    unit = tmp_path / "commune-collector.service"
    unit.write_text(
        text.replace(
            "/opt/commune-collector/venv/bin/commune-collector",
            str(Path(sys.executable).with_name("commune-collector")),
        )
    )
    result = verify(unit)
    assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
