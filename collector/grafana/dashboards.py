"""The six dashboards IT staff use, in Vietnamese and English, with their InfluxQL queries.

Province overview, degraded equipment, unused lines, line quality per commune, host detail and
peripherals (issued scanners and tokens against what is used).
Variables go province > area > commune > host; ``$rp`` picks raw data (30 days) or the 5-minute
rollups (400 days) for long ranges, and the queries select ``/^(mean_)?field$/`` so the same query
reads either (the rollups name their fields ``mean_<field>``). Every ``GROUP BY time(...)`` ends in
``tz('Asia/Ho_Chi_Minh')``, so a day (token use per day, or an interval of a day on a long range)
is Vietnam's day and not UTC's, which starts at 07:00 there.
"""

from __future__ import annotations

from typing import Any

from collector.grafana.panels import (
    Json,
    custom_variable,
    dashboard,
    dashboards_link,
    field_config,
    link,
    organize,
    query_variable,
    sort_by,
    stat,
    table,
    target,
    timeseries,
    value_map,
)
from collector.localtime import LOCAL_ZONE
from collector.vocabulary import DASHBOARD, LINE_STATES, OUTAGE_CAUSES

TAG = "commune-monitor"
LOCAL = f" tz('{LOCAL_ZONE}')"  # ends every query grouped by time: days start at local midnight
STATE_COLOURS = {"up": "green", "degraded": "orange", "down": "red", "unused": "blue", "unknown": "gray"}
CAUSE_COLOURS = {"line": "red", "power": "orange", "office_closed": "blue", "unknown": "gray"}
SCOPE = '"province" =~ /^$province$/ AND "area" =~ /^$area$/'
COMMUNE_SCOPE = SCOPE + ' AND "commune" =~ /^$commune$/'
HOST_SCOPE = COMMUNE_SCOPE + ' AND "host" =~ /^$host$/'
TIME_LINK = "${__url_time_range}"
BY_HOST_TARGET = '"commune", "host", "target"'
HOST_TARGET_LEGEND = "$tag_commune $tag_host → $tag_target"
SPEED_FIELDS = "(download_mbps|upload_mbps|contracted_down_mbps|contracted_up_mbps)"


def board(lang: str, name: str, levels: int, panels: list[Json], refresh: str) -> Json:
    """One of the six dashboards: titled by its name's word, tagged, with the variables down to
    ``levels`` (province, area, commune, host) and the link to the others."""
    links = [dashboards_link(t(lang, "dashboards"), lang)]
    return dashboard(uid(name, lang), t(lang, name), [TAG, lang], variables(lang, levels), panels, links, refresh)


def t(lang: str, key: str) -> str:
    return DASHBOARD[key].in_(lang)


def uid(name: str, lang: str) -> str:
    return f"cm-{name}-{lang}"


def variables(lang: str, levels: int, multi_host: bool = True) -> list[Json]:
    """The first ``levels`` of province > area > commune > host, then ``$rp``."""
    defined = [
        query_variable("province", t(lang, "province"), 'SHOW TAG VALUES FROM "commune" WITH KEY = "province"'),
        query_variable(
            "area",
            t(lang, "area"),
            'SHOW TAG VALUES FROM "commune" WITH KEY = "area" WHERE "province" =~ /^$province$/',
        ),
        query_variable(
            "commune", t(lang, "commune_code"), f'SHOW TAG VALUES FROM "commune" WITH KEY = "commune" WHERE {SCOPE}'
        ),
        query_variable(
            "host",
            t(lang, "host_name"),
            f'SHOW TAG VALUES FROM "agent" WITH KEY = "host" WHERE {COMMUNE_SCOPE}',
            multi_host,
        ),
    ][:levels]
    rp = custom_variable("rp", t(lang, "rp"), [("raw", t(lang, "rp_raw")), ("rollup_5m", t(lang, "rp_rollup"))])
    return [*defined, rp]


