"""Great-circle distances and an exact nearest-neighbour index for points in Thailand.

The bot answers "which subdistrict is this LINE location in" and "which centres are nearest"
for every location message, so lookups must be cheap. :class:`GeoIndex` puts the points in
a grid of equal-degree cells and searches outwards ring by ring, stopping only when no
unvisited cell can hold anything closer than the k-th best found: the answer is exact, the
same as scanning every point, at a small fraction of the cost. Pure Python, no numpy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Iterable
from typing import Generic, TypeVar

__all__ = ["EARTH_RADIUS_KM", "THAILAND_BBOX", "GeoIndex", "haversine_km", "in_thailand"]

#: Mean earth radius (IUGG), the usual constant for haversine distances.
EARTH_RADIUS_KM = 6371.0088
#: (lat_min, lat_max, lng_min, lng_max): a box around Thailand, used to catch swapped or bogus
#: coordinates; it also covers slivers of neighbouring countries.
THAILAND_BBOX = (5.5, 20.5, 97.3, 105.7)

T = TypeVar("T")

_RAD = math.pi / 180.0


def haversine_km(lat1: float, lng1: float, lat2: float, lng2: float) -> float:
    """Great-circle distance in km between two points given in degrees."""
    p1 = lat1 * _RAD
    p2 = lat2 * _RAD
    h = (
        math.sin((p2 - p1) / 2.0) ** 2
        + math.cos(p1) * math.cos(p2) * math.sin((lng2 - lng1) * _RAD / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, h)))


def in_thailand(lat: float, lng: float) -> bool:
    """True when the point lies in Thailand's bounding box (a sanity check, not a border test)."""
    lat_min, lat_max, lng_min, lng_max = THAILAND_BBOX
    return lat_min <= lat <= lat_max and lng_min <= lng <= lng_max


