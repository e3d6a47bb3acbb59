"""The name indexes of the gazetteer: every key a place can be typed as, and the subset a
sentence scan may take without a prefix.

Short names and everyday words that are also place names ("เลย", "ตลาด", "ในเมือง") count
in a sentence only after a prefix such as "จ." or "ตำบล"; ``common_words.csv`` lists the
everyday words, and a province among them counts after a place cue ("แถวเลย").
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from bot.kb.places.areas import BANGKOK, District, Level, Province, Subdistrict
from bot.kb.places.names import is_thai, name_key

__all__ = [
    "MIN_FREE_LATIN_LEN",
    "MIN_FREE_LEN",
    "Entry",
    "ScanKey",
    "fuzzy_keys",
    "name_index",
    "pick",
    "scan_index",
]

#: In a sentence, names this short (in code points) are only matched after a prefix.
MIN_FREE_LEN = {"province": 3, "district": 3, "subdistrict": 4}
#: Same for romanised names ("Nan" and "Tak" are provinces; "Bot" and "Dan" are subdistricts).
MIN_FREE_LATIN_LEN = {"province": 3, "district": 4, "subdistrict": 5}
#: Kinds of entry that are never matched loosely (fuzzy, or in a sentence without a prefix).
_STRICT_KINDS = ("abbr", "capital")


class Entry(NamedTuple):
    """One area a key may stand for, and what kind of name the key is for it."""

    level: Level
    code: str
    kind: str  # name | english | alias | nickname | abbr | capital


class ScanKey(NamedTuple):
    """The areas a key found in a sentence may stand for, by what stands before it."""

    free: tuple[Entry, ...]  # allowed without a prefix in a sentence
    prefixed: tuple[Entry, ...]  # allowed right after จ./อ./ต./...
    cued: tuple[Entry, ...] = ()  # a province that is an everyday word: "แถวเลย", "ที่ตากไหม"


def name_index(
    provinces: Mapping[str, Province],
    districts: Mapping[str, District],
    subdistricts: Mapping[str, Subdistrict],
) -> dict[str, tuple[Entry, ...]]:
    """Every key a place can be typed as, to the areas it may mean."""
    index: dict[str, dict[tuple[Level, str], Entry]] = {}

    def add(text: str, level: Level, code: str, kind: str) -> None:
        key = name_key(text)
        if key:
            entries = index.setdefault(key, {})
            if (level, code) not in entries:
                entries[(level, code)] = Entry(level, code, kind)

    nick_names: dict[str, list[str]] = {}
    for p in provinces.values():
        add(p.name_th, "province", p.code, "name")
        add(p.name_en, "province", p.code, "english")
        for alias in p.aliases:
            kind = "abbr" if alias in (p.abbr_th, p.abbr_en) else "nickname"
            add(alias, "province", p.code, kind)
            if kind == "nickname":
                nick_names.setdefault(p.code, []).append(alias)
    for d in districts.values():
        add(d.name_th, "district", d.code, "name")
        add(d.name_th_short, "district", d.code, "name")
        add(d.name_en, "district", d.code, "english")
        for alias in d.aliases:
            add(alias, "district", d.code, "alias")
        province = provinces[d.province_code]
        if d.code == d.province_code + "01" and d.province_code != BANGKOK:
            # "อ.เมือง" + a province, or "เมืองโคราช": the provincial seat.
            add("เมือง", "district", d.code, "capital")
            for name in (province.name_th, *nick_names.get(province.code, ())):
                if is_thai(name):
                    add("เมือง" + name, "district", d.code, "capital")
                else:
                    add("mueang " + name, "district", d.code, "capital")
    for s in subdistricts.values():
        add(s.name_th, "subdistrict", s.code, "name")
        add(s.name_en, "subdistrict", s.code, "english")
        for alias in s.aliases:
            add(alias, "subdistrict", s.code, "alias")
    return {key: tuple(entries.values()) for key, entries in index.items()}


def fuzzy_keys(names: Mapping[str, tuple[Entry, ...]]) -> list[str]:
    """The keys a misspelling may be matched to: those naming an area by a full name."""
    return [
        key for key, entries in names.items() if any(e.kind not in _STRICT_KINDS for e in entries)
    ]


def scan_index(
    names: Mapping[str, tuple[Entry, ...]], common: set[str]
) -> tuple[dict[str, ScanKey], dict[str, tuple[int, ...]]]:
    """Keys for the sentence scan, split into those allowed with and without a prefix.

    Also, per first two letters, the lengths of the keys that start with them (longest
    first), so the scan tries only lengths that exist.
    """
    scan: dict[str, ScanKey] = {}
    lengths: dict[str, set[int]] = {}
    for key, entries in names.items():
        if len(key) < 2:
            continue
        thai = "\u0e00" <= key[0] <= "\u0e7f"
        minimum = MIN_FREE_LEN if thai else MIN_FREE_LATIN_LEN
        everyday = key in common
        size = len(key)
        free: tuple[Entry, ...] = ()
        if not everyday:
            free = tuple(
                e for e in entries if e.kind not in _STRICT_KINDS and size >= minimum[e.level]
            )
        prefixed = entries if thai else tuple(e for e in entries if e.kind != "abbr")
        if not free and not prefixed:
            continue
        cued: tuple[Entry, ...] = ()
        if everyday:
            cued = tuple(e for e in entries if e.level == "province" and e.kind == "name")
        scan[key] = ScanKey(free, prefixed, cued)
        lengths.setdefault(key[:2], set()).add(size)
    return scan, {k: tuple(sorted(v, reverse=True)) for k, v in lengths.items()}


def pick(item: ScanKey, prefix: Level | None) -> tuple[Entry, ...]:
    """Entries a scanned key may stand for, given the prefix before it (if any)."""
    if prefix is None:
        return item.free
    return tuple(e for e in item.prefixed if e.level == prefix) or item.free
