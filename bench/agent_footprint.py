"""Benchmark: the agent's footprint (memory, CPU per cycle, bytes per day) beside node_exporter's.

A real agent (default report interval, role ``pc`` so no speed tests, probe targets like the
example config but on loopback, and USB peripherals read from the fixture bus in
tests/data/usb_sysfs: a token, a scanner, a printer and a flash drive reported, hubs and a mouse
not) runs against a real Mosquitto for ``BENCH_FOOTPRINT_S`` seconds (default 300), with a real
collector (and InfluxDB) acknowledging what it stores, so every report is kept in the spool until
acknowledged, as in production. Its MQTT connection goes through a relay in this process that
splits the byte stream into MQTT packets and counts them in both directions, so the bytes are
those on the agent's socket, and the spool's depth is read every second from its SQLite file
(steady state: near zero). At the same time Debian's ``prometheus-node-exporter`` runs on a free
loopback port and is scraped every 15 s the way Prometheus does (gzip), as the reference. Both are
sampled from /proc with psutil. Run: ``python -m bench.agent_footprint``.

The agent runs on an emulated office LAN (tests/emulated_line.py: network namespaces made here,
a router as its default gateway, the province behind it), so its gateway probe and its ping,
DNS and HTTP targets (the province's "wan" and "internet" addresses) never leave this machine.
The run is made twice, ``net.ipv4.ping_group_range`` in the LAN opening ICMP sockets to the agent
(it pings in-process, icmplib) and then closing them (it falls back to the system ``ping``, one
child process per target and round, as every agent did before): the CPU of both, and
node_exporter's per scrape, come from the same invocation. ``BENCH_FOOTPRINT_PING=icmp`` (or
``system``) makes only that run.

CPU and bytes are taken over a window that starts 15 s after the agent connects (start-up is
not steady state) and lasts the run's duration; a multiple of 60 s holds whole metrics and probe
cycles. Things that happen once a day (connect, status, inventory, disconnect) count once.
CPU is the kernel's own account of each process in a cgroup made for it (``CpuAccounts``: every
thread, ended ones and ``ping`` children included, in nanoseconds), with the per-thread schedstat
figure (``ThreadClocks``) and /proc's 10 ms ticks printed beside it.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from emulated_line import GATEWAY, INTERNET, WAN, EmulatedLine, inside  # a helper of tests/

from devtools.localstack import (
    Influxd,
    Mosquitto,
    Process,
    ProcessGroup,
    ServedCollector,
    free_port,
    port_open,
    require_binary,
    wait_until,
)
from devtools.rawmqtt import read_remaining_length

DURATION_S = float(os.environ.get("BENCH_FOOTPRINT_S", "300"))
WARMUP_S = 15.0  # after connect; also keeps window edges halfway between 30 s cycles
INTERVAL_S = 30.0  # the agent's default [collect] interval_s
PROBE_INTERVAL_S = 60.0  # the agent's default [probe] interval_s
SCRAPE_INTERVAL_S = 15.0  # Prometheus' usual scrape interval
SAMPLE_EVERY_S = 1.0
DAY_S = 86400.0
MB = 1_000_000
TCP_IP_HEADER_BYTES = 52  # IPv4 20 + TCP 20 + timestamps option 12, per segment
REPO = Path(__file__).resolve().parents[1]
USB_FIXTURE = REPO / "tests" / "data" / "usb_sysfs" / "sys" / "bus" / "usb" / "devices"
PLUGS_PER_DAY = 40  # a token plugged in and pulled out 20 times a day, each a report of its own
PERIPHERAL_REPORTS_PER_DAY = 24 + PLUGS_PER_DAY  # hourly, and on every plug or unplug
ONCE_A_DAY = {"CONNECT", "SUBSCRIBE", "DISCONNECT", "PUBLISH status", "PUBLISH inventory", "CONNACK", "SUBACK"}
ACKNOWLEDGING = "collector acknowledges stored reports"
PACKET_TYPES = {
    1: "CONNECT",
    2: "CONNACK",
    3: "PUBLISH",
    4: "PUBACK",
    8: "SUBSCRIBE",
    9: "SUBACK",
    12: "PINGREQ",
    13: "PINGRESP",
    14: "DISCONNECT",
}


@dataclass(frozen=True)
class Packet:
    at: float  # monotonic
    upstream: bool  # agent -> broker
    kind: str  # "PUBLISH metrics", "PINGREQ", ...
    size: int  # bytes on the socket, fixed header included


def _classify(packet: bytes, header: int) -> str:
    kind = PACKET_TYPES.get(packet[0] >> 4, f"type {packet[0] >> 4}")
    if kind != "PUBLISH":
        return kind
    length = int.from_bytes(packet[header : header + 2], "big")
    return "PUBLISH " + packet[header + 2 : header + 2 + length].decode(errors="replace").rsplit("/", 1)[-1]


class MqttSplitter:
    """Cuts one direction of an MQTT byte stream into (kind, size) packets."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[str, int]]:
        self._buffer += data
        packets: list[tuple[str, int]] = []
        while True:
            header = read_remaining_length(self._buffer, 1, len(self._buffer))  # (header length, body size)
            if header is None or len(self._buffer) < sum(header):
                return packets
            size = sum(header)
            packets.append((_classify(bytes(self._buffer[:size]), header[0]), size))
            del self._buffer[:size]


