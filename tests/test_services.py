"""The service units and the agent installer: the installer builds a venv holding only the agent
(no server packages), the installed agent runs, and systemd accepts both hardened units."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def security(unit: Path) -> dict[str, dict[str, Any]]:
    """systemd's own reading of a unit's sandbox (``systemd-analyze security --offline``), by setting."""
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: run `make test`, which installs Debian's systemd"
    done = subprocess.run([analyze, "security", "--offline=yes", "--json=short", str(unit)], capture_output=True,
                          text=True, timeout=60, check=True)  # fmt: skip
    return {entry["name"]: entry for entry in json.loads(done.stdout)}


# What smartctl needs (the kernel's gates): ATA pass-through (SG_IO) only with CAP_SYS_RAWIO, NVMe
# admin commands (the SMART log) only with CAP_SYS_ADMIN, the disk nodes root:disk 0660.
SMARTCTL_GRANTS = {"AmbientCapabilities=", "SupplementaryGroups=", "CapabilityBoundingSet=~CAP_SYS_RAWIO",
                   "CapabilityBoundingSet=~CAP_SYS_ADMIN", "PrivateDevices="}  # fmt: skip


def test_agent_unit_lets_smartctl_read_the_disks_and_grants_nothing_more(tmp_path: Path) -> None:
    """The shipped unit against the unit of 0.1.0 (no device, no capability), as systemd reads them:
    only the settings smartctl needs are opened, the disks read-only, every other protection stays."""
    units = {}
    for name, text in (("now", (REPO / "systemd" / "commune-agent.service").read_text()),
                       ("before", subprocess.run(["git", "show", "ef31661:systemd/commune-agent.service"], cwd=REPO,
                                                 capture_output=True, text=True, check=True).stdout)):  # fmt: skip
        unit = tmp_path / name / "commune-agent.service"
        unit.parent.mkdir()
        unit.write_text(text.replace("/opt/commune-agent/venv/bin/commune-agent", shutil.which("true") or "/bin/true"))
        result = verify(unit)
        assert result.returncode == 0 and result.stderr.strip() == "", result.stderr
        units[name] = security(unit)
    now, before = units["now"], units["before"]
    assert all(before[name]["set"] for name in SMARTCTL_GRANTS)  # 0.1.0's unit had none of them
    opened = {name for name in before if before[name]["set"] and not now[name]["set"]}
    assert opened == SMARTCTL_GRANTS, opened
    kept = {name for name in before if before[name]["set"] and now[name]["set"]}
    assert len(kept) >= 40 and "NoNewPrivileges=" in kept and "SystemCallFilter=~@mount" in kept
    granted = {n.split("~", 1)[1] for n, e in now.items() if n.startswith("CapabilityBoundingSet=~") and not e["set"]}
    assert granted == {"CAP_SYS_RAWIO", "CAP_SYS_ADMIN"}, granted
    devices = now["DeviceAllow="]["description"].split(": ", 1)[1].split()
    assert sorted(devices) == ["block-blkext:r", "block-sd:r", "char-rtc:r"], devices  # char-rtc: ProtectClock's
    text = (REPO / "systemd" / "commune-agent.service").read_text()
    for setting in ("SupplementaryGroups=disk\n", "AmbientCapabilities=CAP_SYS_RAWIO CAP_SYS_ADMIN\n",
                    "DevicePolicy=closed\n"):  # fmt: skip
        assert setting in text, setting


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
