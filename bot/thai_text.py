"""Unicode clean-up of Thai text, shared by the NLU, the gazetteer and the centre import.

The same sentence reaches the bot in many byte forms: full-width letters, zero-width
spaces from copy and paste, sara am (ำ) split into two code points, Thai digits, a tone
mark typed before its vowel. Everything that compares Thai text first brings it to one
form here, so a name in the knowledge and the same name typed by a person meet. What
each caller does next (lower-casing, collapsing repeats, Latin spelling fixes) stays with
the caller. This module imports nothing of the bot, so any package can use it.
"""

from __future__ import annotations

import re
import unicodedata

from pythainlp.util import normalize as thai_normalize

__all__ = [
    "NEEDS_THAI_NORMALIZE",
    "ZERO_WIDTH",
    "can_cut",
    "clean_thai",
    "thai_digits_to_ascii",
    "thai_order",
    "unicode_form",
]

#: Characters that are invisible and never carry meaning (``str.translate`` table).
ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
#: Everything pythainlp's ``normalize`` would change (doubled ``เ``, a tone mark before a
#: vowel, repeated vowels or marks, also across a space, นิคหิต, ๅ, a mark with no consonant
#: before it): only then is it called, because it is slow and most text is clean.
NEEDS_THAI_NORMALIZE = re.compile(
    "\u0e40\u0e40|[\u0e48-\u0e4c][\u0e31\u0e34-\u0e3a\u0e47]|[\u0e4d\u0e45]"
    "|[\u0e30\u0e32\u0e33][\u0e48-\u0e4b]|[\u0e48-\u0e4b]{2}"
    "|([\u0e30-\u0e3a\u0e40-\u0e44\u0e47-\u0e4e]) *\\1"
    "|(?:^|\\s)[\u0e31\u0e34-\u0e3a\u0e47-\u0e4e]"
)
#: Thai letters that only follow a consonant (vowels above, below and after it, tone
#: marks), and the vowels written before one: no word starts or ends between them and it.
_FOLLOWING = frozenset(
    "\u0e30\u0e31\u0e32\u0e33\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e3a"
    "\u0e45\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d\u0e4e"
)
_LEADING = frozenset("\u0e40\u0e41\u0e42\u0e43\u0e44")


def unicode_form(text: str) -> str:
    """NFKC (full-width and compatibility forms), no zero-width characters, sara am whole.

    NFKC splits sara am (ำ) into nikhahit + sara aa; it is put back as dictionaries and
    the place tables spell it.
    """
    text = unicodedata.normalize("NFKC", text).translate(ZERO_WIDTH)
    return text.replace("\u0e4d\u0e32", "\u0e33")


def thai_order(text: str) -> str:
    """pythainlp's ``normalize`` (vowel and tone-mark order, no doubled marks), when needed."""
    if NEEDS_THAI_NORMALIZE.search(text):
        return str(thai_normalize(text))
    return text


def clean_thai(text: str) -> str:
    """:func:`unicode_form` then :func:`thai_order`: the common start of every comparison."""
    return thai_order(unicode_form(text))


def thai_digits_to_ascii(text: str) -> str:
    """``๑๓/๐๖/๒๕๖๘`` → ``13/06/2568``: Thai offices and people still type Thai digits."""
    return text.translate(_THAI_DIGITS)


def can_cut(s: str, i: int) -> bool:
    """Whether a word may begin or end at ``i``: not inside one Thai letter cluster."""
    if i <= 0 or i >= len(s):
        return True
    return s[i] not in _FOLLOWING and s[i - 1] not in _LEADING
