"""Placing a row: its place cells (names or DOPA codes) as province, district, subdistrict.

Each name is looked for only inside the area found above it, and a name that still fits
several areas is refused rather than guessed: a centre pinned in the wrong province is
worse than one reported for an operator to fix.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from rapidfuzz import fuzz, process

from bot.kb.places import Gazetteer, PlaceMatch
from bot.tools.import_centres.cells import clean_cell, header_key, thai_digits_to_ascii
from bot.tools.import_centres.column_table import ImportTable

__all__ = ["LOCAL_FUZZY_CUTOFF", "Place", "Placer", "Unplaced"]

#: rapidfuzz ratio for a misspelt name among the few areas of a known parent.
LOCAL_FUZZY_CUTOFF = 85.0


@dataclass(frozen=True)
class Place:
    """The codes of a row's areas; the subdistrict only when the row names one."""

    province: str
    district: str
    subdistrict: str | None


class Unplaced(Exception):
    """A row's place cannot be worked out: the field at fault and why."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


_LEVEL_FIELDS = {
    "province": ("province", "province_code"),
    "district": ("district", "district_code"),
    "subdistrict": ("subdistrict", "subdistrict_code"),
}
_CODE_LEVEL = {2: "province", 4: "district", 6: "subdistrict", 8: "subdistrict"}


class Placer:
    """Turns the place cells of a row (names or DOPA codes) into codes, narrowing level by level.

    A subdistrict name alone is often ambiguous (there are 28 หนองบัว), so each name is only
    looked for inside the area found above it, and a name that still fits several areas is
    refused rather than guessed: a centre pinned in the wrong province is worse than one
    reported for an operator to fix.
    """

    def __init__(self, gazetteer: Gazetteer, table: ImportTable) -> None:
        self.gazetteer = gazetteer
        self.table = table

    # -- codes ---------------------------------------------------------------------------------

    def _code(self, cell: str) -> str | None:
        digits = re.sub(r"[\s\-.]", "", thai_digits_to_ascii(cell))
        return digits if digits.isdigit() else None

    def _known(self, level: str, code: str) -> bool:
        table = {
            "province": self.gazetteer.provinces,
            "district": self.gazetteer.districts,
            "subdistrict": self.gazetteer.subdistricts,
        }[level]
        return code in table

    def _where(self, code: str) -> str:
        area = self.gazetteer.get(code)
        return f"{area.name_th} ({code})"

    def place(self, values: Mapping[str, str]) -> Place:
        """The row's province, district and (when named) subdistrict, or Unplaced."""
        codes: dict[str, tuple[str, str]] = {}  # level -> (field, code)
        texts: dict[str, tuple[str, str]] = {}  # level -> (field, name text)
        for level, fields in _LEVEL_FIELDS.items():
            for name in fields:
                cell = values.get(name, "")
                if not cell:
                    continue
                code = self._code(cell)
                if code is None:
                    texts.setdefault(level, (name, cell))
                    continue
                code_level = _CODE_LEVEL.get(len(code))
                if code_level is None:
                    raise Unplaced(name, f"{cell!r} is not a DOPA code (2, 4, 6 or 8 digits)")
                code = code[:6]
                if not self._known(code_level, code):
                    raise Unplaced(name, f"unknown {code_level} code {code!r}")
                old = codes.get(code_level)
                if old is not None and old[1] != code:
                    raise Unplaced(name, f"code {code} disagrees with {old[0]} code {old[1]}")
                codes[code_level] = (name, code)

        prov, dist, sub = (codes[level][1] if level in codes else None for level in _LEVEL_FIELDS)
        if sub is not None:
            dist = self._around(codes, sub)
        if dist is not None:
            prov = self._around(codes, dist)

        if prov is None:
            if "province" not in texts:
                raise Unplaced("province", "missing; the province is needed to place the centre")
            column, text = texts["province"]
            prov = self._one(column, text, "province", None)
        else:
            self._agrees(texts.get("province"), "province", None, prov)
        if dist is None and "district" in texts:
            column, text = texts["district"]
            dist = self._one(column, text, "district", prov)
        elif dist is not None:
            self._agrees(texts.get("district"), "district", prov, dist)
        if sub is None and "subdistrict" in texts:
            column, text = texts["subdistrict"]
            sub = self._one(column, text, "subdistrict", dist or prov)
            dist = dist or self.gazetteer.subdistricts[sub].district_code
        elif sub is not None:
            self._agrees(texts.get("subdistrict"), "subdistrict", dist, sub)
        if dist is None:
            raise Unplaced(
                "district",
                f"missing; a district (or subdistrict) of {self._where(prov)} is needed",
            )
        return Place(prov, dist, sub)

    def _around(self, codes: Mapping[str, tuple[str, str]], code: str) -> str:
        """The district around a subdistrict, or the province around a district; a code the
        row gives for that area must be the same one."""
        inner: str
        if len(code) == 6:
            inner, level = "subdistrict", "district"
            around = self.gazetteer.subdistricts[code].district_code
        else:
            inner, level = "district", "province"
            around = self.gazetteer.districts[code].province_code
        given = codes.get(level)
        if given is not None and given[1] != around:
            raise Unplaced(
                given[0], f"{level} {given[1]} does not contain {inner} {self._where(code)}"
            )
        return around

    def _agrees(
        self, given: tuple[str, str] | None, level: str, parent: str | None, code: str
    ) -> None:
        """A name next to a code must not name another area (it may be unreadable)."""
        if given is None:
            return
        column, text = given
        found = self.matches(text, level, parent)
        if len(found) == 1 and found[0] != code:
            raise Unplaced(
                column,
                f"{text!r} is {self._where(found[0])}, but the codes say {self._where(code)}",
            )

    def _one(self, column: str, text: str, level: str, parent: str | None) -> str:
        found = self.matches(text, level, parent)
        inside = f" in {self._where(parent)}" if parent else ""
        if not found:
            raise Unplaced(column, f"{text!r} is not a known {level}{inside}")
        if len(found) > 1:
            listed = ", ".join(self._with_parent(code) for code in found[:8])
            more = f" and {len(found) - 8} more" if len(found) > 8 else ""
            hint = {"subdistrict": "the district", "district": "the province"}.get(
                level, "a district"
            )
            raise Unplaced(
                column,
                f"{text!r} matches {len(found)} {level}s{inside}: {listed}{more}; fill in {hint}",
            )
        return found[0]

    def _with_parent(self, code: str) -> str:
        area = self.gazetteer.get(code)
        parent = code[:4] if len(code) == 6 else code[:2]
        return f"{area.name_th} ({code}, in {self.gazetteer.get(parent).name_th})"

    def matches(self, text: str, level: str, parent: str | None) -> list[str]:
        """Codes of the areas of ``level`` inside ``parent`` that ``text`` names, best only."""
        result = self.gazetteer.resolve(text)
        found = [m for m in result.candidates if m.level == level and _inside(m, parent)]
        if found:
            best = max(m.score for m in found)
            return sorted({m.code for m in found if m.score == best})
        if parent is None:
            return []
        return self._local(text, level, parent)

    def _local(self, text: str, level: str, parent: str) -> list[str]:
        """A misspelt name among the few areas of a known parent (the gazetteer may have
        preferred an exact name elsewhere in the country)."""
        key = header_key(self._without_prefix(text))
        if not key:
            return []
        names: dict[str, set[str]] = {}
        for code, spellings in self._children(level, parent):
            for spelling in spellings:
                if spelling:
                    names.setdefault(header_key(spelling), set()).add(code)
        if key in names:
            return sorted(names[key])
        hits = process.extract(
            key, list(names), scorer=fuzz.ratio, score_cutoff=LOCAL_FUZZY_CUTOFF, limit=5
        )
        if not hits:
            return []
        best = max(score for _, score, _ in hits)
        return sorted({code for name, score, _ in hits if score == best for code in names[name]})

    def _children(self, level: str, parent: str) -> list[tuple[str, tuple[str, ...]]]:
        g = self.gazetteer
        if level == "district" and len(parent) == 2:
            return [
                (d.code, (d.name_th, d.name_th_short, d.name_en, *d.aliases))
                for d in g.districts_of(parent)
            ]
        if level == "subdistrict":
            districts = [parent] if len(parent) == 4 else [d.code for d in g.districts_of(parent)]
            return [
                (s.code, (s.name_th, s.name_en, *s.aliases))
                for d in districts
                for s in g.subdistricts_of(d)
            ]
        return []

    def _without_prefix(self, text: str) -> str:
        value = clean_cell(text)
        for prefix in self.table.place_prefixes:
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
        return value


def _inside(match: PlaceMatch, parent: str | None) -> bool:
    if parent is None:
        return True
    if len(parent) == 2:
        return match.province_code == parent
    return match.district_code == parent