def line_state_mappings(lang: str, by_code: bool) -> Json:
    """Line states (by their number, or by name) to their word and colour."""
    return value_map(
        {
            str(line.code) if by_code else state: (line.words.in_(lang), STATE_COLOURS[state])
            for state, line in LINE_STATES.items()
        }
    )


def count_of(field: str, measurement: str, group: str) -> str:
    """How many series of ``group`` have ``field`` set in their newest point."""
    return (
        f'SELECT sum("v") FROM (SELECT last("{field}") AS "v" FROM "{measurement}" '
        f"WHERE {SCOPE} AND $timeFilter GROUP BY {group})"
    )


def overview(lang: str) -> Json:
    line_link = link(t(lang, "open_line"), f"/d/{uid('line', lang)}?var-province=${{__data.fields.province}}"
                     f"&var-commune=${{__data.fields.commune}}&{TIME_LINK}")  # fmt: skip
    counters = [
        ("lines_down", count_of("line_down", "commune", '"commune"'), ((0, "green"), (1, "red"))),
        ("hosts_online", count_of("online", "agent", '"commune", "host"'), ((0, "blue"),)),
        (
            "hosts_offline",
            'SELECT sum("v") FROM (SELECT 1 - last("online") AS "v" FROM "agent" '
            f'WHERE {SCOPE} AND $timeFilter GROUP BY "commune", "host")',
            ((0, "green"), (1, "red")),
        ),
        ("hosts_degraded", count_of("degraded", "agent", '"commune", "host"'), ((0, "green"), (1, "orange"))),
        ("lines_unused", count_of("line_unused", "commune", '"commune"'), ((0, "green"), (1, "blue"))),
    ]
    panels = [
        stat(
            t(lang, key),
            (i * 5 if i < 4 else 20, 0, 5 if i < 4 else 4, 4),
            [target("A", query)],
            field_config(steps=steps),
        )
        for i, (key, query, steps) in enumerate(counters)
    ]
    panels.append(
        stat(
            t(lang, "grid"),
            (0, 4, 24, 8),
            [
                target(
                    "A",
                    f'SELECT last("line_state_code") FROM "commune" WHERE {SCOPE} AND $timeFilter GROUP BY "commune"',
                    alias="$tag_commune",
                )
            ],
            field_config(
                steps=((0, "green"), (1, "orange"), (2, "red"), (3, "blue"), (4, "gray")),
                mappings=(line_state_mappings(lang, by_code=True),),
                links=(line_link,),
            ),
            text_mode="value_and_name",
        )
    )
    problems = target(
        "A",
        'SELECT last("commune_name") AS "name", last("area_name") AS "area_name", last("line_state") AS "state", '
        'last("line_severity") AS "severity", last("hosts_online") AS "online", last("hosts_total") AS "total", '
        'last("hosts_degraded") AS "degraded", last("contracted_down_mbps") AS "contracted" '
        f'FROM "commune" WHERE {SCOPE} AND $timeFilter GROUP BY "province", "commune"',
        "table",
    )
    rename = {
        "commune": t(lang, "commune_code"),
        "name": t(lang, "commune"),
        "area_name": t(lang, "area"),
        "state": t(lang, "line_state"),
        "online": t(lang, "online_total"),
        "total": t(lang, "total"),
        "degraded": t(lang, "hosts_degraded"),
        "contracted": t(lang, "contracted"),
    }
    panels.append(
        table(
            t(lang, "problems"),
            (0, 12, 24, 12),
            [problems],
            field_config(
                steps=((0, "text"),),
                mappings=(line_state_mappings(lang, by_code=False),),
                links=(line_link,),
                custom={"cellOptions": {"type": "color-text"}, "filterable": True},
            ),
            [sort_by("severity"), organize(rename, ("Time", "severity", "province"))],
        )
    )
    panels.append(
        series(
            t(lang, "online_trend"),
            (0, 24, 24, 8),
            'SELECT sum("v") FROM (SELECT last("online") AS "v" FROM "agent" '
            f'WHERE {SCOPE} AND $timeFilter GROUP BY time($__interval), "commune", "host"{LOCAL}) '
            f"WHERE $timeFilter GROUP BY time($__interval) fill(none){LOCAL}",
            t(lang, "hosts_online"),
            "short",
        )
    )
    return board(lang, "overview", 2, panels, "1m")