class CountingRelay:
    """A loopback TCP relay to the broker that records every MQTT packet passing in each direction."""

    def __init__(self, broker_port: int, listener: socket.socket) -> None:
        self.broker_port = broker_port
        self.packets: list[Packet] = []
        self._lock = threading.Lock()
        self._listener = listener  # made in the province's namespace, where the agent connects
        self.port: int = self._listener.getsockname()[1]
        self._sockets: list[socket.socket] = [self._listener]

    def start(self) -> None:
        threading.Thread(target=self._accept, name="relay-accept", daemon=True).start()

    def stop(self) -> None:
        for sock in self._sockets:
            sock.close()

    def first(self, kind: str) -> float | None:
        with self._lock:
            return next((p.at for p in self.packets if p.kind == kind), None)

    def upstream(self) -> list[Packet]:
        with self._lock:
            return [p for p in self.packets if p.upstream]

    def downstream(self) -> list[Packet]:
        with self._lock:
            return [p for p in self.packets if not p.upstream]

    def _accept(self) -> None:
        while True:
            try:
                client, _address = self._listener.accept()
            except OSError:  # closed by stop()
                return
            broker = socket.create_connection(("127.0.0.1", self.broker_port))
            self._sockets += [client, broker]
            threading.Thread(target=self._pipe, args=(client, broker, True), daemon=True).start()
            threading.Thread(target=self._pipe, args=(broker, client, False), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket, upstream: bool) -> None:
        splitter = MqttSplitter()
        while True:
            try:
                data = source.recv(65536)
                if not data:
                    break
                sink.sendall(data)
            except OSError:
                break
            now = time.monotonic()
            with self._lock:
                self.packets += [Packet(now, upstream, kind, size) for kind, size in splitter.feed(data)]
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@dataclass
class Usage:
    """Memory and CPU of one process, from /proc via psutil."""

    process: psutil.Process
    rss_max: int = 0
    rss_last: int = 0
    uss_last: int = 0

    def sample(self) -> None:
        memory = self.process.memory_full_info()
        self.rss_max = max(self.rss_max, memory.rss)
        self.rss_last, self.uss_last = memory.rss, memory.uss

    def cpu_s(self) -> tuple[float, float]:
        """User + system seconds of the process itself and of its finished children (the agent's ``ping`` runs)."""
        times = self.process.cpu_times()
        return times.user + times.system, times.children_user + times.children_system


class ThreadClocks:
    """Nanoseconds on a CPU of every thread of each process, from ``/proc/PID/task/TID/schedstat``.

    /proc's utime and stime count in 10 ms ticks, so a 120 s run resolves only 2.5 ms per 30 s
    cycle; schedstat's first field is the scheduler's own runtime in nanoseconds. A thread that
    ends (a probe round's job thread) leaves /proc with its time, so every thread is read every
    ``every_s`` in a thread of this process and the last value seen is kept: what a finished thread
    ran after its last reading is lost, at most ``every_s`` of it. Both the agent and node_exporter
    are read the same way, by the same sampler.
    """

    def __init__(self, pids: dict[str, int], every_s: float = 0.1) -> None:
        self._pids = pids
        self._every_s = every_s
        self._seen: dict[str, dict[int, int]] = {name: {} for name in pids}  # process -> tid -> ns
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="thread-clocks", daemon=True)

    def start(self) -> None:
        self.sample()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every_s):
            self.sample()

    def sample(self) -> None:
        for name, pid in self._pids.items():
            for tid, ns in read_schedstats(pid).items():
                with self._lock:
                    self._seen[name][tid] = ns

    def snapshot(self) -> dict[str, dict[int, int]]:
        self.sample()
        with self._lock:
            return {name: dict(threads) for name, threads in self._seen.items()}


