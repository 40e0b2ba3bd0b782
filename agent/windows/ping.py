"""The system ``ping.exe`` on Windows, for where icmplib may not open its raw ICMP socket (Windows only).

On Windows icmplib needs an administrator's raw socket. The service runs as LocalSystem, which has
one; an agent run by an ordinary user (``commune-agent run`` from a console) has not, and then
``agent.probes.ping`` runs ``ping -n COUNT -w TIMEOUT_MS ADDRESS`` through this module instead,
which needs no privilege (``ping_method`` ``system``).

``ping.exe`` prints in the console's language and code page ("Reply from ...: bytes=32 time=12ms
TTL=117", "来自 ... 的回复: 字节=32 时间<1ms TTL=128"), so the parser reads the layout, not the
words, on the output decoded as ASCII (every OEM code page keeps ASCII's digits and signs):
- a reply is a line with ``TTL=``; its RTT is the number after the last ``=`` or ``<`` before it,
  followed by the localized unit ("ms", "мс"). "<1ms" is counted as 0.5 ms (``ping.exe`` prints
  whole milliseconds). A "Destination host unreachable" answer from a router has no TTL and is no
  reply, although ``ping.exe``'s own statistics count it as received;
- the statistics are the first line after the replies holding three ``= N`` counts (sent,
  received, lost; the round-trip line after it holds three too); its first count is what was sent.
Tested on outputs recorded on real Windows PCs (English and Chinese; see tests/test_windows.py).
``agent.probes.ping`` turns the outcome into the probe's fields, as for the other methods.
``ping.exe`` waits 1 s between echoes and has no interval option, so a round of COUNT echoes takes
about COUNT seconds, against 0.2 s apart for the in-process ping.
"""

from __future__ import annotations

import re
import subprocess

REPLY_RE = re.compile(r"[=<]\s?(\d+)\s?[^\s=<]*\s+TTL\s?=\s?\d+", re.IGNORECASE)
STATISTICS_RE = re.compile(r"=\s?(\d+)\D+=\s?(\d+)\D+=\s?(\d+)")
BELOW_ONE_MS = 0.5


def parse_output(raw: bytes, count: int) -> tuple[int, list[float]]:
    """(echoes sent, RTTs in ms of the replies) from ``ping.exe``'s output in any language."""
    text = raw.decode("ascii", errors="replace")
    sent, counted = count, False
    rtts: list[float] = []
    for line in text.splitlines():
        reply = REPLY_RE.search(line)
        if reply is not None:
            below_one = reply.group(0).startswith("<")  # "<1ms": the only value ping.exe prints after "<"
            rtts.append(BELOW_ONE_MS if below_one else float(reply.group(1)))
            continue
        statistics = STATISTICS_RE.search(line)
        if statistics is not None and not counted:
            sent, counted = int(statistics.group(1)), True
    return sent, rtts


def error_of(raw: bytes) -> str:
    """Why no reply came, as far as an English output says; "timeout" otherwise (other languages)."""
    text = raw.decode("ascii", errors="replace").lower()
    if "could not find host" in text:
        return "nxdomain"
    if "unreachable" in text:
        return "unreachable"
    return "timeout"


def outcome(raw: bytes, count: int) -> tuple[int, list[float], str]:
    """(echoes sent, RTTs in ms, error or "" when at least one reply came) from ``ping.exe``'s output."""
    sent, rtts = parse_output(raw, count)
    return sent, rtts, "" if rtts else error_of(raw)


def ping_exe(address: str, count: int, timeout_s: float) -> tuple[int, list[float], str]:
    """``count`` echoes by ``ping.exe`` (no console window): (sent, RTTs in ms, error or "")."""
    argv = ["ping", "-n", str(count), "-w", str(max(1, int(timeout_s * 1000))), address]
    try:
        done = subprocess.run(
            argv,
            capture_output=True,
            timeout=count * (1 + timeout_s) + 5,
            check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except FileNotFoundError:
        return count, [], "no_ping_binary"
    except subprocess.TimeoutExpired:
        return count, [], "timeout"
    return outcome(done.stdout, count)
