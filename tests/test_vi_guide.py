"""Every command of the Vietnamese operator guide (docs/vi/*.md) runs, in the guide's order, against a
real Mosquitto with the dynamic-security plugin, a real InfluxDB and a real collector (issue 30).

How a page is read:

- each fenced ``bash`` block is run by bash (``set -euo pipefail``) in a folder standing for the
  server; variables and the current folder carry over from block to block and page to page, as in
  one shell session;
- a ``text`` block after a ``bash`` block (before the next one) is what the command prints: each of
  its lines, ``…`` standing for anything, must be a line of the block's output;
- a ``bash`` block right after the comment ``<!-- guide: server-only ... -->`` installs packages or
  runs systemd on a real server, which cannot happen here. It is not run: it must hold one of
  ``SERVER_ONLY_PROGRAMS`` (the reason), and ``test_the_server_only_commands_are_these`` lists every
  such block, so none is left out silently. Its ``stand-in: <name>`` does here what it does on the
  server (``STAND_INS``): start the broker, the collector or an agent.

What differs from a real server, all of it here (``Site.substituted``): the absolute paths live under
a temporary folder, the addresses and ports are the test's free loopback ports (``10.8.0.10`` is the
guide's server; InfluxDB's backup port 8088 is the test influxd's), the database is the test's own,
the copy of the sources is this checkout, the agent enrols over plain HTTP on loopback instead of
HTTPS, its spool is under the temporary folder, and InfluxDB keeps raw points 70 days
(``COMMUNE_COLLECTOR_INFLUXDB__RAW_RETENTION``) so the history written for last month's report
(``commune-sim --backfill-days``, before the report's page, standing for the month real agents would
have reported) is not refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import pytest
from realservices import REPO, Influxd, Mosquitto, free_port, wait_until

from devtools.localstack import Process, dynsec_plugin, http_get

pytestmark = pytest.mark.services

GUIDE = REPO / "docs" / "vi"
# The guide's pages in the order an operator meets them (and the order they run in).
PAGES = (
    "cai-dat-may-chu.md",
    "nhap-danh-sach.md",
    "dang-ky-may-xa.md",
    "bang-dieu-khien.md",
    "bang-dieu-khien-web.md",
    "quyen-truy-cap.md",
    "bao-cao-thang.md",
    "xa-mat-lien-lac.md",
    "nang-cap-sao-luu.md",
)
# What a block marked server-only may hold, one of them at least: why it cannot run here.
SERVER_ONLY_PROGRAMS = ("apt-get", "systemctl", "useradd", "chown", "pip", "install-agent.sh", "python3 -m venv")
SERVER_ROOTS = ("/etc/commune-collector", "/var/lib/commune-collector", "/etc/mosquitto", "/var/lib/mosquitto",
                "/etc/commune-agent", "/var/backups/commune-monitor", "/opt/commune-collector", "/etc/grafana",
                "/var/lib/grafana")  # fmt: skip
FENCE = re.compile(r"^(\s*)```(\w*)")
# Fences that are not commands: what a command prints, and file contents shown as they are.
NOT_COMMANDS = ("text", "toml", "csv", "json", "ini")
MARKER = re.compile(r"<!-- guide: server-only(?:; stand-in: ([a-z-]+))? -->")
WILDCARD = "…"


@dataclass
class Block:
    page: str
    line: int  # of the opening fence, 1-based
    code: str
    server_only: bool = False
    stand_in: str | None = None
    expected: list[str] = field(default_factory=list)


def blocks_of(page: str) -> list[Block]:
    lines = (GUIDE / page).read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        fence = FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        indent = len(fence[1])
        end = next(i for i in range(index + 1, len(lines)) if lines[i].strip().startswith("```"))
        body = "\n".join(line[indent:] for line in lines[index + 1 : end])  # a block inside a list item
        if fence[2] == "bash":
            before = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            marker = MARKER.fullmatch(before.strip())
            found.append(Block(page, index + 1, body, marker is not None, marker[1] if marker else None))
        elif fence[2] == "text" and found and not found[-1].expected:
            found[-1].expected = [line for line in body.splitlines() if line.strip()]
        index = end + 1
    return found


def matches(pattern: str, output: list[str]) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.strip().split(WILDCARD))
    return any(re.fullmatch(regex, line.strip()) for line in output)


@dataclass
class Site:
    """The server the guide is run on: its folder, its services' ports and what runs."""

    root: Path
    influxd: Influxd
    database: str
    broker_port: int = field(default_factory=free_port)
    http_port: int = field(default_factory=free_port)
    started: list[Process] = field(default_factory=list)
    agent: Process | None = None

    def path(self, server_path: str) -> Path:
        return self.root / server_path.lstrip("/")

    def substituted(self, code: str) -> str:
        code = code.replace(
            "--url https://10.8.0.10:8443 --ca-file /etc/commune-agent/ca-tinh.crt",
            f"--url http://127.0.0.1:{self.http_port} --insecure-http",
        )
        for server_path in SERVER_ROOTS:
            code = code.replace(server_path, str(self.path(server_path)))
        code = code.replace("10.8.0.10", "127.0.0.1")
        code = re.sub(r"\b1883\b", str(self.broker_port), code)
        code = re.sub(r"\b8080\b", str(self.http_port), code)
        code = code.replace("http://127.0.0.1:8086", self.influxd.url)
        code = re.sub(r"\b8088\b", str(self.influxd.rpc_port), code)
        code = code.replace("-database commune ", f"-database {self.database} ")
        return code.replace('database = "commune"', f'database = "{self.database}"')

    def environment(self) -> dict[str, str]:
        bin_dir = str(Path(sys.executable).parent)
        return {
            "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "HOME": str(self.path("/root")),
            "LANG": "C.UTF-8",
            "PYTHONPATH": str(REPO),
            "COMMUNE_COLLECTOR_INFLUXDB__RAW_RETENTION": "70d",
            "TZ": "Asia/Ho_Chi_Minh",
        }

    def run(self, block: Block) -> tuple[int, list[str]]:
        state = self.root / "shell"
        script = "\n".join(
            [
                "set -euo pipefail",
                f"[ -f {state}/env.sh ] && source {state}/env.sh",
                f'cd "$(cat {state}/cwd 2>/dev/null || echo {self.path("/root")})"',
                "set -a",
                self.substituted(block.code),
                "set +a",
                f"export -p | grep -v -e ' PWD=' -e ' OLDPWD=' -e ' SHLVL=' > {state}/env.sh",
                f"pwd > {state}/cwd",
            ]
        )
        done = subprocess.run(
            ["bash", "-c", script],
            capture_output=True,
            text=True,
            env=self.environment(),
            timeout=300,
            check=False,
        )
        return done.returncode, (done.stdout + "\n" + done.stderr).splitlines()

    def config(self) -> Path:
        return self.path("/etc/commune-collector/collector.toml")

    def start(self, process: Process, wait: Callable[[], bool], what: str) -> None:
        process.start()
        self.started.append(process)
        wait_until(lambda: wait() or not process.running(), 60, f"{what}\n{process.log()}")
        assert process.running(), f"{what} exited:\n{process.log()}"

    def start_broker(self) -> None:
        conf = self.path("/etc/mosquitto/conf.d/commune.conf").read_text()
        plugin = re.search(r"^plugin (\S+)$", conf, re.M)
        assert plugin and plugin[1] == dynsec_plugin(), f"the guide's plugin line is not this Debian's: {plugin}"
        dynsec = self.path("/var/lib/mosquitto/dynamic-security.json")
        broker = Mosquitto(self.root / "mosquitto", port=self.broker_port, allow_anonymous=False, dynsec_file=dynsec)
        broker.start()
        self.started.append(broker)

    def start_collector(self) -> None:
        argv = [sys.executable, "-m", "collector.cli", "serve", "-c", str(self.config())]
        collector = Process(argv, self.root, "collector", env={**os.environ, **self.environment()})
        url = f"http://127.0.0.1:{self.http_port}/healthz"
        self.start(collector, lambda: http_get(url)[0] == 200, "the collector's /healthz")

    def backfill(self) -> None:
        """History from the first of last month to now, for two communes: what real agents would have sent."""
        days = datetime.now().day + 32
        argv = [sys.executable, "-m", "devtools.simulate.cli", "-c", str(self.config()), "--backfill-days",
                str(days), "--backfill-interval", "300", "--communes", "02473,02536", "--hosts-per-commune", "1",
                "--no-register"]  # fmt: skip
        folder = self.root / "backfill"
        folder.mkdir(exist_ok=True)
        env = {**os.environ, **self.environment()}
        done = subprocess.run(argv, capture_output=True, text=True, cwd=folder, env=env, timeout=600, check=False)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]

    def start_agent(self) -> None:
        """The enrolled agent, its spool under the site instead of /var/lib/commune-agent."""
        spool = self.path("/var/lib/commune-agent/spool.sqlite")
        spool.parent.mkdir(parents=True, exist_ok=True)
        enrolled = self.path("/etc/commune-agent/agent.toml").read_text()
        config = self.root / "agent.toml"
        config.write_text(f'{enrolled}\n[spool]\npath = "{spool}"\n')
        argv = [sys.executable, "-m", "agent.cli", "run", "-c", str(config)]
        agent = Process(argv, self.root, "agent", env={**os.environ, **self.environment()})
        log = self.root / "agent.log"
        self.start(agent, lambda: log.exists() and "connected" in log.read_text(), "the agent connected")
        self.agent = agent
        # as an operator waits a minute: until the collector counts the PC online from its first report
        self.wait_for_api("/api/v1/communes", b'"hosts_online":1', "the PC counted online")

    def wait_for_api(self, path: str, wanted: bytes, what: str) -> None:
        """Until ``path`` answers, to the guide's own admin token, with ``wanted`` in its body."""
        token = re.search(r'TOKEN="([^"]+)"', (self.root / "shell" / "env.sh").read_text())
        assert token, "the guide's install page sets TOKEN"
        url = f"http://127.0.0.1:{self.http_port}{path}"
        headers = {"Authorization": f"Bearer {token[1]}"}
        # nobody is judged offline in the collector's first restart_grace_s: room for that and a loaded machine
        wait_until(lambda: wanted in http_get(url, headers=headers)[1], 240, what)

    def commune_goes_dark(self) -> None:
        """The commune's one PC goes silent (its agent stopped), until the collector says its line is down."""
        assert self.agent is not None, "the enrolment page starts the agent"
        self.agent.stop()
        self.wait_for_api("/api/v1/communes/02473", b'"line_state":"down"', "02473's line down")

    def stop(self) -> None:
        for process in reversed(self.started):
            process.stop()