def read_schedstats(pid: int) -> dict[int, int]:
    """Each live thread's nanoseconds on a CPU (tid -> ns); threads that end while being read are left out."""
    found: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for task in os.scandir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError, ValueError, IndexError), open(f"{task.path}/schedstat") as stats:
                found[int(task.name)] = int(stats.read().split()[0])
    return found


def thread_ms(start: dict[int, int], end: dict[int, int]) -> dict[int, float]:
    """Milliseconds each thread ran between two snapshots (a thread born between them from zero)."""
    return {tid: (ns - start.get(tid, 0)) / 1e6 for tid, ns in end.items() if ns > start.get(tid, 0)}


class CpuAccounts:
    """Nanoseconds on a CPU of each whole process, its finished threads and children included, from
    a cgroup of its own (v1 ``cpuacct.usage``, or v2 ``cpu.stat`` ``usage_usec``).

    ``ThreadClocks`` loses what a finished thread ran after its last reading, and the agent ends a
    thread every probe round while node_exporter does not; the kernel's cgroup accounting loses
    nothing. Where no cgroup can be made (not root, no cgroup file system) ``read`` gives nothing and
    the figures fall back to ``ThreadClocks``."""

    V1 = Path("/sys/fs/cgroup/cpuacct")
    V2 = Path("/sys/fs/cgroup")

    def __init__(self, pids: dict[str, int]) -> None:
        self.groups: dict[str, Path] = {}
        root = self.V1 if (self.V1 / "cpuacct.usage").exists() else self.V2
        if root == self.V2 and not (root / "cgroup.controllers").exists():
            return
        for name, pid in pids.items():
            group = root / f"bench-footprint-{name}-{pid}"
            try:
                group.mkdir()
                (group / "cgroup.procs").write_text(str(pid))
            except OSError:
                self.close()
                return
            self.groups[name] = group

    def read(self) -> dict[str, int]:
        found: dict[str, int] = {}
        for name, group in self.groups.items():
            if (group / "cpuacct.usage").exists():
                found[name] = int((group / "cpuacct.usage").read_text())
            else:
                stats = dict(line.split() for line in (group / "cpu.stat").read_text().splitlines())
                found[name] = int(stats["usage_usec"]) * 1000
        return found

    def close(self) -> None:
        """Back to the root group (a process still running), then the groups go."""
        for group in self.groups.values():
            with contextlib.suppress(OSError):
                for pid in (group / "cgroup.procs").read_text().split():
                    (group.parent / "cgroup.procs").write_text(pid)
            with contextlib.suppress(OSError):
                group.rmdir()
        self.groups = {}


def cpu_sample(usages: dict[str, Usage]) -> dict[str, float]:
    sample: dict[str, float] = {}
    for name, usage in usages.items():
        own, children = usage.cpu_s()
        sample |= {name: own + children, f"{name}_children": children}
    return sample


@dataclass(frozen=True)
class Scrape:
    at: float
    response_bytes: int  # status line, headers and gzip body, as sent on the socket
    body_bytes: int  # the same body uncompressed


def scrape(port: int) -> Scrape:
    """One /metrics request with the headers Prometheus 2.x sends (HTTP/1.0 so the body is not chunked)."""
    request = (
        f"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nUser-Agent: Prometheus/2.42.0\r\n"
        "Accept: application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
        "text/plain;version=0.0.4;q=0.5,*/*;q=0.1\r\nAccept-Encoding: gzip\r\n"
        "X-Prometheus-Scrape-Timeout-Seconds: 10\r\n\r\n"
    )
    started = time.monotonic()
    chunks: list[bytes] = []
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request.encode())
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    response = b"".join(chunks)
    head, _, body = response.partition(b"\r\n\r\n")
    if b"content-encoding: gzip" in head.lower():
        body = gzip.decompress(body)
    return Scrape(started, len(response), len(body))


@dataclass(frozen=True)
class TcpCounters:
    bytes_sent: int
    segs_out: int


def tcp_counters(relay_port: int, line: EmulatedLine) -> TcpCounters | None:
    """The kernel's counters for the agent's socket (the one connected to the relay), from ``ss`` in its LAN."""
    argv = line.in_lan(["ss", "-tinH", "state", "established", f"dport = :{relay_port}"])
    answer = subprocess.run(argv, capture_output=True, text=True, check=False).stdout
    sent, segs = re.search(r"bytes_sent:(\d+)", answer), re.search(r"segs_out:(\d+)", answer)
    if sent is None or segs is None:
        return None
    return TcpCounters(int(sent.group(1)), int(segs.group(1)))


