"""Text clean-up and word splitting, the first two steps of every message.

People type to the bot as to friends: full-width letters, zero-width spaces, Thai digits,
tone marks typed in the wrong order, มากกกก, emoji and slang. ``normalise`` removes what
never carries meaning; the operators' spelling table (``intents/spelling.csv``) then maps
common misspellings and slang to one written form, and ``Tokeniser`` splits the result
into words with PyThaiNLP's newmm and a dictionary that keeps domain words whole.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from pythainlp.tokenize import newmm

from bot.kb.sources import Problem, read_csv
from bot.thai_text import can_cut, clean_thai, thai_digits_to_ascii

__all__ = [
    "Spelling",
    "SpellingRule",
    "Tokeniser",
    "WordIndex",
    "load_spelling",
    "normalise",
]

#: Letters (Thai or Latin) and punctuation typed three or more times in a row ("มากกกก",
#: "ค่าาาา", "sooo", "!!!") collapse to one; digits stay ("1000" is a number, "555" a laugh).
#: อ needs four: three in a row are two words meeting ("ขอ|ออก", "ผ้าทอ|ออนไลน์").
_REPEATS = re.compile(r"([^\d\s\u0e2d])\1{2,}|(\u0e2d)\2{3,}")
_SPACES = re.compile(r"\s+")


def _first_letter(found: re.Match[str]) -> str:
    return found.group(0)[0]


def normalise(text: str) -> str:
    """Canonical form of user text for matching (never shown to anyone).

    NFKC (full-width forms, compatibility characters), no zero-width characters, Arabic
    digits, PyThaiNLP's vowel and tone-mark order, letters typed three or more times in a
    row once, lower-case Latin, single spaces.
    """
    text = thai_digits_to_ascii(clean_thai(text))
    text = _REPEATS.sub(_first_letter, text)
    return _SPACES.sub(" ", text).strip().lower()


def _latin_edge(s: str, i: int) -> bool:
    """A Latin word must not start or end inside a longer Latin word."""
    if i <= 0 or i >= len(s):
        return True
    a, b = s[i - 1], s[i]
    return not (a.isascii() and a.isalnum() and b.isascii() and b.isalnum())


# -- spelling table ------------------------------------------------------------------------

#: Words in the ``note`` column that make a row apply to whole words only (particles, and
#: short words that also occur inside other words: "คับ" in "บังคับ", "เฟส" in "เฟสสอง").
_WHOLE_WORD_NOTES = ("แทนทั้งคำ", "คำลงท้าย", "whole word", "particle")


@dataclass(frozen=True)
class SpellingRule:
    """One row of the spelling table: ``written`` is read as ``means``."""

    written: str
    means: str
    whole_word: bool
    line: int


@dataclass(frozen=True)
class Spelling:
    """The operators' spelling table, applied to normalised text and then to words."""

    rules: tuple[SpellingRule, ...] = ()

    def __post_init__(self) -> None:
        inside = sorted((r for r in self.rules if not r.whole_word), key=lambda r: -len(r.written))
        object.__setattr__(self, "_inside", {r.written: r.means for r in inside})
        object.__setattr__(
            self,
            "_inside_re",
            re.compile("|".join(re.escape(r.written) for r in inside)) if inside else None,
        )
        object.__setattr__(self, "_words", {r.written: r.means for r in self.rules if r.whole_word})

    @property
    def means(self) -> set[str]:
        """Every standard form (they go into the tokeniser's dictionary)."""
        return {r.means for r in self.rules}

    def apply_inside(self, text: str) -> str:
        """Replace misspellings found anywhere, never cutting a Thai letter cluster."""
        pattern: re.Pattern[str] | None = self._inside_re  # type: ignore[attr-defined]
        if pattern is None:
            return text
        table: dict[str, str] = self._inside  # type: ignore[attr-defined]
        out: list[str] = []
        last = 0
        for found in pattern.finditer(text):
            start, end = found.span()
            if not (can_cut(text, start) and can_cut(text, end)):
                continue
            if not (_latin_edge(text, start) and _latin_edge(text, end)):
                continue
            out.append(text[last:start])
            out.append(table[found.group(0)])
            last = end
        if not out:
            return text
        out.append(text[last:])
        return "".join(out)

    def apply_words(self, words: Sequence[str]) -> list[str]:
        """Replace whole-word entries ("คับ" as a particle, never inside "บังคับ")."""
        table: dict[str, str] = self._words  # type: ignore[attr-defined]
        if not table:
            return list(words)
        return [table.get(w, w) for w in words]


