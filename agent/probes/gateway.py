"""The default route: its gateway address and its network interface, one implementation per platform.

The gateway probe pings the default gateway (is the office LAN up?), and the speed test watches
the NIC holding the default route. Linux reads the kernel's table, ``/proc/net/route``: no child
process, a few hundred bytes. Windows parses ``route print -4`` in ``agent.windows.route``, a
module only Windows imports. With several default routes, the one with the lowest metric wins,
as the kernel's and Windows' own choice does.
"""

from __future__ import annotations

import socket
import struct
import sys
from pathlib import Path
from typing import NamedTuple

ROUTES = Path("/proc/net/route")
RTF_UP, RTF_GATEWAY = 1, 2


class DefaultRoute(NamedTuple):
    gateway: str | None  # None for a default route straight onto a link (no gateway)
    interface: str  # the NIC's name


def default_gateway() -> str | None:
    """The default gateway's address; None when there is no default route through a gateway."""
    route = default_route()
    return route.gateway if route else None


def default_interface() -> str | None:
    """The name of the NIC that holds the default route, or None."""
    route = default_route()
    return route.interface if route else None


def default_route() -> DefaultRoute | None:
    if sys.platform == "win32":
        from agent.windows.route import windows_default_route  # Linux never imports it

        found = windows_default_route()
        return DefaultRoute(*found) if found else None
    return linux_default_route()


def linux_default_route(route_file: Path = ROUTES) -> DefaultRoute | None:
    """The default route from the kernel's table (columns Iface, Destination, Gateway, Flags, ..., Metric, Mask)."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    best: tuple[int, DefaultRoute] | None = None
    for line in lines:
        fields = line.split()
        if len(fields) < 8 or fields[1] != "00000000" or fields[7] != "00000000":
            continue
        try:
            flags, metric, gateway = int(fields[3], 16), int(fields[6]), int(fields[2], 16)
        except ValueError:
            continue
        if not flags & RTF_UP:
            continue
        address = socket.inet_ntoa(struct.pack("<L", gateway)) if flags & RTF_GATEWAY else None
        if best is None or metric < best[0]:
            best = (metric, DefaultRoute(address, fields[0]))
    return best[1] if best else None