class GeoIndex(Generic[T]):
    """Immutable grid index over ``(lat, lng, item)`` points with exact nearest/within queries.

    Build it once (e.g. at start-up) and share it: queries do not modify it. Distances are
    haversine kilometres, the same as :func:`haversine_km`; ties are broken by build order.
    """

    __slots__ = (
        "_cell",
        "_cells",
        "_cos_max",
        "_i_max",
        "_i_min",
        "_items",
        "_j_max",
        "_j_min",
        "_points",
    )

    def __init__(self, points: Iterable[tuple[float, float, T]], cell_deg: float | None = None):
        items: list[T] = []
        coords: list[tuple[float, float, float, float, int]] = []
        for lat, lng, item in points:
            lat, lng = float(lat), float(lng)
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lng <= 180.0):  # also rejects NaN
                raise ValueError(f"not a coordinate: {lat}, {lng}")
            index = len(items)
            items.append(item)
            coords.append((lat, lng, lat * _RAD, math.cos(lat * _RAD), index))
        self._items: tuple[T, ...] = tuple(items)
        # (lat, lng, lat_rad, cos_lat, index) per point, in build order
        self._points: tuple[tuple[float, float, float, float, int], ...] = tuple(coords)
        if cell_deg is None:
            cell_deg = self._auto_cell(coords)
        if not cell_deg > 0:
            raise ValueError("cell_deg must be positive")
        self._cell = float(cell_deg)
        cells: dict[tuple[int, int], list[tuple[float, float, float, float, int]]] = {}
        for point in coords:
            key = (math.floor(point[0] / self._cell), math.floor(point[1] / self._cell))
            cells.setdefault(key, []).append(point)
        self._cells: dict[tuple[int, int], tuple[tuple[float, float, float, float, int], ...]] = {
            key: tuple(value) for key, value in cells.items()
        }
        if cells:
            self._i_min = min(i for i, _ in cells)
            self._i_max = max(i for i, _ in cells)
            self._j_min = min(j for _, j in cells)
            self._j_max = max(j for _, j in cells)
            # cos of the largest |lat| any point can have: bounds east-west distances below
            top = max(abs(p[0]) for p in coords)
            self._cos_max = math.cos(min(90.0, top + self._cell) * _RAD)
        else:
            self._i_min = self._i_max = self._j_min = self._j_max = 0
            self._cos_max = 1.0

    @staticmethod
    def _auto_cell(coords: list[tuple[float, float, float, float, int]]) -> float:
        """About two points per cell of the bounding box: few cells to visit, few to scan."""
        if len(coords) < 2:
            return 1.0
        lats = [p[0] for p in coords]
        lngs = [p[1] for p in coords]
        area = max(lats) - min(lats) + 0.01
        area *= max(lngs) - min(lngs) + 0.01
        return min(5.0, max(0.01, math.sqrt(area * 2.0 / len(coords))))

    def __len__(self) -> int:
        return len(self._items)

    @property
    def items(self) -> tuple[T, ...]:
        """Every item, in build order."""
        return self._items

    def nearest(
        self, lat: float, lng: float, k: int = 5, max_km: float | None = None
    ) -> list[tuple[T, float]]:
        """The ``k`` items closest to the point, closest first, with their distance in km."""
        if k <= 0 or not self._items:
            return []
        cell = self._cell
        ci = math.floor(lat / cell)
        cj = math.floor(lng / cell)
        qlat = lat * _RAD
        qcos = math.cos(qlat)
        cos_bound = min(self._cos_max, qcos) if abs(lat) < 90.0 else 0.0
        # max-heap of the best k as (-distance, -index, index)
        best: list[tuple[float, int, int]] = []
        limit = math.inf if max_km is None else float(max_km)
        i_min, i_max, j_min, j_max = self._i_min, self._i_max, self._j_min, self._j_max
        r = max(0, i_min - ci, ci - i_max, j_min - cj, cj - j_max)
        r_last = max(ci - i_min, i_max - ci, cj - j_min, j_max - cj)
        cells = self._cells
        two_r = 2.0 * EARTH_RADIUS_KM
        sin = math.sin
        asin = math.asin
        sqrt = math.sqrt
        while r <= r_last:
            for key in self._ring(ci, cj, r):
                bucket = cells.get(key)
                if bucket is None:
                    continue
                for _plat, plng, prad, pcos, index in bucket:
                    h = (
                        sin((prad - qlat) / 2.0) ** 2
                        + qcos * pcos * sin((plng - lng) * _RAD / 2.0) ** 2
                    )
                    d = two_r * asin(sqrt(h if h < 1.0 else 1.0))
                    if d > limit:
                        continue
                    if len(best) < k:
                        heapq.heappush(best, (-d, -index, index))
                    elif (-d, -index) > (best[0][0], best[0][1]):
                        heapq.heapreplace(best, (-d, -index, index))
            # Anything in ring r+1 or beyond is at least this far away.
            bound = self._ring_bound(lat, lng, ci, cj, r, cos_bound)
            if bound > limit:
                break
            if len(best) == k and bound > -best[0][0]:
                break
            r += 1
        best.sort(key=lambda entry: (-entry[0], entry[2]))
        return [(self._items[index], -neg) for neg, _, index in best]

    def within(self, lat: float, lng: float, km: float) -> list[tuple[T, float]]:
        """Every item within ``km`` of the point, closest first, with its distance in km."""
        if km < 0 or not self._items:
            return []
        return self.nearest(lat, lng, k=len(self._items), max_km=km)

    def _ring(self, ci: int, cj: int, r: int) -> Iterable[tuple[int, int]]:
        """Cells at Chebyshev distance ``r`` from (ci, cj), clipped to the occupied area."""
        i_lo, i_hi = max(ci - r, self._i_min), min(ci + r, self._i_max)
        j_lo, j_hi = max(cj - r, self._j_min), min(cj + r, self._j_max)
        if i_lo > i_hi or j_lo > j_hi:
            return ()
        if r == 0:
            return ((ci, cj),)
        out: list[tuple[int, int]] = []
        if ci - r >= self._i_min:
            out.extend((ci - r, j) for j in range(j_lo, j_hi + 1))
        if ci + r <= self._i_max:
            out.extend((ci + r, j) for j in range(j_lo, j_hi + 1))
        lo, hi = max(ci - r + 1, i_lo), min(ci + r - 1, i_hi)
        if cj - r >= self._j_min:
            out.extend((i, cj - r) for i in range(lo, hi + 1))
        if cj + r <= self._j_max:
            out.extend((i, cj + r) for i in range(lo, hi + 1))
        return out

    def _ring_bound(
        self, lat: float, lng: float, ci: int, cj: int, r: int, cos_bound: float
    ) -> float:
        """A lower bound (km) on the distance from the point to any cell outside ring ``r``."""
        cell = self._cell
        d_lat = min(lat - (ci - r) * cell, (ci + r + 1) * cell - lat)
        d_lng = min(lng - (cj - r) * cell, (cj + r + 1) * cell - lng)
        # Crossing d_lat degrees of latitude takes at least that arc along a meridian.
        north_south = EARTH_RADIUS_KM * d_lat * _RAD
        # hav(d) >= cos(lat1) cos(lat2) hav(dlng), and both cosines are >= cos_bound.
        half = min(math.pi / 2.0, d_lng * _RAD / 2.0)
        east_west = 2.0 * EARTH_RADIUS_KM * math.asin(min(1.0, cos_bound * math.sin(half)))
        return min(north_south, east_west)
