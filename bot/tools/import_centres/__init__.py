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

The package follows those steps: ``cells`` (cleaning and comparing cell text), ``dates``,
``column_table`` (the operators' table), ``source`` (reading the file), ``columns`` (the
header row), ``placing`` (names and codes to areas), ``locating`` (the point), ``rows``
(a row to a centre), ``report``, ``writing`` and ``merging`` (the result), and
``command`` (the whole import).
"""

from __future__ import annotations

from bot.tools.import_centres.cells import centre_id, header_key, thai_digits_to_ascii
from bot.tools.import_centres.column_table import COLUMNS_FILE, FIELDS, ImportTable
from bot.tools.import_centres.command import ImportOptions, run_import
from bot.tools.import_centres.dates import parse_date
from bot.tools.import_centres.report import ImportReport
from bot.tools.import_centres.rows import ImportedRow

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