def load_spelling(path: Path) -> tuple[Spelling, list[Problem]]:
    """Read ``written,means,note``; a missing file is an empty table, not an error."""
    if not path.is_file():
        return Spelling(), []
    rows, problems = read_csv(path, ("written", "means"))
    rules: list[SpellingRule] = []
    seen: dict[str, int] = {}
    for row in rows:
        written = normalise(row.values.get("written", ""))
        means = normalise(row.values.get("means", ""))
        note = row.values.get("note", "").lower()
        if not written:
            problems.append(Problem(str(path), row.line, "written", "is empty"))
            continue
        if not means:
            problems.append(Problem(str(path), row.line, "means", "is empty"))
            continue
        if written in seen:
            problems.append(
                Problem(
                    str(path),
                    row.line,
                    "written",
                    f"'{written}' is already on line {seen[written]}",
                )
            )
            continue
        if written == means:
            continue  # already the standard form after normalisation
        seen[written] = row.line
        whole = any(word in note for word in _WHOLE_WORD_NOTES)
        rules.append(SpellingRule(written, means, whole, row.line))
    return Spelling(tuple(rules)), problems


# -- tokeniser -----------------------------------------------------------------------------

_SPLIT_LATIN = re.compile(r"[a-z]+(?:['.][a-z]+)*|\d+(?:[.,:]\d+)*|[\u0e00-\u0e7f]+|\S", re.I)


class WordIndex:
    """The dictionary as newmm asks it (``prefixes``), built in milliseconds.

    PyThaiNLP's ``Trie`` takes about a second to build from 60,000 words in pure Python;
    a set plus the lengths of the words starting with each pair of letters answers the
    same question as fast, and start-up stays short.

    ``more``: words beyond ``words``, kept apart rather than in a union: ``words`` is then
    PyThaiNLP's own 62,000-word set, shared with the place finder, where a union would copy
    its 2 MB table into every process for the few thousand domain words.
    """

    __slots__ = ("_lengths", "heads", "more", "words")

    def __init__(self, words: frozenset[str], more: frozenset[str] = frozenset()) -> None:
        self.words = words
        self.more = more - words
        lengths: dict[str, set[int]] = {}
        for group in (words, self.more):
            for w in group:
                lengths.setdefault(w[:2], set()).add(len(w))
        self._lengths = {head: tuple(sorted(n)) for head, n in lengths.items()}
        #: The first two letters of every word of two letters or more.
        self.heads = frozenset(h for h in self._lengths if len(h) == 2)

    def __bool__(self) -> bool:
        return bool(self.words or self.more)

    def __len__(self) -> int:
        return len(self.words) + len(self.more)

    def __contains__(self, word: object) -> bool:
        return word in self.words or word in self.more

    def prefixes(self, text: str, start: int = 0) -> list[str]:
        """Dictionary words that start at ``start``, shortest first (like ``Trie``)."""
        out: list[str] = []
        words, more = self.words, self.more
        first = text[start : start + 1]
        if first in words or first in more:
            out.append(text[start])
        sizes = self._lengths.get(text[start : start + 2])
        if sizes:
            rest = len(text) - start
            for size in sizes:
                if size > rest:
                    break
                if size > 1:
                    piece = text[start : start + size]
                    if piece in words or piece in more:
                        out.append(piece)
        return out


class Tokeniser:
    """newmm word segmentation with the standard dictionary plus the domain's words.

    Thai runs go through newmm; Latin words, numbers and symbols are split by a regular
    expression first (newmm would only do the same, more slowly). Spaces and punctuation
    never become words.
    """

    def __init__(self, extra_words: Iterable[str] = ()) -> None:
        from pythainlp.corpus import thai_words

        # PyThaiNLP's own frozenset, neither copied nor merged (see WordIndex): 4 MB less
        self.standard = frozenset(thai_words())
        self.extra = frozenset(w for w in extra_words if w and not any(c.isspace() for c in w))
        self._index: Any = cast(Any, WordIndex(self.standard, self.extra))

    def __call__(self, text: str) -> list[str]:
        """The words of normalised text, in order."""
        out: list[str] = []
        for piece in _SPLIT_LATIN.findall(text):
            first = piece[0]
            if "\u0e00" <= first <= "\u0e7f":
                if piece in self._index:
                    out.append(piece)
                else:
                    out.extend(newmm.segment(piece, custom_dict=self._index))
            elif len(piece) > 1 or piece == "?" or unicodedata.category(piece)[0] in "LNS":
                out.append(piece)  # words, numbers, emoji and symbols; not punctuation
        return out