def degraded(lang: str) -> Json:
    reasons = f"degraded_reasons_{lang}"  # in words; the codes are in "degraded_reasons"
    query = target(
        "A",
        'SELECT "name", "reasons", "since", "online" FROM ('
        f'SELECT last("degraded") AS "degraded", last("{reasons}") AS "reasons", '
        'last("degraded_since_ms") AS "since", last("online") AS "online", last("commune_name") AS "name" '
        f'FROM "agent" WHERE {SCOPE} AND $timeFilter GROUP BY "province", "area", "commune", "host") '
        'WHERE "degraded" = 1 GROUP BY "province", "area", "commune", "host"',
        "table",
    )
    host_link = link(
        t(lang, "open_host"),
        f"/d/{uid('host', lang)}?var-province=${{__data.fields.province}}&var-commune=${{__data.fields.commune}}"
        f"&var-host=${{__data.fields.host}}&{TIME_LINK}",
    )
    rename = {
        "host": t(lang, "host_name"),
        "name": t(lang, "commune"),
        "commune": t(lang, "commune_code"),
        "area": t(lang, "area"),
        "reasons": t(lang, "reasons"),
        "since": t(lang, "since"),
        "online": t(lang, "online"),
    }
    panels = [
        stat(
            t(lang, "hosts_degraded"),
            (0, 0, 24, 4),
            [target("A", count_of("degraded", "agent", '"commune", "host"'))],
            field_config(steps=((0, "green"), (1, "orange"))),
        ),
        table(
            t(lang, "degraded"),
            (0, 4, 24, 16),
            [query],
            field_config(
                "dateTimeAsLocal",  # for "since"; "online", the other number, is mapped to yes/no
                steps=((0, "text"),),
                mappings=(value_map({"1": (t(lang, "yes"), "green"), "0": (t(lang, "no"), "red")}),),
                links=(host_link,),
                custom={"cellOptions": {"type": "auto"}, "filterable": True},
            ),
            [sort_by("since", desc=False), organize(rename, ("Time", "province"))],
        ),
    ]
    return board(lang, "degraded", 2, panels, "1m")


def unused(lang: str) -> Json:
    query = target(
        "A",
        'SELECT "name", "days_unused", "contracted", "traffic", "last_traffic" FROM ('
        'SELECT last("line_unused") AS "unused", last("commune_name") AS "name", last("days_unused") AS "days_unused", '
        'last("contracted_down_mbps") AS "contracted", last("traffic_mb_per_day") AS "traffic", '
        'last("last_traffic_day") AS "last_traffic" '
        f'FROM "commune" WHERE {SCOPE} AND $timeFilter GROUP BY "province", "area", "commune") '
        'WHERE "unused" = 1 GROUP BY "province", "area", "commune"',
        "table",
    )
    rename = {
        "commune": t(lang, "commune_code"),
        "name": t(lang, "commune"),
        "area": t(lang, "area"),
        "days_unused": t(lang, "days_unused"),
        "contracted": t(lang, "contracted"),
        "traffic": t(lang, "traffic"),
        "last_traffic": t(lang, "last_traffic"),
    }
    line_link = link(t(lang, "open_line"), f"/d/{uid('line', lang)}?var-province=${{__data.fields.province}}"
                     f"&var-commune=${{__data.fields.commune}}&{TIME_LINK}")  # fmt: skip
    panels = [
        stat(
            t(lang, "lines_unused"),
            (0, 0, 24, 4),
            [target("A", count_of("line_unused", "commune", '"commune"'))],
            field_config(steps=((0, "green"), (1, "blue"))),
        ),
        table(
            t(lang, "unused"),
            (0, 4, 24, 16),
            [query],
            field_config(links=(line_link,), steps=((0, "text"),), custom={"filterable": True}),
            [sort_by("days_unused"), organize(rename, ("Time", "province"))],
        ),
    ]
    return board(lang, "unused", 2, panels, "5m")


