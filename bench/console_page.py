"""Benchmark: the web console's commune page with a province's fleet loaded, beside ``/status`` in
the same run (the reference). Target: the commune page under 200 ms at p99.

Real Mosquitto, InfluxDB and ``commune-collector serve`` on loopback. The state file holds
Tuyên Quang's 124 communes with 25 PCs each (3,100 hosts, as a province has), a line per commune,
six areas and two items of equipment per commune; InfluxDB holds the 7 days the page's charts read
for every commune (``commune`` points every 10 minutes, a speed test every 3 hours, a probe every
hour: about 155,000 points). The PCs are known to the collector but send nothing (a load of 3,100
live agents is ``bench.province_scale``'s job): the snapshot the pages render has every host and
commune, and the collector's restart grace keeps them from turning into 3,100 alerts.

Signed in once through the console's own sign-in form, one client asks, in turns, for a commune
page (round robin over the 124 communes, so the first 124 find no cached history and query
InfluxDB: ``commune_cold``) and for ``/status`` (its first page, up to 200 communes), ``BENCH_CONSOLE_ROUNDS``
rounds (default 5: 620 commune pages and as many status pages). Figures: p50, p99 and max wall
time per page in ms, and the commune page's p99 over /status's. Run: ``python -m bench.console_page``.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.province_scale import DATABASE, TOKEN, ProvinceStack
from collector.config import InfluxSettings
from collector.ingest.influx import InfluxClient
from collector.ingest.lineprotocol import Point, encode_point
from collector.registry import units
from collector.registry.equipment import Equipment, IssuedItem
from collector.registry.registry import HostKey, Line, Registry
from collector.store import Store
from devtools.localstack import wait_until

HOSTS_PER_COMMUNE = 25
AREAS = 6
DAYS = 7
BATCH = 5000
TARGET_P99_MS = 200.0


def load_state(path: Path, communes: list[str], now: float) -> int:
    """Hosts, lines, areas and equipment of the province in a fresh state file; how many hosts."""
    with Store(path) as store:
        registry = Registry(store, "unassigned")
        for commune in communes:
            for n in range(1, HOSTS_PER_COMMUNE + 1):
                registry.touch(HostKey("08", commune, f"pc-{n:02d}"), now - 60, "online")
        registry.flush()
        registry.upsert_lines([Line(f"TQG-{c}", "08", c, "VNPT", 100.0, 100.0, "2025-08-15") for c in communes])
        names = {f"kv{n + 1}": f"Khu vực {n + 1}" for n in range(AREAS)}
        registry.set_areas(names, {f"kv{n + 1}": communes[n::AREAS] for n in range(AREAS)})
        kinds = {"token": "Feitian ePass2003", "scanner": "Canon DR-C225"}
        items = [IssuedItem("08", c, kind, model, f"{kind}-{c}", "Một cửa", "2025-08-01")
                 for c in communes for kind, model in kinds.items()]  # fmt: skip
        Equipment(store).replace_communes(items)
    return len(communes) * HOSTS_PER_COMMUNE


def load_history(url: str, communes: list[str], now: float) -> int:
    """The 7 days the commune page's charts read, for every commune; how many points."""
    client = InfluxClient(InfluxSettings(url=url, database=DATABASE))
    batch: list[str] = []
    written = 0
    start = int(now) - DAYS * 86400
    for index, commune in enumerate(communes):
        tags = {"province": "08", "area": f"kv{index % AREAS + 1}", "commune": commune}
        for ts in range(start, int(now), 600):
            online = float(HOSTS_PER_COMMUNE - (ts // 3600 + index) % 4)
            status = {"hosts_online": online, "hosts_total": float(HOSTS_PER_COMMUNE)}
            batch.append(encode_point(Point("commune", tags, status, ts)))
            if ts % 10800 < 600:
                speed = {"download_mbps": 60.0 + (ts // 10800) % 30}
                batch.append(encode_point(Point("speedtest", {**tags, "host": "pc-01", "mode": "wan"}, speed, ts)))
            if ts % 3600 < 600:
                probe = {"rtt_avg_ms": 3.0 + (ts // 3600) % 5, "loss_percent": 0.0}
                batch.append(encode_point(Point("probe", {**tags, "host": "pc-01", "target": "gateway"}, probe, ts)))
            if len(batch) >= BATCH:
                client.write_lines(batch)
                written, batch = written + len(batch), []
    client.write_lines(batch)
    client.close()
    return written + len(batch)


def signed_in(base: str) -> httpx.Client:
    """A client with a console session, made through the sign-in form as a browser does."""
    client = httpx.Client(base_url=base, timeout=30)
    form = client.get("/console/sign-in")
    nonce = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert nonce is not None, form.text[:300]
    answer = client.post("/console/sign-in", data={"csrf": nonce.group(1), "token": TOKEN, "next": "/console"})
    assert answer.status_code == 303 and "cm_session" in client.cookies, answer.text[:300]
    return client


def timed(client: httpx.Client, path: str) -> float:
    started = time.perf_counter()
    answer = client.get(path)
    elapsed = (time.perf_counter() - started) * 1000
    assert answer.status_code == 200, (path, answer.status_code, answer.text[:300])
    return elapsed


def quantiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    at = lambda share: ordered[min(len(ordered) - 1, int(share * len(ordered)))]  # noqa: E731
    return {"p50_ms": round(at(0.5), 1), "p99_ms": round(at(0.99), 1), "max_ms": round(ordered[-1], 1),
            "n": len(ordered)}  # fmt: skip


def main() -> dict[str, Any]:
    rounds = int(os.environ.get("BENCH_CONSOLE_ROUNDS", "5"))
    communes = [c.code for c in units.communes_of("08")]
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        stack = ProvinceStack(Path(tmp), fleet="restart_grace_s = 3600")
        stack.broker.start()
        stack.influxd.start()
        try:
            stack.influxd.create_database(DATABASE)
            now = time.time()
            hosts = load_state(Path(tmp) / "state.sqlite", communes, now)
            points = load_history(stack.influxd.url, communes, now)
            stack.start_collector()
            base = f"http://127.0.0.1:{stack.http_port}"
            client = signed_in(base)
            try:
                wait_until(lambda: client.get("/console").text.count("<tr data-commune=") == len(communes), 120,
                           "every commune evaluated")  # fmt: skip
                known = client.get("/console").text.count("<tr data-commune=")
                cold = [timed(client, f"/console/communes/{c}") for c in communes]
                page, status = [], []
                for _ in range(rounds):
                    for commune in communes:
                        page.append(timed(client, f"/console/communes/{commune}"))
                        status.append(timed(client, "/status"))
            finally:
                client.close()
        finally:
            stack.collector.stop()
            stack.influxd.stop()
            stack.broker.stop()
    figures: dict[str, Any] = {
        "hosts": hosts, "communes": len(communes), "fleet_rows": known, "history_points": points,
        "commune_cold": quantiles(cold), "commune": quantiles(page), "status": quantiles(status),
    }  # fmt: skip
    figures["commune_p99_vs_status_p99"] = round(figures["commune"]["p99_ms"] / figures["status"]["p99_ms"], 2)
    figures["commune_p99_under_target"] = max(figures["commune"]["p99_ms"], figures["commune_cold"]["p99_ms"]) < (
        TARGET_P99_MS
    )
    print(figures)
    return figures


if __name__ == "__main__":
    main()
