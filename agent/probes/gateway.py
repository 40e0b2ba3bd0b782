"""The default gateway's address, read from /proc/net/route (Linux); None when there is none."""

from __future__ import annotations

import socket
import struct
from pathlib import Path


def default_gateway(route_file: Path = Path("/proc/net/route")) -> str | None:
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 3 and fields[1] == "00000000" and int(fields[3], 16) & 2:  # RTF_GATEWAY
            return socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
    return None


def default_interface(route_file: Path = Path("/proc/net/route")) -> str | None:
    """The NIC that holds the default route, or None."""
    try:
        lines = route_file.read_text().splitlines()[1:]
    except OSError:
        return None
    for line in lines:
        fields = line.split()
        if len(fields) >= 2 and fields[1] == "00000000":
            return fields[0]
    return None