def target_server() -> ThreadingHTTPServer:
    """A small HTTP server for the agent's http probe target."""

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *_args: object) -> None:
            pass

    server = ThreadingHTTPServer((WAN, 0), Ok)  # made inside the province's namespace
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def agent_config(folder: Path, relay_port: int, http_port: int) -> Path:
    """Defaults everywhere (the gateway probe on) except identity, broker, spool path and four probe
    targets behind the emulated line's router."""
    targets = [
        ("province-server", "ping", WAN, "wan"),
        ("public-dns", "ping", INTERNET, "internet"),
        ("dns-portal", "dns", "localhost", "internet"),
        ("document-system", "http", f"http://{WAN}:{http_port}/", "wan"),
    ]
    lines = "".join(
        f'  {{ name = "{n}", method = "{m}", address = "{a}", scope = "{s}" }},\n' for n, m, a, s in targets
    )
    path = folder / "agent.toml"
    path.write_text(
        '[identity]\nprovince = "08"\ncommune = "02473"\nhost = "pc-footprint"\nrole = "pc"\n'
        f'[mqtt]\nhost = "{WAN}"\nport = {relay_port}\n[spool]\npath = "{folder / "spool.sqlite"}"\n'
        f"[probe]\ntargets = [\n{lines}]\n"
        f'[peripherals]\nsysfs_root = "{USB_FIXTURE}"\n'
    )
    return path


@dataclass
class SpoolSamples:
    """The agent's spool read once a second in the window: reports held, and of them sent and unacknowledged."""

    path: Path
    depths: list[int] = field(default_factory=list)
    awaiting: list[int] = field(default_factory=list)

    def sample(self) -> None:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=1)) as db:
                depth, sent = db.execute("SELECT count(*), count(sent) FROM outbox").fetchone()
        except sqlite3.Error:
            return
        self.depths.append(int(depth))
        self.awaiting.append(int(sent))

    def sequence_bytes(self) -> int:
        """What ``seq`` and ``stream`` add to a report now (the number grows a digit now and then)."""
        with contextlib.closing(sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)) as db:
            top = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbox'").fetchone()
            stream = db.execute("SELECT value FROM meta WHERE name = 'stream'").fetchone()
        return len(f'"seq":{top[0] if top else 1},"stream":"{stream[0] if stream else ""}",')


@dataclass
class Window:
    """CPU and socket counters at both ends of the measured window."""

    start: float
    end: float
    cpu_start: dict[str, float] = field(default_factory=dict)
    cpu_end: dict[str, float] = field(default_factory=dict)
    threads_start: dict[str, dict[int, int]] = field(default_factory=dict)
    threads_end: dict[str, dict[int, int]] = field(default_factory=dict)
    accounts_start: dict[str, int] = field(default_factory=dict)
    accounts_end: dict[str, int] = field(default_factory=dict)
    tcp: list[TcpCounters | None] = field(default_factory=list)
    taken: list[float] = field(default_factory=list)  # when the start and end samples were taken


def measure(
    usages: dict[str, Usage],
    clocks: ThreadClocks,
    accounts: CpuAccounts,
    relay: CountingRelay,
    exporter_port: int,
    started: float,
    spool: SpoolSamples,
    line: EmulatedLine,
) -> tuple[Window, list[Scrape]]:
    """Sample memory and the spool every second and scrape every 15 s until the window closes."""
    window = Window(started + WARMUP_S, started + WARMUP_S + DURATION_S)
    scrapes: list[Scrape] = []
    next_scrape = started + SCRAPE_INTERVAL_S / 2  # halfway between window edges too
    while (now := time.monotonic()) < window.end + SAMPLE_EVERY_S:
        for usage in usages.values():
            usage.sample()
        if window.start <= now < window.end:
            spool.sample()
        if now >= window.start and not window.cpu_start:
            window.cpu_start, window.threads_start = cpu_sample(usages), clocks.snapshot()
            window.accounts_start.update(accounts.read())
            window.tcp.append(tcp_counters(relay.port, line))
            window.taken.append(now)
        if now >= window.end and not window.cpu_end:
            window.cpu_end, window.threads_end = cpu_sample(usages), clocks.snapshot()
            window.accounts_end.update(accounts.read())
            window.tcp.append(tcp_counters(relay.port, line))
            window.taken.append(now)
        if now >= next_scrape:
            scrapes.append(scrape(exporter_port))
            next_scrape += SCRAPE_INTERVAL_S
        time.sleep(max(0.0, min(now + SAMPLE_EVERY_S, next_scrape) - time.monotonic()))
    return window, scrapes


