"""Whether a name found in a sentence is a word of its own or letters inside other words.

Thai is written without spaces, so "นาคา" (a subdistrict) sits inside "ธนาคาร" (a bank).
A fewest-words segmentation with the Thai dictionary tells the two apart cheaply, and
says whether a place cue ("แถว", "ที่") stands before a province that is an everyday word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["Segmenter", "is_cued"]

_LONGEST_WORD = 14  # letters; longer dictionary words are not needed to place a boundary
_UNKNOWN_COST = 3  # a letter that is in no dictionary word costs as much as three words


class Segmenter:
    """Fewest-words segmentation of one sentence, to tell a place name from letters in words.

    Forward and backward costs are computed once per sentence (only if needed); each name
    found without a prefix is then checked in a few hundred dictionary look-ups: "นาคา" in
    "ธนาคาร", "มายอ" in "มายอด", "แม่คะ" in "คุณแม่คะ" and "พันนา" in "สองพันนาที" are not
    places, while "หาดใหญ่" in "มาหาดใหญ่" still is (มา|หาดใหญ่ beats มาหา|ด|ใหญ่).
    """

    __slots__ = ("_back", "_ends", "_fore", "more", "n", "s", "words")

    def __init__(self, s: str, words: frozenset[str], more: frozenset[str] = frozenset()):
        self.s = s
        self.n = len(s)
        #: The dictionary and a few words more, apart (``words`` is PyThaiNLP's shared set).
        self.words = words
        self.more = more
        self._ends: list[list[int]] = []
        self._fore: list[int] = []
        self._back: list[int] = []

    def _costs(self) -> tuple[list[list[int]], list[int], list[int]]:
        """Where dictionary words starting at each letter end; best costs before/after each."""
        if not self._ends:
            s, n, words, more, longest = self.s, self.n, self.words, self.more, _LONGEST_WORD
            ends = [
                [
                    k
                    for k in range(i + 1, min(n, i + longest) + 1)
                    if (w := s[i:k]) in words or w in more
                ]
                for i in range(n)
            ]
            fore = [0] + [1 << 20] * n
            for i in range(n):
                here = fore[i]
                if here + _UNKNOWN_COST < fore[i + 1]:
                    fore[i + 1] = here + _UNKNOWN_COST
                for k in ends[i]:
                    if here + 1 < fore[k]:
                        fore[k] = here + 1
            back = [1 << 20] * n + [0]
            for i in range(n - 1, -1, -1):
                best = back[i + 1] + _UNKNOWN_COST
                for k in ends[i]:
                    if back[k] + 1 < best:
                        best = back[k] + 1
                back[i] = best
            self._ends, self._fore, self._back = ends, fore, back
        return self._ends, self._fore, self._back

    def splits(self, start: int, end: int) -> bool:
        """True when the sentence reads at least as well without ``s[start:end]`` as one word."""
        ends, fore, back = self._costs()
        as_place = fore[start] + 1 + back[end]
        # a word across the start of the name (or around it), or across its end
        edges = ((start, max(0, start - _LONGEST_WORD + 1)), (end, start))
        for edge, first in edges:
            for j in range(first, edge):
                for k in ends[j]:
                    if k > edge and (j, k) != (start, end) and fore[j] + 1 + back[k] <= as_place:
                        return True
        # the name's own letters read as two or more words
        inner = [0] + [1 << 20] * (end - start)
        for j in range(start, end):
            here = inner[j - start]
            if here + _UNKNOWN_COST < inner[j + 1 - start]:
                inner[j + 1 - start] = here + _UNKNOWN_COST
            for k in ends[j]:
                if k <= end and (j, k) != (start, end) and here + 1 < inner[k - start]:
                    inner[k - start] = here + 1
        return fore[start] + inner[end - start] + back[end] <= as_place

    def is_word_before(self, start: int, word: str) -> bool:
        """True when ``word`` ends at ``start`` as a word of an optimal segmentation."""
        _, fore, _ = self._costs()
        j = start - len(word)
        return j >= 0 and self.s[j:start] == word and fore[j] + 1 == fore[start]


#: "แถว/ที่/ย่าน" + a province that is also an everyday word, then a break or a particle.
_CUES_BEFORE = ("แถว", "ที่", "ย่าน")
_CUE_AFTER = re.compile(r"(?:$|[\s.,!?)]|ไหม|มั้ย|มั๊ย|ครับ|คับ|ค่ะ|คะ|นะ|บ้าง|จ้า)")


def is_cued(
    text: str, s: str, origin: Sequence[int], start: int, end: int, words: Segmenter
) -> bool:
    """True for "แถวเลย", "ที่ตากไหม": a place cue before and nothing word-like after.

    The cue must be a word of its own: "เจ้าหน้าที่เลย" ends in ที่ but means "no staff at all".
    """
    if not any(words.is_word_before(start, cue) for cue in _CUES_BEFORE):
        return False
    after = origin[end - 1] + 1
    return (after < len(text) and text[after].isspace()) or _CUE_AFTER.match(s, end) is not None
