#!/usr/bin/env python3
"""Build the project's own copy of the Thai administrative areas into ``knowledge/places/``.

The bot never reads ``../shared`` at run time, so this script joins the copied sources once
and writes small CSV files that are committed:

- GeoThai (CC BY 4.0) is the master list: codes, Thai/English names, postal codes;
- thailand-geodata (MIT) gives one reference point per subdistrict and spelling aliases;
- pythainlp (CC0) gives the province abbreviations;
- ``knowledge/places/overrides.csv`` (hand-made) fixes points where the fallback is badly wrong.

Every area gets a point. A subdistrict without a source point falls back to the mean of its
district's points, then to the mean of its province's points; an override wins over both and
is marked ``manual``. The output is deterministic: the same input gives byte-identical files.

Usage: ``python scripts/build_places.py [--source ../shared/data] [--out knowledge/places]``
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import shutil
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = ROOT.parent / "shared" / "data"
DEFAULT_OUT = ROOT / "knowledge" / "places"
DEFAULT_OVERRIDES = DEFAULT_OUT / "overrides.csv"

#: Thailand's bounding box; a point outside it is a data error, not a place.
LAT_RANGE = (5.5, 20.5)
LNG_RANGE = (97.3, 105.7)
EXPECTED = {"provinces": 77, "districts": 928, "subdistricts": 7436}
BANGKOK = "10"
#: Prefix that GeoThai keeps on Bangkok district (khet) names, dropped in ``name_th_short``.
DISTRICT_PREFIXES = ("เขต", "อำเภอ")

#: Files copied unchanged so the licences travel with the data.
COPIED = {
    "LICENSE-thailand-geodata.txt": Path("thailand-geodata") / "LICENSE.txt",
    "NOTICE-geothai.txt": Path("geothai") / "NOTICE.txt",
}

PROVINCE_COLUMNS = (
    "code",
    "name_th",
    "name_en",
    "abbr_th",
    "abbr_en",
    "lat",
    "lng",
    "coord_precision",
    "n_points",
)
DISTRICT_COLUMNS = (
    "code",
    "province_code",
    "name_th",
    "name_th_short",
    "name_en",
    "lat",
    "lng",
    "coord_precision",
    "aliases",
)
SUBDISTRICT_COLUMNS = (
    "code",
    "district_code",
    "province_code",
    "name_th",
    "name_en",
    "postal_codes",
    "lat",
    "lng",
    "coord_precision",
    "aliases",
)


class BuildError(Exception):
    """The sources are not what this script expects; stop rather than write a bad table."""


@dataclass(frozen=True)
class Point:
    lat: float
    lng: float


@dataclass(frozen=True)
class Override:
    code: str
    point: Point
    note: str


# -- reading ----------------------------------------------------------------------------------


def _read_json_rows(path: Path) -> list[list[str]]:
    if not path.is_file():
        raise BuildError(f"missing source file {path}")
    rows = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(rows, list):
        raise BuildError(f"{path}: expected a JSON array")
    return [[str(cell) for cell in row] for row in rows]


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        raise BuildError(f"missing source file {path}")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _coordinate(text: str) -> float | None:
    """thailand-geodata writes a missing value as ``""`` or as the text ``None``."""
    text = text.strip()
    if text in ("", "None"):
        return None
    return float(text)


def read_overrides(path: Path) -> dict[str, Override]:
    """Hand-made points; each needs a note saying where the value comes from."""
    result: dict[str, Override] = {}
    for number, row in enumerate(_read_csv(path), start=2):
        code = row.get("code", "").strip()
        note = row.get("note", "").strip()
        if not code or code in result:
            raise BuildError(f"{path}:{number}: empty or repeated code {code!r}")
        if not note:
            raise BuildError(f"{path}:{number}: every override needs a note (its source)")
        point = Point(float(row["lat"]), float(row["lng"]))
        result[code] = Override(code, point, note)
    return result


# -- helpers ----------------------------------------------------------------------------------


def _mean(points: Sequence[Point]) -> Point:
    return Point(
        math.fsum(p.lat for p in points) / len(points),
        math.fsum(p.lng for p in points) / len(points),
    )


def _fmt(value: float) -> str:
    """Four decimals (about 10 m), written in the shortest form so diffs stay small."""
    rounded = round(value, 4)
    return repr(rounded if rounded != 0 else 0.0)


def _check_point(what: str, point: Point) -> None:
    if not (LAT_RANGE[0] <= point.lat <= LAT_RANGE[1]) or not (
        LNG_RANGE[0] <= point.lng <= LNG_RANGE[1]
    ):
        raise BuildError(
            f"{what}: point {point.lat}, {point.lng} lies outside Thailand "
            f"(lat {LAT_RANGE}, lng {LNG_RANGE})"
        )


def _unique(values: Iterable[str], exclude: Sequence[str]) -> list[str]:
    """Keep the first of each spelling; a difference in letter case alone is not a new alias."""
    seen = {_fold(value) for value in exclude}
    seen_exact = set(exclude)
    out: list[str] = []
    for value in values:
        value = value.strip()
        if not value or value in seen_exact or _fold(value) in seen:
            continue
        seen.add(_fold(value))
        seen_exact.add(value)
        out.append(value)
    return out


def _fold(value: str) -> str:
    return " ".join(value.lower().split())


def _thai_variants(name: str) -> list[str]:
    """Forms people type for a Thai name with spaces, hyphens, dots or a bracketed variant."""
    out: list[str] = []
    if "(" in name and name.endswith(")"):
        head, _, tail = name[:-1].partition("(")
        out += [head.strip(), tail.strip()]
    squeezed = "".join(ch for ch in name if ch not in " -.")
    if squeezed != name and "(" not in name:
        out.append(squeezed)
    return out


def _english_variants(name: str) -> list[str]:
    """``Su-ngai Kolok`` is also written ``Sungai Kolok``; spaces alone are ignored in matching."""
    return [name.replace("-", "")] if "-" in name else []


def aliases_for(
    name_th: str, name_en: str, other_th: str | None, other_en: str | None
) -> list[str]:
    """The other source's spellings where they differ, then squeezed and unbracketed forms."""
    candidates: list[str] = []
    if other_th:
        candidates.append(other_th)
    if other_en:
        candidates.append(other_en)
    for thai in (name_th, other_th):
        if thai:
            candidates += _thai_variants(thai)
    for english in (name_en, other_en):
        if english:
            candidates += _english_variants(english)
    return _unique(candidates, exclude=(name_th, name_en))


