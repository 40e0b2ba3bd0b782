"""The default route on Windows, from ``route print -4`` (Windows only; Linux reads /proc/net/route).

``route.exe`` prints localized titles ("Active Routes:", "Rutas activas:", "Itinéraires actifs :")
and localized words for an on-link gateway ("On-link", "En vínculo"), so the parser relies on the
layout only: blocks between lines of "=", the first block holding route rows is the active routes
(the persistent routes come after it), a row is destination, netmask, gateway, interface address,
metric. A default route has destination and netmask 0.0.0.0; one whose gateway is not an address
(on-link) has no gateway. The lowest metric wins, as in Windows' own choice.
"""

from __future__ import annotations

import ipaddress
import subprocess
import time
from typing import Optional, Tuple

RouteRow = Tuple[str, str, Optional[str], str, int]  # destination, netmask, gateway, interface address, metric


def _is_ipv4(text: str) -> bool:
    try:
        ipaddress.IPv4Address(text)
    except ValueError:
        return False
    return True


def _row(line: str) -> RouteRow | None:
    fields = line.split()
    if len(fields) < 5 or not (_is_ipv4(fields[0]) and _is_ipv4(fields[1]) and _is_ipv4(fields[-2])):
        return None
    try:
        metric = int(fields[-1])
    except ValueError:  # the persistent routes' "Default"
        return None
    gateway_words = fields[2:-2]  # one address, or a localized word or two for "on-link"
    gateway = gateway_words[0] if len(gateway_words) == 1 and _is_ipv4(gateway_words[0]) else None
    return fields[0], fields[1], gateway, fields[-2], metric


def active_routes(output: str) -> list[RouteRow]:
    """The rows of the first block of ``route print -4`` that holds routes: the active routes."""
    block: list[RouteRow] = []
    for line in output.splitlines():
        if line.strip().startswith("=" * 10):
            if block:
                return block
            continue
        row = _row(line)
        if row is not None:
            block.append(row)
    return block


def parse_default_route(output: str) -> tuple[str | None, str] | None:
    """(gateway or None, interface address) of the default route with the lowest metric, or None."""
    defaults = [row for row in active_routes(output) if row[0] == "0.0.0.0" and row[1] == "0.0.0.0"]
    if not defaults:
        return None
    best = min(defaults, key=lambda row: (row[2] is None, row[4]))  # a route through a gateway first
    return best[2], best[3]


def interface_name(address: str) -> str:
    """The adapter name psutil gives the NIC holding ``address`` (what the net collector reports)."""
    import psutil

    for name, addresses in psutil.net_if_addrs().items():
        if any(entry.address == address for entry in addresses):
            return name
    return address


CACHE_S = 300.0  # the gateway probe asks every minute; a child process that often is not worth it
_cache: list[tuple[float, tuple[str | None, str] | None]] = []


def windows_default_route() -> tuple[str | None, str] | None:
    """(gateway or None, NIC name) of the default route, looked up again at most every ``CACHE_S``."""
    now = time.monotonic()
    if not _cache or now - _cache[0][0] > CACHE_S:
        _cache[:] = [(now, _route_print())]
    return _cache[0][1]


def _route_print() -> tuple[str | None, str] | None:
    """Runs ``route print -4`` (no console window) and parses it; None when it cannot run."""
    try:
        done = subprocess.run(
            ["route", "print", "-4"],
            capture_output=True,
            timeout=10,
            check=False,
            creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parsed = parse_default_route(done.stdout.decode("utf-8", errors="replace"))  # addresses and digits are ASCII
    if parsed is None:
        return None
    return parsed[0], interface_name(parsed[1])
