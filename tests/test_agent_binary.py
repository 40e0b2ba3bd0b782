"""The single-file agent (``make agent-binary``, dist/commune-agent) runs with no Python on the machine.

The binary is the Makefile's (rebuilt only when the agent's sources change; ``make test`` builds it
first). Every run here is in a mount namespace where every Python on this machine, both venvs and
the repository are hidden under empty tmpfs mounts, with a bare PATH and no PYTHON* variables: what
works there works from what the binary carries. It prints a real ``once`` round, then reports
through the real broker and collector into InfluxDB (metrics, inventory, probes, a speed test,
peripherals from the fixture bus), and its memory stays within twice the venv agent's, measured
side by side with the same configuration in the same test.
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import psutil
import pytest
from realservices import REPO, Agent, Collector, Process, wait_until, write_toml
from stack import Stack
from test_peripherals_agent import EXPECTED_KINDS, FIXTURE
from test_speedtest import SMALL_AGENT

from common.version import VERSION

pytestmark = pytest.mark.services  # runs make, PyInstaller and the binary

BINARY = REPO / "dist" / "commune-agent"
BUILD_PYTHON = REPO / "build" / "agent-binary" / "venv" / "bin" / "python"
RSS_BOUND = 2.0  # the binary's memory (bootloader + its Python) may be at most this many times the venv agent's
LOOPBACK_PING = {"name": "loopback", "method": "ping", "address": "127.0.0.1", "scope": "wan"}
CYCLES = 50  # metric reports the binary must have stored: about a minute at interval_s = 1


def hidden_pythons() -> list[str]:
    """Folders holding a Python, its libraries or this repository: covered by empty tmpfs mounts."""
    pyenv = os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))
    folders = {sys.base_prefix, sys.prefix, str(REPO), pyenv, *glob.glob("/usr/lib/python3*")}
    folders |= set(glob.glob("/usr/local/lib/python3*"))
    existing = sorted(folder for folder in folders if os.path.isdir(folder))
    return [f for f in existing if not any(f.startswith(other + "/") for other in existing if other != f)]


# In a network namespace of its own: loopback up, and ICMP datagram sockets allowed for root's group
# there only (net.ipv4.ping_group_range is per namespace), so the agent pings in-process with icmplib.
OWN_NETWORK = "ip link set lo up; echo '0 0' > /proc/sys/net/ipv4/ping_group_range; "


def without_python(argv: list[str], own_network: bool = False) -> list[str]:
    """``argv`` run where no Python is reachable: its folders hidden, every ``python*`` program on the
    bare PATH replaced by /dev/null, and a check that ``python3`` really cannot start there."""
    hide = " ".join(f"'{folder}'" for folder in hidden_pythons())
    script = (
        ("set -e; " + (OWN_NETWORK if own_network else "")) + f'for d in {hide}; do mount -t tmpfs none "$d"; done; '
        "for f in /usr/bin/python* /usr/local/bin/python*; do "
        '[ -e "$f" ] && mount --bind /dev/null "$f"; done; '
        'if python3 -c pass 2>/dev/null; then echo "a python3 still runs" >&2; exit 97; fi; exec "$@"'
    )
    namespaces = ["--mount", "--net"] if own_network else ["--mount"]
    return ["unshare", *namespaces, "--propagation", "private", "sh", "-c", script, "no-python", *argv]


def bare_env() -> dict[str, str]:
    """What a service manager gives a program: a bare PATH, no venv, no PYTHON* variables."""
    return {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8", "TZ": "UTC"}


@pytest.fixture(scope="module")
def binary(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Makefile's binary (built now if missing or older than its sources), or the one named by
    ``AGENT_BINARY`` (e.g. dist/bullseye/commune-agent from ``make agent-binary-old``), copied out of
    the repository so that the repository can be hidden from it."""
    chosen = os.environ.get("AGENT_BINARY")
    if not chosen:
        done = subprocess.run(["make", "-s", "agent-binary"], cwd=REPO, capture_output=True, text=True, check=False)
        assert done.returncode == 0, f"make agent-binary failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    copy = tmp_path_factory.mktemp("binary") / "commune-agent"
    shutil.copy2(REPO / (chosen or BINARY), copy)
    return copy


@pytest.fixture
def usb_bus(tmp_path: Path) -> Path:
    """The fixture USB bus, copied out of the (hidden) repository."""
    shutil.copytree(FIXTURE / "sys", tmp_path / "usb" / "sys", symlinks=True)
    return tmp_path / "usb" / "sys" / "bus" / "usb" / "devices"


