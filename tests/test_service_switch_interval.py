"""While the collector runs, a thread that holds the interpreter gives it up after 1 ms when another
wants it (``SWITCH_INTERVAL_S``; Python's default is 5 ms), so an API request does not wait 5 ms
behind each busy thread each time it needs the interpreter (nation scale). Stopping gives the
process Python's interval back. No broker or InfluxDB is needed: the service starts without them."""

from __future__ import annotations

import sys
from pathlib import Path

from realservices import free_port, write_toml

from collector.config import load_config
from collector.service import SWITCH_INTERVAL_S, CollectorService


def test_the_running_collector_switches_threads_every_millisecond_and_gives_the_interval_back(tmp_path: Path) -> None:
    config = write_toml(
        tmp_path / "collector.toml",
        {
            "state": {"path": str(tmp_path / "state.sqlite")},
            "mqtt": {"port": free_port()},
            "influxdb": {"url": f"http://127.0.0.1:{free_port()}"},
        },
    )
    before = sys.getswitchinterval()
    assert before != SWITCH_INTERVAL_S
    service = CollectorService(load_config(config))
    service.start()
    try:
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S == 0.001
    finally:
        service.stop()
    assert sys.getswitchinterval() == before