def series(title: str, grid: tuple[int, int, int, int], query: str, alias: str, unit: str, **kw: Any) -> Json:
    """A time-series panel of one InfluxQL query."""
    return timeseries(title, grid, [target("A", query, alias=alias)], unit, **kw)


def mean_series(
    lang: str, scope: str, word: str, grid: tuple[int, int, int, int], field: str, measurement: str, group: str,
    legend: str, unit: str, **kw: Any,
) -> Json:  # fmt: skip
    """A time-series panel titled by ``word``: ``field``'s mean per interval (``over_time``) in ``scope``."""
    return series(t(lang, word), grid, over_time(field, measurement, scope, group), legend, unit, **kw)


def over_time(field: str, measurement: str, scope: str, group: str) -> str:
    """Mean of ``field`` per interval from ``$rp``: raw data or the 5-minute rollups."""
    return (
        f'SELECT mean(/^(mean_)?{field}$/) FROM "$rp"."{measurement}" WHERE {scope} AND $timeFilter '
        f"GROUP BY time($__interval), {group} fill(none){LOCAL}"
    )


def line_quality(lang: str) -> Json:
    probes = [  # word, grid, fields, measurement, group by, legend, unit
        ("rtt", (0, 0, 12, 9), "rtt_avg_ms", "probe", BY_HOST_TARGET, HOST_TARGET_LEGEND, "ms"),
        ("loss", (12, 0, 12, 9), "loss_percent", "probe", BY_HOST_TARGET, HOST_TARGET_LEGEND, "percent"),
        ("probe_ok", (0, 9, 12, 9), "ok", "probe", '"commune", "target"', "$tag_commune → $tag_target", "percentunit"),
    ]
    panels = [
        *(mean_series(lang, COMMUNE_SCOPE, *row) for row in probes),
        mean_series(
            lang,
            COMMUNE_SCOPE,
            "speed",
            (12, 9, 12, 9),
            SPEED_FIELDS,
            "speedtest",
            '"commune", "mode"',
            "$tag_commune $tag_mode $col",
            "Mbits",
            draw="points",
        ),
        stat(
            t(lang, "speed_percent"),
            (0, 18, 8, 6),
            [
                target(
                    "A",
                    f'SELECT last("download_percent_of_contract") FROM "speedtest" WHERE {COMMUNE_SCOPE} '
                    'AND $timeFilter GROUP BY "commune", "mode"',
                    alias="$tag_commune $tag_mode",
                )
            ],
            field_config("percent", steps=((0, "red"), (50, "orange"), (80, "green"))),
            text_mode="value_and_name",
        ),
        series(
            t(lang, "rtt_30d"),
            (8, 18, 16, 6),
            f'SELECT mean("mean_rtt_avg_ms") FROM "rollup_5m"."probe" WHERE {COMMUNE_SCOPE} AND $timeFilter '
            f'GROUP BY time(1h), "commune", "target" fill(none){LOCAL}',
            "$tag_commune → $tag_target",
            "ms",
            time_from="30d",
        ),
        outages(lang, (0, 24, 24, 8)),
    ]
    return board(lang, "line", 3, panels, "1m")


