"""A tile-grid map of Thailand: one square per province, placed from its centroid.

No polygons (and so no boundary data whose licence would need checking): each province of
``knowledge/places/provinces.csv`` is a square on a grid of :data:`CELL_DEGREES` degrees.
The squares are placed by an optimal assignment of provinces to grid cells (the one that
minimises the summed squared distance from each centroid to its cell, SciPy's
``linear_sum_assignment``), so the dense provinces around Bangkok spread into neighbouring
cells instead of stacking, and the same centroids always give the same map. Rows and
columns no province holds (the Gulf between Prachuap Khiri Khan and Chumphon) are dropped.

Python computes geometry and shading classes only; the template draws the ``<svg>`` and
writes every word (the Thai abbreviation and name come from the knowledge, escaped).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Final

from bot.kb.places.areas import Province

#: Size of a grid cell in degrees of latitude and longitude (about 77 km): small enough that
#: the map keeps Thailand's shape, large enough that each region stays compact.
CELL_DEGREES: Final = 0.7
#: Shading classes of a shown value (``console.css``: ``tile t1`` ... ``tile t5``).
CLASSES: Final = 5
#: Pixels of a square and of the gap between two.
TILE: Final = 36
GAP: Final = 3
#: Room around the grid.
MARGIN: Final = 4


@dataclass(frozen=True)
class Tile:
    """One province's square.

    ``state``: ``"shown"`` (``value`` is a count), ``"hidden"`` (suppressed: no number),
    ``"zero"`` (nobody) or ``"outside"`` (not in the filtered area). ``css`` is its class.
    """

    code: str
    abbr: str
    name: str
    x: float
    y: float
    value: int | None
    state: str
    css: str

    @property
    def middle(self) -> float:
        return self.x + TILE / 2


@dataclass(frozen=True)
class Band:
    """A legend entry: values from ``low`` to ``high`` (inclusive) have class ``css``."""

    low: int
    high: int
    css: str


@dataclass(frozen=True)
class TileMap:
    """The squares, the drawing's size and the legend of the shading."""

    width: int
    height: int
    tile: int
    tiles: tuple[Tile, ...]
    bands: tuple[Band, ...]

    @property
    def hidden(self) -> int:
        return sum(t.state == "hidden" for t in self.tiles)


@lru_cache(maxsize=4)
def _layout(points: tuple[tuple[str, float, float], ...]) -> dict[str, tuple[int, int]]:
    """Grid cell (column, row) of each province code, from (code, lat, lng) triples."""
    # Imported here: scipy.optimize adds about 50 MB to a process and NumPy about 11 MB; only
    # the first map of a console page needs them, never a webhook (``bot serve`` would carry
    # them all day).
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    top = max(lat for _, lat, _ in points)
    left = min(lng for _, _, lng in points)
    at = np.array(
        [[(lng - left) / CELL_DEGREES, (top - lat) / CELL_DEGREES] for _, lat, lng in points]
    )
    columns = math.ceil(float(at[:, 0].max())) + 2
    rows = math.ceil(float(at[:, 1].max())) + 2
    cells = np.array([[c, r] for r in range(-1, rows) for c in range(-1, columns)], dtype=float)
    cost = ((at[:, None, :] - cells[None, :, :]) ** 2).sum(axis=2)
    chosen, cell_of = linear_sum_assignment(cost)
    placed = {
        points[i][0]: (int(cells[j][0]), int(cells[j][1]))
        for i, j in zip(chosen, cell_of, strict=True)
    }
    # Drop the empty rows and columns, keeping the order of the rest.
    used_columns = sorted({c for c, _ in placed.values()})
    used_rows = sorted({r for _, r in placed.values()})
    column_index = {c: i for i, c in enumerate(used_columns)}
    row_index = {r: i for i, r in enumerate(used_rows)}
    return {code: (column_index[c], row_index[r]) for code, (c, r) in placed.items()}


def layout(provinces: Mapping[str, Province]) -> dict[str, tuple[int, int]]:
    """Each province's (column, row) on the grid; the same provinces give the same grid."""
    points = tuple(sorted((p.code, p.lat, p.lng) for p in provinces.values()))
    return dict(_layout(points))


def nice_ceiling(value: int, parts: int = CLASSES) -> int:
    """The smallest round number (1, 2, 2.5 or 5 times a power of ten, times ``parts``) not
    below ``value``: legend bands with round edges."""
    if value <= parts:
        return parts
    raw = value / parts
    power = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        step = factor * power
        if step >= raw and step == int(step):
            return int(step) * parts
    return int(10 * power) * parts


def bands(most: int) -> tuple[Band, ...]:
    """:data:`CLASSES` equal bands from 1 to a round ceiling at or above ``most``."""
    ceiling = nice_ceiling(max(most, 1))
    step = ceiling // CLASSES
    return tuple(
        Band(1 if i == 0 else i * step + 1, (i + 1) * step, f"t{i + 1}") for i in range(CLASSES)
    )


def shade(value: int, legend: Iterable[Band]) -> str:
    """The class of a value > 0 (the last band's for anything above it)."""
    css = "t1"
    for band in legend:
        css = band.css
        if value <= band.high:
            break
    return css


def tile_map(
    provinces: Mapping[str, Province],
    values: Mapping[str, int | None],
    included: Iterable[str] | None = None,
) -> TileMap:
    """The map of ``values`` (province code → people; None = suppressed, absent = 0).

    ``included``: the province codes the filter covers (None = all); the others are drawn
    as ``outside`` with no value.
    """
    grid = layout(provinces)
    inside = set(provinces) if included is None else set(included)
    shown = [v for c, v in values.items() if v is not None and c in inside]
    most = max(shown, default=0)
    legend = bands(most) if most > 0 else ()  # nobody shown: no shading to explain
    tiles = []
    for code, (column, row) in sorted(grid.items(), key=lambda item: (item[1][1], item[1][0])):
        province = provinces[code]
        x = MARGIN + column * (TILE + GAP)
        y = MARGIN + row * (TILE + GAP)
        value: int | None
        if code not in inside:
            value, state, css = None, "outside", "tile out"
        elif code in values and values[code] is None:
            value, state, css = None, "hidden", "tile hid"
        else:
            value = int(values.get(code) or 0)
            state = "shown" if value else "zero"
            css = f"tile {shade(value, legend)}" if value else "tile t0"
        tiles.append(Tile(code, province.abbr_th, province.name_th, x, y, value, state, css))
    columns = 1 + max((c for c, _ in grid.values()), default=0)
    rows = 1 + max((r for _, r in grid.values()), default=0)
    return TileMap(
        2 * MARGIN + columns * (TILE + GAP) - GAP,
        2 * MARGIN + rows * (TILE + GAP) - GAP,
        TILE,
        tuple(tiles),
        legend,
    )
