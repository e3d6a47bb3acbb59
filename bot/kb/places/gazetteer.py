"""The gazetteer: every Thai province, district and subdistrict, by code, point and name.

Loaded once from a places folder (see :mod:`bot.kb.places.loading`) and never changed
afterwards, so one instance can be shared by every request.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

from pythainlp.corpus import thai_words

from bot.kb.geo import GeoIndex
from bot.kb.places.areas import BANGKOK, Area, District, Province, Subdistrict
from bot.kb.places.fuzzy import FuzzyIndex
from bot.kb.places.index import fuzzy_keys, name_index, scan_index
from bot.kb.places.loading import DEFAULT_FOLDER, read_tables
from bot.kb.places.matching import NameMatcher
from bot.kb.places.results import PlaceResult

__all__ = ["Gazetteer", "iter_areas"]

#: Points good enough to say "you are in this subdistrict"; means are only fallbacks.
_REFERENCE_PRECISIONS = frozenset({"subdistrict_ref", "manual"})
#: Display prefixes for "ต.… อ.… จ.…"; Bangkok uses แขวง/เขต and no province prefix.
_DISPLAY_PREFIX = {
    "subdistrict": ("ต.", "แขวง"),
    "district": ("อ.", "เขต"),
    "province": ("จ.", ""),
}


@dataclass(frozen=True, eq=False)
class Gazetteer:
    """Every province, district and subdistrict, with indexes for codes, points and names."""

    provinces: Mapping[str, Province]
    districts: Mapping[str, District]
    subdistricts: Mapping[str, Subdistrict]
    _districts_of: Mapping[str, tuple[District, ...]] = field(repr=False)
    _subdistricts_of: Mapping[str, tuple[Subdistrict, ...]] = field(repr=False)
    _geo: GeoIndex[Subdistrict] = field(repr=False)
    _names: NameMatcher = field(repr=False)

    # -- loading ------------------------------------------------------------------------------

    @classmethod
    def load(cls, folder: Path | str = DEFAULT_FOLDER) -> Gazetteer:
        """Read the place tables and the operator lists; fail loudly on an inconsistent folder."""
        tables = read_tables(Path(folder))
        provinces, districts, subdistricts = tables.provinces, tables.districts, tables.subdistricts
        districts_of: dict[str, list[District]] = {}
        for district in sorted(districts.values(), key=lambda d: d.code):
            districts_of.setdefault(district.province_code, []).append(district)
        subdistricts_of: dict[str, list[Subdistrict]] = {}
        for sub in sorted(subdistricts.values(), key=lambda s: s.code):
            subdistricts_of.setdefault(sub.district_code, []).append(sub)

        geo = GeoIndex(
            (s.lat, s.lng, s)
            for s in sorted(subdistricts.values(), key=lambda s: s.code)
            if s.coord_precision in _REFERENCE_PRECISIONS
        )
        names = name_index(provinces, districts, subdistricts)
        scan, lengths = scan_index(names, tables.common)
        areas = (
            MappingProxyType(provinces),
            MappingProxyType(districts),
            MappingProxyType(subdistricts),
        )
        matcher = NameMatcher(
            areas,
            names=MappingProxyType(names),
            scan=MappingProxyType(scan),
            scan_lengths=MappingProxyType(lengths),
            fuzzy=FuzzyIndex(fuzzy_keys(names)),
            # PyThaiNLP's own set, not a union: a copy of its 2 MB table for 16 more words
            words=frozenset(thai_words()),
            more_words=frozenset(tables.common),
        )
        return cls(
            provinces=areas[0],
            districts=areas[1],
            subdistricts=areas[2],
            _districts_of=MappingProxyType({k: tuple(v) for k, v in districts_of.items()}),
            _subdistricts_of=MappingProxyType({k: tuple(v) for k, v in subdistricts_of.items()}),
            _geo=geo,
            _names=matcher,
        )

    # -- codes --------------------------------------------------------------------------------

    def province(self, code: str) -> Province:
        return self.provinces[code]

    def district(self, code: str) -> District:
        return self.districts[code]

    def subdistrict(self, code: str) -> Subdistrict:
        return self.subdistricts[code]

    def get(self, code: str) -> Area:
        """Any level, told apart by the code's length (2, 4 or 6 digits)."""
        if len(code) == 2:
            return self.provinces[code]
        if len(code) == 4:
            return self.districts[code]
        if len(code) == 6:
            return self.subdistricts[code]
        raise KeyError(code)

    def districts_of(self, province_code: str) -> tuple[District, ...]:
        return self._districts_of.get(province_code, ())

    def subdistricts_of(self, district_code: str) -> tuple[Subdistrict, ...]:
        return self._subdistricts_of.get(district_code, ())

    def capital_district(self, province_code: str) -> District | None:
        """The district of the provincial seat (code ``XX01``); Bangkok has none."""
        if province_code == BANGKOK:
            return None
        return self.districts.get(province_code + "01")

    def area_names(self, code: str) -> dict[str, str]:
        """Thai pieces for "ต.… อ.… จ.…": names without prefixes, and the prefixes to use.

        Bangkok uses แขวง/เขต and no province prefix. For a district or province code only
        the larger levels are present.
        """
        area = self.get(code)
        bangkok = area.province_code == BANGKOK
        out: dict[str, str] = {}
        if isinstance(area, Subdistrict):
            out["subdistrict"] = area.name_th
            out["subdistrict_prefix"] = _DISPLAY_PREFIX["subdistrict"][bangkok]
            district: District | None = self.districts[area.district_code]
        else:
            district = area if isinstance(area, District) else None
        if district is not None:
            out["district"] = district.name_th_short
            out["district_prefix"] = _DISPLAY_PREFIX["district"][bangkok]
        out["province"] = self.provinces[area.province_code].name_th
        out["province_prefix"] = _DISPLAY_PREFIX["province"][bangkok]
        return out

    # -- points -------------------------------------------------------------------------------

    def nearest_subdistrict(self, lat: float, lng: float) -> tuple[Subdistrict, float]:
        """The subdistrict whose reference point is closest, and the distance in km.

        Only real reference points (source or manual) take part: a fallback mean would claim
        a point it does not really have. Near a boundary the answer can be the neighbour.
        """
        found = self._geo.nearest(lat, lng, k=1)
        if not found:
            raise LookupError("no subdistrict points loaded")
        return found[0]

    def nearest_subdistricts(
        self, lat: float, lng: float, k: int = 5, max_km: float | None = None
    ) -> list[tuple[Subdistrict, float]]:
        return self._geo.nearest(lat, lng, k=k, max_km=max_km)

    # -- typed names --------------------------------------------------------------------------

    def resolve(self, text: str) -> PlaceResult:
        """Read a text that is meant to be a place ("เชียงไหม่", "อ.เมือง จ.เชียงราย", "BKK")."""
        return self._names.resolve(text)

    def find_in_text(self, text: str) -> PlaceResult:
        """Find places mentioned in a free sentence; precise rather than greedy.

        Known names are found by a longest-match scan; short names and everyday words that
        are also place names ("เลย", "ตลาด", "ในเมือง") count only after a prefix such as
        "จ.", "อ." or "ตำบล", and only a word after a prefix may be misspelt. Mentions of
        several levels narrow each other ("ต.หนองบัว อ.เมือง อุดร" gives one subdistrict).
        """
        return self._names.find_in_text(text)


def iter_areas(gazetteer: Gazetteer) -> Iterator[Area]:
    """Every area, provinces first, each level in code order (for exports and tests)."""
    yield from sorted(gazetteer.provinces.values(), key=lambda a: a.code)
    yield from sorted(gazetteer.districts.values(), key=lambda a: a.code)
    yield from sorted(gazetteer.subdistricts.values(), key=lambda a: a.code)
