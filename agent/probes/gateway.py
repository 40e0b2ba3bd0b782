"""The default route from /proc/net/route (Linux): its gateway address and its network interface."""

from __future__ import annotations

import socket
import struct
from pathlib import Path

ROUTES = Path("/proc/net/route")
RTF_GATEWAY = 2


def _default_route(route_file: Path) -> list[str] | None:
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 4 and fields[1] == "00000000":
            return fields
    return None


def default_gateway(route_file: Path = ROUTES) -> str | None:
    """The default gateway's address; None when there is no default route through a gateway."""
    route = _default_route(route_file)
    if route is None or not int(route[3], 16) & RTF_GATEWAY:
        return None
    return socket.inet_ntoa(struct.pack("<L", int(route[2], 16)))


def default_interface(route_file: Path = ROUTES) -> str | None:
    """The NIC that holds the default route, or None."""
    route = _default_route(route_file)
    return route[0] if route else None
