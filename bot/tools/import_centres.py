"""Import the official list of community digital centres into ``digital_centres.csv``.

ONDE (สดช.) publishes its centres (ศูนย์ดิจิทัลชุมชน) as spreadsheets: thousands of rows, Thai
column names that change from one release to the next, a title above the header, TIS-620
encoding, place names with or without "จ."/"อ."/"ต.", Thai digits, Buddhist-era dates and the
odd swapped coordinate. Typing them in by hand is slow and error-prone, so
``bot kb import-centres FILE`` turns such a file into rows of our schema:

1. read the table (CSV in UTF-8, UTF-8 with BOM, UTF-16 or cp874/TIS-620; or ``.xlsx``) and
   find its header row: the first row where at least two column names are known;
2. map its columns to our fields with ``centre_import_columns.yaml``, an operator-extendable
   table of header spellings and keywords (no Thai wording lives in this module);
3. place every row: its own coordinates when they are inside Thailand (swapped ones are put
   right), else the point of its subdistrict, else of its district, with the place names
   resolved by the :class:`~bot.kb.places.Gazetteer` narrowing province → district →
   subdistrict; a row that cannot be placed is reported with its line and not imported;
4. give each row a stable id (``dcc-<area code>-<hash of the name>``) so a re-import updates
   rows instead of adding them again, merge with the centres already there, check the merged
   folder with :func:`~bot.kb.loader.load_knowledge` on a temporary copy, and only then
   replace the file atomically.

Everything the command has to say is collected in an :class:`ImportReport`; problems are
:class:`~bot.kb.sources.Problem` lines (``FILE:LINE: field: message``) like ``bot kb validate``.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import hashlib
import io
import os
import re
import shutil
import tempfile
import typing
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from rapidfuzz import fuzz, process

from bot.kb.geo import haversine_km, in_thailand
from bot.kb.loader import load_knowledge, today
from bot.kb.places import District, Gazetteer, PlaceMatch, Subdistrict
from bot.kb.schemas import (
    CENTRE_COLUMNS,
    CENTRE_REQUIRED_COLUMNS,
    CENTRE_SERVICES,
    Centre,
    centre_fields,
    friendly,
)
from bot.kb.sources import Located, Problem, read_csv, read_yaml

__all__ = [
    "COLUMNS_FILE",
    "FIELDS",
    "ImportOptions",
    "ImportReport",
    "ImportTable",
    "ImportedRow",
    "centre_id",
    "header_key",
    "parse_date",
    "run_import",
    "thai_digits_to_ascii",
]

#: The operator-extendable table of header spellings and keywords, in a knowledge folder.
COLUMNS_FILE = "centre_import_columns.yaml"
#: The table shipped with the code; used when the target folder has none of its own.
SHIPPED_COLUMNS = Path(__file__).resolve().parents[2] / "knowledge" / COLUMNS_FILE
CENTRES_FILE = "digital_centres.csv"
DEFAULT_OPERATOR = "ONDE"

#: Our fields a source column can be mapped to (``--map COLUMN=field``). The place fields take
#: names or DOPA codes; ``latlng`` is one cell holding both ("13.75, 100.50" or a map link).
FIELDS: tuple[str, ...] = (
    "name_th",
    "name_en",
    "host_type",
    "host_name_th",
    "address_th",
    "province",
    "district",
    "subdistrict",
    "province_code",
    "district_code",
    "subdistrict_code",
    "postal_code",
    "lat",
    "lng",
    "latlng",
    "services",
    "contact_phone",
    "contact_line",
    "contact_facebook",
    "contact_email",
    "opening_hours_th",
    "opened_on",
    "status",
)
HOST_TYPES: tuple[str, ...] = typing.get_args(Centre.model_fields["host_type"].annotation)
CENTRE_STATUSES: tuple[str, ...] = ("active", "unknown", "closed")
LOCATION_SOURCES = (
    "coordinates",
    "coordinates_swapped",
    "subdistrict",
    "subdistrict_fallback",
    "district",
)
#: A header row names at least this many known columns (a title row names none or one).
HEADER_MIN_MATCHES = 2
#: Ministry sheets put a few title lines above the header; never more than this many.
HEADER_SCAN_ROWS = 30
#: Exact coordinates this far from their area's point deserve a second look (a warning only:
#: large rural subdistricts exist, and the named area may be the wrong one).
FAR_FROM_SUBDISTRICT_KM = 30.0
FAR_FROM_DISTRICT_KM = 60.0
#: Farther than this from the area the row names, the coordinates belong to another place
#: (copied from another row, digits lost): the named area is the safer point to show.
IGNORE_BEYOND_KM = 100.0
#: rapidfuzz ratio for a misspelt name among the few areas of a known parent.
LOCAL_FUZZY_CUTOFF = 85.0
_AREA_PRECISIONS = frozenset({"district_mean", "province_mean", "manual"})

PlacedBy = Literal["coordinates", "subdistrict", "district"]

# -- text normalisation ----------------------------------------------------------------------

_THAI_DIGITS = {0x0E50 + i: str(i) for i in range(10)}
_ZERO_WIDTH = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_PAIYANNOI = "\u0e2f"  # ฯ: an abbreviation mark, a letter to Unicode but noise in a header


def thai_digits_to_ascii(text: str) -> str:
    """``๑๓/๐๖/๒๕๖๘`` → ``13/06/2568``: Thai offices still type Thai digits."""
    return text.translate(_THAI_DIGITS)


def _nfkc(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_ZERO_WIDTH)
    # NFKC splits sara am (ำ) into nikhahit + sara aa; put it back as names spell it.
    return text.replace("\u0e4d\u0e32", "\u0e33")


def header_key(text: str) -> str:
    """What a header is compared by: no spaces, case or punctuation ("อำเภอ/เขต" = "อำเภอเขต")."""
    return "".join(
        ch
        for ch in _nfkc(text).lower()
        if unicodedata.category(ch)[0] in "LMN" and ch != _PAIYANNOI
    )


def _header_variants(text: str) -> list[str]:
    """The whole header, then its parts: "ละติจูด (Latitude)" is also "ละติจูด" and "latitude"."""
    out = [header_key(text), header_key(re.sub(r"\(.*?\)", " ", text))]
    out += [header_key(inner) for inner in re.findall(r"\((.*?)\)", text)]
    out += [header_key(part) for part in re.split(r"[/\n|]", text)]
    return [key for i, key in enumerate(out) if key and key not in out[:i]]


def _keyword_text(text: str) -> str:
    """Keyword matching ignores spacing but keeps dots ("ร.ร." must not match "บรรณ")."""
    return re.sub(r"\s+", "", _nfkc(text).lower())


def clean_cell(text: str) -> str:
    """One line of text: Excel cells often hold line breaks and doubled spaces."""
    return " ".join(_nfkc(text).split())


def centre_id(area_code: str, name_th: str) -> str:
    """``dcc-<subdistrict or district code>-<6 hex of sha1 of the name>``: stable across imports.

    The name is compared without spacing, case and punctuation, so "ศูนย์ฯ อบต.X" in one
    release and "ศูนย์ฯอบต. X" in the next are the same centre.
    """
    digest = hashlib.sha1(header_key(name_th).encode("utf-8")).hexdigest()
    return f"dcc-{area_code}-{digest[:6]}"


def _fmt_coord(value: float) -> str:
    """At most 6 decimals (about 10 cm), without trailing zeros: small, stable diffs."""
    return f"{value:.6f}".rstrip("0").rstrip(".")


# -- dates -------------------------------------------------------------------------------------

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


# -- the column table --------------------------------------------------------------------------


class ImportConfigError(ValueError):
    """The column table cannot be used; ``problems`` say where it is wrong."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("; ".join(map(str, problems)))
        self.problems = problems