def outages(lang: str, grid: tuple[int, int, int, int]) -> Json:
    """The communes' decided outages (the collector's ``outage`` points, stamped at the start) with
    their cause in words and their duration, newest first. The collector writes each point to both
    retention policies, so ``$rp`` reaches 400 days back too."""
    query = target(
        "A",
        f'SELECT "duration_s" FROM "$rp"."outage" WHERE {COMMUNE_SCOPE} AND $timeFilter '
        'GROUP BY "area", "commune", "cause"',
        "table",
    )
    causes = value_map({c: (w.in_(lang), CAUSE_COLOURS[c]) for c, w in OUTAGE_CAUSES.items()})
    rename = {
        "Time": t(lang, "outage_start"),
        "commune": t(lang, "commune_code"),
        "cause": t(lang, "outage_cause"),
        "duration_s": t(lang, "outage_duration"),
        "area": t(lang, "area"),
    }
    cells = {"filterable": True, "cellOptions": {"type": "color-text"}}  # the cause in its colour
    config = field_config("dtdurations", steps=((0, "text"),), mappings=(causes,), custom=cells)
    return table(t(lang, "outages"), grid, [query], config, [sort_by("Time"), organize(rename, ())])


def host_detail(lang: str) -> Json:
    by_host = '"commune", "host"'
    means = [  # word, grid, fields, measurement, group by, legend, unit
        ("cpu", (0, 4, 12, 8), "cpu_percent", "system", by_host, "$tag_host", "percent"),
        (
            "memory",
            (12, 4, 12, 8),
            "(mem_used_percent|swap_used_percent)",
            "system",
            by_host,
            "$tag_host $col",
            "percent",
        ),
        ("disk", (0, 12, 12, 8), "used_percent", "disk", '"host", "mount"', "$tag_host $tag_mount", "percent"),
        ("temperature", (12, 12, 12, 8), "temp_c", "sensors", '"host", "sensor"', "$tag_host $tag_sensor", "celsius"),
        (
            "network",
            (0, 20, 12, 8),
            "(rx_bytes_per_s|tx_bytes_per_s)",
            "net",
            '"host", "nic"',
            "$tag_host $tag_nic $col",
            "Bps",
        ),
        ("agent", (12, 20, 12, 8), "(spool_depth|rss_bytes)", "agent", by_host, "$tag_host $col", "short"),
    ]
    panels = [
        stat(
            t(lang, "uptime"),
            (0, 0, 6, 4),
            [
                target(
                    "A",
                    f'SELECT last("uptime_s") FROM "system" WHERE {HOST_SCOPE} AND $timeFilter GROUP BY {by_host}',
                    alias="$tag_host",
                )
            ],
            field_config("s", steps=((0, "blue"),)),
            text_mode="value_and_name",
        ),
        stat(
            t(lang, "ram"),
            (6, 0, 6, 4),
            [
                target(
                    "A",
                    f'SELECT last("mem_total_bytes") FROM "system" WHERE {HOST_SCOPE} AND $timeFilter '
                    f"GROUP BY {by_host}",
                    alias="$tag_host",
                )
            ],
            field_config("bytes", steps=((0, "red"), (4 * 2**30, "green"))),
            text_mode="value_and_name",
        ),
        table(
            t(lang, "inventory"),
            (12, 0, 12, 4),
            [
                target(
                    "A",
                    'SELECT last("os") AS "os", last("cpu_model") AS "cpu_model", last("cpu_cores") AS "cores", '
                    'last("ram_bytes") AS "ram", last("disk_total_bytes") AS "disk_total", '
                    f'last("agent_version") AS "agent_version" FROM "inventory" WHERE {HOST_SCOPE} AND $timeFilter '
                    'GROUP BY "host"',
                    "table",
                )
            ],
            field_config(steps=((0, "text"),)),
            [
                organize(
                    {
                        "host": t(lang, "host_name"),
                        "os": t(lang, "os"),
                        "cpu_model": t(lang, "cpu_model"),
                        "cores": t(lang, "cores"),
                        "ram": t(lang, "ram"),
                        "disk_total": t(lang, "disk_total"),
                        "agent_version": t(lang, "agent_version"),
                    }
                )
            ],
            time_from="30d",
        ),
        *(mean_series(lang, HOST_SCOPE, *row) for row in means),
    ]
    return board(lang, "host", 4, panels, "1m")


