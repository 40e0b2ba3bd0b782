"""The scorecard's alerts come from their records in the state file, to the second: how many fired
in the month and the office hours they were open. Alerts made by the real alert lifecycle
(pending, firing, resolved, a flap) in a real SQLite state file; office windows built by hand."""

from __future__ import annotations

from datetime import date
from pathlib import Path

from collector.alerting.conditions import Condition
from collector.alerting.lifecycle import AlertManager
from collector.config import AlertSettings
from collector.localtime import Window
from collector.reports.figures import alerts
from collector.reports.gather import alert_spells
from collector.store import Store
from collector.vocabulary import HOST_OFFLINE, LINE_DOWN

DAY = 86400
T0 = 1_795_000_000  # a morning in the month
MONTH = (T0 - 5 * DAY, T0 + 2 * DAY)
TODAY = date(2026, 11, 18)
WINDOWS = [Window(TODAY, T0, T0 + 4 * 3600), Window(TODAY, T0 + 6 * 3600, T0 + 9 * 3600 + 1800)]


def condition(rule: str, commune: str, host: str = "-") -> Condition:
    return Condition(rule, "08", "KV01", commune, host, "critical", "cảnh báo", "alert")


def test_alerts_fired_and_their_office_hours_come_from_the_records_to_the_second(tmp_path: Path) -> None:
    with Store(tmp_path / "state.sqlite") as store:
        manager = AlertManager(store, AlertSettings(for_s={LINE_DOWN: 600, HOST_OFFLINE: 90}, flap_window_s=900),
                               lambda _points: None, lambda _events: None)  # fmt: skip
        old, still = condition(LINE_DOWN, "02536"), condition(LINE_DOWN, "02215")
        line, host = condition(LINE_DOWN, "02473"), condition(HOST_OFFLINE, "02473", "pc-01")
        steps = [
            (MONTH[0] - 3 * DAY, [old]), (MONTH[0] - 3 * DAY + 600, [old]),  # fired and resolved before the month
            (MONTH[0] - DAY, [still]), (MONTH[0] - DAY + 600, [still]),  # fired before the month, still firing
            (T0 + 100, [still, host]), (T0 + 200, [still]),  # pending, gone before its 90 s: never fired
            (T0 + 3600, [still, line]), (T0 + 4200, [still, line]),  # fires 10 minutes after it began
            (T0 + 7200, [still]), (T0 + 7500, [still, line]),  # back within the flap window: the same alert
            (T0 + 6 * 3600 + 1800, [still]),  # resolved half an hour into the afternoon
        ]  # fmt: skip
        for now, active in steps:
            manager.update(active, now)
        spells = alert_spells(store, *MONTH)
    assert sorted(s.commune for s in spells) == ["02215", "02473"]
    of = {c: [s for s in spells if s.commune == c] for c in ("02215", "02473")}
    # 02473: fired once, open from T0+4200 to T0+23400: 10,200 s of the morning, 1,800 s of the afternoon
    assert alerts(of["02473"], WINDOWS, MONTH) == (1, round(12_000 / 3600, 1))
    # 02215: fired before the month, so not counted as fired in it; open through both windows
    assert alerts(of["02215"], WINDOWS, MONTH) == (0, 7.5)


def test_an_alert_still_firing_counts_to_the_end_of_what_is_counted(tmp_path: Path) -> None:
    with Store(tmp_path / "state.sqlite") as store:
        manager = AlertManager(store, AlertSettings(for_s={LINE_DOWN: 0}), lambda _p: None, lambda _e: None)
        manager.update([condition(LINE_DOWN, "02473")], T0 + 3 * 3600)
        spells = alert_spells(store, *MONTH)
    assert [(s.start, s.end) for s in spells] == [(T0 + 3 * 3600, 0)]
    until_noon = (MONTH[0], T0 + 3 * 3600 + 1800)  # the current month, counted up to now
    assert alerts(spells, WINDOWS, until_noon) == (1, 0.5)
    assert alerts(spells, WINDOWS, MONTH) == (1, 1.0 + 3.5)
