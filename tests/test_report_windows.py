"""The report's kept office windows (``collector/reports/windows.py``) on a real InfluxDB: a window
is kept as final only once its history is known to be there. A window summed before its history
was written (``make demo``'s collector summed 100 of them while the backfill ran, a server
restored from backup, a province whose backlog arrives late) is summed again, not kept empty for
ever; and a range whose history is being written is held until its rollups are done."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from realservices import Influxd

from collector.config import CollectorConfig
from collector.ingest.influx import InfluxClient
from collector.ingest.setup_influx import setup_influx
from collector.reports.build import hours_of
from collector.reports.make import keep
from collector.reports.windows import HELD, WindowSums
from collector.store import Store
from devtools.backfill import backfill, only
from devtools.simulate import make_plan, register

COMMUNES = ["00694", "00715"]  # with seed 1: a healthy commune and a dead line


def kept_windows(store: Store) -> dict[tuple[str, int, int], float]:
    """Kept window -> the slots with data it holds (0 for a window kept empty)."""
    rows = store.query(
        "SELECT w.kind, w.start, w.end, coalesce(sum(s.n), 0) FROM report_windows w LEFT JOIN report_slots s "
        "ON s.kind = w.kind AND s.start = w.start AND s.end = w.end WHERE w.kind != ? GROUP BY w.kind, w.start, w.end",
        (HELD,),
    )
    return {(kind, start, end): n for kind, start, end, n in rows}


def test_a_window_summed_before_its_history_is_summed_again_once_the_history_is_there(
    influxd: Influxd, tmp_path: Path
) -> None:
    database = f"t_{uuid.uuid4().hex[:10]}"
    config = CollectorConfig(
        influxdb={"url": influxd.url, "database": database, "raw_retention": "400d"},
        state={"path": str(tmp_path / "state.sqlite")},
    )
    plan = only(make_plan("08", 1, 1, 0.05), COMMUNES)
    register(plan, config)
    now = time.time()
    client = InfluxClient(config.influxdb)
    setup_influx(client)  # as the collector's setup-influx did: a database, its rollups, no history yet
    client.close()
    with Store(config.state.path) as store:
        # the collector's keeper runs before the history is written: nothing is there to keep
        asked = keep(config, store, now)
        assert asked > 0 and kept_windows(store) == {}, kept_windows(store)
        # the history arrives (here by the backfill; a restore or a late backlog does the same)
        result = backfill(config, plan, 8, 300, seed=1, end=now)
        assert result["points"] > 0
        # an older release kept the windows it summed early, empty: those are summed again, not final
        hours = hours_of(config.report)
        this = hours.month_of(now)
        windows = [w for m in (this.previous(), this) for w in hours.windows_of(m, until=now)]
        with store.transaction() as db:
            db.executemany("INSERT INTO report_windows (kind, start, end) VALUES (?, ?, ?)",
                           [(kind, w.start, w.end) for kind in ("commune", "agent") for w in windows])  # fmt: skip
        keep(config, store, now)
        kept = kept_windows(store)
        assert kept and all(n > 0 for n in kept.values()), kept
        assert all(start >= result["start"] for _kind, start, _end in kept), "a window before the history kept"
        assert {kind for kind, _s, _e in kept} == {"commune", "agent"}
        # while a range's history is written again, its windows are held, then summed once it is done
        sums = WindowSums(store)
        sums.hold(result["start"], result["end"])
        assert kept_windows(store) == {}
        keep(config, store, now)
        assert kept_windows(store) == {}
        sums.release(result["start"], result["end"])  # the backfill's rollups are done
        keep(config, store, now)
        assert kept_windows(store) == kept
