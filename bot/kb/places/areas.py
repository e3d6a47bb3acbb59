"""The three levels of Thai administrative areas, as loaded from ``knowledge/places/``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

__all__ = [
    "BANGKOK",
    "LEVELS",
    "Area",
    "District",
    "Level",
    "Province",
    "Subdistrict",
    "as_level",
]

Level = Literal["province", "district", "subdistrict"]

BANGKOK = "10"
LEVELS: tuple[Level, ...] = ("province", "district", "subdistrict")


@dataclass(frozen=True, slots=True)
class Province:
    """A changwat (Bangkok is code 10). The point is the mean of its subdistrict points."""

    code: str
    name_th: str
    name_en: str
    abbr_th: str
    abbr_en: str
    lat: float
    lng: float
    coord_precision: str
    n_points: int
    aliases: tuple[str, ...] = ()
    level: ClassVar[Level] = "province"

    @property
    def province_code(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class District:
    """An amphoe, or a khet in Bangkok (``name_th`` keeps DOPA's "เขต", the short name drops it)."""

    code: str
    province_code: str
    name_th: str
    name_th_short: str
    name_en: str
    lat: float
    lng: float
    coord_precision: str
    aliases: tuple[str, ...] = ()
    level: ClassVar[Level] = "district"

    @property
    def district_code(self) -> str:
        return self.code


@dataclass(frozen=True, slots=True)
class Subdistrict:
    """A tambon, or a khwaeng in Bangkok, with its postal codes and reference point."""

    code: str
    district_code: str
    province_code: str
    name_th: str
    name_en: str
    postal_codes: tuple[str, ...]
    lat: float
    lng: float
    coord_precision: str
    aliases: tuple[str, ...] = ()
    level: ClassVar[Level] = "subdistrict"


Area = Province | District | Subdistrict


def as_level(text: str) -> Level | None:
    """``text`` as a level name, or None when it names none."""
    for level in LEVELS:
        if text == level:
            return level
    return None