# Done before a page is run: what the months before it would have left on a real server.
BEFORE_PAGE: dict[str, Callable[[Site], None]] = {
    "bao-cao-thang.md": Site.backfill,
    "xa-mat-lien-lac.md": Site.commune_goes_dark,  # the page is about a commune gone dark: one is
}

STAND_INS: dict[str, Callable[[Site], None]] = {
    "start-broker": Site.start_broker,  # systemctl restart mosquitto, with the guide's commune.conf
    "start-collector": Site.start_collector,  # systemctl enable --now commune-collector
    "start-agent": Site.start_agent,  # install-agent.sh on the commune PC
}


@dataclass
class Outcome:
    block: Block
    status: int | None  # None: server-only, not run
    output: list[str]
    missing: list[str] = field(default_factory=list)  # lines of the guide's text block not printed


@pytest.fixture(scope="module")
def guide(influxd: Influxd, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, list[Outcome]]]:
    """Every page run in order on one site; a page stops at its first block that fails or does not
    print what the guide shows."""
    site = Site(tmp_path_factory.mktemp("server"), influxd, f"t_{uuid.uuid4().hex[:10]}")
    for folder in ("/root", "/etc/mosquitto/conf.d", "/var/lib/mosquitto", "/etc/commune-agent"):
        site.path(folder).mkdir(parents=True, exist_ok=True)  # there on a server with the packages
    (site.root / "shell").mkdir()
    site.path("/root/commune-monitor").symlink_to(REPO)  # the copy of the sources the guide installs from
    results: dict[str, list[Outcome]] = {}
    try:
        for page in PAGES:
            results[page] = []
            if page in BEFORE_PAGE:
                BEFORE_PAGE[page](site)
            for block in blocks_of(page):
                if block.server_only:
                    if block.stand_in:
                        STAND_INS[block.stand_in](site)
                    results[page].append(Outcome(block, None, []))
                    continue
                status, output = site.run(block)
                missing = [line for line in block.expected if not matches(site.substituted(line), output)]
                results[page].append(Outcome(block, status, output, missing))
                with (site.root / "transcript.txt").open("a") as transcript:  # the whole session, to read
                    transcript.write(
                        f"### {page}:{block.line} exit {status}\n{block.code}\n---\n" + "\n".join(output) + "\n"
                    )
                if status != 0 or missing:
                    break
        yield results
    finally:
        site.stop()
        influxd.drop_database(site.database)


