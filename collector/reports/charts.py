"""The report's three charts as PNG images (matplotlib, Agg backend: no display needed).

Leaders look at these rather than read them: line availability per area, the daily count of
communes whose line was down, speed as % of contract per area. Text uses DejaVu Sans, which
ships with matplotlib and has every Vietnamese diacritic.
"""

from __future__ import annotations

import io
from datetime import date

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

FONT = "DejaVu Sans"
SIZE = (7.2, 2.6)  # inches: the width of an A4 page's text
BLUE, RED, GREEN = "#2f6db3", "#c0392b", "#2e8b57"


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=150, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def _bars(title: str, labels: list[str], values: list[float | None], color: str, limit: float) -> bytes:
    with plt.rc_context({"font.family": FONT, "font.size": 8}):
        figure, axes = plt.subplots(figsize=SIZE)
        heights = [v if v is not None else 0.0 for v in values]
        bars = axes.bar(range(len(labels)), heights, color=color)
        for bar, value in zip(bars, values, strict=True):
            text = f"{value:.0f}" if value is not None else "–"
            axes.annotate(text, (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                          fontsize=7, xytext=(0, 1), textcoords="offset points")  # fmt: skip
        axes.set_xticks(range(len(labels)), labels, rotation=30 if len(labels) > 6 else 0, ha="right")
        axes.set_ylim(0, max(limit, max(heights, default=0) * 1.15))
        axes.set_title(title, fontsize=9, loc="left")
        axes.spines[["top", "right"]].set_visible(False)
        return _png(figure)


def line_by_area(title: str, areas: list[tuple[str, float | None]]) -> bytes:
    return _bars(title, [a for a, _ in areas], [v for _, v in areas], BLUE, 100.0)


def speed_by_area(title: str, areas: list[tuple[str, float | None]]) -> bytes:
    return _bars(title, [a for a, _ in areas], [v for _, v in areas], GREEN, 100.0)


def daily_down(title: str, days: list[tuple[date, int]]) -> bytes:
    with plt.rc_context({"font.family": FONT, "font.size": 8}):
        figure, axes = plt.subplots(figsize=SIZE)
        axes.bar([d.strftime("%d/%m") for d, _ in days], [n for _, n in days], color=RED)
        axes.set_title(title, fontsize=9, loc="left")
        axes.tick_params(axis="x", rotation=60, labelsize=6)
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
        axes.spines[["top", "right"]].set_visible(False)
        return _png(figure)
