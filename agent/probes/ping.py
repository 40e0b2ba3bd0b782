"""Ping probe: ICMP echo from inside the agent, parsed into RTT, jitter and loss.

Forking ``ping`` for every target every minute was a quarter of the agent's CPU, so the echo
requests go out through icmplib's unprivileged ICMP datagram sockets, from this process. Linux
allows those sockets only to the groups in ``net.ipv4.ping_group_range``; where this user is
outside it, the system ``ping`` (iputils) runs instead. Both give the same fields, jitter being
the standard deviation of the RTTs (ping's ``mdev``), and ``ping_method`` says which ran:
``icmp`` or ``system``. Requests go out every 0.2 s whatever the replies, and the last one waits
``timeout_s`` at most, as ``ping -i 0.2 -W`` does, so a dead target costs the same time either way.
On Windows icmplib needs an administrator's raw socket, which the service (LocalSystem) has; an
agent run by an ordinary user falls back to ``ping.exe`` (``agent.windows.ping``, its own parser).

An echo request is cheap here: each target's address is looked up once a round (icmplib's ``send``
calls ``getaddrinfo`` for every echo) and the payload is a fixed 56 bytes, as ``ping``'s is
(icmplib draws a random one per echo). On Linux's datagram ICMP sockets the kernel writes the
identifier and the checksum itself, so the request is packed once per sequence number and sent
on the socket icmplib opened (``ICMPSocket.sock``); elsewhere (raw sockets) icmplib's ``send``
builds it, with the fixed payload.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import struct
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Union

import icmplib
from icmplib.utils import unique_identifier

Result = Dict[str, Union[float, str]]  # typing's names: this alias is evaluated at run time on 3.8

INTERVAL_S = 0.2
ICMP, SYSTEM = "icmp", "system"
ECHO_REPLY = (0, 129)  # ICMPv4 and ICMPv6 echo reply types
ECHO_REQUEST = {socket.AF_INET: 8, socket.AF_INET6: 128}
PAYLOAD = bytes(range(0x10, 0x10 + 56))  # 56 bytes, as ping sends (its pattern after the timestamp)

SUMMARY_RE = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")
RTT_RE = re.compile(r"= ([\d.]+)/([\d.]+)/([\d.]+)/([\d.]+) ms")

log = logging.getLogger("commune_agent.probe")
_last_method = ""


def ping(address: str, count: int, timeout_s: float) -> Result:
    """``count`` echo requests 0.2 s apart; ``ok`` when at least one answered."""
    return ping_many([address], count, timeout_s)[address]


def ping_many(addresses: list[str], count: int, timeout_s: float) -> dict[str, Result]:
    """Every address pinged at once, as ``ping`` does one: by ICMP sockets, or by the system ``ping``."""
    unique = list(dict.fromkeys(addresses))
    try:
        results = icmp_ping_many(unique, count, timeout_s)
    except icmplib.SocketPermissionError:
        _note_method(SYSTEM)
        one = system_fallback(sys.platform)
        with ThreadPoolExecutor(max_workers=len(unique), thread_name_prefix="system-ping") as pool:
            return dict(zip(unique, pool.map(lambda address: one(address, count, timeout_s), unique)))
    _note_method(ICMP)
    return results


def system_fallback(platform: str) -> Callable[[str, int, float], Result]:
    """The system ping for where ICMP sockets are refused: iputils' on Linux, ``ping.exe`` on Windows."""
    return windows_system_ping if platform == "win32" else system_ping


def windows_system_ping(address: str, count: int, timeout_s: float) -> Result:
    """``ping.exe`` (``agent.windows.ping`` reads its localized output), reported as the other methods are."""
    from agent.windows.ping import ping_exe  # Windows only; Linux never imports it

    started = time.monotonic()
    sent, rtts, error = ping_exe(address, count, timeout_s)
    result: Result = {"ping_method": SYSTEM, "duration_ms": (time.monotonic() - started) * 1000, **summary(sent, rtts)}
    return {**result, "ok": 0.0, "error": error} if error else {**result, "ok": 1.0}


def _note_method(method: str) -> None:
    global _last_method
    if method != _last_method:
        _last_method = method
        why = "ICMP socket" if method == ICMP else "ICMP sockets not permitted (ping_group_range; Windows: no admin)"
        log.info("ping method", extra={"method": method, "why": why})


