"""Reading the source file: a CSV in any encoding a Thai office saves, or an Excel workbook.

Every way to read the file is returned (the CSV with each likely delimiter, or each
sheet); the import keeps the first in which it finds a header row.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.kb.sources import Problem

__all__ = ["SourceTable", "decode", "read_source"]


@dataclass(frozen=True)
class SourceTable:
    """The cells of one CSV file or sheet, each row with its line (row number) in the source."""

    description: str
    rows: tuple[tuple[int, tuple[str, ...]], ...]


def decode(raw: bytes) -> tuple[str, str]:
    """Text and the encoding found: UTF-8 (with or without BOM), UTF-16, else cp874 (TIS-620).

    Thai government CSVs saved by older Excel are cp874; a byte that is not valid UTF-8 is
    the sign. cp874 is a superset of TIS-620, so both read the same way.
    """
    if raw.startswith(codecs.BOM_UTF8):
        return raw[len(codecs.BOM_UTF8) :].decode("utf-8"), "UTF-8 with BOM"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16"), "UTF-16"
    try:
        return raw.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    return raw.decode("cp874"), "cp874 (TIS-620)"


def _csv_rows(text: str, delimiter: str) -> tuple[tuple[int, tuple[str, ...]], ...]:
    """Rows with the line each starts on, so a cell with a line break keeps later lines right."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows: list[tuple[int, tuple[str, ...]]] = []
    line = 0
    for cells in reader:
        start, line = line + 1, reader.line_num
        rows.append((start, tuple(cells)))
    return tuple(rows)


def read_source(path: Path, sheet: str | None) -> tuple[list[SourceTable], list[Problem]]:
    """Every way to read the file: the CSV with each likely delimiter, or each sheet.

    The caller keeps the first reading in which it finds a header row, which is how the
    delimiter (comma, tab from "Unicode text", semicolon) and the right sheet are chosen.
    """
    label = str(path)
    if not path.is_file():
        return [], [Problem(label, 1, "(file)", "file not found")]
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        return _read_workbook(path, sheet)
    if suffix in (".xls", ".ods", ".numbers"):
        return [], [
            Problem(label, 1, "(file)", f"{suffix} files are not read; save it as .xlsx or CSV")
        ]
    if sheet:
        return [], [Problem(label, 1, "--sheet", "only Excel (.xlsx) files have sheets")]
    try:
        text, encoding = decode(path.read_bytes())
    except UnicodeDecodeError as exc:
        return [], [
            Problem(label, 1, "(file)", f"neither UTF-8 nor TIS-620 text (byte {exc.start})")
        ]
    if "\0" in text:
        return [], [Problem(label, 1, "(file)", "not a text file; use a CSV or .xlsx file")]
    tables: list[SourceTable] = []
    problems: list[Problem] = []
    for delimiter, name in ((",", "comma"), ("\t", "tab"), (";", "semicolon")):
        try:
            rows = _csv_rows(text, delimiter)
        except csv.Error as exc:
            problems.append(Problem(label, 1, "(syntax)", f"CSV syntax error: {exc}"))
            continue
        tables.append(SourceTable(f"CSV, {encoding}, {name}-separated", rows))
    return tables, problems if not tables else []


def _excel_text(value: Any) -> str:
    """Excel values as text: dates as ISO days, whole numbers without ".0"."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, float) and not isinstance(value, bool):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _read_workbook(path: Path, sheet: str | None) -> tuple[list[SourceTable], list[Problem]]:
    label = str(path)
    try:
        import openpyxl  # type: ignore[import-untyped]
    except ImportError:  # pragma: no cover - openpyxl is a dependency
        return [], [Problem(label, 1, "(file)", "reading .xlsx needs openpyxl (pip install)")]
    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # a damaged or mislabelled file: zip, XML and key errors
        return [], [Problem(label, 1, "(file)", f"cannot read this Excel file: {exc}")]
    try:
        names = list(workbook.sheetnames)
        if sheet is not None and sheet not in names:
            shown = ", ".join(repr(n) for n in names)
            return [], [Problem(label, 1, "--sheet", f"no sheet {sheet!r}; the sheets: {shown}")]
        tables: list[SourceTable] = []
        for name in [sheet] if sheet is not None else names:
            worksheet = workbook[name]
            worksheet.reset_dimensions()  # some writers record a wrong used range
            rows = tuple(
                (number, tuple(_excel_text(v) for v in values))
                for number, values in enumerate(
                    worksheet.iter_rows(min_row=1, values_only=True), start=1
                )
            )
            tables.append(SourceTable(f"Excel sheet {name!r}", rows))
        return tables, []
    finally:
        workbook.close()
