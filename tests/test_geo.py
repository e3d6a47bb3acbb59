"""Great-circle distances and the grid index, checked by independent formulas and brute force."""

from __future__ import annotations

import math
import random
import time

import pytest

from bot.kb.geo import EARTH_RADIUS_KM, GeoIndex, haversine_km, in_thailand
from tests.helpers import sphere_km


def _brute(
    points: list[tuple[float, float, int]], lat: float, lng: float
) -> list[tuple[int, float]]:
    ranked = sorted((haversine_km(lat, lng, p[0], p[1]), p[2]) for p in points)
    return [(item, d) for d, item in ranked]


class TestHaversine:
    def test_known_distances(self) -> None:
        # Bangkok (Democracy Monument) to Chiang Mai (Tha Phae Gate): about 582 km.
        d = haversine_km(13.7567, 100.5018, 18.7877, 98.9932)
        assert d == pytest.approx(sphere_km(13.7567, 100.5018, 18.7877, 98.9932), abs=1e-6)
        assert 575 < d < 590
        # One degree of latitude is R * pi / 180.
        assert haversine_km(10.0, 100.0, 11.0, 100.0) == pytest.approx(
            EARTH_RADIUS_KM * math.pi / 180.0, rel=1e-12
        )

    def test_zero_symmetric_and_antipodal(self) -> None:
        assert haversine_km(13.75, 100.5, 13.75, 100.5) == 0.0
        assert haversine_km(5.6, 97.4, 20.4, 105.6) == pytest.approx(
            haversine_km(20.4, 105.6, 5.6, 97.4), rel=1e-12
        )
        assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * EARTH_RADIUS_KM)

    def test_matches_independent_formula_on_random_pairs(self) -> None:
        rng = random.Random(7)
        for _ in range(500):
            a = (rng.uniform(-60, 60), rng.uniform(-180, 180))
            b = (rng.uniform(-60, 60), rng.uniform(-180, 180))
            assert haversine_km(*a, *b) == pytest.approx(sphere_km(*a, *b), abs=1e-6)

    def test_in_thailand(self) -> None:
        assert in_thailand(13.7563, 100.5018)  # Bangkok
        assert in_thailand(5.7, 101.0)
        assert not in_thailand(1.35, 103.82)  # Singapore
        assert not in_thailand(100.5, 13.75)  # swapped
        assert not in_thailand(21.0, 100.0)


@pytest.fixture(scope="module")
def points() -> list[tuple[float, float, int]]:
    rng = random.Random(20261121)
    pts = [(rng.uniform(5.6, 20.4), rng.uniform(97.4, 105.6), i) for i in range(3000)]
    # a dense cluster, exact duplicates and round coordinates make the search work harder
    pts += [(13.75 + rng.gauss(0, 0.01), 100.5 + rng.gauss(0, 0.01), 3000 + i) for i in range(300)]
    pts += [(15.0, 101.0, 3300), (15.0, 101.0, 3301), (16.0, 102.0, 3302)]
    return pts


@pytest.fixture(scope="module")
def index(points: list[tuple[float, float, int]]) -> GeoIndex[int]:
    return GeoIndex(points)


class TestGeoIndex:
    def test_nearest_equals_brute_force(
        self, points: list[tuple[float, float, int]], index: GeoIndex[int]
    ) -> None:
        rng = random.Random(1)
        for n in range(400):
            lat = rng.uniform(3.0, 23.0)
            lng = rng.uniform(95.0, 108.0)
            if n % 10 == 0:  # exactly on a stored point
                lat, lng, _ = points[rng.randrange(len(points))]
            k = rng.choice([1, 2, 5, 20])
            got = index.nearest(lat, lng, k=k)
            want = _brute(points, lat, lng)[:k]
            assert [d for _, d in got] == pytest.approx([d for _, d in want], abs=1e-9)
            # equal distances are ordered by build order, as in the sorted brute force
            assert [i for i, _ in got] == [i for i, _ in want]

    def test_max_km_and_within(
        self, points: list[tuple[float, float, int]], index: GeoIndex[int]
    ) -> None:
        rng = random.Random(2)
        for _ in range(100):
            lat, lng, km = rng.uniform(5, 21), rng.uniform(97, 106), rng.uniform(0, 60)
            want = [(i, d) for i, d in _brute(points, lat, lng) if d <= km]
            got = index.within(lat, lng, km)
            assert [i for i, _ in got] == [i for i, _ in want]
            assert index.nearest(lat, lng, k=3, max_km=km) == got[:3]

    def test_far_away_query_is_still_exact(self, points: list[tuple[float, float, int]]) -> None:
        index = GeoIndex(points[:200])
        for lat, lng in ((51.5, -0.12), (-33.9, 151.2), (13.0, 130.0)):
            got = index.nearest(lat, lng, k=2)
            want = _brute(points[:200], lat, lng)[:2]
            assert [i for i, _ in got] == [i for i, _ in want]
            assert [d for _, d in got] == pytest.approx([d for _, d in want])

    def test_distance_is_haversine(
        self, points: list[tuple[float, float, int]], index: GeoIndex[int]
    ) -> None:
        coords = {item: (lat, lng) for lat, lng, item in points}
        for item, d in index.nearest(13.7, 100.4, k=5):
            assert d == pytest.approx(haversine_km(13.7, 100.4, *coords[item]), abs=1e-12)

    def test_edge_cases(self) -> None:
        empty: GeoIndex[str] = GeoIndex([])
        assert empty.nearest(13.0, 100.0) == []
        assert empty.within(13.0, 100.0, 10.0) == []
        one = GeoIndex([(13.0, 100.0, "a")])
        assert one.nearest(13.0, 100.0, k=0) == []
        assert one.nearest(13.0, 100.0, k=5) == [("a", 0.0)]
        assert one.nearest(14.0, 100.0, k=1, max_km=50) == []
        assert len(one) == 1 and one.items == ("a",)
        with pytest.raises(ValueError):
            GeoIndex([(100.5, 13.7, "swapped")])
        with pytest.raises(ValueError):
            GeoIndex([(float("nan"), 100.0, "nan")])
        with pytest.raises(ValueError):
            GeoIndex([(13.0, 100.0, "a")], cell_deg=0)

    def test_immutable(self, index: GeoIndex[int]) -> None:
        assert isinstance(index.items, tuple)
        with pytest.raises(AttributeError):
            index.extra = 1  # type: ignore[attr-defined]

    def test_fast_enough(self) -> None:
        """A loose guard (CPU time, so a busy machine does not fail it); see the benchmark."""
        rng = random.Random(3)
        index = GeoIndex(
            (rng.uniform(5.6, 20.4), rng.uniform(97.4, 105.6), i) for i in range(10_000)
        )
        queries = [(rng.uniform(5.6, 20.4), rng.uniform(97.4, 105.6)) for _ in range(2000)]
        start = time.thread_time()
        for lat, lng in queries:
            index.nearest(lat, lng, k=5)
        assert (time.thread_time() - start) / len(queries) < 0.001