def summary(sent: int, rtts: list[float]) -> Result:
    """The fields both methods report, from what was sent and the RTTs (ms) that came back."""
    received = len(rtts)
    result: Result = {
        "sent": float(sent),
        "received": float(received),
        "loss_percent": 100.0 * (sent - received) / sent if sent else 100.0,
    }
    if rtts:
        mean = sum(rtts) / received
        mdev = math.sqrt(max(0.0, sum(rtt * rtt for rtt in rtts) / received - mean * mean))
        result.update(rtt_min_ms=min(rtts), rtt_avg_ms=mean, rtt_max_ms=max(rtts), jitter_ms=mdev)
    return result


def icmp_ping_many(addresses: list[str], count: int, timeout_s: float) -> dict[str, Result]:
    """Echo requests through unprivileged ICMP sockets, one per address family, each 0.2 s tick
    sending to every address (so the agent wakes 10 times a round, not 10 times a target); raises
    SocketPermissionError where such sockets are not allowed."""
    started = time.monotonic()
    results: dict[str, Result] = {}
    given: dict[str, list[str]] = {}  # resolved address -> the addresses (or names) it stands for
    for address in addresses:
        try:
            resolved = icmplib.resolve(address)[0] if icmplib.is_hostname(address) else address
        except icmplib.NameLookupError:
            results[address] = {"ping_method": ICMP, "ok": 0.0, "error": "nxdomain", "duration_ms": 0.0}
            continue
        given.setdefault(resolved, []).append(address)
    echoes = {target: _Echo() for target in given}
    for family in (
        [t for t in given if not icmplib.is_ipv6_address(t)],
        [t for t in given if icmplib.is_ipv6_address(t)],
    ):
        if family:
            _ping_family(family, echoes, count, timeout_s)
    duration_ms = (time.monotonic() - started) * 1000
    for target, echo in echoes.items():
        for address in given[target]:
            results[address] = echo.result(duration_ms)
    return results


def _ping_family(targets: list[str], echoes: dict[str, _Echo], count: int, timeout_s: float) -> None:
    socket_class = icmplib.ICMPv6Socket if icmplib.is_ipv6_address(targets[0]) else icmplib.ICMPv4Socket
    with socket_class(privileged=False) as sock:
        wire = _Wire(sock)
        for target in targets:
            echoes[target].address = wire.address_of(target, echoes[target])
        for sequence in range(count):
            for target in targets:
                echoes[target].send(wire, target, sequence)
            last = sequence == count - 1
            deadline = time.monotonic() + (timeout_s if last else INTERVAL_S)  # a stepped wall clock never moves it
            _receive(sock, [echoes[target] for target in targets], echoes, deadline)
            if not last:  # all answered early: wait out the interval
                time.sleep(max(0.0, deadline - time.monotonic()))


def _receive(sock: Any, waiting: list[_Echo], echoes: dict[str, _Echo], deadline: float) -> None:
    """Replies, each to the echo of the address it came from, until every request sent so far has
    one or until ``deadline`` (``time.monotonic``)."""
    while not all(echo.complete for echo in waiting):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return
        try:
            reply = sock.receive(None, remaining)
        except icmplib.TimeoutExceeded:
            return
        except icmplib.ICMPLibError:
            for failed in waiting:
                failed.error = "ping_failed"
            return
        replied = echoes.get(reply.source)
        if replied is not None:  # an error from a router names the router, not the target: left out
            replied.match(reply)