def agent_bytes(packets: list[Packet], window: Window) -> dict[str, tuple[int, int, float]]:
    """Per packet kind the agent sent: count and bytes (whole run for once-a-day kinds, else window), MB/day.

    Peripherals reports come on a plug or unplug and hourly, so none falls in a short window: their
    day is the measured report size times ``PERIPHERAL_REPORTS_PER_DAY``."""
    span = window.taken[1] - window.taken[0]
    tally: dict[str, tuple[int, int, float]] = {}
    for kind in sorted({p.kind for p in packets}):
        if kind == "PUBLISH peripherals":
            every = [p.size for p in packets if p.kind == kind]
            tally[kind] = (len(every), sum(every), statistics.fmean(every) * PERIPHERAL_REPORTS_PER_DAY / MB)
            continue
        once = kind in ONCE_A_DAY
        chosen = [p for p in packets if p.kind == kind and (once or window.taken[0] <= p.at < window.taken[1])]
        sent = sum(p.size for p in chosen)
        tally[kind] = (len(chosen), sent, (sent if once else sent * DAY_S / span) / MB)
    return tally


def ping_group_range(line: EmulatedLine, method: str) -> None:
    """Open ICMP sockets to every group in the LAN (``icmp``, Debian's and Ubuntu's default) or to none (``system``)."""
    value = "0 2147483647" if method == "icmp" else "1 0"
    subprocess.run(line.in_lan(["sysctl", "-qw", f"net.ipv4.ping_group_range={value}"]), check=True, timeout=10)


def run(folder: Path, method: str) -> dict[str, float]:
    exporter_binary = require_binary("prometheus-node-exporter", "prometheus-node-exporter")
    with ProcessGroup() as group:
        broker, influxd = group.start(Mosquitto(folder / "broker")), group.start(Influxd(folder / "influxd"))
        influxd.create_database("footprint")
        # a real collector with its defaults (acknowledgements once a second), on the same broker
        group.start(ServedCollector(folder / "collector", broker, influxd, "footprint"))
        line = EmulatedLine(broker.port)
        http: ThreadingHTTPServer | None = None
        try:
            ping_group_range(line, method)
            with inside(line.province):
                relay, http = CountingRelay(broker.port, socket.create_server((WAN, 0))), target_server()
            relay.start()
            exporter_port = free_port()
            exporter = group.start(
                Process([exporter_binary, f"--web.listen-address=127.0.0.1:{exporter_port}"], folder, "node_exporter")
            )
            config = agent_config(folder, relay.port, http.server_address[1])
            argv = line.in_lan([sys.executable, "-m", "agent.cli", "run", "-c", str(config)])  # ip netns exec: same pid
            agent = group.start(Process(argv, folder, "agent"))
            wait_until(lambda: port_open(exporter_port), 10, f"node_exporter\n{exporter.log()}")
            wait_until(lambda: relay.first("CONNECT") is not None, 30, f"the agent's connection\n{agent.log()}")
            assert agent.proc is not None and exporter.proc is not None
            usages = {
                "agent": Usage(psutil.Process(agent.proc.pid)),
                "node_exporter": Usage(psutil.Process(exporter.proc.pid)),
            }
            spool = SpoolSamples(folder / "spool.sqlite")
            started = relay.first("CONNECT") or time.monotonic()
            pids = {"agent": agent.proc.pid, "node_exporter": exporter.proc.pid}
            clocks, accounts = ThreadClocks(pids), CpuAccounts(pids)
            clocks.start()
            try:
                window, scrapes = measure(usages, clocks, accounts, relay, exporter_port, started, spool, line)
            finally:
                clocks.stop()
                accounts.close()
            agent.stop()  # its offline status and DISCONNECT count as once-a-day traffic
            time.sleep(0.5)
            relay.stop()
            check_run(agent.log(), method, influxd)
            result = figures(usages, window, scrapes, agent_bytes(relay.upstream(), window)) | thread_figures(
                window, agent.proc.pid
            )
            return result | ack_figures(agent_bytes(relay.downstream(), window), result, spool)
        finally:
            if http is not None:
                http.shutdown()
            line.close()


def check_run(log: str, method: str, influxd: Influxd) -> None:
    """The run measured what it says: acknowledged reports, pings by ``method``, the gateway answering."""
    if ACKNOWLEDGING not in log:
        raise RuntimeError(f"the agent never heard an acknowledging collector:\n{log[-2000:]}")
    if f"method={method}" not in log:
        raise RuntimeError(f"the agent did not ping by {method}:\n{log[-2000:]}")
    gateway = influxd.query(
        "SELECT last(ok) AS ok, last(ping_method) AS how FROM probe WHERE target = 'gateway'", "footprint"
    )
    if not gateway or gateway[0]["ok"] != 1 or gateway[0]["how"] != method:
        raise RuntimeError(f"the gateway {GATEWAY} was not pinged by {method}: {gateway}")


