"""The NIC collector: what it reports, and the adapters it leaves out to keep reports small."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from agent.collectors import net


def test_down_adapters_that_never_moved_a_byte_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    stats = {
        "eth0": SimpleNamespace(isup=True, speed=100, flags="up,broadcast,running"),
        "wlan0": SimpleNamespace(isup=False, speed=0, flags="broadcast"),  # down, used yesterday
        "ifb0": SimpleNamespace(isup=False, speed=0, flags="broadcast"),  # down, never used
        "ppp0": SimpleNamespace(isup=False, speed=0, flags="pointopoint"),  # down, never used, but the default route
        "lo": SimpleNamespace(isup=True, speed=0, flags="up,loopback,running"),
    }

    def io(moved: int) -> SimpleNamespace:
        return SimpleNamespace(bytes_recv=moved, bytes_sent=moved // 2, packets_recv=moved // 100,
                               packets_sent=moved // 200, errin=0, errout=0, dropin=0, dropout=0)  # fmt: skip

    counters = {"eth0": io(5_000_000), "wlan0": io(1_000), "ifb0": io(0), "ppp0": io(0), "lo": io(9_000)}
    monkeypatch.setattr(net.psutil, "net_if_stats", lambda: stats)
    monkeypatch.setattr(net.psutil, "net_io_counters", lambda pernic: counters)
    monkeypatch.setattr(net, "default_route_nic", lambda: "eth0")

    items = {item["nic"]: item for item in net.NetCollector().collect()}

    assert set(items) == {"eth0", "wlan0"}
    assert items["eth0"]["default_route"] == 1.0 and items["eth0"]["up"] == 1.0
    monkeypatch.setattr(net, "default_route_nic", lambda: "ppp0")
    assert "ppp0" in {item["nic"] for item in net.NetCollector().collect()}  # the route's NIC always counts
    assert items["wlan0"]["up"] == 0.0 and items["wlan0"]["rx_bytes_total"] == 1000.0
