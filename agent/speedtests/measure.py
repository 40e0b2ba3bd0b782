"""One speed test with speedtest-cli: to speedtest.net (``internet``) or to the collector's
Speedtest Mini endpoint over the government WAN (``wan``).

speedtest-cli always downloads speedtest.net's configuration when it starts; for the WAN test
that would fail (or leak to the internet), so ``LocalSpeedtest`` supplies a local configuration.
"""

from __future__ import annotations

from typing import Any, Dict, Union

import speedtest

Result = Dict[str, Union[float, str]]  # typing's names: this alias is evaluated at run time on 3.8

DOWNLOAD_SIDES = [350, 500, 750, 1000, 1500, 2000, 2500, 3000, 3500, 4000]
# speedtest.net's upload sizes without 65536: speedtest-cli 2.1.3 declares that one as 65536 bytes
# but sends 65529 (its filler is rounded down). The collector's endpoint now answers such an upload
# once it has been quiet for ``[speedtest] upload_idle_s`` (2 s), but that wait counts as upload
# time: with it back, a 40 Mb/s endpoint measured 25.2 Mb/s up instead of 40.0 (docs/en/speed-tests.md).
UPLOAD_SIZES = [32768, 131072, 262144, 524288, 1048576, 7340032]


class LocalSpeedtest(speedtest.Speedtest):  # type: ignore[misc]
    """speedtest-cli without the call home: the configuration comes from us."""

    def __init__(self, local_config: dict[str, Any], timeout: float) -> None:
        self._local_config = local_config
        super().__init__(timeout=timeout)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.config
        config.update(self._local_config)
        self.lat_lon = (0.0, 0.0)
        return config


def local_config(download_sides: list[int], download_count: int, upload_sizes: list[int], upload_count: int,
                 threads: int, length_s: float) -> dict[str, Any]:  # fmt: skip
    return {
        "client": {"ip": "", "isp": "", "lat": "0", "lon": "0", "country": "VN"},
        "ignore_servers": [],
        "sizes": {"download": download_sides, "upload": upload_sizes},
        "counts": {"download": download_count, "upload": upload_count},
        "threads": {"download": threads, "upload": threads},
        "length": {"download": length_s, "upload": length_s},
        "upload_max": upload_count * len(upload_sizes),
    }


def run_speedtest(mode: str, wan_url: str, settings: dict[str, Any], timeout_s: float) -> Result:
    """Measure; any failure is returned as data (``ok`` 0 and an ``error`` class)."""
    try:
        if mode == "wan":
            if not wan_url:
                return {"ok": 0.0, "error": "no_wan_url"}
            tester = LocalSpeedtest(settings, timeout_s)
            tester.get_best_server(tester.set_mini_server(wan_url))
        else:
            tester = speedtest.Speedtest(timeout=timeout_s)
            tester.get_servers()
            tester.get_best_server()
        tester.download()
        tester.upload(pre_allocate=False)
    except speedtest.ConfigRetrievalError:
        return {"ok": 0.0, "error": "config_unreachable"}
    except (speedtest.SpeedtestMiniConnectFailure, speedtest.InvalidSpeedtestMiniServer):
        return {"ok": 0.0, "error": "server_unreachable"}
    except (speedtest.NoMatchedServers, speedtest.ServersRetrievalError, speedtest.SpeedtestBestServerFailure):
        return {"ok": 0.0, "error": "no_server"}
    except (speedtest.SpeedtestException, OSError) as exc:
        return {"ok": 0.0, "error": type(exc).__name__[:40]}
    results = tester.results
    server = results.server or {}
    ok = results.download > 0 and results.upload > 0
    result: Result = {
        "ok": 1.0 if ok else 0.0,
        "download_mbps": results.download / 1e6,
        "upload_mbps": results.upload / 1e6,
        "ping_ms": float(results.ping),
        "bytes_sent": float(results.bytes_sent),
        "bytes_received": float(results.bytes_received),
        "bytes_used": float(results.bytes_sent + results.bytes_received),
        "server": f"{server.get('sponsor', '')} {server.get('name', '')}".strip()[:100],
    }
    if not ok:
        result["error"] = "no_throughput"
    return result