def equipment_table(fields: str, where: str = "") -> str:
    """The newest ``equipment`` point of each commune and kind, as a table; ``fields`` are of the
    inner select: issued, seen, unused, never, plugged_idle, unregistered, name, kind_name, items_vi,
    items_en. ``unused`` counts every idle item: plugged in but never opened (PC/SC), unused, never seen."""
    return (
        f"SELECT {fields} FROM ("
        'SELECT last("issued") AS "issued", last("seen") AS "seen", last("unused") AS "unused", '
        'last("never_seen") AS "never", last("plugged_idle") AS "plugged_idle", '
        'last("unregistered") AS "unregistered", last("commune_name") AS "name", '
        'last("kind_vi") AS "kind_name", last("idle_items_vi") AS "items_vi", last("idle_items_en") AS "items_en" '
        f'FROM "equipment" WHERE {SCOPE} AND $timeFilter GROUP BY "province", "area", "commune", "kind") '
        f'{where}GROUP BY "province", "area", "commune", "kind"'
    )


def peripherals(lang: str) -> Json:
    shown_kind, hidden_kind = ("kind_name", "kind") if lang == "vi" else ("kind", "kind_name")  # words, or the code
    rename = {
        "commune": t(lang, "commune_code"),
        "name": t(lang, "commune"),
        shown_kind: t(lang, "kind"),
        "issued": t(lang, "issued"),
        "seen": t(lang, "seen"),
        "unused": t(lang, "idle"),
        "never": t(lang, "never_seen"),
        "plugged_idle": t(lang, "plugged_idle"),
        "unregistered": t(lang, "unregistered"),
        f"items_{lang}": t(lang, "items"),
    }
    hidden = ("Time", "province", "area", hidden_kind)
    per_commune = equipment_table(
        '"name", "kind_name", "issued", "seen", "unused", "plugged_idle", "never", "unregistered"'
    )
    idle = equipment_table(f'"name", "kind_name", "unused", "items_{lang}"', 'WHERE "unused" > 0 ')
    token_use = (
        'SELECT max("minutes_today") FROM "peripheral" WHERE '
        f"{COMMUNE_SCOPE} AND \"kind\" = 'token' AND $timeFilter "
        f'GROUP BY time(1d), "commune", "host", "device" fill(none){LOCAL}'
    )
    counts = [
        ("issued", "issued", ((0, "blue"),)),
        ("seen", "seen", ((0, "green"),)),
        ("unused", "idle", ((0, "green"), (1, "orange"))),
        ("unregistered", "unregistered", ((0, "text"),)),
    ]
    table_config = field_config(steps=((0, "text"),), custom={"filterable": True})
    panels = [
        stat(
            t(lang, title),
            (6 * i, 0, 6, 4),
            [target("A", count_of(field, "equipment", '"commune", "kind"'))],
            field_config(steps=steps),
        )
        for i, (field, title, steps) in enumerate(counts)
    ]
    panels += [
        table(t(lang, "issued_vs_seen"), (0, 4, 24, 10), [target("A", per_commune, "table")], table_config,
              [sort_by("unused"), organize(rename, hidden)]),
        table(t(lang, "idle_items"), (0, 14, 24, 10), [target("A", idle, "table")], table_config,
              [sort_by("unused"), organize(rename, hidden)]),
        series(t(lang, "token_use"), (0, 24, 24, 9), token_use, "$tag_commune $tag_host $tag_device", "m",
               draw="bars"),
    ]  # fmt: skip
    return board(lang, "peripherals", 3, panels, "5m")


BUILDERS = {
    "province-overview": overview,
    "degraded-equipment": degraded,
    "unused-lines": unused,
    "line-quality": line_quality,
    "host-detail": host_detail,
    "peripherals": peripherals,
}


def all_dashboards() -> dict[str, Json]:
    """Relative path (``vi/province-overview.json``) to dashboard JSON."""
    return {f"{lang}/{name}.json": build(lang) for lang in ("vi", "en") for name, build in BUILDERS.items()}
