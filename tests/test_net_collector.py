"""The NIC collector: what it reports, and the adapters it leaves out to keep reports small."""

from __future__ import annotations

from pathlib import Path

import psutil
from psutil._ntuples import snetio, snicstats
from psutil_fixtures import RecordedPsutil

from agent.collectors import net

ROUTE_HEADER = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"


def route_table(path: Path, default_nic: str) -> Path:
    """A /proc/net/route with the default route through ``default_nic`` and the LAN on eth0."""
    path.write_text(
        ROUTE_HEADER
        + f"{default_nic}\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        + "eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    )
    return path


def test_down_adapters_that_never_moved_a_byte_are_left_out(tmp_path: Path) -> None:
    full, unknown = psutil.NIC_DUPLEX_FULL, psutil.NIC_DUPLEX_UNKNOWN
    stats = {
        "eth0": snicstats(isup=True, duplex=full, speed=100, mtu=1500, flags="up,broadcast,running"),
        "wlan0": snicstats(isup=False, duplex=unknown, speed=0, mtu=1500, flags="broadcast"),  # down, used yesterday
        "ifb0": snicstats(isup=False, duplex=unknown, speed=0, mtu=1500, flags="broadcast"),  # down, never used
        # down, never used, but the default route
        "ppp0": snicstats(isup=False, duplex=unknown, speed=0, mtu=1492, flags="pointopoint"),
        "lo": snicstats(isup=True, duplex=unknown, speed=0, mtu=65536, flags="up,loopback,running"),
    }

    def io(moved: int) -> snetio:
        return snetio(bytes_sent=moved // 2, bytes_recv=moved, packets_sent=moved // 200, packets_recv=moved // 100,
                      errin=0, errout=0, dropin=0, dropout=0)  # fmt: skip

    counters = {"eth0": io(5_000_000), "wlan0": io(1_000), "ifb0": io(0), "ppp0": io(0), "lo": io(9_000)}
    ps = RecordedPsutil(nic_stats=stats, nic_io=counters)

    items = {
        item["nic"]: item for item in net.NetCollector(ps, route_table=route_table(tmp_path / "a", "eth0")).collect()
    }

    assert set(items) == {"eth0", "wlan0"}
    assert items["eth0"]["default_route"] == 1.0 and items["eth0"]["up"] == 1.0
    through_ppp0 = route_table(tmp_path / "b", "ppp0")
    assert "ppp0" in {
        item["nic"] for item in net.NetCollector(ps, route_table=through_ppp0).collect()
    }  # the route's NIC always counts
    assert items["wlan0"]["up"] == 0.0 and items["wlan0"]["rx_bytes_total"] == 1000.0
