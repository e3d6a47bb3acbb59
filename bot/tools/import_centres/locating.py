"""Where a centre goes: its own coordinates when they make sense, else its area's point.

Coordinates are read from two columns or one "lat, lng" cell (a map link too); swapped
ones are put right; ones outside Thailand, or far from the area the row names, give way
to the point of the row's subdistrict, else of its district. Each such decision is noted
for the operator, never silent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from bot.kb.geo import haversine_km, in_thailand
from bot.kb.places import District, Subdistrict
from bot.tools.import_centres.cells import fmt_coord, thai_digits_to_ascii
from bot.tools.import_centres.placing import Place, Placer, Unplaced

__all__ = [
    "FAR_FROM_DISTRICT_KM",
    "FAR_FROM_SUBDISTRICT_KM",
    "IGNORE_BEYOND_KM",
    "Location",
    "PlacedBy",
    "locate",
]

PlacedBy = Literal["coordinates", "subdistrict", "district"]

#: Exact coordinates this far from their area's point deserve a second look (a warning only:
#: large rural subdistricts exist, and the named area may be the wrong one).
FAR_FROM_SUBDISTRICT_KM = 30.0
FAR_FROM_DISTRICT_KM = 60.0
#: Farther than this from the area the row names, the coordinates belong to another place
#: (copied from another row, digits lost): the named area is the safer point to show.
IGNORE_BEYOND_KM = 100.0
_AREA_PRECISIONS = frozenset({"district_mean", "province_mean", "manual"})
_PAIR = re.compile(r"(-?\d{1,3}\.\d+)\s*[,\s/;]\s*(-?\d{1,3}\.\d+)")


@dataclass(frozen=True)
class Location:
    """A row's areas and the point it gets: how it was placed, and the ``location_source``
    key of the column table that says so."""

    place: Place
    sub: Subdistrict | None
    district: District
    placed_by: PlacedBy
    lat: float
    lng: float
    precision: str
    source: str
    swapped: bool


def locate(placer: Placer, values: Mapping[str, str], note: Callable[[str], None]) -> Location:
    """The row's place and point; raises Unplaced (with the field at fault) to skip it.

    ``note`` receives what the operator should know about the row's coordinates.
    """
    coords, coord_note = _coordinates(values)
    if coord_note:
        note(coord_note)
    point: tuple[float, float] | None = None
    swapped = False
    outside: str | None = None
    if coords is not None:
        lat, lng = coords
        if in_thailand(lat, lng):
            point = coords
        elif in_thailand(lng, lat):
            point, swapped = (lng, lat), True
            note(
                f"latitude and longitude were swapped ({fmt_coord(lat)}, {fmt_coord(lng)})"
                f"; used ({fmt_coord(lng)}, {fmt_coord(lat)})"
            )
        else:
            outside = (
                f"the coordinates ({fmt_coord(lat)}, {fmt_coord(lng)}) are outside "
                "Thailand (also with latitude and longitude swapped)"
            )
    try:
        place = placer.place(values)
    except Unplaced as exc:
        if outside:
            raise Unplaced(
                "location",
                f"cannot place this centre: {outside}, and {exc.column}: {exc.message}",
            ) from None
        raise
    if outside:
        note(f"{outside}; placed at the area's point instead")

    gazetteer = placer.gazetteer
    sub = gazetteer.subdistricts[place.subdistrict] if place.subdistrict else None
    district = gazetteer.districts[place.district]
    area: Subdistrict | District = sub or district
    if point is not None:
        km = haversine_km(point[0], point[1], area.lat, area.lng)
        where = f"{km:.0f} km from the point of {area.name_th} ({area.code})"
        if km > IGNORE_BEYOND_KM:
            note(
                f"({fmt_coord(point[0])}, {fmt_coord(point[1])}) is {where} named in the "
                "row; ignored and placed at the area's point: fix the coordinates or the names"
            )
            point, swapped = None, False
        elif km > (FAR_FROM_SUBDISTRICT_KM if sub else FAR_FROM_DISTRICT_KM):
            note(f"the point is {where}; check the coordinates and the place names")
    if point is not None:
        lat, lng = point
        source = "coordinates_swapped" if swapped else "coordinates"
        return Location(place, sub, district, "coordinates", lat, lng, "exact", source, swapped)
    if sub is not None:
        precision = (
            sub.coord_precision if sub.coord_precision in _AREA_PRECISIONS else "subdistrict_ref"
        )
        source = "subdistrict" if precision == "subdistrict_ref" else "subdistrict_fallback"
        return Location(
            place, sub, district, "subdistrict", sub.lat, sub.lng, precision, source, False
        )
    precision = (
        district.coord_precision
        if district.coord_precision in _AREA_PRECISIONS
        else "district_mean"
    )
    return Location(
        place, sub, district, "district", district.lat, district.lng, precision, "district", False
    )


def _number(cell: str) -> float | None:
    """A decimal degree in Thai or Arabic digits ("๑๘.๗๘°" too), or None."""
    value = thai_digits_to_ascii(cell).strip().rstrip("°").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _coordinates(values: Mapping[str, str]) -> tuple[tuple[float, float] | None, str | None]:
    """(lat, lng) from two columns or one "lat, lng" cell (also a map link), or a note."""
    lat_cell, lng_cell = values.get("lat", ""), values.get("lng", "")
    if lat_cell or lng_cell:
        lat, lng = _number(lat_cell), _number(lng_cell)
        if lat is not None and lng is not None:
            return (lat, lng), None
        if lat_cell and lng_cell:
            return None, f"({lat_cell!r}, {lng_cell!r}) are not decimal degrees; ignored"
        if not values.get("latlng"):
            return None, "only one of latitude and longitude is filled in; ignored"
    cell = thai_digits_to_ascii(values.get("latlng", ""))
    if not cell:
        return None, None
    at = re.search(r"@(-?\d+\.\d+),(-?\d+\.\d+)", cell)  # a Google Maps link
    match = at or _PAIR.search(cell)
    if match is None:
        return None, f"{values.get('latlng')!r} is not a latitude, longitude pair; ignored"
    return (float(match[1]), float(match[2])), None
