"""Finding the header row and which source column feeds which of our fields.

The header row is the first row that names at least two known columns (a title row names
none or one); each header cell is looked up whole and by its parts in the column table,
and ``--map COLUMN=field`` overrides the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from bot.tools.import_centres.cells import clean_cell, header_key, header_variants
from bot.tools.import_centres.column_table import FIELDS, ImportTable

__all__ = [
    "HEADER_MIN_MATCHES",
    "HEADER_SCAN_ROWS",
    "ColumnMap",
    "find_columns",
    "parse_overrides",
]

#: A header row names at least this many known columns (a title row names none or one).
HEADER_MIN_MATCHES = 2
#: Ministry sheets put a few title lines above the header; never more than this many.
HEADER_SCAN_ROWS = 30


@dataclass(frozen=True)
class ColumnMap:
    """Which source column feeds which field, found on the header row."""

    header_line: int
    fields: Mapping[int, str]
    mapped: tuple[tuple[str, str], ...]
    unmapped: tuple[str, ...]


def parse_overrides(items: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``--map "ชื่อ ศูนย์=name_th"`` (``COLUMN=`` ignores a column); errors as messages."""
    out: dict[str, str] = {}
    errors: list[str] = []
    for item in items:
        column, sep, name = item.rpartition("=")
        name = name.strip()
        if not sep or not header_key(column):
            errors.append(f'{item!r}: write COLUMN=field, e.g. --map "Centre name=name_th"')
        elif name not in (*FIELDS, "", "-"):
            errors.append(f"{item!r}: unknown field {name!r}; use one of: {', '.join(FIELDS)}")
        else:
            out[header_key(column)] = "" if name == "-" else name
    return out, errors


def _field_of(header: str, table: ImportTable, overrides: Mapping[str, str]) -> str | None:
    """Our field for a header cell; "" when ``--map`` says to ignore it; None when unknown."""
    key = header_key(header)
    if key in overrides:
        return overrides[key]
    for variant in header_variants(header):
        if variant in table.headers:
            return table.headers[variant]
    return None


def find_columns(
    rows: Sequence[tuple[int, tuple[str, ...]]],
    table: ImportTable,
    overrides: Mapping[str, str],
) -> tuple[int, ColumnMap] | None:
    """The header row (the first naming two known columns) and its column map, if any."""
    seen = 0
    for index, (line, cells) in enumerate(rows):
        if not any(c.strip() for c in cells):
            continue
        seen += 1
        if seen > HEADER_SCAN_ROWS:
            return None
        found = {_field_of(c, table, overrides) for c in cells if c.strip()} - {None, ""}
        if len(found) < HEADER_MIN_MATCHES:
            continue
        fields: dict[int, str] = {}
        mapped: list[tuple[str, str]] = []
        unmapped: list[str] = []
        for column, cell in enumerate(cells):
            header = clean_cell(cell)
            if not header:
                continue
            name = _field_of(header, table, overrides)
            if name == "":
                continue
            if name is None:
                unmapped.append(header)
            elif name in fields.values():
                unmapped.append(f"{header} (a second {name} column; the first one is used)")
            else:
                fields[column] = name
                mapped.append((header, name))
        return index, ColumnMap(line, fields, tuple(mapped), tuple(unmapped))
    return None
