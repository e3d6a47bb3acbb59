"""``bot kb import-centres``: the steps of one import, from the options to the report.

Read the column table and the options, read the source and find its header, place and
build every row, then merge and write (see the package's docstring for the whole story).
Bad input never raises: everything is said in the :class:`ImportReport`.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.kb.loader import today
from bot.kb.places import Gazetteer
from bot.kb.sources import Problem
from bot.tools.import_centres.cells import clean_cell
from bot.tools.import_centres.column_table import COLUMNS_FILE, ImportConfigError, load_table
from bot.tools.import_centres.columns import (
    HEADER_MIN_MATCHES,
    HEADER_SCAN_ROWS,
    ColumnMap,
    find_columns,
    parse_overrides,
)
from bot.tools.import_centres.dates import parse_as_of
from bot.tools.import_centres.merging import merge_into
from bot.tools.import_centres.placing import Placer, Unplaced
from bot.tools.import_centres.report import ImportReport
from bot.tools.import_centres.rows import RowBuilder, validate_row
from bot.tools.import_centres.source import SourceTable, read_source

__all__ = ["DEFAULT_OPERATOR", "ImportOptions", "run_import"]

DEFAULT_OPERATOR = "ONDE"


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
    _import_rows(report, builder, source, header_index, columns)
    if report.imported:
        merge_into(report, folder, label, options.dry_run)
    return report


def _import_rows(
    report: ImportReport,
    builder: RowBuilder,
    source: SourceTable,
    header_index: int,
    columns: ColumnMap,
) -> None:
    """Build a centre of every row below the header; skipped rows say why in ``report``."""
    label = report.source
    header_cells = source.rows[header_index][1]
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
        except Unplaced as exc:
            report.skipped.append(Problem(label, line, exc.column, exc.message))
            continue
        invalid = validate_row(row, label)
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