@pytest.mark.parametrize("page", PAGES)
def test_every_command_of_the_page_runs_and_prints_what_the_guide_shows(
    guide: dict[str, list[Outcome]], page: str
) -> None:
    outcomes = guide[page]
    ran = [o for o in outcomes if o.status is not None]
    assert ran, f"{page} has no command that runs here"
    assert len(outcomes) == len(blocks_of(page)), f"{page} stopped early"
    for outcome in ran:
        where = f"{page}:{outcome.block.line}"
        tail = "\n".join(outcome.output[-30:])
        assert outcome.status == 0, f"{where} exited {outcome.status}:\n{outcome.block.code}\n---\n{tail}"
        assert outcome.missing == [], f"{where} did not print {outcome.missing}:\n{tail}"


def test_the_guide_has_every_page_and_each_page_is_in_the_site() -> None:
    on_disk = {p.name for p in GUIDE.glob("*.md")} - {"index.md"}
    assert set(PAGES) <= on_disk
    nav = (REPO / "mkdocs.yml").read_text()
    index = (GUIDE / "index.md").read_text()
    for page in PAGES:
        assert f"vi/{page}" in nav, f"{page} is not in mkdocs.yml's nav"
        assert f"({page})" in index, f"docs/vi/index.md does not link {page}"