@dataclass(frozen=True)
class ImportTable:
    """``centre_import_columns.yaml``: header spellings and keywords, normalised for matching."""

    headers: Mapping[str, str]
    host_types: tuple[tuple[str, tuple[str, ...]], ...]
    host_ignore: tuple[str, ...]
    statuses: Mapping[str, str]
    services: tuple[tuple[str, tuple[str, ...]], ...]
    months: Mapping[str, int]
    place_prefixes: tuple[str, ...]
    location_source: Mapping[str, str]
    path: Path

    @classmethod
    def load(cls, path: Path) -> ImportTable:
        """Read and check the table; a wrong table stops the import (ImportConfigError)."""
        doc, problems = read_yaml(path)
        if doc is None:
            raise ImportConfigError(problems)
        data = doc.data if isinstance(doc.data, dict) else {}
        checker = _TableChecker(doc)
        for key in sorted(set(data) - set(_TABLE_SECTIONS)):
            checker.problem((key,), "unknown section; use " + ", ".join(_TABLE_SECTIONS))

        headers: dict[str, str] = {}
        for name, words in checker.groups("columns", FIELDS, required=True).items():
            for i, word in enumerate(words):
                key = header_key(word)
                other = headers.get(key)
                if other is not None and other != name:
                    checker.problem(("columns", name, i), f"{word!r} is also listed under {other}")
                headers.setdefault(key, name)
        host_types = tuple(
            (name, tuple(_keyword_text(w) for w in words))
            for name, words in checker.groups("host_types", HOST_TYPES).items()
        )
        host_ignore = tuple(_keyword_text(w) for w in checker.words(("host_ignore_words",)))
        statuses: dict[str, str] = {}
        for name, words in checker.groups("statuses", CENTRE_STATUSES).items():
            statuses.update((header_key(w), name) for w in words)
        services = tuple(
            (name, tuple(_keyword_text(w) for w in words))
            for name, words in checker.groups("services", CENTRE_SERVICES).items()
        )
        months: dict[str, int] = {}
        for name, words in checker.groups("months", tuple(str(m) for m in range(1, 13))).items():
            months.update((header_key(w), int(name)) for w in words)
        prefixes = tuple(sorted(checker.words(("place_prefixes",)), key=lambda p: (-len(p), p)))
        sources: dict[str, str] = {}
        raw_sources = data.get("location_source")
        if not isinstance(raw_sources, dict):
            checker.problem(("location_source",), "required: the texts for location_source")
        else:
            for key in LOCATION_SOURCES:
                text = raw_sources.get(key)
                if not isinstance(text, str) or not text.strip():
                    checker.problem(("location_source", key), "required text is missing")
                    continue
                try:
                    text.format(file="", code="", name="", precision="")
                except (KeyError, IndexError, ValueError):
                    checker.problem(
                        ("location_source", key),
                        "use only the placeholders {file}, {code}, {name} and {precision}",
                    )
                    continue
                sources[key] = text.strip()
            for key in sorted(set(raw_sources) - set(LOCATION_SOURCES)):
                checker.problem(("location_source", key), "unknown key")
        if checker.problems:
            raise ImportConfigError(checker.problems)
        return cls(
            headers=headers,
            host_types=host_types,
            host_ignore=host_ignore,
            statuses=statuses,
            services=services,
            months=months,
            place_prefixes=prefixes,
            location_source=sources,
            path=path,
        )


_TABLE_SECTIONS = (
    "columns",
    "host_types",
    "host_ignore_words",
    "statuses",
    "services",
    "months",
    "place_prefixes",
    "location_source",
)


