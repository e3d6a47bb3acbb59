"""Close spellings of place names, fast: only names that could be that close are compared.

Thai spellers mix up letters of the same sound at the start of a name (ส/ศ/ษ/ซ, ใ/ไ, ...),
so names are bucketed by their first sound and, within a bucket, by length; a typed key is
compared (rapidfuzz ratio) with the few names of its bucket whose length allows the cut-off.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType

from rapidfuzz import fuzz, process

__all__ = ["FuzzyIndex", "similarity"]

#: Letters Thai spellers mix up at the start of a name (same sound, or ใ/ไ).
_SOUND_CLASSES = (
    "สศษซ",
    "ทธฑฒถฐ",
    "พภ",
    "คฆฅ",
    "ใไ",
    "นณ",
    "ลฬ",
    "ยญ",
    "ดฎ",
    "ตฏ",
    "ผฝ",
    "ขฃ",
    "ชฌ",
)
_SOUND_OF = {ch: group[0] for group in _SOUND_CLASSES for ch in group}
_LEADING_VOWELS = "เแโใไ"
_NOT_CONSONANT = re.compile(r"[\u0e30-\u0e4e]")
#: The most names one look-up returns.
_LIMIT = 12


def _consonants(key: str) -> str:
    """The consonant skeleton of a Thai key (vowels and tone marks removed)."""
    return _NOT_CONSONANT.sub("", key)


def _sound_class(key: str) -> str:
    """Bucket of a key for fuzzy matching: its first sound (a leading vowel plus consonant)."""
    first = _SOUND_OF.get(key[0], key[0])
    if key[0] in _LEADING_VOWELS and len(key) > 1:
        return first + _SOUND_OF.get(key[1], key[1])
    return first


def similarity(key: str, choice: str, ratio: float) -> float:
    """``ratio`` with ties broken by consonants (0-100).

    Ties in ratio are common in Thai ("บางกะปี": บางกะปิ, บางกะดี); a wrong vowel or tone
    mark is a smaller slip than a wrong consonant, so consonants break ties.
    """
    return 0.9 * ratio + 0.1 * fuzz.ratio(_consonants(key), _consonants(choice))


class FuzzyIndex:
    """Name keys per first sound, sorted by length with the offset of each length."""

    __slots__ = ("_buckets",)

    def __init__(self, keys: Iterable[str]) -> None:
        buckets: dict[str, list[str]] = {}
        for key in keys:
            buckets.setdefault(_sound_class(key), []).append(key)
        out: dict[str, tuple[tuple[str, ...], tuple[int, ...]]] = {}
        for sound, bucket in buckets.items():
            bucket.sort()
            bucket.sort(key=len)
            offsets = [0] * (len(bucket[-1]) + 2)
            for key in bucket:
                offsets[len(key) + 1] += 1
            for i in range(1, len(offsets)):
                offsets[i] += offsets[i - 1]
            out[sound] = (tuple(bucket), tuple(offsets))
        self._buckets: Mapping[str, tuple[tuple[str, ...], tuple[int, ...]]] = MappingProxyType(out)

    def extract(self, key: str, cutoff: float) -> list[tuple[str, float]]:
        """Names whose rapidfuzz ratio with ``key`` reaches ``cutoff``, best first (at most 12).

        Only names of a compatible length that start with a letter of the same sound
        are compared, which keeps this well under a millisecond.
        """
        n = len(key)
        if n < 2:
            return []
        bucket = self._buckets.get(_sound_class(key))
        if bucket is None:
            return []
        keys, offsets = bucket
        # ratio >= c needs the other length within [n*c/(2-c), n*(2-c)/c]
        c = cutoff / 100.0
        lo = max(1, int(n * c / (2.0 - c)))
        hi = min(len(offsets) - 2, int(n * (2.0 - c) / c) + 1)
        if lo > hi:
            return []
        hits = process.extract(
            key,
            keys[offsets[lo] : offsets[hi + 1]],
            scorer=fuzz.ratio,
            score_cutoff=cutoff,
            limit=_LIMIT,
            processor=None,
        )
        return [(choice, ratio) for choice, ratio, _ in hits]
