"""Reading ``knowledge/places/``: the generated area tables and the operators' two lists.

``provinces.csv``, ``districts.csv`` and ``subdistricts.csv`` come from
``scripts/build_places.py``; ``nicknames.csv`` (names people use: "โคราช") and
``common_words.csv`` (everyday words that are also place names) are kept by hand. A folder
that does not hold together (an area in an unknown parent, a nickname for an unknown code)
fails loudly: a gazetteer with holes would answer wrongly without a sign.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from bot.kb.places.areas import District, Level, Province, Subdistrict, as_level
from bot.kb.places.names import name_key
from bot.paths import shipped

__all__ = ["DEFAULT_FOLDER", "Tables", "read_tables"]

DEFAULT_FOLDER = shipped("knowledge") / "places"

_A = TypeVar("_A", Province, District, Subdistrict)
#: How a column's text becomes an area's field, by the field's declared type.
_PARSE: dict[str, Callable[[str], Any]] = {"str": str, "float": float, "int": int}


@dataclass(frozen=True)
class Tables:
    """The areas of one places folder, nicknames included, and the everyday-word keys."""

    provinces: dict[str, Province]
    districts: dict[str, District]
    subdistricts: dict[str, Subdistrict]
    common: set[str]


def read_tables(folder: Path) -> Tables:
    """Read the place tables and the operator lists; fail loudly on an inconsistent folder."""
    # One string object per distinct value: 7,400 subdistricts repeat ~1,000 district codes,
    # 77 province codes and a few precisions (about 1 MB of copies in every process).
    same: dict[str, str] = {}
    provinces = {
        row["code"]: _area_of(
            same, Province, row, aliases=tuple(a for a in (row["abbr_th"], row["abbr_en"]) if a)
        )
        for row in _read_csv(folder / "provinces.csv")
    }
    districts = {
        row["code"]: _area_of(same, District, row, aliases=_split_list(row.get("aliases", ""), ";"))
        for row in _read_csv(folder / "districts.csv")
    }
    subdistricts = {
        row["code"]: _area_of(
            same,
            Subdistrict,
            row,
            postal_codes=tuple(
                same.setdefault(c, c) for c in _split_list(row["postal_codes"], " ")
            ),
            aliases=_split_list(row.get("aliases", ""), ";"),
        )
        for row in _read_csv(folder / "subdistricts.csv")
    }
    for district in districts.values():
        if district.province_code not in provinces:
            raise ValueError(f"district {district.code}: unknown province")
    for sub in subdistricts.values():
        if sub.district_code not in districts or sub.province_code not in provinces:
            raise ValueError(f"subdistrict {sub.code}: unknown district or province")

    nicknames: dict[str, list[tuple[str, Level]]] = {}
    nick_path = folder / "nicknames.csv"
    for number, row in enumerate(_read_csv(nick_path) if nick_path.is_file() else [], 2):
        code, name = row["code"].strip(), row["name"].strip()
        level = as_level(row["level"].strip())
        known = (
            (level == "province" and code in provinces)
            or (level == "district" and code in districts)
            or (level == "subdistrict" and code in subdistricts)
        )
        if level is None or not known or not name:
            raise ValueError(f"{nick_path}:{number}: unknown {row['level']} {code!r}")
        nicknames.setdefault(code, []).append((name, level))
    for code in nicknames:
        if len(code) == 2:
            provinces[code] = _with_nicknames(provinces[code], nicknames)
        elif len(code) == 4:
            districts[code] = _with_nicknames(districts[code], nicknames)
        else:
            subdistricts[code] = _with_nicknames(subdistricts[code], nicknames)

    common_path = folder / "common_words.csv"
    common = {
        name_key(row["word"])
        for row in (_read_csv(common_path) if common_path.is_file() else [])
        if row.get("word", "").strip()
    }
    return Tables(provinces, districts, subdistricts, common)


def _area_of(same: dict[str, str], kind: type[_A], row: Mapping[str, str], **given: Any) -> _A:
    """An area from its table row: each field not ``given`` is the column of its name, read
    as the field's type (a missing column fails with its name); equal strings are ``same``'s
    one object."""
    read = {f.name: _PARSE[str(f.type)](row[f.name]) for f in fields(kind) if f.name not in given}
    for name, value in read.items():
        if isinstance(value, str):
            read[name] = same.setdefault(value, value)
    return kind(**read, **given)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _split_list(value: str | None, sep: str) -> tuple[str, ...]:
    if not value:
        return ()
    return tuple(part.strip() for part in value.split(sep) if part.strip())


def _with_nicknames(area: _A, nicknames: dict[str, list[tuple[str, Level]]]) -> _A:
    extra = tuple(
        name
        for name, level in nicknames.get(area.code, ())
        if level == area.level and name not in area.aliases
    )
    return replace(area, aliases=area.aliases + extra) if extra else area
