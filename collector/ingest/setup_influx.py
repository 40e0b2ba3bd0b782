"""Creates the database, retention policies and 5-minute rollup continuous queries in InfluxDB 1.x.

Raw data goes to the default policy ``raw`` (30 days); continuous queries write 5-minute
means to ``rollup_5m`` (400 days) for every numeric measurement, keeping all tags
(``GROUP BY time(5m), *``). Safe to run again: every statement is idempotent.
"""

from __future__ import annotations

from collector.config import InfluxSettings
from collector.ingest.influx import InfluxClient

ROLLUP_MEASUREMENTS = ("system", "disk", "net", "sensors", "probe", "speedtest", "agent", "commune", "alert",
                       "equipment", "io", "disk_health", "peripheral")  # fmt: skip
RAW_RP = "raw"
ROLLUP_RP = "rollup_5m"


def setup_statements(settings: InfluxSettings) -> list[str]:
    db = settings.database
    statements = [
        f'CREATE DATABASE "{db}"',
        f'CREATE RETENTION POLICY "{RAW_RP}" ON "{db}" DURATION {settings.raw_retention} REPLICATION 1 DEFAULT',
        f'ALTER RETENTION POLICY "{RAW_RP}" ON "{db}" DURATION {settings.raw_retention} REPLICATION 1 DEFAULT',
        f'CREATE RETENTION POLICY "{ROLLUP_RP}" ON "{db}" DURATION {settings.rollup_retention} REPLICATION 1',
        f'ALTER RETENTION POLICY "{ROLLUP_RP}" ON "{db}" DURATION {settings.rollup_retention} REPLICATION 1',
    ]
    for measurement in ROLLUP_MEASUREMENTS:
        name = f"cq_{measurement}_5m"
        statements.append(f'DROP CONTINUOUS QUERY "{name}" ON "{db}"')
        statements.append(
            f'CREATE CONTINUOUS QUERY "{name}" ON "{db}" BEGIN '
            f'SELECT mean(*) INTO "{db}"."{ROLLUP_RP}"."{measurement}" '
            f'FROM "{db}"."{RAW_RP}"."{measurement}" GROUP BY time(5m), * END'
        )
    return statements


def setup_influx(client: InfluxClient) -> list[str]:
    """Apply every statement; returns them. DROP of a missing CQ is not an error in 1.x."""
    statements = setup_statements(client.settings)
    for statement in statements:
        client.query(statement, method="POST")
    return statements