# -- building ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tables:
    provinces: list[dict[str, str]]
    districts: list[dict[str, str]]
    subdistricts: list[dict[str, str]]
    precision_counts: dict[str, Counter[str]]


def build(source: Path, overrides: dict[str, Override]) -> Tables:
    """Join the sources into three tables of rows (strings, ready to write)."""
    provinces = sorted(_read_json_rows(source / "geothai" / "provinces.json"))
    districts = sorted(_read_json_rows(source / "geothai" / "districts.json"))
    subdistricts = sorted(_read_json_rows(source / "geothai" / "subdistricts.json"))
    for name, rows in (
        ("provinces", provinces),
        ("districts", districts),
        ("subdistricts", subdistricts),
    ):
        if len(rows) != EXPECTED[name]:
            raise BuildError(f"geothai {name}: {len(rows)} rows, expected {EXPECTED[name]}")

    geo_sub = {
        r["SUB_DISTRICT_CODE"]: r
        for r in _read_csv(source / "thailand-geodata" / "sub_districts.csv")
    }
    geo_dist = {
        r["DISTRICT_CODE"]: r for r in _read_csv(source / "thailand-geodata" / "districts.csv")
    }
    abbreviations = _read_abbreviations(
        source / "pythainlp-provinces" / "thailand_provinces_th.csv"
    )

    province_codes = {row[0] for row in provinces}
    district_codes = {row[0] for row in districts}
    for code, *_ in districts:
        if code[:2] not in province_codes:
            raise BuildError(f"district {code} has no province {code[:2]}")
    for code, *_ in subdistricts:
        if code[:4] not in district_codes:
            raise BuildError(f"subdistrict {code} has no district {code[:4]}")
        if code not in geo_sub:
            raise BuildError(f"subdistrict {code} is missing from thailand-geodata")
    for code in overrides:
        if len(code) != 6 or code not in geo_sub:
            raise BuildError(f"override {code}: not a known subdistrict code")
        _check_point(f"override {code}", overrides[code].point)

    # Source points, checked before any mean is taken from them.
    source_points: dict[str, Point] = {}
    for code, row in sorted(geo_sub.items()):
        lat, lng = _coordinate(row["LATITUDE"]), _coordinate(row["LONGITUDE"])
        if (lat is None) != (lng is None):
            raise BuildError(f"subdistrict {code}: only one of latitude/longitude is given")
        if lat is not None and lng is not None:
            point = Point(lat, lng)
            _check_point(f"thailand-geodata subdistrict {code}", point)
            source_points[code] = point

    by_district: dict[str, list[Point]] = defaultdict(list)
    by_province: dict[str, list[Point]] = defaultdict(list)
    manual_by_district: dict[str, list[Point]] = defaultdict(list)
    for code in sorted(source_points):
        by_district[code[:4]].append(source_points[code])
        by_province[code[:2]].append(source_points[code])
    for code in sorted(overrides):
        manual_by_district[code[:4]].append(overrides[code].point)
    for code in sorted(province_codes):
        if not by_province[code]:
            raise BuildError(f"province {code} has no source point at all")

    counts: dict[str, Counter[str]] = {
        "province": Counter(),
        "district": Counter(),
        "subdistrict": Counter(),
    }

    sub_rows: list[dict[str, str]] = []
    for code, name_th, name_en, postal in subdistricts:
        if code in overrides:
            point, precision = overrides[code].point, "manual"
        elif code in source_points:
            point, precision = source_points[code], "subdistrict_ref"
        elif by_district[code[:4]]:
            point, precision = _mean(by_district[code[:4]]), "district_mean"
        else:
            point, precision = _mean(by_province[code[:2]]), "province_mean"
        _check_point(f"subdistrict {code}", point)
        counts["subdistrict"][precision] += 1
        other = geo_sub[code]
        aliases = aliases_for(
            name_th, name_en, other["SUB_DISTRICT_THAI"], other["SUB_DISTRICT_ENGLISH"]
        )
        sub_rows.append(
            {
                "code": code,
                "district_code": code[:4],
                "province_code": code[:2],
                "name_th": name_th,
                "name_en": name_en,
                "postal_codes": " ".join(postal.split()),
                "lat": _fmt(point.lat),
                "lng": _fmt(point.lng),
                "coord_precision": precision,
                "aliases": ";".join(aliases),
            }
        )

    dist_rows: list[dict[str, str]] = []
    for code, name_th, name_en in districts:
        if by_district[code]:
            point, precision = _mean(by_district[code]), "district_mean"
        elif manual_by_district[code]:
            point, precision = _mean(manual_by_district[code]), "manual"
        else:
            point, precision = _mean(by_province[code[:2]]), "province_mean"
        _check_point(f"district {code}", point)
        counts["district"][precision] += 1
        short = name_th
        for prefix in DISTRICT_PREFIXES:
            if short.startswith(prefix) and len(short) > len(prefix):
                short = short[len(prefix) :]
                break
        other_row = geo_dist.get(code)
        aliases = aliases_for(
            short,
            name_en,
            other_row["DISTRICT_THAI"] if other_row else None,
            other_row["DISTRICT_ENGLISH"] if other_row else None,
        )
        dist_rows.append(
            {
                "code": code,
                "province_code": code[:2],
                "name_th": name_th,
                "name_th_short": short,
                "name_en": name_en,
                "lat": _fmt(point.lat),
                "lng": _fmt(point.lng),
                "coord_precision": precision,
                "aliases": ";".join(a for a in aliases if a != name_th),
            }
        )

    prov_rows: list[dict[str, str]] = []
    for code, name_th, name_en in provinces:
        if name_th not in abbreviations:
            raise BuildError(f"province {code} {name_th}: no abbreviation in pythainlp's list")
        abbr_th, abbr_en = abbreviations[name_th]
        point = _mean(by_province[code])
        _check_point(f"province {code}", point)
        counts["province"]["province_mean"] += 1
        prov_rows.append(
            {
                "code": code,
                "name_th": name_th,
                "name_en": name_en,
                "abbr_th": abbr_th,
                "abbr_en": abbr_en,
                "lat": _fmt(point.lat),
                "lng": _fmt(point.lng),
                "coord_precision": "province_mean",
                "n_points": str(len(by_province[code])),
            }
        )
    return Tables(prov_rows, dist_rows, sub_rows, counts)


