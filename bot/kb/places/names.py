"""How typed place names are cleaned, keyed and cut at their prefixes ("จ.", "อำเภอ", "khet").

Matching works on a key: :func:`clean_text` (the shared Thai clean-up, lower-case Latin,
a few romanisation variants) and :func:`name_key` (no spacing, dashes, dots or ``ฯ``).
The prefixes are data normalisation, not wording the bot says.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.kb.places.areas import Level
from bot.thai_text import clean_thai

__all__ = [
    "DROP_CHARS",
    "LONE_PREFIX_LETTER",
    "PREFIX_LEVEL",
    "PREFIX_RE",
    "clean_text",
    "is_thai",
    "latin_word_at",
    "name_key",
    "prefix_before",
    "scan_index_of",
    "split_parts",
    "word_after",
]

_THAI = re.compile(r"[\u0e00-\u0e7f]")
#: Dropped before scanning a sentence (with all spacing); dots stay, since "จ." / "อ." / "ต."
#: mark what follows.
DROP_CHARS = frozenset("-\u2010\u2011\u2012\u2013\u2014\u2015\u2212_'’`\"ฯ")

_LATIN_WORD_FIXES = (
    (re.compile(r"\bkoh\b"), "ko"),
    (re.compile(r"\bmuang\b"), "mueang"),
)
#: A lone จ/อ/ต followed by a space is the prefix written without its dot ("อ เมือง").
LONE_PREFIX_LETTER = re.compile(r"(?<![\u0e00-\u0e7f])([จอต])\s+(?=[\u0e00-\u0e7f])")

# Administrative prefixes (data normalisation, not wording the bot says). Longest first.
_PREFIX_LEVELS: tuple[tuple[str, Level], ...] = (
    ("กิ่งอำเภอ", "district"),
    ("กิ่งอ.", "district"),
    ("จังหวัด", "province"),
    ("อำเภอ", "district"),
    ("ตำบล", "subdistrict"),
    ("แขวง", "subdistrict"),
    ("เขต", "district"),
    ("จ.", "province"),
    ("อ.", "district"),
    ("ต.", "subdistrict"),
)
_LATIN_PREFIX_LEVELS: tuple[tuple[str, Level], ...] = (
    ("changwat", "province"),
    ("province", "province"),
    ("amphoe", "district"),
    ("amphur", "district"),
    ("khet", "district"),
    ("district", "district"),
    ("tambon", "subdistrict"),
    ("khwaeng", "subdistrict"),
    ("subdistrict", "subdistrict"),
)
PREFIX_RE = re.compile(
    "|".join(re.escape(prefix) for prefix, _ in _PREFIX_LEVELS)
    + "|"
    + "|".join(rf"\b{word}\b" for word, _ in _LATIN_PREFIX_LEVELS)
)
PREFIX_LEVEL = dict(_PREFIX_LEVELS) | dict(_LATIN_PREFIX_LEVELS)
#: Scan-form prefixes to look for just before a name found in a sentence.
_SCAN_PREFIXES: tuple[tuple[str, Level], ...] = _PREFIX_LEVELS
_PART_SPLIT = re.compile(r"[,;/|\n]+")
#: Polite particles that end a sentence and are no part of a name ("อ.หาดใหญ่ครับ").
_TRAILING_PARTICLES = ("ครับผม", "นะคะ", "ครับ", "คับ", "ค่ะ", "คะ", "ค่า", "นะ", "จ้า", "จ้ะ", "ฮะ")


def clean_text(text: str) -> str:
    """Unicode and Thai typo normalisation shared by every query (not by the loaded names).

    The shared Thai clean-up, then what only place names need: lower case, and the
    romanisations people still use ("koh", "muang") spelt as the tables spell them.
    """
    text = clean_thai(text).lower()
    for pattern, replacement in _LATIN_WORD_FIXES:
        text = pattern.sub(replacement, text)
    return text.strip()


#: Characters that never matter in a name key: spacing, dashes, dots, ฯ (paiyannoi), quotes.
_KEY_DELETE = dict.fromkeys(
    [ord(ch) for ch in "-\u2010\u2011\u2012\u2013\u2014\u2015\u2212._'’`\"ฯ()[]{}"]
    + [cp for cp in range(0x3001) if chr(cp).isspace()],
    None,
)


def name_key(text: str) -> str:
    """The matching key of a name or of a typed name: no spacing, dashes, dots or ฯ."""
    return text.lower().translate(_KEY_DELETE)


def is_thai(text: str) -> bool:
    """Whether ``text`` holds a Thai letter."""
    return _THAI.search(text) is not None


def prefix_before(s: str, i: int) -> Level | None:
    """The level of a prefix written just before ``s[i]`` ("อ.หาดใหญ่"), if any."""
    head = s[max(0, i - 10) : i]
    for prefix, level in _SCAN_PREFIXES:
        if head.endswith(prefix):
            return level
    return None


def latin_word_at(text: str, first: int, last: int) -> bool:
    """A Latin name must not start or end inside a longer Latin word."""
    before = text[first - 1] if first > 0 else " "
    after = text[last + 1] if last + 1 < len(text) else " "
    return not (before.isascii() and before.isalnum()) and not (after.isascii() and after.isalnum())


def word_after(text: str, start: int) -> str:
    """The word after a prefix: up to a space, punctuation or the next prefix."""
    rest = text[start:].lstrip()
    word = re.split(r"[\s,;/|()!?]", rest, maxsplit=1)[0] if rest else ""
    cut = PREFIX_RE.search(word)
    if cut and cut.start() > 0:
        word = word[: cut.start()]
    for particle in _TRAILING_PARTICLES:
        if word.endswith(particle) and len(word) > len(particle) + 1:
            word = word[: -len(particle)]
            break
    return word


def scan_index_of(origin: Sequence[int], text_index: int) -> int:
    """The position in the scanned letters of the letter at ``text_index`` (or after it)."""
    for i, index in enumerate(origin):
        if index >= text_index:
            return i
    return len(origin)


def split_parts(cleaned: str) -> list[tuple[Level | None, list[str]]]:
    """Split a typed place into groups: the level of a prefix and the words that follow it."""
    parts: list[tuple[Level | None, list[str]]] = []
    for piece in _PART_SPLIT.split(LONE_PREFIX_LETTER.sub(r"\1.", cleaned)):
        last = 0
        level: Level | None = None
        for found in PREFIX_RE.finditer(piece):
            parts.append((level, _thai_words(piece[last : found.start()])))
            level = PREFIX_LEVEL[found.group(0)]
            last = found.end()
        parts.append((level, _thai_words(piece[last:])))
    out: list[tuple[Level | None, list[str]]] = []
    for level, chunks in parts:
        chunks = [chunk for chunk in chunks if name_key(chunk)]
        if chunks:
            out.append((level, chunks))
    return out


def _thai_words(text: str) -> list[str]:
    """Spaces separate Thai words; Latin words stay together ("chiang mai")."""
    text = text.strip()
    if not text:
        return []
    return [
        chunk
        for chunk in re.split(r"(?<=[\u0e00-\u0e7f])\s+|\s+(?=[\u0e00-\u0e7f])", text)
        if chunk.strip()
    ]
