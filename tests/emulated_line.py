"""A commune's line emulated with network namespaces, for tests that cut it (the tests run as root).

    office LAN (the PCs)  --veth--  commune router  --veth--  province (the line's far end)
    10.77.1.10/24                   10.77.1.1, 10.77.2.2      10.77.2.1 (wan), 10.77.3.1 (internet)

The PCs reach the province's broker only through the router: in the province namespace a TCP relay
listens on 10.77.2.1 and forwards to the test's broker on the host's loopback (it holds a socket in
each namespace). Cutting the line is what a dead line does at the commune: the router drops what it
forwards (``iptables -I FORWARD -j DROP``), while the LAN and the router itself (the PCs' gateway)
stay up, as FIELD-NOTES.md checked on 2026-11-29. Every address lies inside namespaces made here,
removed again by ``close`` (the namespaces take their veth pairs with them).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import socket
import subprocess
import threading
import uuid
from collections.abc import Iterator

CLONE_NEWNET = 0x40000000
LAN_PC, GATEWAY = "10.77.1.10", "10.77.1.1"
WAN, INTERNET = "10.77.2.1", "10.77.3.1"


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def inside(netns: str) -> Iterator[None]:
    """This thread in the named network namespace for the block (sockets made there stay there)."""
    libc = ctypes.CDLL(None, use_errno=True)
    here = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    there = os.open(f"/run/netns/{netns}", os.O_RDONLY)
    try:
        if libc.setns(there, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns into {netns}")
        try:
            yield
        finally:
            if libc.setns(here, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(here)
        os.close(there)


class Relay:
    """Forwards each TCP connection to ``listen`` (a socket made in another namespace) to a loopback
    port of the host, byte for byte in both directions, until either side closes."""

    def __init__(self, listen: socket.socket, port: int) -> None:
        self.listen, self.port = listen, port
        self.sockets: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self.listen.accept()
            except OSError:
                return  # closed
            try:
                far = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            except OSError:
                near.close()
                continue
            far.settimeout(None)
            self.sockets += [near, far]
            for a, b in ((near, far), (far, near)):
                threading.Thread(target=pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        self.listen.close()
        for s in self.sockets:
            s.close()


def pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for s in (source, sink):
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_RDWR)


class EmulatedLine:
    """The three namespaces, their links and routes, and a relay to ``broker_port`` on loopback."""

    def __init__(self, broker_port: int) -> None:
        tag = uuid.uuid4().hex[:6]
        self.lan, self.router, self.province = f"cm{tag}-lan", f"cm{tag}-rtr", f"cm{tag}-prv"
        self.made: list[str] = []
        self.relay: Relay | None = None
        try:
            self._build(tag)
            with inside(self.province):
                listen = socket.create_server((WAN, 0))
            self.relay = Relay(listen, broker_port)
            self.port = int(listen.getsockname()[1])
        except BaseException:
            self.close()
            raise

    def _build(self, tag: str) -> None:
        for ns in (self.lan, self.router, self.province):
            ip("netns", "add", ns)
            self.made.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        links = ((self.lan, f"{LAN_PC}/24", self.router, f"{GATEWAY}/24", f"v{tag}l"),
                 (self.router, "10.77.2.2/30", self.province, f"{WAN}/30", f"v{tag}p"))  # fmt: skip
        for near, near_addr, far, far_addr, name in links:
            ip("link", "add", f"{name}0", "netns", near, "type", "veth", "peer", "name", f"{name}1", "netns", far)
            for ns, dev, addr in ((near, f"{name}0", near_addr), (far, f"{name}1", far_addr)):
                ip("-n", ns, "addr", "add", addr, "dev", dev)
                ip("-n", ns, "link", "set", dev, "up")
        ip("-n", self.province, "addr", "add", f"{INTERNET}/32", "dev", "lo")
        ip("-n", self.lan, "route", "add", "default", "via", GATEWAY)
        ip("-n", self.router, "route", "add", "default", "via", WAN)
        ip("-n", self.province, "route", "add", "10.77.1.0/24", "via", "10.77.2.2")
        ip("netns", "exec", self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")

    def in_lan(self, argv: list[str]) -> list[str]:
        """A command line that runs ``argv`` on a PC of the office LAN."""
        return ["ip", "netns", "exec", self.lan, *argv]

    def cut(self) -> None:
        subprocess.run(["ip", "netns", "exec", self.router, "iptables", "-I", "FORWARD", "-j", "DROP"],
                       check=True, capture_output=True, timeout=10)  # fmt: skip

    def restore(self) -> None:
        subprocess.run(["ip", "netns", "exec", self.router, "iptables", "-D", "FORWARD", "-j", "DROP"],
                       check=True, capture_output=True, timeout=10)  # fmt: skip

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        for ns in reversed(self.made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10, check=False)
        self.made.clear()
