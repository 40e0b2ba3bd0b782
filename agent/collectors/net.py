"""Per-NIC traffic, error and drop rates, link state and speed, and which NIC holds the default route.

Loopback, and adapters that are down and have never moved a byte, are left out. psutil, the
monotonic clock and the kernel's route table are passed in (the real ones by default), so tests pin
the output."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import psutil

from agent.collectors.psutil_api import PsutilLike
from agent.collectors.rates import RateTracker
from agent.labels import to_label
from agent.probes.gateway import linux_default_route

ROUTE_TABLE = Path("/proc/net/route")


def default_route_nic(route_table: Path = ROUTE_TABLE) -> str | None:
    """The interface of the IPv4 default route, read from the kernel's table; None if unknown."""
    route = linux_default_route(route_table)
    return route.interface if route else None


class NetCollector:
    section = "net"

    def __init__(
        self, ps: PsutilLike = psutil, clock: Callable[[], float] = time.monotonic, route_table: Path = ROUTE_TABLE
    ) -> None:
        self._ps = ps
        self._route_table = route_table
        self._rates = RateTracker(clock)

    def collect(self) -> list[dict[str, float | str]]:
        stats = self._ps.net_if_stats()
        counters = self._ps.net_io_counters(pernic=True)
        default_nic = default_route_nic(self._route_table)
        out: list[dict[str, float | str]] = []
        for nic, io in counters.items():
            stat = stats.get(nic)
            if stat is None or "loopback" in getattr(stat, "flags", "") or nic == "lo":
                continue
            if not stat.isup and io.bytes_recv == 0 and io.bytes_sent == 0 and nic != default_nic:
                continue  # an adapter that is down and never carried a byte says nothing, and costs bytes/day
            item: dict[str, float | str] = {
                "nic": to_label(nic),
                "up": 1.0 if stat.isup else 0.0,
                "speed_mbps": float(stat.speed),
                "default_route": 1.0 if nic == default_nic else 0.0,
                "rx_bytes_total": float(io.bytes_recv),
                "tx_bytes_total": float(io.bytes_sent),
            }
            item.update(
                self._rates.rates(
                    nic,
                    {
                        "rx_bytes_per_s": io.bytes_recv,
                        "tx_bytes_per_s": io.bytes_sent,
                        "rx_packets_per_s": io.packets_recv,
                        "tx_packets_per_s": io.packets_sent,
                        "rx_errors_per_s": io.errin,
                        "tx_errors_per_s": io.errout,
                        "rx_drops_per_s": io.dropin,
                        "tx_drops_per_s": io.dropout,
                    },
                )
            )
            out.append(item)
        return out