def figures(
    usages: dict[str, Usage], window: Window, scrapes: list[Scrape], tally: dict[str, tuple[int, int, float]]
) -> dict[str, float]:
    span = window.taken[1] - window.taken[0]
    cpu_rate = {name: (window.cpu_end[name] - start) / span for name, start in window.cpu_start.items()}
    in_window = [s for s in scrapes if window.taken[0] <= s.at < window.taken[1]] or scrapes
    response = sum(s.response_bytes for s in in_window) / len(in_window)
    scrapes_per_day = DAY_S / SCRAPE_INTERVAL_S
    result = {
        "duration_s": round(span, 1),
        "agent_interval_s": INTERVAL_S,
        "agent_cycles": float(tally.get("PUBLISH metrics", (0, 0, 0.0))[0]),
        "agent_rss_max_mb": usages["agent"].rss_max / MB,
        "agent_rss_last_mb": usages["agent"].rss_last / MB,
        "agent_uss_last_mb": usages["agent"].uss_last / MB,
        "agent_cpu_ms_per_cycle_ping_children": cpu_rate["agent_children"] * INTERVAL_S * 1000,
        "agent_mb_sent_per_day": sum(mb for _c, _b, mb in tally.values()),
        "node_exporter_rss_max_mb": usages["node_exporter"].rss_max / MB,
        "node_exporter_rss_last_mb": usages["node_exporter"].rss_last / MB,
        "node_exporter_uss_last_mb": usages["node_exporter"].uss_last / MB,
        "node_exporter_scrapes": float(len(in_window)),
        "node_exporter_mb_sent_per_day": response * scrapes_per_day / MB,
        "node_exporter_mb_per_day_uncompressed": sum(s.body_bytes for s in in_window)
        / len(in_window)
        * scrapes_per_day
        / MB,
    }
    start_tcp, end_tcp = window.tcp
    if start_tcp is not None and end_tcp is not None:
        per_day = DAY_S / span
        result["agent_tcp_mb_sent_per_day"] = (end_tcp.bytes_sent - start_tcp.bytes_sent) * per_day / MB
        result["agent_tcp_segments_per_day"] = (end_tcp.segs_out - start_tcp.segs_out) * per_day
    for kind, (count, sent, mb) in tally.items():
        result[f"agent_bytes_per_day_{slug(kind)}"] = round(mb * MB)
        if kind in ("PUBLISH metrics", "PUBLISH probe", "PUBLISH peripherals") and count:
            result[f"agent_bytes_per_{slug(kind)}_report"] = round(sent / count)
    return {name: round(value, 3) for name, value in result.items()}


def thread_figures(window: Window, agent_pid: int) -> dict[str, float]:
    """CPU per cycle and per scrape from schedstat (nanoseconds), the agent's ``ping`` children
    added from /proc (ticks: they end before they could be read), and the agent per thread."""
    span = window.taken[1] - window.taken[0]
    per_cycle, per_scrape = INTERVAL_S / span, SCRAPE_INTERVAL_S / span
    agent = thread_ms(window.threads_start["agent"], window.threads_end["agent"])
    exporter = thread_ms(window.threads_start["node_exporter"], window.threads_end["node_exporter"])
    children_ms = (window.cpu_end["agent_children"] - window.cpu_start["agent_children"]) * 1000
    result = {
        "agent_cpu_ms_per_cycle_ticks": (window.cpu_end["agent"] - window.cpu_start["agent"]) * 1000 * per_cycle,
        "agent_cpu_ms_per_cycle": (sum(agent.values()) + children_ms) * per_cycle,
        "agent_cpu_ms_per_cycle_main_thread": agent.get(agent_pid, 0.0) * per_cycle,
        "agent_threads": float(len(agent)),
        "node_exporter_cpu_ms_per_scrape_ticks": (window.cpu_end["node_exporter"] - window.cpu_start["node_exporter"])
        * 1000
        * per_scrape,
        "node_exporter_cpu_ms_per_scrape": sum(exporter.values()) * per_scrape,
    }
    if window.accounts_start.keys() == window.accounts_end.keys() == {"agent", "node_exporter"}:
        result["agent_cpu_ms_per_cycle_threads"] = result["agent_cpu_ms_per_cycle"]
        result["node_exporter_cpu_ms_per_scrape_threads"] = result["node_exporter_cpu_ms_per_scrape"]
        used = {name: (window.accounts_end[name] - window.accounts_start[name]) / 1e6 for name in window.accounts_end}
        result["agent_cpu_ms_per_cycle"] = used["agent"] * per_cycle
        result["node_exporter_cpu_ms_per_scrape"] = used["node_exporter"] * per_scrape
        result["cpu_from_cgroup"] = 1.0
    result["agent_cpu_percent"] = result["agent_cpu_ms_per_cycle"] / INTERVAL_S / 10
    result["node_exporter_cpu_percent"] = result["node_exporter_cpu_ms_per_scrape"] / SCRAPE_INTERVAL_S / 10
    others = sorted((ms for tid, ms in agent.items() if tid != agent_pid), reverse=True)
    for rank, ms in enumerate(others[:4], 1):
        result[f"agent_cpu_ms_per_cycle_thread_{rank}"] = ms * per_cycle
    return {name: round(value, 3) for name, value in result.items()}