class _TableChecker:
    """Reads the sections of the column table, noting every problem with its line."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.data: dict[str, Any] = doc.data if isinstance(doc.data, dict) else {}
        self.problems: list[Problem] = []

    def problem(self, path: tuple[str | int, ...], message: str) -> None:
        where = ".".join(str(p) for p in path)
        self.problems.append(Problem(self.doc.file, self.doc.line_of(path), where, message))

    def words(self, path: tuple[str | int, ...]) -> list[str]:
        node: Any = self.data
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return []
        if not isinstance(node, list):
            self.problem(path, "must be a list such as [word, other word]")
            return []
        out: list[str] = []
        for i, item in enumerate(node):
            if isinstance(item, bool) or item is None:
                self.problem((*path, i), "put this word in quotes (YAML reads it as true/false)")
            elif not header_key(str(item)):
                self.problem((*path, i), "an empty word (or only punctuation) would match anything")
            else:
                out.append(str(item).strip())
        return out

    def groups(
        self, section: str, allowed: Sequence[str], required: bool = False
    ) -> dict[str, list[str]]:
        node = self.data.get(section)
        if node is None:
            if required:
                self.problem((section,), "required section is missing")
            return {}
        if not isinstance(node, dict):
            self.problem((section,), "must be a group of name: [words]")
            return {}
        out: dict[str, list[str]] = {}
        for name in node:
            if name not in allowed:
                self.problem((section, name), "unknown name; use one of: " + ", ".join(allowed))
                continue
            out[name] = self.words((section, name))
        return out


def load_table(folder: Path) -> ImportTable:
    """The knowledge folder's own column table, or the shipped one."""
    own = folder / COLUMNS_FILE
    return ImportTable.load(own if own.is_file() else SHIPPED_COLUMNS)


# -- reading the source file -------------------------------------------------------------------


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


# -- header and columns ------------------------------------------------------------------------


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
    for variant in _header_variants(header):
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


# -- placing a row -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Place:
    province: str
    district: str
    subdistrict: str | None