def _read_abbreviations(path: Path) -> dict[str, tuple[str, str]]:
    """pythainlp's list has no header: ``name_th, abbr_th, name_en, abbr_en``."""
    if not path.is_file():
        raise BuildError(f"missing source file {path}")
    out: dict[str, tuple[str, str]] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle):
            if len(row) == 4:
                out[row[0].strip()] = (row[1].strip(), row[3].strip())
    return out


# -- writing ----------------------------------------------------------------------------------


def render_csv(columns: Sequence[str], rows: Iterable[dict[str, str]]) -> bytes:
    """UTF-8, LF line ends, quoting only where needed: stable bytes for review and tests."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


def write(tables: Tables, source: Path, out: Path) -> list[Path]:
    """Write the tables and copy the licence files; returns the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    outputs = {
        "provinces.csv": render_csv(PROVINCE_COLUMNS, tables.provinces),
        "districts.csv": render_csv(DISTRICT_COLUMNS, tables.districts),
        "subdistricts.csv": render_csv(SUBDISTRICT_COLUMNS, tables.subdistricts),
    }
    written: list[Path] = []
    for name, data in outputs.items():
        path = out / name
        path.write_bytes(data)
        written.append(path)
    for name, relative in COPIED.items():
        if not (source / relative).is_file():
            raise BuildError(f"missing source file {source / relative}")
        shutil.copyfile(source / relative, out / name)
        written.append(out / name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument(
        "--source",
        type=Path,
        default=DEFAULT_SOURCE,
        help="folder with geothai/, thailand-geodata/, pythainlp-provinces/",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to write the CSVs")
    parser.add_argument(
        "--overrides",
        type=Path,
        default=DEFAULT_OVERRIDES,
        help="hand-made points: code,lat,lng,note",
    )
    parser.add_argument("--quiet", action="store_true", help="print nothing on success")
    args = parser.parse_args(argv)
    try:
        tables = build(args.source, read_overrides(args.overrides))
        written = write(tables, args.source, args.out)
    except (BuildError, OSError, ValueError, KeyError) as exc:
        print(f"build_places: {exc}", file=sys.stderr)
        return 1
    if not args.quiet:
        for level, counter in tables.precision_counts.items():
            parts = ", ".join(f"{key} {counter[key]}" for key in sorted(counter))
            print(f"{level}: {sum(counter.values())} rows ({parts})")
        print(
            "wrote "
            + ", ".join(
                str(p.relative_to(ROOT)) if p.is_relative_to(ROOT) else str(p) for p in written
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
