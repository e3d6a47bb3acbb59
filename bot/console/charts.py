"""Chart geometry for the console's server-side SVG charts (no JavaScript, no CDN).

Python computes only coordinates and numbers; the templates draw the ``<svg>`` and put
every word on it (the labels are Thai and live in templates). Every chart is drawn next
to a table with the same numbers, for screen readers and for copying.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

#: CSS classes of a stacked series (``console.css``: ``bar``, ``b2`` ... ``b8``).
SERIES_CLASSES: Final = (
    "bar",
    "bar b2",
    "bar b3",
    "bar b4",
    "bar b5",
    "bar b6",
    "bar b7",
    "bar b8",
)


#: What a stacked chart's columns are keyed by: days, or a table's row codes.
_Key = TypeVar("_Key", dt.date, str)


@dataclass(frozen=True)
class Segment:
    """One series' part of a column."""

    series: str
    css: str
    value: int
    y: float
    height: float


@dataclass(frozen=True)
class Column:
    """One day's (or one row's) stacked column; ``labelled``: draw its date (or row) under
    it (not every one fits)."""

    day: dt.date | str
    x: float
    width: float
    total: int
    segments: tuple[Segment, ...]
    labelled: bool

    @property
    def middle(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Tick:
    """A value on the vertical axis and its height."""

    value: int
    y: float


@dataclass(frozen=True)
class StackedChart:
    """A stacked column chart: one column per day, one segment per series."""

    width: int
    height: int
    left: float
    top: float
    bottom: float
    right: float
    columns: tuple[Column, ...]
    ticks: tuple[Tick, ...]
    series: tuple[tuple[str, str], ...]

    @property
    def empty(self) -> bool:
        return all(c.total == 0 for c in self.columns)


def nice_step(top: int, ticks: int = 4) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about ``ticks`` axis lines."""
    if top <= ticks:
        return 1
    raw = top / ticks
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * power:
            return int(factor * power)
    return int(10 * power)


def stacked(
    days: Mapping[_Key, Mapping[str, int]],
    series: Sequence[str],
    width: int = 720,
    height: int = 240,
) -> StackedChart:
    """Columns for ``days`` (in order), stacking ``series`` from the bottom up.

    ``days`` may also be keyed by row codes (strings): a column per row of a table.
    """
    left, right, top, bottom = 40.0, width - 8.0, 10.0, height - 24.0
    totals = [sum(v.get(s, 0) for s in series) for v in days.values()]
    step = nice_step(max(totals, default=0))
    ceiling = max(step, math.ceil(max(totals, default=0) / step) * step)
    scale = (bottom - top) / ceiling
    slot = (right - left) / max(1, len(days))
    bar = max(2.0, slot * 0.7)
    every = max(1, math.ceil(len(days) / 10))  # at most about ten dates under the axis
    columns = []
    classes = dict(zip(series, SERIES_CLASSES, strict=False))
    for i, (day, values) in enumerate(days.items()):
        x = left + i * slot + (slot - bar) / 2
        y = bottom
        parts = []
        for name in series:
            value = int(values.get(name, 0))
            if value <= 0:
                continue
            h = value * scale
            y -= h
            parts.append(Segment(name, classes.get(name, "bar"), value, round(y, 2), round(h, 2)))
        last = i == len(days) - 1
        columns.append(
            Column(day, round(x, 2), round(bar, 2), totals[i], tuple(parts), i % every == 0 or last)
        )
    ticks = tuple(Tick(v, round(bottom - v * scale, 2)) for v in range(0, ceiling + 1, step))
    return StackedChart(
        width,
        height,
        left,
        top,
        bottom,
        right,
        tuple(columns),
        ticks,
        tuple((s, classes.get(s, "bar")) for s in series),
    )


@dataclass(frozen=True)
class Row:
    """One item of a ranking: its key, its value and its bar's length."""

    key: str
    value: int
    y: float
    length: float


@dataclass(frozen=True)
class Ranking:
    """A horizontal bar per item, the item's name above its bar (long Thai names fit)."""

    width: int
    height: int
    rows: tuple[Row, ...]
    row_height: int
    bar_height: int


def ranking(items: Sequence[tuple[str, int]], width: int = 420, row_height: int = 34) -> Ranking:
    """Bars for ``items`` (largest first, as given), scaled to the first one."""
    most = max((v for _, v in items), default=0) or 1
    room = width - 50  # the number is written after the bar
    rows = tuple(
        Row(key, value, float(i * row_height), round(max(1.0, room * value / most), 2))
        for i, (key, value) in enumerate(items)
    )
    return Ranking(width, max(row_height, len(rows) * row_height), rows, row_height, 12)


@dataclass(frozen=True)
class Point:
    """A value of a line at one position (x, y); the template joins consecutive points."""

    x: float
    y: float
    value: int


@dataclass(frozen=True)
class Line:
    """One series: its runs of consecutive known values (a hidden value breaks the line)."""

    series: str
    css: str
    runs: tuple[tuple[Point, ...], ...]

    def paths(self) -> list[str]:
        """SVG ``points`` attributes, one per run."""
        return [" ".join(f"{p.x},{p.y}" for p in run) for run in self.runs]


@dataclass(frozen=True)
class LineChart:
    """Lines over ordered positions (weeks, say): one per series, sharing the value axis."""

    width: int
    height: int
    left: float
    top: float
    bottom: float
    right: float
    labels: tuple[tuple[str, float], ...]  # (position key, x) of the labelled positions
    lines: tuple[Line, ...]
    ticks: tuple[Tick, ...]

    @property
    def empty(self) -> bool:
        return not any(p.value for line in self.lines for run in line.runs for p in run)


def lines(
    positions: Sequence[str],
    series: Mapping[str, Mapping[str, int | None]],
    width: int = 720,
    height: int = 240,
) -> LineChart:
    """A line per ``series`` (name -> position -> value; None or absent: unknown, a gap)."""
    left, right, top, bottom = 40.0, width - 8.0, 10.0, height - 24.0
    known = [v for values in series.values() for v in values.values() if v is not None]
    step = nice_step(max(known, default=0))
    ceiling = max(step, math.ceil(max(known, default=0) / step) * step)
    scale = (bottom - top) / ceiling
    slot = (right - left) / max(1, len(positions) - 1)
    xs = {key: round(left + i * slot, 2) for i, key in enumerate(positions)}
    classes = ("line", "line l2", "line l3", "line l4", "line l5", "line l6", "line l7", "line l8")
    drawn = []
    for n, (name, values) in enumerate(series.items()):
        runs: list[tuple[Point, ...]] = []
        run: list[Point] = []
        for key in positions:
            value = values.get(key)
            if value is None:
                if run:
                    runs.append(tuple(run))
                run = []
                continue
            run.append(Point(xs[key], round(bottom - value * scale, 2), int(value)))
        if run:
            runs.append(tuple(run))
        drawn.append(Line(name, classes[n % len(classes)], tuple(runs)))
    # About eight labels, counted back from the last position (always labelled).
    every = max(1, math.ceil(len(positions) / 8))
    labels = tuple(
        (key, xs[key]) for i, key in enumerate(positions) if (len(positions) - 1 - i) % every == 0
    )
    ticks = tuple(Tick(v, round(bottom - v * scale, 2)) for v in range(0, ceiling + 1, step))
    return LineChart(width, height, left, top, bottom, right, labels, tuple(drawn), ticks)
