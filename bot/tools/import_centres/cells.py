"""The text of spreadsheet cells: cleaned, compared and turned into stable ids.

Ministry sheets mix full-width forms, zero-width spaces, Thai digits, line breaks inside
cells and spellings of one header that differ only in spacing or punctuation. Cells
start from the shared Thai clean-up (:func:`bot.thai_text.unicode_form`); headers and
keywords are then compared without what does not matter for them.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from bot.thai_text import thai_digits_to_ascii, unicode_form

__all__ = [
    "centre_id",
    "clean_cell",
    "fmt_coord",
    "header_key",
    "header_variants",
    "keyword_text",
    "thai_digits_to_ascii",
]

_PAIYANNOI = "\u0e2f"  # ฯ: an abbreviation mark, a letter to Unicode but noise in a header


def header_key(text: str) -> str:
    """What a header is compared by: no spaces, case or punctuation ("อำเภอ/เขต" = "อำเภอเขต")."""
    return "".join(
        ch
        for ch in unicode_form(text).lower()
        if unicodedata.category(ch)[0] in "LMN" and ch != _PAIYANNOI
    )


def header_variants(text: str) -> list[str]:
    """The whole header, then its parts: "ละติจูด (Latitude)" is also "ละติจูด" and "latitude"."""
    out = [header_key(text), header_key(re.sub(r"\(.*?\)", " ", text))]
    out += [header_key(inner) for inner in re.findall(r"\((.*?)\)", text)]
    out += [header_key(part) for part in re.split(r"[/\n|]", text)]
    return [key for i, key in enumerate(out) if key and key not in out[:i]]


def keyword_text(text: str) -> str:
    """Keyword matching ignores spacing but keeps dots ("ร.ร." must not match "บรรณ")."""
    return re.sub(r"\s+", "", unicode_form(text).lower())


def clean_cell(text: str) -> str:
    """One line of text: Excel cells often hold line breaks and doubled spaces."""
    return " ".join(unicode_form(text).split())


def centre_id(area_code: str, name_th: str) -> str:
    """``dcc-<subdistrict or district code>-<6 hex of sha1 of the name>``: stable across imports.

    The name is compared without spacing, case and punctuation, so "ศูนย์ฯ อบต.X" in one
    release and "ศูนย์ฯอบต. X" in the next are the same centre.
    """
    digest = hashlib.sha1(header_key(name_th).encode("utf-8")).hexdigest()
    return f"dcc-{area_code}-{digest[:6]}"


def fmt_coord(value: float) -> str:
    """At most 6 decimals (about 10 cm), without trailing zeros: small, stable diffs."""
    return f"{value:.6f}".rstrip("0").rstrip(".")