def test_every_command_block_of_the_guide_is_one_this_test_runs() -> None:
    """A command in a fence without ``bash`` (``sh``, none) would be skipped silently: refused, and a
    page of docs/vi/ with a command must be one of ``PAGES``."""
    for path in sorted(GUIDE.glob("*.md")):
        languages = [fence[2] for line in path.read_text(encoding="utf-8").splitlines() if (fence := FENCE.match(line))]
        opening = languages[0::2]  # every other fence closes a block
        odd = [lang or "(none)" for lang in opening if lang != "bash" and lang not in NOT_COMMANDS]
        assert odd == [], f"{path.name}: fences {odd}: use ```bash for a command (run here) or ```text for output"
        if "bash" in opening:
            assert path.name in PAGES, f"{path.name} has commands: add it to PAGES in the guide's order"


def test_the_server_only_commands_are_these() -> None:
    """Each block not run here, by page and line, with the program that keeps it from running here."""
    listed = []
    for page in PAGES:
        for block in blocks_of(page):
            if not block.server_only:
                continue
            reason = [p for p in SERVER_ONLY_PROGRAMS if p in block.code]
            assert reason, f"{page}:{block.line} is marked server-only but runs nothing that needs a server"
            assert block.stand_in is None or block.stand_in in STAND_INS, block.stand_in
            listed.append(
                f"{page}:{block.line} {reason[0]}" + (f" (stand-in: {block.stand_in})" if block.stand_in else "")
            )
    print("\n".join(["not run here (server only):", *listed]))
    assert listed, "no block is marked server-only: then the install page lost its apt-get"


def test_a_wrong_expected_line_fails() -> None:
    """The output check can fail: a pattern that no line matches is reported."""
    assert matches("Đã tạo … khóa", ["Đã tạo 3 khóa"])
    assert not matches("Đã tạo … khóa", ["Đã xóa 3 khóa"])
    assert not matches("ok", ["not ok at all"])
