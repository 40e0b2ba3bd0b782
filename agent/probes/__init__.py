"""Line-quality probes: ping, DNS and HTTP(S) to configured targets and to the default gateway.

Each target gives one item of the ``probe`` report, labelled by its name. A failure is data
(``ok`` 0 and an ``error`` class), never an exception. Targets run in parallel so one slow
target does not delay the others; the ping targets go out together (``ping_many``), one socket
waking 10 times a round rather than once per target and packet.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from agent.config import ProbeConfig, ProbeTarget
from agent.probes.dns import resolve
from agent.probes.gateway import default_gateway
from agent.probes.http import fetch
from agent.probes.ping import ping, ping_many

GATEWAY = "gateway"


def run_target(target: ProbeTarget, config: ProbeConfig) -> dict[str, float | str]:
    if target.method == "ping":
        result = ping(target.address, config.ping_count, config.timeout_s)
    elif target.method == "dns":
        result = resolve(target.address, config.timeout_s)
    else:
        result = fetch(target.address, config.timeout_s)
    return {"target": target.name, "method": target.method, "scope": target.scope, **result}


class ProbeBuilder:
    """Builds the ``probe`` report: every configured target, plus the gateway when there is one."""

    def __init__(self, config: ProbeConfig) -> None:
        self._config = config
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="probe")

    def targets(self) -> list[ProbeTarget]:
        targets = list(self._config.targets)
        gateway = default_gateway() if self._config.gateway else None
        if gateway is not None:
            targets.insert(0, ProbeTarget(GATEWAY, "ping", gateway, "gateway"))
        return targets

    def __call__(self) -> dict[str, Any]:
        targets = self.targets()
        if not targets:
            return {}
        pings = [t for t in targets if t.method == "ping"]
        pinged = self._pool.submit(
            lambda: ping_many([t.address for t in pings], self._config.ping_count, self._config.timeout_s)
        )
        others = {t.name: self._pool.submit(run_target, t, self._config) for t in targets if t.method != "ping"}
        by_address = pinged.result() if pings else {}
        items = [
            {"target": t.name, "method": t.method, "scope": t.scope, **by_address[t.address]}
            if t.method == "ping"
            else others[t.name].result()
            for t in targets
        ]
        return {"probe": items}