def ack_figures(
    received: dict[str, tuple[int, int, float]], sent: dict[str, float], spool: SpoolSamples
) -> dict[str, float]:
    """Bytes the agent receives a day, what acknowledgements cost in both directions, and the spool's depth."""
    per_day = DAY_S / INTERVAL_S + DAY_S / PROBE_INTERVAL_S + PERIPHERAL_REPORTS_PER_DAY  # numbered reports a day
    acks_in = received.get("PUBLISH ack", (0, 0, 0.0))[2]
    pubacks_out = sent.get("agent_bytes_per_day_puback", 0.0) / MB  # the agent's PUBACKs are for acks only
    numbering = spool.sequence_bytes() * per_day / MB
    result = {
        "agent_mb_received_per_day": sum(mb for _c, _b, mb in received.values()),
        "agent_acks_per_day": received.get("PUBLISH ack", (0, 0, 0.0))[0] * DAY_S / sent["duration_s"],
        "agent_ack_mb_received_per_day": acks_in,
        "agent_ack_mb_sent_per_day": pubacks_out + numbering,
        "agent_ack_bytes_per_report_numbering": float(spool.sequence_bytes()),
        "agent_spool_depth_max": float(max(spool.depths, default=0)),
        "agent_spool_depth_mean": statistics.fmean(spool.depths) if spool.depths else 0.0,
        "agent_spool_awaiting_ack_max": float(max(spool.awaiting, default=0)),
        "agent_spool_samples": float(len(spool.depths)),
    }
    for kind, (count, size, mb) in received.items():
        result[f"agent_bytes_received_per_day_{slug(kind)}"] = round(mb * MB)
        if kind == "PUBLISH ack" and count:
            result["agent_bytes_per_ack"] = round(size / count)
    return {name: round(value, 3) for name, value in result.items()}


def slug(kind: str) -> str:
    return kind.lower().removeprefix("publish ").replace(" ", "_")