class _Unplaced(Exception):
    """A row's place cannot be worked out: the field at fault and why."""

    def __init__(self, column: str, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


_LEVEL_FIELDS = {
    "province": ("province", "province_code"),
    "district": ("district", "district_code"),
    "subdistrict": ("subdistrict", "subdistrict_code"),
}
_CODE_LEVEL = {2: "province", 4: "district", 6: "subdistrict", 8: "subdistrict"}


class Placer:
    """Turns the place cells of a row (names or DOPA codes) into codes, narrowing level by level.

    A subdistrict name alone is often ambiguous (there are 28 หนองบัว), so each name is only
    looked for inside the area found above it, and a name that still fits several areas is
    refused rather than guessed: a centre pinned in the wrong province is worse than one
    reported for an operator to fix.
    """

    def __init__(self, gazetteer: Gazetteer, table: ImportTable) -> None:
        self.gazetteer = gazetteer
        self.table = table

    # -- codes ---------------------------------------------------------------------------------

    def _code(self, cell: str) -> str | None:
        digits = re.sub(r"[\s\-.]", "", thai_digits_to_ascii(cell))
        return digits if digits.isdigit() else None

    def _known(self, level: str, code: str) -> bool:
        table = {
            "province": self.gazetteer.provinces,
            "district": self.gazetteer.districts,
            "subdistrict": self.gazetteer.subdistricts,
        }[level]
        return code in table

    def _where(self, code: str) -> str:
        area = self.gazetteer.get(code)
        return f"{area.name_th} ({code})"

    def place(self, values: Mapping[str, str]) -> _Place:
        """The row's province, district and (when named) subdistrict, or _Unplaced."""
        codes: dict[str, tuple[str, str]] = {}  # level -> (field, code)
        texts: dict[str, tuple[str, str]] = {}  # level -> (field, name text)
        for level, fields in _LEVEL_FIELDS.items():
            for name in fields:
                cell = values.get(name, "")
                if not cell:
                    continue
                code = self._code(cell)
                if code is None:
                    texts.setdefault(level, (name, cell))
                    continue
                code_level = _CODE_LEVEL.get(len(code))
                if code_level is None:
                    raise _Unplaced(name, f"{cell!r} is not a DOPA code (2, 4, 6 or 8 digits)")
                code = code[:6]
                if not self._known(code_level, code):
                    raise _Unplaced(name, f"unknown {code_level} code {code!r}")
                old = codes.get(code_level)
                if old is not None and old[1] != code:
                    raise _Unplaced(name, f"code {code} disagrees with {old[0]} code {old[1]}")
                codes[code_level] = (name, code)

        sub = codes["subdistrict"][1] if "subdistrict" in codes else None
        dist = codes["district"][1] if "district" in codes else None
        prov = codes["province"][1] if "province" in codes else None
        if sub is not None:
            area = self.gazetteer.subdistricts[sub]
            if dist is not None and dist != area.district_code:
                raise _Unplaced(
                    codes["district"][0],
                    f"district {dist} does not contain subdistrict {self._where(sub)}",
                )
            dist = area.district_code
        if dist is not None:
            district = self.gazetteer.districts[dist]
            if prov is not None and prov != district.province_code:
                raise _Unplaced(
                    codes["province"][0],
                    f"province {prov} does not contain district {self._where(dist)}",
                )
            prov = district.province_code

        if prov is None:
            if "province" not in texts:
                raise _Unplaced("province", "missing; the province is needed to place the centre")
            column, text = texts["province"]
            prov = self._one(column, text, "province", None)
        else:
            self._agrees(texts.get("province"), "province", None, prov)
        if dist is None and "district" in texts:
            column, text = texts["district"]
            dist = self._one(column, text, "district", prov)
        elif dist is not None:
            self._agrees(texts.get("district"), "district", prov, dist)
        if sub is None and "subdistrict" in texts:
            column, text = texts["subdistrict"]
            sub = self._one(column, text, "subdistrict", dist or prov)
            dist = dist or self.gazetteer.subdistricts[sub].district_code
        elif sub is not None:
            self._agrees(texts.get("subdistrict"), "subdistrict", dist, sub)
        if dist is None:
            raise _Unplaced(
                "district",
                f"missing; a district (or subdistrict) of {self._where(prov)} is needed",
            )
        return _Place(prov, dist, sub)

    def _agrees(
        self, given: tuple[str, str] | None, level: str, parent: str | None, code: str
    ) -> None:
        """A name next to a code must not name another area (it may be unreadable)."""
        if given is None:
            return
        column, text = given
        found = self.matches(text, level, parent)
        if len(found) == 1 and found[0] != code:
            raise _Unplaced(
                column,
                f"{text!r} is {self._where(found[0])}, but the codes say {self._where(code)}",
            )

    def _one(self, column: str, text: str, level: str, parent: str | None) -> str:
        found = self.matches(text, level, parent)
        inside = f" in {self._where(parent)}" if parent else ""
        if not found:
            raise _Unplaced(column, f"{text!r} is not a known {level}{inside}")
        if len(found) > 1:
            listed = ", ".join(self._with_parent(code) for code in found[:8])
            more = f" and {len(found) - 8} more" if len(found) > 8 else ""
            hint = {"subdistrict": "the district", "district": "the province"}.get(
                level, "a district"
            )
            raise _Unplaced(
                column,
                f"{text!r} matches {len(found)} {level}s{inside}: {listed}{more}; fill in {hint}",
            )
        return found[0]

    def _with_parent(self, code: str) -> str:
        area = self.gazetteer.get(code)
        parent = code[:4] if len(code) == 6 else code[:2]
        return f"{area.name_th} ({code}, in {self.gazetteer.get(parent).name_th})"

    def matches(self, text: str, level: str, parent: str | None) -> list[str]:
        """Codes of the areas of ``level`` inside ``parent`` that ``text`` names, best only."""
        result = self.gazetteer.resolve(text)
        found = [m for m in result.candidates if m.level == level and _inside(m, parent)]
        if found:
            best = max(m.score for m in found)
            return sorted({m.code for m in found if m.score == best})
        if parent is None:
            return []
        return self._local(text, level, parent)

    def _local(self, text: str, level: str, parent: str) -> list[str]:
        """A misspelt name among the few areas of a known parent (the gazetteer may have
        preferred an exact name elsewhere in the country)."""
        key = header_key(self._without_prefix(text))
        if not key:
            return []
        names: dict[str, set[str]] = {}
        for code, spellings in self._children(level, parent):
            for spelling in spellings:
                if spelling:
                    names.setdefault(header_key(spelling), set()).add(code)
        if key in names:
            return sorted(names[key])
        hits = process.extract(
            key, list(names), scorer=fuzz.ratio, score_cutoff=LOCAL_FUZZY_CUTOFF, limit=5
        )
        if not hits:
            return []
        best = max(score for _, score, _ in hits)
        return sorted({code for name, score, _ in hits if score == best for code in names[name]})

    def _children(self, level: str, parent: str) -> list[tuple[str, tuple[str, ...]]]:
        g = self.gazetteer
        if level == "district" and len(parent) == 2:
            return [
                (d.code, (d.name_th, d.name_th_short, d.name_en, *d.aliases))
                for d in g.districts_of(parent)
            ]
        if level == "subdistrict":
            districts = [parent] if len(parent) == 4 else [d.code for d in g.districts_of(parent)]
            return [
                (s.code, (s.name_th, s.name_en, *s.aliases))
                for d in districts
                for s in g.subdistricts_of(d)
            ]
        return []

    def _without_prefix(self, text: str) -> str:
        value = clean_cell(text)
        for prefix in self.table.place_prefixes:
            if value.startswith(prefix):
                return value[len(prefix) :].strip()
        return value


def _inside(match: PlaceMatch, parent: str | None) -> bool:
    if parent is None:
        return True
    if len(parent) == 2:
        return match.province_code == parent
    return match.district_code == parent


# -- a row to a centre -------------------------------------------------------------------------

_PAIR = re.compile(r"(-?\d{1,3}\.\d+)\s*[,\s/;]\s*(-?\d{1,3}\.\d+)")


def _number(cell: str) -> float | None:
    """A decimal degree in Thai or Arabic digits ("๑๘.๗๘°" too), or None."""
    value = thai_digits_to_ascii(cell).strip().rstrip("°").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    return number if number == number and abs(number) != float("inf") else None


def _coordinates(values: Mapping[str, str]) -> tuple[tuple[float, float] | None, str | None]:
    """(lat, lng) from two columns or one "lat, lng" cell (also a map link), or a note."""
    lat_cell, lng_cell = values.get("lat", ""), values.get("lng", "")
    if lat_cell or lng_cell:
        lat, lng = _number(lat_cell), _number(lng_cell)
        if lat is not None and lng is not None:
            return (lat, lng), None
        if lat_cell and lng_cell:
            return None, f"({lat_cell!r}, {lng_cell!r}) are not decimal degrees; ignored"
        if not values.get("latlng"):
            return None, "only one of latitude and longitude is filled in; ignored"
    cell = thai_digits_to_ascii(values.get("latlng", ""))
    if not cell:
        return None, None
    at = re.search(r"@(-?\d+\.\d+),(-?\d+\.\d+)", cell)  # a Google Maps link
    match = at or _PAIR.search(cell)
    if match is None:
        return None, f"{values.get('latlng')!r} is not a latitude, longitude pair; ignored"
    return (float(match[1]), float(match[2])), None


@dataclass(frozen=True)
class ImportedRow:
    """One centre made from a source row: its CSV cells and how it was placed."""

    line: int
    cells: Mapping[str, str]
    placed_by: PlacedBy
    swapped: bool = False

    @property
    def id(self) -> str:
        return self.cells["id"]


@dataclass(frozen=True)
class ImportOptions:
    """What the command line asked for (see ``bot kb import-centres --help``)."""

    source: Path
    into: Path
    mapping: Sequence[str] = ()
    source_urls: Sequence[str] = ()
    status: str | None = None
    operator: str = DEFAULT_OPERATOR
    dry_run: bool = False
    sheet: str | None = None
    as_of: str | None = None
    checked_on: dt.date | None = None


class RowBuilder:
    """Builds the centre of one source row, or says why the row cannot be imported."""

    def __init__(
        self,
        placer: Placer,
        table: ImportTable,
        label: str,
        file_name: str,
        provenance: Mapping[str, str],
        operator: str,
    ) -> None:
        self.placer = placer
        self.table = table
        self.label = label
        self.file_name = file_name
        self.provenance = provenance
        self.operator = operator
        self.notes: list[Problem] = []

    def note(self, line: int, column: str, message: str) -> None:
        self.notes.append(Problem(self.label, line, column, message))

    def build(self, line: int, values: Mapping[str, str]) -> ImportedRow:
        """The row as a centre; raises _Unplaced (with the field at fault) to skip it."""
        name = values.get("name_th", "")
        if not name:
            raise _Unplaced("name_th", "empty; every centre needs its Thai name")
        coords, coord_note = _coordinates(values)
        if coord_note:
            self.note(line, "lat/lng", coord_note)
        point: tuple[float, float] | None = None
        swapped = False
        outside: str | None = None
        if coords is not None:
            lat, lng = coords
            if in_thailand(lat, lng):
                point = coords
            elif in_thailand(lng, lat):
                point, swapped = (lng, lat), True
                self.note(
                    line,
                    "lat/lng",
                    f"latitude and longitude were swapped ({_fmt_coord(lat)}, {_fmt_coord(lng)})"
                    f"; used ({_fmt_coord(lng)}, {_fmt_coord(lat)})",
                )
            else:
                outside = (
                    f"the coordinates ({_fmt_coord(lat)}, {_fmt_coord(lng)}) are outside "
                    "Thailand (also with latitude and longitude swapped)"
                )
        try:
            place = self.placer.place(values)
        except _Unplaced as exc:
            if outside:
                raise _Unplaced(
                    "location",
                    f"cannot place this centre: {outside}, and {exc.column}: {exc.message}",
                ) from None
            raise
        if outside:
            self.note(line, "lat/lng", f"{outside}; placed at the area's point instead")

        gazetteer = self.placer.gazetteer
        sources = self.table.location_source
        sub = gazetteer.subdistricts[place.subdistrict] if place.subdistrict else None
        district = gazetteer.districts[place.district]
        placed_by: PlacedBy
        area: Subdistrict | District = sub or district
        if point is not None:
            km = haversine_km(point[0], point[1], area.lat, area.lng)
            where = f"{km:.0f} km from the point of {area.name_th} ({area.code})"
            if km > IGNORE_BEYOND_KM:
                self.note(
                    line,
                    "lat/lng",
                    f"({_fmt_coord(point[0])}, {_fmt_coord(point[1])}) is {where} named in the "
                    "row; ignored and placed at the area's point: fix the coordinates or the names",
                )
                point, swapped = None, False
            elif km > (FAR_FROM_SUBDISTRICT_KM if sub else FAR_FROM_DISTRICT_KM):
                self.note(
                    line,
                    "lat/lng",
                    f"the point is {where}; check the coordinates and the place names",
                )
        if point is not None:
            placed_by = "coordinates"
            lat, lng = point
            precision = "exact"
            source = sources["coordinates_swapped" if swapped else "coordinates"]
        elif sub is not None:
            placed_by = "subdistrict"
            lat, lng = sub.lat, sub.lng
            precision = (
                sub.coord_precision
                if sub.coord_precision in _AREA_PRECISIONS
                else "subdistrict_ref"
            )
            ref = precision == "subdistrict_ref"
            source = sources["subdistrict" if ref else "subdistrict_fallback"]
        else:
            placed_by = "district"
            lat, lng = district.lat, district.lng
            precision = (
                district.coord_precision
                if district.coord_precision in _AREA_PRECISIONS
                else "district_mean"
            )
            source = sources["district"]
        area_code = place.subdistrict or place.district
        area_name = (sub or district).name_th
        unverified: list[str] = []

        cells = dict.fromkeys(CENTRE_COLUMNS, "")
        cells.update(
            id=centre_id(area_code, name),
            name_th=name,
            name_en=values.get("name_en", ""),
            operator=self.operator,
            host_name_th=values.get("host_name_th", ""),
            address_th=values.get("address_th", ""),
            province_code=place.province,
            district_code=place.district,
            subdistrict_code=place.subdistrict or "",
            location_lat=_fmt_coord(lat),
            location_lng=_fmt_coord(lng),
            location_precision=precision,
            location_source=source.format(
                file=self.file_name, code=area_code, name=area_name, precision=precision
            ),
            contact_phone=thai_digits_to_ascii(values.get("contact_phone", "")),
            contact_line=values.get("contact_line", ""),
            contact_facebook=values.get("contact_facebook", ""),
            contact_email=values.get("contact_email", ""),
            opening_hours_th=values.get("opening_hours_th", ""),
        )
        cells["host_type"], inferred = self._host_type(values)
        if inferred:
            unverified.append("host_type")
        cells["postal_code"], filled = self._postal_code(line, values, sub)
        if filled:
            unverified.append("postal_code")
        cells["services"] = ";".join(self._services(line, values.get("services", "")))
        if values.get("opened_on"):
            opened, problem = parse_date(values["opened_on"], self.table.months)
            if problem:
                self.note(line, "opened_on", problem + "; left empty")
            elif opened is not None and opened > today() + dt.timedelta(days=1):
                self.note(line, "opened_on", f"{opened} is in the future; left empty")
            elif opened is not None:
                cells["opened_on"] = opened.isoformat()
        cells["status"] = self._status(line, values.get("status", ""))
        cells.update(self.provenance)
        cells["provenance_unverified_fields"] = ";".join(unverified)
        return ImportedRow(line, cells, placed_by, swapped)

    def _host_type(self, values: Mapping[str, str]) -> tuple[str, bool]:
        """(host_type, inferred): an explicit column first, then keywords in the names."""
        given = values.get("host_type", "")
        if given.strip().lower() in HOST_TYPES:
            return given.strip().lower(), False
        if given:
            found = self._keyword(given)
            if found:
                return found, False
        for text in (values.get("host_name_th", ""), values.get("name_th", "")):
            found = self._keyword(text)
            if found:
                return found, True
        return "other", True

    def _keyword(self, text: str) -> str | None:
        """The host type whose keyword starts earliest in the text (longest on a tie):
        "โรงเรียนวัด…" is a school and "อบต.วัดดาว" a SAO, whatever the table's order."""
        value = _keyword_text(text)
        for word in self.table.host_ignore:
            value = value.replace(word, "|" * len(word))
        best: tuple[int, int, str] | None = None
        for name, words in self.table.host_types:
            for word in words:
                at = value.find(word)
                if at >= 0 and (best is None or (at, -len(word)) < best[:2]):
                    best = (at, -len(word), name)
        return best[2] if best else None

    def _postal_code(
        self, line: int, values: Mapping[str, str], sub: Subdistrict | None
    ) -> tuple[str, bool]:
        """(postal code, filled from the gazetteer): the file's own, else the subdistrict's
        only one."""
        given = re.sub(r"\s", "", thai_digits_to_ascii(values.get("postal_code", "")))
        if given:
            if not re.fullmatch(r"\d{5}", given):
                self.note(line, "postal_code", f"{given!r} is not a 5-digit postal code; ignored")
                given = ""
            elif sub is not None and sub.postal_codes and given not in sub.postal_codes:
                self.note(
                    line,
                    "postal_code",
                    f"{given} is not a postal code of {sub.name_th} ({sub.code}): "
                    + ", ".join(sub.postal_codes),
                )
        if given:
            return given, False
        if sub is not None and len(sub.postal_codes) == 1:
            return sub.postal_codes[0], True
        return "", False

    def _services(self, line: int, text: str) -> list[str]:
        """Our service codes named in a free-text cell; unknown pieces are noted, not guessed."""
        if not text:
            return []
        found: set[str] = set()
        for piece in re.split(r"[,;/|\n、]+", text):
            value = _keyword_text(piece)
            if not value:
                continue
            hits = {name for name, words in self.table.services if any(w in value for w in words)}
            if not hits:
                self.note(line, "services", f"{piece.strip()!r} is not a service we list; ignored")
            found |= hits
        return [name for name in CENTRE_SERVICES if name in found]

    def _status(self, line: int, text: str) -> str:
        """active/closed only when the list says so in words of the table; else unknown."""
        if not text:
            return "unknown"
        status = self.table.statuses.get(header_key(text))
        if status is None:
            self.note(line, "status", f"{text!r} is not a known status; imported as unknown")
            return "unknown"
        return status


def _validate_row(row: ImportedRow, label: str) -> list[Problem]:
    """The row against the schema, as the loader would read it back from the CSV."""
    data = centre_fields(row.cells)
    try:
        Centre.model_validate(data)
    except ValidationError as exc:
        return [
            Problem(label, row.line, str(e["loc"][0]) if e["loc"] else "(row)", friendly(e))
            for e in exc.errors(include_url=False)
        ]
    return []


# -- the report --------------------------------------------------------------------------------


@dataclass
class ImportReport:
    """Everything one import did and found, ready to print."""

    source: str
    target: Path
    description: str = ""
    table_path: Path | None = None
    header_line: int = 0
    mapped: tuple[tuple[str, str], ...] = ()
    unmapped: tuple[str, ...] = ()
    rows_read: int = 0
    imported: list[ImportedRow] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    kept: int = 0
    skipped: list[Problem] = field(default_factory=list)
    notes: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    errors: list[Problem] = field(default_factory=list)
    invalid: bool = False
    dry_run: bool = False
    written: bool = False

    def placed(self, how: PlacedBy) -> int:
        return sum(1 for row in self.imported if row.placed_by == how)

    @property
    def swapped(self) -> int:
        return sum(1 for row in self.imported if row.swapped)

    @property
    def exit_code(self) -> int:
        """0 when something was imported (even with skipped rows); 1 otherwise."""
        return 0 if self.imported and not self.errors else 1

    def lines(self) -> list[str]:
        """The report as printed by ``bot kb import-centres``."""
        out: list[str] = []
        if self.description:
            out.append(f"read {self.source}: {self.description}, header on line {self.header_line}")
        if self.table_path is not None and self.table_path != self.target / COLUMNS_FILE:
            out.append(f"column table: {self.table_path}")
        if self.mapped:
            out.append("columns: " + ", ".join(f"{h} → {f}" for h, f in self.mapped))
        if self.unmapped:
            out.append("unmapped columns (not imported): " + ", ".join(self.unmapped))
        if self.description:
            out.append(f"rows read: {self.rows_read}")
            out.append(
                f"imported: {len(self.imported)} (new {self.new}, updated {self.updated}, "
                f"unchanged {self.unchanged})"
            )
            swapped = f" (swapped latitude/longitude fixed: {self.swapped})" if self.swapped else ""
            out.append(f"  placed by coordinates: {self.placed('coordinates')}{swapped}")
            out.append(f"  placed by subdistrict: {self.placed('subdistrict')}")
            out.append(f"  placed by district: {self.placed('district')}")
            out.append(f"skipped: {len(self.skipped)}")
            out += [f"  {problem}" for problem in self.skipped]
        if self.notes:
            out.append(f"notes: {len(self.notes)}")
            out += [f"  {problem}" for problem in self.notes]
        out += [f"warning: {text}" for text in self.warnings]
        if self.errors:
            if self.invalid:
                out.append(f"the merged {CENTRES_FILE} would not be valid; nothing was written:")
            out += [str(problem) for problem in self.errors]
        total = self.kept + len(self.imported)
        target = self.target / CENTRES_FILE
        counts = f"{total} centres ({self.kept} kept, {len(self.imported)} imported)"
        if not self.imported and not self.errors:
            out.append("nothing could be imported; nothing was written")
        elif not self.errors and self.dry_run:
            out.append(f"dry run: nothing written; {target} would have {counts}")
        elif not self.errors and self.written:
            out.append(f"wrote {target}: {counts}")
        elif not self.errors:
            out.append(f"{target} is already up to date: {counts}")
        return out


# -- merging and writing -----------------------------------------------------------------------


def _read_existing(path: Path) -> tuple[list[dict[str, str]], str, bytes, list[Problem]]:
    """The centres already there, as their own cells (kept byte for byte), and the newline."""
    if not path.is_file():
        return [], "\n", b"", []
    raw = path.read_bytes()
    rows, problems = read_csv(path, CENTRE_REQUIRED_COLUMNS)
    newline = "\r\n" if b"\r\n" in raw else "\n"
    out = [{c: row.values.get(c, "") for c in CENTRE_COLUMNS} for row in rows]
    return out, newline, raw, problems


def _render(rows: Sequence[Mapping[str, str]], newline: str, bom: bool) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(CENTRE_COLUMNS)
    for row in rows:
        writer.writerow([row.get(c, "") for c in CENTRE_COLUMNS])
    return (codecs.BOM_UTF8 if bom else b"") + buffer.getvalue().encode("utf-8")


def _validate_folder(folder: Path, data: bytes, origin: Mapping[int, str]) -> list[Problem]:
    """Problems of the folder as it would be with ``data`` as its centres file.

    Checked on a temporary copy so nothing the bot reads changes until the result is known
    to be good; the places folder (the bulk) is linked, not copied, where the system allows.
    """
    with tempfile.TemporaryDirectory(prefix="import-centres-") as tmp:
        copy = Path(tmp) / "knowledge"
        shutil.copytree(
            folder,
            copy,
            ignore=lambda where, names: ["places"] if Path(where) == folder else [],
        )
        places = folder / "places"
        if places.is_dir():
            try:
                (copy / "places").symlink_to(places.resolve(), target_is_directory=True)
            except OSError:
                shutil.copytree(places, copy / "places")
        (copy / CENTRES_FILE).write_bytes(data)
        result = load_knowledge(copy)
        out: list[Problem] = []
        for problem in result.problems:
            name = problem.file.replace(str(copy), str(folder), 1)
            message = problem.message
            if Path(problem.file).name == CENTRES_FILE and problem.line in origin:
                message += f" (from {origin[problem.line]})"
            out.append(Problem(name, problem.line, problem.field, message))
        return out


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a temporary file beside the target, then rename it over: never a half file."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    temp = Path(name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if path.exists():
            shutil.copymode(path, temp)
        else:
            temp.chmod(0o644)
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


# -- the command -------------------------------------------------------------------------------


def _provenance(options: ImportOptions, report: ImportReport) -> dict[str, str] | None:
    label = "(options)"
    urls = [u.strip() for u in options.source_urls if u.strip()]
    for url in urls:
        if not re.fullmatch(r"https?://\S+", url) or ";" in url:
            report.errors.append(Problem(label, 1, "--source-url", f"{url!r} is not a web address"))
    status = options.status or ("verified" if urls else "sample")
    if status not in ("verified", "partly_verified", "sample"):
        report.errors.append(Problem(label, 1, "--status", f"unknown status {status!r}"))
    elif status != "sample" and not urls:
        report.errors.append(
            Problem(label, 1, "--status", f"{status} needs --source-url (where the list is from)")
        )
    if not urls and status == "sample":
        report.warnings.append(
            "no --source-url: the imported rows are marked provenance status 'sample' "
            "(unverified); give the address of the official list to mark them verified"
        )
    if not re.fullmatch(r"[A-Z][A-Z0-9_]*", options.operator):
        report.errors.append(
            Problem(label, 1, "--operator", "an upper-case agency code from agencies.yaml")
        )
    checked = options.checked_on or today()
    as_of = checked.isoformat()
    if options.as_of:
        try:
            as_of = parse_as_of(options.as_of)
        except ValueError as exc:
            report.errors.append(Problem(label, 1, "--as-of", str(exc)))
    if report.errors:
        return None
    return {
        "provenance_status": status,
        "provenance_source_urls": ";".join(urls),
        "provenance_facts_as_of": as_of,
        "provenance_last_checked": checked.isoformat(),
    }


def run_import(options: ImportOptions, gazetteer: Gazetteer | None = None) -> ImportReport:
    """Import ``options.source`` into ``options.into``; never raises for bad input.

    The knowledge folder is written only when something was imported and the merged folder
    passes :func:`load_knowledge`; ``dry_run`` goes through every step but the write.
    """
    folder = options.into
    label = str(options.source)
    report = ImportReport(source=label, target=folder, dry_run=options.dry_run)
    try:
        table = load_table(folder)
    except ImportConfigError as exc:
        report.errors += exc.problems
        return report
    report.table_path = table.path
    overrides, map_errors = parse_overrides(options.mapping)
    report.errors += [Problem("(options)", 1, "--map", message) for message in map_errors]
    provenance = _provenance(options, report)
    if report.errors or provenance is None:
        return report

    sources, problems = read_source(options.source, options.sheet)
    if problems:
        report.errors += problems
        return report
    found: tuple[SourceTable, int, ColumnMap] | None = None
    for source in sources:
        header = find_columns(source.rows, table, overrides)
        if header is not None:
            found = (source, header[0], header[1])
            break
    if found is None:
        report.errors.append(
            Problem(
                label,
                1,
                "(header)",
                f"no header row: none of the first {HEADER_SCAN_ROWS} rows names "
                f"{HEADER_MIN_MATCHES} known columns; add the spellings to {COLUMNS_FILE} "
                "or use --map COLUMN=field",
            )
        )
        return report
    source, header_index, columns = found
    header_cells = source.rows[header_index][1]
    report.description = source.description
    report.header_line = columns.header_line
    report.mapped, report.unmapped = columns.mapped, columns.unmapped
    if "name_th" not in columns.fields.values():
        report.errors.append(
            Problem(
                label,
                columns.header_line,
                "name_th",
                "no column holds the centre's name; use --map COLUMN=name_th",
            )
        )
        return report

    if gazetteer is None:
        try:
            gazetteer = Gazetteer.load(folder / "places")
        except (OSError, ValueError, KeyError) as exc:
            where = str(folder / "places")
            report.errors.append(Problem(where, 1, "(folder)", f"places cannot be loaded: {exc}"))
            return report
    builder = RowBuilder(
        Placer(gazetteer, table),
        table,
        label,
        options.source.name,
        provenance,
        options.operator,
    )
    seen: dict[str, int] = {}
    for line, cells in source.rows[header_index + 1 :]:
        if not any(c.strip() for c in cells):
            continue
        report.rows_read += 1
        extra = [c for c in cells[len(header_cells) :] if c.strip()]
        if extra:
            report.skipped.append(
                Problem(
                    label,
                    line,
                    "(row)",
                    f"has {len(extra)} filled cell(s) right of the last column of the header "
                    "(a comma inside a value needs quotes)",
                )
            )
            continue
        values = {
            name: clean_cell(cells[column])
            for column, name in columns.fields.items()
            if column < len(cells) and cells[column].strip()
        }
        try:
            row = builder.build(line, values)
        except _Unplaced as exc:
            report.skipped.append(Problem(label, line, exc.column, exc.message))
            continue
        invalid = _validate_row(row, label)
        if invalid:
            report.skipped += invalid
            continue
        if row.id in seen:
            report.skipped.append(
                Problem(
                    label,
                    line,
                    "name_th",
                    f"duplicate of line {seen[row.id]} (same name in the same area, "
                    f"id {row.id}); skipped",
                )
            )
            continue
        seen[row.id] = line
        report.imported.append(row)
    report.notes = sorted(builder.notes, key=lambda problem: problem.line)
    if not report.imported:
        return report

    target = folder / CENTRES_FILE
    existing, newline, before, problems = _read_existing(target)
    if problems:
        report.errors += problems
        report.errors.append(
            Problem(str(target), 1, "(file)", "fix this file first (bot kb validate)")
        )
        return report
    imported = {row.id: row for row in report.imported}
    merged: list[Mapping[str, str]] = []
    for old in existing:
        replacement = imported.get(old["id"])
        if replacement is None:
            merged.append(old)
            report.kept += 1
        elif dict(replacement.cells) == old:
            report.unchanged += 1
        else:
            report.updated += 1
    replaced = {old["id"] for old in existing}
    report.new = sum(1 for ident in imported if ident not in replaced)
    _note_neighbours(report, existing, imported, target)
    merged += [row.cells for row in report.imported]
    merged.sort(key=lambda row: row["id"])
    data = _render(merged, newline, before.startswith(codecs.BOM_UTF8))
    origin = {
        number: f"{label}:{imported[row['id']].line}"
        for number, row in enumerate(merged, start=2)
        if row["id"] in imported
    }
    invalid = _validate_folder(folder, data, origin)
    if invalid:
        report.errors += invalid
        report.invalid = True
        return report
    if not options.dry_run and data != before:
        _write_atomic(target, data)
        report.written = True
    return report


def _note_neighbours(
    report: ImportReport,
    existing: Sequence[Mapping[str, str]],
    imported: Mapping[str, ImportedRow],
    target: Path,
) -> None:
    """A new centre in the same area as a centre entered by hand may be the same centre."""
    by_area: dict[str, list[Mapping[str, str]]] = {}
    for old in existing:
        if old["id"] not in imported:
            by_area.setdefault(old["subdistrict_code"] or old["district_code"], []).append(old)
    existing_ids = {old["id"] for old in existing}
    for row in report.imported:
        if row.id in existing_ids:
            continue
        area = row.cells["subdistrict_code"] or row.cells["district_code"]
        for old in by_area.get(area, []):
            report.notes.append(
                Problem(
                    report.source,
                    row.line,
                    "id",
                    f"{old['id']} ({old['name_th']}) in {target} is in the same area; "
                    "if it is the same centre, delete one of the two",
                )
            )
    report.notes.sort(key=lambda problem: problem.line)
