"""The console's small charts as server-made SVG: a series becomes the numbers of a polyline in a
fixed view box; the template draws it (``templates/console/_chart.html``), so nothing but numbers
computed here reaches the markup, and the page needs no JavaScript."""

from __future__ import annotations

from dataclasses import dataclass

from collector.fleet.history import Series

WIDTH, HEIGHT = 300.0, 80.0
PAD_TOP = 4.0


@dataclass(frozen=True)
class Chart:
    title: str
    points: str  # "x,y x,y ..." in the view box; empty: no data
    top: str  # the value at the top of the box
    last: str  # the latest value
    reference_y: float | None = None  # a horizontal line (the contracted speed), in the view box
    reference: str = ""
    last_x: float = 0.0  # the latest value's place, marked (a series of a few minutes is a dot at the right)
    last_y: float = 0.0
    width: float = WIDTH
    height: float = HEIGHT


def number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 or value == int(value) else f"{value:.1f}"


def scale_top(highest: float) -> float:
    """A round top for the axis: 1, 2 or 5 times a power of ten, at or above ``highest``."""
    if highest <= 0:
        return 1.0
    step = 1.0
    while step * 10 <= highest:
        step *= 10
    while step > highest:
        step /= 10
    for factor in (1.0, 2.0, 5.0, 10.0):
        if step * factor >= highest:
            return step * factor
    return step * 10


def chart(title: str, series: Series, start: float, end: float, reference: float | None = None) -> Chart:
    """``series`` between ``start`` and ``end`` (UTC seconds), scaled to the view box from 0 up to a
    round top over its highest value (and the reference, if any)."""
    shown = [(t, v) for t, v in series if start <= t <= end]
    if not shown or end <= start:
        return Chart(title, "", "", "")
    top = scale_top(max([v for _t, v in shown] + [reference or 0.0]))

    def y(value: float) -> float:
        return round(HEIGHT - (HEIGHT - PAD_TOP) * max(0.0, value) / top, 1)

    def x(at: float) -> float:
        return round(WIDTH * (at - start) / (end - start), 1)

    points = " ".join(f"{x(t)},{y(v)}" for t, v in shown)
    ref_y = y(reference) if reference else None
    last_t, last_v = shown[-1]
    return Chart(title, points, number(top), number(last_v), ref_y, number(reference) if reference else "",
                 x(last_t), y(last_v))  # fmt: skip
