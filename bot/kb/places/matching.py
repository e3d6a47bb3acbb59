"""Reading typed place names: a text meant to be a place, or places inside a sentence.

:meth:`NameMatcher.resolve` tries the whole text, then its parts between prefixes, then
close spellings; :meth:`NameMatcher.find_in_text` scans a free sentence for the longest
known names and prefers missing a place to inventing one: short names and everyday words
count only after a prefix, and only a word after a prefix may be misspelt.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import NamedTuple

from bot.kb.places.areas import Area, District, Level, Province, Subdistrict
from bot.kb.places.fuzzy import FuzzyIndex, similarity
from bot.kb.places.index import Entry, ScanKey, pick
from bot.kb.places.names import (
    DROP_CHARS,
    LONE_PREFIX_LETTER,
    PREFIX_LEVEL,
    PREFIX_RE,
    clean_text,
    is_thai,
    latin_word_at,
    name_key,
    prefix_before,
    scan_index_of,
    split_parts,
    word_after,
)
from bot.kb.places.results import PlaceMatch, PlaceResult, combine, rank
from bot.kb.places.segmenter import Segmenter, is_cued
from bot.thai_text import can_cut

__all__ = ["RESOLVE_CUTOFF", "TEXT_CUTOFF", "NameMatcher"]

#: Fuzzy cut-offs (rapidfuzz ratio, 0-100): a typed name may be a little wrong; a word after a
#: prefix in a sentence must be closer, because "อ." also means a teacher and "ต." a month.
RESOLVE_CUTOFF = 80.0
TEXT_CUTOFF = 85.0

#: A name found in a sentence: where it starts and ends in the scanned letters, what it is.
_Found = tuple[int, int, tuple[Entry, ...], Level | None]


class _Mention(NamedTuple):
    start: int
    end: int
    matches: tuple[PlaceMatch, ...]


class NameMatcher:
    """The name indexes of one gazetteer and the ways of reading typed names with them."""

    def __init__(
        self,
        areas: tuple[Mapping[str, Province], Mapping[str, District], Mapping[str, Subdistrict]],
        names: Mapping[str, tuple[Entry, ...]],
        scan: Mapping[str, ScanKey],
        scan_lengths: Mapping[str, tuple[int, ...]],
        fuzzy: FuzzyIndex,
        words: frozenset[str],
        more_words: frozenset[str] = frozenset(),
    ) -> None:
        self._areas = areas
        self._names = names
        self._scan = scan
        self._scan_lengths = scan_lengths
        self._fuzzy_index = fuzzy
        self._words = words
        self._more_words = more_words - words
        self._match_of: dict[tuple[Level, str], PlaceMatch] = {}  # filled on first use

    def resolve(self, text: str) -> PlaceResult:
        """Read a text that is meant to be a place ("เชียงไหม่", "อ.เมือง จ.เชียงราย", "BKK")."""
        cleaned = clean_text(text)
        if not cleaned:
            return PlaceResult(text)
        whole = self._exact(name_key(cleaned), None)
        if whole:
            return combine(text, [whole])
        parts = split_parts(cleaned)
        mentions: list[list[PlaceMatch]] = []
        for level, chunks in parts:
            joined = self._exact(name_key("".join(chunks)), level) if len(chunks) > 1 else []
            if joined:  # "อำเภอ เมือง ขอนแก่น": one name typed with spaces
                mentions.append(joined)
                continue
            # The prefix belongs to the first word after it only: "อ.เมือง ขอนแก่น".
            for n, chunk in enumerate(chunks):
                mentions.extend(self._resolve_chunk(chunk, level if n == 0 else None))
        if not mentions and len(parts) > 1:
            # The prefixes split a name that only works as a whole: try it without them.
            rest = name_key(PREFIX_RE.sub("", cleaned))
            found = self._exact(rest, None) or self._fuzzy(rest, None, RESOLVE_CUTOFF)
            mentions = [found] if found else []
        return combine(text, mentions)

    def find_in_text(self, text: str) -> PlaceResult:
        """Places mentioned in a free sentence; several levels narrow each other."""
        cleaned = clean_text(text)
        if not cleaned:
            return PlaceResult(text)
        mentions = [list(m.matches) for m in self._scan_mentions(cleaned)]
        return combine(text, mentions)

    # -- one name -------------------------------------------------------------------------------

    def _resolve_chunk(self, chunk: str, level: Level | None) -> list[list[PlaceMatch]]:
        """One piece of a typed place: exact, then known names inside it, then fuzzy."""
        key = name_key(chunk)
        if not key:
            return []
        exact = self._exact(key, level)
        if exact:
            return [exact]
        mentions = self._scan_mentions(chunk)
        scanned = [list(m.matches) for m in mentions]
        if scanned and sum(m.end - m.start for m in mentions) >= len(key):
            return scanned  # "หนองบัวอุดร": known names, back to back
        # "หนองบัวลำพู" is a misspelt หนองบัวลำภู, not หนองบัว plus noise: fuzzy first.
        found = self._fuzzy(key, level, RESOLVE_CUTOFF) if len(key) >= 3 else []
        return [found] if found else scanned

    def _exact(self, key: str, level: Level | None) -> list[PlaceMatch]:
        entries = self._names.get(key, ())
        if not entries:
            return []
        chosen = [e for e in entries if level is None or e.level == level]
        score = 1.0
        if not chosen:  # "จ.หาดใหญ่": the prefix is wrong, the name is still good
            chosen, score = list(entries), 0.9
        return self._key_matches(key, chosen, score)

    def _key_matches(self, key: str, entries: Sequence[Entry], score: float) -> list[PlaceMatch]:
        """Exact matches of one key; romanised keys favour the larger areas."""
        if not is_thai(key) and any(e.level != "subdistrict" for e in entries):
            # Romanisation merges Thai names ("Hat Yai" is หาดใหญ่ and หาดยาย): a district or
            # province of that name is the likelier meaning than a subdistrict elsewhere.
            larger = [e for e in entries if e.level != "subdistrict"]
            smaller = [e for e in entries if e.level == "subdistrict"]
            return sorted(
                self._matches(larger, score, exact=True)
                + self._matches(smaller, round(score * 0.97, 4), exact=True),
                key=rank,
            )
        return self._matches(entries, score, exact=True)

    def _fuzzy(self, key: str, level: Level | None, cutoff: float) -> list[PlaceMatch]:
        """Close spellings among names that could be that close (see :class:`FuzzyIndex`)."""
        hits = self._fuzzy_index.extract(key, cutoff)
        found: dict[tuple[Level, str], PlaceMatch] = {}
        for fallback in (False, True):
            for choice, ratio in hits:
                entries = [
                    e
                    for e in self._names[choice]
                    if e.kind not in ("abbr", "capital")
                    and (fallback or level is None or e.level == level)
                ]
                similar = similarity(key, choice, ratio)
                score = round(similar / 100.0 * (0.9 if fallback and level else 1.0), 4)
                for match in self._matches(entries, score, exact=False):
                    old = found.get((match.level, match.code))
                    if old is None or old.score < match.score:
                        found[(match.level, match.code)] = match
            if found or level is None:
                break
        return sorted(found.values(), key=rank)

    def _matches(self, entries: Iterable[Entry], score: float, exact: bool) -> list[PlaceMatch]:
        out: dict[tuple[Level, str], PlaceMatch] = {}
        for entry in entries:
            ident = (entry.level, entry.code)
            if ident in out:
                continue
            match = self._match_of.get(ident)
            if match is None:
                match = self._exact_match(entry.level, entry.code)
                self._match_of[ident] = match
            if score != 1.0 or not exact:
                match = replace(match, score=score, exact=exact)
            out[ident] = match
        return sorted(out.values(), key=rank)

    def _exact_match(self, level: Level, code: str) -> PlaceMatch:
        provinces, districts, subdistricts = self._areas
        area: Area
        if level == "province":
            area = provinces[code]
        elif level == "district":
            area = districts[code]
        else:
            area = subdistricts[code]
        return PlaceMatch(
            level=level,
            code=code,
            name_th=area.name_th,
            province_code=area.province_code,
            score=1.0,
            exact=True,
            district_code=getattr(area, "district_code", None),
        )

    # -- names in a sentence --------------------------------------------------------------------

    def _scan_mentions(self, cleaned: str) -> list[_Mention]:
        """Longest known names in the sentence, non-overlapping, in reading order."""
        text = LONE_PREFIX_LETTER.sub(r"\1.", cleaned)
        chars: list[str] = []
        origin: list[int] = []
        for index, ch in enumerate(text):
            if ch in DROP_CHARS or ch.isspace():
                continue
            chars.append(ch)
            origin.append(index)
        s = "".join(chars)
        n = len(s)
        found: list[tuple[int, int, tuple[Entry, ...], Level | None, bool]] = []
        scan, lengths = self._scan, self._scan_lengths
        for i in range(n):
            sizes = lengths.get(s[i : i + 2])
            if sizes is None:
                continue
            prefix: Level | None = None
            prefix_known = False
            for size in sizes:
                if i + size > n:
                    continue
                key = s[i : i + size]
                item = scan.get(key)
                if item is None:
                    continue
                if is_thai(key[0]):
                    if not (can_cut(s, i) and can_cut(s, i + size)):
                        continue
                elif not latin_word_at(text, origin[i], origin[i + size - 1]):
                    continue
                if not prefix_known:
                    prefix, prefix_known = prefix_before(s, i), True
                entries = pick(item, prefix)
                cued = not entries and prefix is None and bool(item.cued)
                if cued:
                    entries = item.cued
                if entries:
                    found.append((i, i + size, entries, prefix, cued))
                    break
        # Longer names win over the shorter ones they overlap; a name with no prefix must also
        # be a word of its own in the sentence (checked last: it is the costly test).
        found.sort(key=lambda f: (-(f[1] - f[0]), f[0]))
        words = Segmenter(s, self._words, self._more_words)
        taken: list[_Found] = []
        for start, end, entries, prefix, cued in found:
            if any(start < t[1] and t[0] < end for t in taken):
                continue
            if prefix is None and is_thai(s[start]):
                if words.splits(start, end):
                    continue  # "พร้าว" in "มะพร้าว", "นาคา" in "ธนาคาร": part of other words
                if cued and not is_cued(text, s, origin, start, end, words):
                    continue
            taken.append((start, end, entries, prefix))
        taken.sort(key=lambda f: f[0])
        mentions = [
            _Mention(start, end, tuple(self._key_matches(s[start:end], entries, 1.0)))
            for start, end, entries, _ in taken
        ]
        mentions += self._prefixed_fuzzy(text, origin, taken)
        mentions.sort(key=lambda m: m.start)
        return mentions

    def _prefixed_fuzzy(
        self, text: str, origin: list[int], taken: Sequence[_Found]
    ) -> list[_Mention]:
        """A misspelt word right after a prefix ("อ.หาดไหญ่"): the one place fuzzy is allowed."""
        out: list[_Mention] = []
        for found in PREFIX_RE.finditer(text):
            level = PREFIX_LEVEL.get(found.group(0))
            if level is None:
                continue
            word = word_after(text, found.end())
            key = name_key(word)
            if len(key) < 4:
                continue
            start = scan_index_of(origin, found.end())
            if any(t[0] <= start < t[1] or start <= t[0] < start + len(key) for t in taken):
                continue
            matches = self._fuzzy(key, level, TEXT_CUTOFF)
            if matches:
                out.append(_Mention(start, start + len(key), tuple(matches)))
        return out