def test_the_binary_prints_a_real_round_with_no_python_on_the_machine(
    binary: Path, usb_bus: Path, tmp_path: Path
) -> None:
    config = write_toml(
        tmp_path / "agent.toml",
        {
            "identity": {"province": "08", "commune": "02473", "host": "pc-binary"},
            "spool": {"path": str(tmp_path / "spool.sqlite")},
            "probe": {"gateway": False, "ping_count": 2, "targets": [LOOPBACK_PING]},
            "peripherals": {"sysfs_root": str(usb_bus)},
        },
    )
    done = subprocess.run(
        without_python([str(binary), "once", "-c", str(config)], own_network=True),
        capture_output=True,
        text=True,
        env=bare_env(),
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    printed = json.loads(done.stdout)
    system = printed["metrics"]["system"]
    assert system["mem_total_bytes"] == psutil.virtual_memory().total  # psutil inside reads this machine
    assert system["cpu_count"] == psutil.cpu_count()
    assert "/" in {disk["mount"] for disk in printed["metrics"]["disk"]}
    assert printed["inventory"]["inventory"]["agent_version"] == VERSION
    kinds = {item["device"]: item["kind"] for item in printed["peripherals"]["peripherals"]}
    assert kinds == EXPECTED_KINDS  # known_ids.csv is inside: the token and the scanner are known by their ids
    (ping,) = printed["probe"]["probe"]
    assert ping["ping_method"] == "icmp" and ping["received"] == ping["sent"] == 2, ping  # icmplib, in-process


def test_the_binary_says_this_release(binary: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [str(binary), "--version"],
        capture_output=True,
        text=True,
        env=bare_env(),
        cwd=tmp_path,
        timeout=60,
        check=False,
    )
    assert (done.returncode, done.stdout.strip()) == (0, VERSION), done.stderr


def test_a_bad_config_gives_the_binary_a_one_line_error_and_status_2(binary: Path, tmp_path: Path) -> None:
    config = tmp_path / "agent.toml"
    config.write_text('[identity]\nprovince = "8"\n')
    done = subprocess.run(
        without_python([str(binary), "once", "-c", str(config)]),
        capture_output=True,
        text=True,
        env=bare_env(),
        timeout=120,
        check=False,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("commune-agent: ") and "province" in done.stderr


def test_the_binary_needs_no_newer_glibc_than_the_docs_say(binary: Path) -> None:
    """The agent page's "runs on glibc X.Y or newer" is what the built binary's symbol versions say."""
    claimed = re.search(r"runs on glibc (\d+)\.(\d+) or newer", (REPO / "docs/en/agent.md").read_text())
    assert claimed, "docs/en/agent.md must say which glibc the single-file agent runs on"
    done = subprocess.run(
        [str(BUILD_PYTHON), "-m", "devtools.glibc_floor", "--json", str(binary)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    measured = json.loads(done.stdout)
    major, minor = (int(part) for part in measured["floor"].split("."))
    assert (major, minor) <= (int(claimed[1]), int(claimed[2])), measured


class BinaryAgent(Process):
    """``commune-agent run`` from the single-file binary, with no Python reachable."""

    def __init__(self, binary: Path, workdir: Path, sections: dict[str, dict[str, Any]]) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        config = write_toml(workdir / "agent.toml", sections)
        argv = without_python([str(binary), "run", "-c", str(config), "--log-level", "DEBUG"])
        super().__init__(argv, workdir, "agent-binary", env=bare_env())


SPEEDTEST = {"modes": ["wan"], "check_interval_s": 1, **SMALL_AGENT}


def venv_like(venv: Agent) -> dict[str, dict[str, Any]]:
    """The venv agent's configuration sections, as written to its agent.toml."""
    return tomllib.loads(venv.config_path.read_text())


def probe_section(collector: Collector) -> dict[str, Any]:
    """A loopback ping and an HTTP check of the collector, every 5 s."""
    return {
        "gateway": False,
        "interval_s": 5,
        "ping_count": 3,
        "timeout_s": 2,
        "targets": [
            LOOPBACK_PING,
            {"name": "collector", "method": "http", "address": f"{collector.url}/healthz", "scope": "wan"},
        ],
    }


def rss(pid: int) -> int:
    """Resident memory of a process and all its descendants (the binary is a bootloader and its Python)."""
    try:
        top = psutil.Process(pid)
        return sum(member.memory_info().rss for member in [top, *top.children(recursive=True)])
    except psutil.NoSuchProcess:
        return 0


def count(stack: Stack, measurement: str, host: str) -> int:
    rows = stack.query(f"SELECT count(*) FROM \"{measurement}\" WHERE host = '{host}'")
    # a field whose first write is under way counts null (test_end_to_end._count): 0 points yet
    return int(max((v or 0) for k, v in rows[0].items() if k.startswith("count_"))) if rows else 0


def test_the_binary_reports_end_to_end_and_stays_within_twice_the_venv_agents_memory(
    binary: Path, usb_bus: Path, stack: Stack, tmp_path: Path
) -> None:
    collector = stack.started_collector()
    # The same configuration for both but identity: line probes with probes, the collector's
    # speed-test endpoint and the fixture USB bus, reporting every second.
    shared: dict[str, dict[str, Any]] = {
        "collect": {"interval_s": 1},
        "probe": probe_section(collector),
        "speedtest": {**SPEEDTEST, "wan_url": collector.url},
        "peripherals": {"sysfs_root": str(usb_bus)},
    }
    venv = stack.agent(commune="02536", host="pc-venv", identity={"role": "line-probe"}, **shared)
    frozen_dir = tmp_path / "frozen"
    frozen = BinaryAgent(
        binary,
        frozen_dir,
        {
            **venv_like(venv),
            "identity": {"province": "08", "commune": "02473", "host": "pc-frozen", "role": "line-probe"},
            "spool": {"path": str(frozen_dir / "spool.sqlite")},
        },
    )
    hosts = {"pc-frozen": "02473", "pc-venv": "02536"}
    try:
        frozen.start()
        venv.start()
        wait_until(lambda: {h["host"] for h in collector.get_json("/api/v1/hosts")} >= set(hosts), 60, "both hosts")
        for host, commune in hosts.items():
            status, _ = collector.post_json(f"/api/v1/hosts/08/{commune}/{host}/speedtest", {"mode": "wan"})
            assert status == 202
        peaks = {"pc-frozen": 0, "pc-venv": 0}

        def sample_until_enough_cycles() -> bool:
            assert frozen.proc is not None and venv.proc is not None
            peaks["pc-frozen"] = max(peaks["pc-frozen"], rss(frozen.proc.pid))
            peaks["pc-venv"] = max(peaks["pc-venv"], rss(venv.proc.pid))
            return stack.stored_reports("pc-frozen") >= CYCLES

        wait_until(sample_until_enough_cycles, 300, f"{CYCLES} metric reports\n{frozen.log()[-3000:]}", 1.0)
        for host in hosts:
            for measurement in ("system", "disk", "net", "inventory", "probe", "speedtest", "peripheral"):
                wait_until(lambda h=host, m=measurement: count(stack, m, h) > 0, 60, f"{measurement} of {host}")
        assert frozen.running(), frozen.log()[-3000:]
    finally:
        frozen.stop()

    (speed,) = stack.query("SELECT * FROM speedtest WHERE host = 'pc-frozen'")
    assert speed["ok"] == 1 and float(speed["download_mbps"]) > 1, speed  # speedtest-cli inside, measuring
    probes = stack.query("SELECT last(ok) FROM probe WHERE host = 'pc-frozen' GROUP BY target")
    assert {row["target"]: row["last"] for row in probes} == {"loopback": 1, "collector": 1}
    methods = stack.query("SELECT last(ping_method) FROM probe WHERE target = 'loopback' GROUP BY host")
    by_host = {row["host"]: row["last"] for row in methods}
    assert by_host["pc-frozen"] == by_host["pc-venv"] in ("icmp", "system"), by_host  # icmplib inside decides alike
    where = "WHERE host = 'pc-frozen'"
    kinds = stack.query(f'SELECT last(present) FROM "peripheral" {where} GROUP BY device, kind')
    assert {row["device"]: row["kind"] for row in kinds} == EXPECTED_KINDS
    inventory = stack.query(f'SELECT last(agent_version), last(os) FROM "inventory" {where}')
    assert inventory[0]["last"] == VERSION
    ours = [h for h in collector.get_json("/api/v1/hosts") if h["host"] == "pc-frozen"]
    assert ours and ours[0]["commune_name"] == "Xã Yên Sơn"

    ratio = peaks["pc-frozen"] / peaks["pc-venv"]
    print(f"peak RSS: binary {peaks['pc-frozen'] / 2**20:.1f} MiB, venv agent {peaks['pc-venv'] / 2**20:.1f} MiB")
    assert peaks["pc-venv"] > 0 and ratio <= RSS_BOUND, peaks