def report(result: dict[str, float]) -> None:
    rows = [
        ("RSS max (MB)", "agent_rss_max_mb", "node_exporter_rss_max_mb", "<= 30"),
        ("RSS at end (MB)", "agent_rss_last_mb", "node_exporter_rss_last_mb", ""),
        ("USS at end (MB)", "agent_uss_last_mb", "node_exporter_uss_last_mb", ""),
        ("CPU per cycle / scrape (ms)", "agent_cpu_ms_per_cycle", "node_exporter_cpu_ms_per_scrape", "< 8"),
        (
            "  the same in 10 ms ticks (ms)",
            "agent_cpu_ms_per_cycle_ticks",
            "node_exporter_cpu_ms_per_scrape_ticks",
            "",
        ),
        (
            "  the same per thread (ms)",
            "agent_cpu_ms_per_cycle_threads",
            "node_exporter_cpu_ms_per_scrape_threads",
            "",
        ),
        ("CPU average (% of a core)", "agent_cpu_percent", "node_exporter_cpu_percent", ""),
        ("bytes sent per day (MB)", "agent_mb_sent_per_day", "node_exporter_mb_sent_per_day", "< 5"),
    ]
    print(
        f"agent footprint over {result['duration_s']} s (agent interval {result['agent_interval_s']:g} s, "
        f"{result['agent_cycles']:g} cycles; node_exporter scraped every {SCRAPE_INTERVAL_S:g} s, "
        f"{result['node_exporter_scrapes']:g} scrapes); MB = 10^6 bytes"
    )
    print(f"  {'metric':<30} {'agent':>10} {'node_exporter':>14} {'target':>8}")
    for label, agent_key, exporter_key, target in rows:
        if agent_key in result:
            print(f"  {label:<30} {result[agent_key]:>10.3f} {result[exporter_key]:>14.3f} {target:>8}")
    print(
        "  agent CPU per cycle = CPU rate x interval (metrics, probes with their ping children, MQTT);"
        " node_exporter per scrape = CPU rate x 15 s"
    )
    print(
        f"  of which ping children {result['agent_cpu_ms_per_cycle_ping_children']:.1f} ms per cycle;"
        + (
            " CPU from each process's own cgroup (ns, its ended threads and children included)"
            if result.get("cpu_from_cgroup")
            else " CPU from /proc/PID/task/*/schedstat (ns), ping children from /proc in 10 ms ticks"
        )
    )
    threads = [result[k] for k in sorted(result) if k.startswith("agent_cpu_ms_per_cycle_thread_")]
    main_ms = result["agent_cpu_ms_per_cycle_main_thread"]
    print(
        f"  agent per thread ({result['agent_threads']:.0f} ran): main {main_ms:.2f} ms per cycle;"
        f" the busiest others {', '.join(f'{ms:.2f}' for ms in threads)} ms"
    )
    print(
        f"  node_exporter uncompressed: {result['node_exporter_mb_per_day_uncompressed']:.3f} MB/day"
        " (Prometheus asks for gzip)"
    )
    if "agent_tcp_mb_sent_per_day" in result:
        wire = result["agent_mb_sent_per_day"] + result["agent_tcp_segments_per_day"] * TCP_IP_HEADER_BYTES / MB
        print(
            f"  agent socket (kernel counters, window only): {result['agent_tcp_mb_sent_per_day']:.3f} MB/day in "
            f"{result['agent_tcp_segments_per_day']:.0f} segments/day; with TCP/IPv4 headers about {wire:.3f} MB/day"
        )
    once = {slug(kind) for kind in ONCE_A_DAY}
    print("  agent bytes sent per day by MQTT packet (once a day: connect, status, inventory, disconnect):")
    for key, sent in result.items():
        if key.startswith("agent_bytes_per_day_"):
            name = key.removeprefix("agent_bytes_per_day_")
            size = result.get(f"agent_bytes_per_{name}_report")
            each = f", {size:.0f} bytes each" if size else ""
            print(f"    {name:<12} {sent:>10.0f} bytes/day{'  (once a day)' if name in once else each}")
    if "agent_bytes_per_day_peripherals" in result:
        print(
            f"  peripherals: 4 devices reported, {PERIPHERAL_REPORTS_PER_DAY} reports a day assumed"
            f" (hourly, and {PLUGS_PER_DAY} plugs and unplugs)"
        )
    if "agent_mb_received_per_day" in result:
        print(
            f"  agent bytes received per day: {result['agent_mb_received_per_day']:.3f} MB, of which acknowledgements"
            f" {result['agent_ack_mb_received_per_day']:.3f} MB ({result['agent_acks_per_day']:.0f} a day,"
            f" {result.get('agent_bytes_per_ack', 0):.0f} bytes each)"
        )
        print(
            f"  acknowledgements cost the agent {result['agent_ack_mb_sent_per_day']:.3f} MB/day sent (its PUBACKs"
            f" for them, and seq + stream: {result['agent_ack_bytes_per_report_numbering']:.0f} bytes per report)"
        )
        print(
            f"  spool over {result['agent_spool_samples']:.0f} samples:"
            f" depth max {result['agent_spool_depth_max']:.0f}, mean {result['agent_spool_depth_mean']:.2f};"
            f" sent and awaiting an ack max {result['agent_spool_awaiting_ack_max']:.0f}"
        )


PING_METHODS = ("icmp", "system")
COMPARED = ("agent_cpu_ms_per_cycle", "agent_cpu_ms_per_cycle_ping_children", "node_exporter_cpu_ms_per_scrape")


def main() -> dict[str, float]:
    only = os.environ.get("BENCH_FOOTPRINT_PING", "")
    runs = {}
    for method in [only] if only in PING_METHODS else PING_METHODS:
        with tempfile.TemporaryDirectory(prefix="bench-footprint-") as folder:
            runs[method] = run(Path(folder), method)
    result = runs.get("icmp") or runs["system"]
    if "icmp" in runs and "system" in runs:  # the system ping's run: its CPU only, beside the full icmp run
        result = result | {f"system_ping_{key}": runs["system"][key] for key in COMPARED}
    report(result)
    for method, figures_of in runs.items():
        print(
            f"  ping by {method}: agent {figures_of['agent_cpu_ms_per_cycle']:.1f} ms per 30 s cycle (gateway and"
            f" 4 targets; {figures_of['agent_cpu_ms_per_cycle_ping_children']:.1f} ms of it ping children),"
            f" node_exporter {figures_of['node_exporter_cpu_ms_per_scrape']:.1f} ms per scrape in the same run"
        )
    return result


if __name__ == "__main__":
    main()