class _Wire:
    """Sends echo requests on one icmplib socket: packed once per sequence number where the kernel
    fills in the identifier and checksum (Linux datagram sockets), through icmplib's ``send`` elsewhere."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self._kernel_fills = sys.platform.startswith("linux") and not sock.is_privileged and sock.sock is not None
        self._family = socket.AF_INET6 if isinstance(sock, icmplib.ICMPv6Socket) else socket.AF_INET
        self._ident = unique_identifier()  # what a raw socket sends; a datagram socket's is its port
        self._bound = False  # a datagram socket gets its port (the identifier) at its first send
        self._packet = b""
        self._sequence = -1

    def address_of(self, target: str, echo: _Echo) -> Any:
        """The socket address of ``target``, looked up once a round; None (and the echo's error) when it fails."""
        try:
            return socket.getaddrinfo(target, None, self._family, socket.SOCK_DGRAM)[0][4]
        except OSError:
            echo.error = "ping_failed"
            return None

    def send(self, target: str, address: Any, sequence: int) -> tuple[int, float]:
        """One echo request; returns its identifier and the time it left. Raises ICMPLibError."""
        if not self._kernel_fills:
            request = icmplib.ICMPRequest(destination=target, id=self._ident, sequence=sequence, payload=PAYLOAD)
            self._sock.send(request)
            return request.id, request.time
        if sequence != self._sequence:
            header = struct.pack("!2B3H", ECHO_REQUEST[self._family], 0, 0, 0, sequence)
            self._packet, self._sequence = header + PAYLOAD, sequence
        sent_at = time.time()
        try:
            self._sock.sock.sendto(self._packet, address)
        except OSError as exc:
            raise icmplib.ICMPSocketError(str(exc)) from exc
        if not self._bound:
            self._ident, self._bound = self._sock.sock.getsockname()[1], True
        return self._ident, sent_at


class _Echo:
    """The requests to one address and the replies matched to them by identifier and sequence."""

    def __init__(self) -> None:
        self.sent_at: dict[int, float] = {}
        self.rtt_ms: dict[int, float] = {}
        self.ident: int | None = None
        self.error = ""
        self.address: Any = None  # the socket address, looked up once a round

    @property
    def complete(self) -> bool:
        return len(self.rtt_ms) == len(self.sent_at)

    def result(self, duration_ms: float) -> Result:
        done: Result = {
            "ping_method": ICMP,
            **summary(len(self.sent_at), [self.rtt_ms[s] for s in sorted(self.rtt_ms)]),
        }
        done["duration_ms"] = duration_ms
        if self.rtt_ms:
            return {**done, "ok": 1.0}
        return {**done, "ok": 0.0, "error": self.error or "timeout"}

    def send(self, wire: _Wire, target: str, sequence: int) -> None:
        if self.address is None:  # its lookup failed
            return
        try:
            self.ident, self.sent_at[sequence] = wire.send(target, self.address, sequence)
        except icmplib.ICMPLibError as exc:  # e.g. no route: the line or the LAN is down
            text = str(exc).lower()
            self.error = "unreachable" if "unreachable" in text or "no route" in text else "ping_failed"

    def match(self, reply: Any) -> None:
        if reply.id != self.ident or reply.sequence not in self.sent_at or reply.sequence in self.rtt_ms:
            return  # another process's echo (raw sockets see them all), or a duplicate
        if reply.type in ECHO_REPLY:
            self.rtt_ms[reply.sequence] = (reply.time - self.sent_at[reply.sequence]) * 1000
        else:  # destination unreachable, time exceeded from the target itself
            self.error = "unreachable"


def system_ping(address: str, count: int, timeout_s: float) -> Result:
    """The system ``ping`` (iputils), for where this user may not open ICMP sockets."""
    started = time.monotonic()
    argv = ["ping", "-n", "-q", "-c", str(count), "-i", str(INTERVAL_S), "-W", str(max(1, int(timeout_s))), address]
    method: Result = {"ping_method": SYSTEM}
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=count * 0.2 + timeout_s + 5, check=False)
    except FileNotFoundError:
        return {**method, "ok": 0.0, "error": "no_ping_binary"}
    except subprocess.TimeoutExpired:
        return {**method, "ok": 0.0, "error": "timeout", "sent": float(count), "received": 0.0, "loss_percent": 100.0}
    result: Result = {**method, "duration_ms": (time.monotonic() - started) * 1000}
    counts = SUMMARY_RE.search(done.stdout)
    if counts is None:
        return {**result, "ok": 0.0, "error": classify(done.stderr)}
    sent, received = float(counts.group(1)), float(counts.group(2))
    result.update(sent=sent, received=received, loss_percent=100.0 * (sent - received) / sent if sent else 100.0)
    rtt = RTT_RE.search(done.stdout)
    if rtt is not None:
        low, avg, high, mdev = (float(rtt.group(i)) for i in range(1, 5))
        result.update(rtt_min_ms=low, rtt_avg_ms=avg, rtt_max_ms=high, jitter_ms=mdev)
    if received == 0:
        return {**result, "ok": 0.0, "error": "timeout"}
    return {**result, "ok": 1.0}


def classify(stderr: str) -> str:
    text = stderr.lower()
    if "name or service not known" in text or "temporary failure in name resolution" in text:
        return "nxdomain"
    if "unreachable" in text:
        return "unreachable"
    if "operation not permitted" in text or "permission denied" in text:
        return "not_permitted"
    return "ping_failed"
