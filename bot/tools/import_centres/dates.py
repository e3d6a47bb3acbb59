"""Dates as Thai offices write them: day first, Buddhist-era years, Thai digits, month names.

The month names live in the column table (``months:``), so no Thai wording is in the code.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping

from bot.tools.import_centres.cells import clean_cell, header_key, thai_digits_to_ascii
from bot.tools.import_centres.column_table import COLUMNS_FILE

__all__ = ["BE_FROM", "BE_OFFSET", "parse_as_of", "parse_date"]

_ISO_DATE = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T].*)?$")
_DMY_DATE = re.compile(r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})(?:\s.*)?$")
_NAMED_DATE = re.compile(r"^(\d{1,2})\s*([^\d\s][^\d]*?)\s*(\d{4})$")
#: Years from here on are Buddhist era (BE = CE + 543); no centre is older than 1900 CE.
BE_FROM = 2400
BE_OFFSET = 543


def _gregorian(year: int) -> int:
    """A Buddhist-era year as Gregorian; a Gregorian year unchanged."""
    return year - BE_OFFSET if year >= BE_FROM else year


def parse_date(text: str, months: Mapping[str, int]) -> tuple[dt.date | None, str | None]:
    """A Thai spreadsheet date as a Gregorian date, or why it is not one.

    Understands ``13/06/2568``, ``2568-06-13``, ``13 มิ.ย. 2568`` (month names from the
    YAML table) and Excel's ``2025-06-13 00:00:00``, in Thai or Arabic digits; a year from
    2400 on is Buddhist era. Day first: Thai offices never write month/day.
    """
    value = thai_digits_to_ascii(clean_cell(text))
    if not value:
        return None, None
    year = month = day = 0
    if match := _ISO_DATE.match(value):
        year, month, day = int(match[1]), int(match[2]), int(match[3])
    elif match := _DMY_DATE.match(value):
        day, month, year = int(match[1]), int(match[2]), int(match[3])
    elif match := _NAMED_DATE.match(value):
        named = months.get(header_key(match[2]))
        if named is None:
            return None, f"{text!r}: unknown month name {match[2]!r} (add it to {COLUMNS_FILE})"
        day, month, year = int(match[1]), named, int(match[3])
    else:
        return None, f"{text!r} is not a date this import understands; write 13/06/2568"
    year = _gregorian(year)
    if year < 1900:
        return None, f"{text!r}: the year must have 4 digits (Buddhist or Gregorian era)"
    try:
        return dt.date(year, month, day), None
    except ValueError:
        return None, f"{text!r} is not a real date"


def parse_as_of(text: str) -> str:
    """``--as-of``: a year, year-month or date, Buddhist-era years turned Gregorian."""
    value = thai_digits_to_ascii(text.strip())
    if re.fullmatch(r"\d{4}", value):
        return str(_gregorian(int(value)))
    if match := re.fullmatch(r"(\d{4})-(\d{1,2})", value):
        return f"{_gregorian(int(match[1])):04d}-{int(match[2]):02d}"
    date, error = parse_date(value, {})
    if date is None:
        raise ValueError(error or "empty date")
    return date.isoformat()
