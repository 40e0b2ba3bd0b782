"""When a line-probe agent runs its speed tests: once in each daily window, at a time within the
window that differs per host (so a province's communes do not all test at once) and stays the
same across restarts (it is derived from the host and the date)."""

from __future__ import annotations

import datetime as dt
import hashlib


def parse_window(text: str) -> tuple[int, int]:
    """``"06:00-07:30"`` -> minutes after midnight (start, end); ValueError when malformed."""
    start, _, end = text.partition("-")
    minutes = []
    for part in (start, end):
        hours, _, mins = part.strip().partition(":")
        value = int(hours) * 60 + int(mins)
        if not 0 <= value <= 24 * 60 or not mins:
            raise ValueError(f"window {text!r}: times are HH:MM between 00:00 and 24:00")
        minutes.append(value)
    if minutes[1] <= minutes[0]:
        raise ValueError(f"window {text!r}: the end must come after the start")
    return minutes[0], minutes[1]


def planned_runs(host: str, day: dt.date, windows: list[str]) -> list[dt.datetime]:
    """Local times of this host's runs on ``day``, one per window."""
    runs = []
    for window in windows:
        start, end = parse_window(window)
        seed = hashlib.sha256(f"{host}|{day.isoformat()}|{window}".encode()).digest()
        fraction = int.from_bytes(seed[:4], "big") / 2**32
        minute = start + fraction * (end - start)
        runs.append(dt.datetime.combine(day, dt.time()) + dt.timedelta(minutes=minute))
    return sorted(runs)


def due(host: str, windows: list[str], last_run: float, now: float) -> bool:
    """True when a planned run falls after ``last_run`` and not after ``now`` (both epoch seconds)."""
    today = dt.datetime.fromtimestamp(now).date()
    for day in (today - dt.timedelta(days=1), today):
        for run in planned_runs(host, day, windows):
            if last_run < run.timestamp() <= now:
                return True
    return False
