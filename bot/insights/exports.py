"""CSV and Excel downloads of a view: the same suppressed tables as the page.

A hidden value is written as an empty cell marked by :data:`HIDDEN_MARK` and explained by a
legend line, never as a number (not even in a hidden column or a comment). The CSV starts with
a UTF-8 byte-order mark so that Excel opens Thai text correctly; each table is one section
(its id, a header row, its rows, its column totals). The workbook has one sheet per table.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Final

from bot.insights.suppress import Table
from bot.insights.views import label
from bot.kb.loader import Knowledge

#: What a hidden value is written as (the legend says what it means).
HIDDEN_MARK: Final = "-"
Labeller = Callable[[str, str], str]


def _labeller(labels: Knowledge | Labeller) -> Labeller:
    if isinstance(labels, Knowledge):
        knowledge = labels
        return lambda dim, code: label(dim, code, knowledge)
    return labels


def _shown(value: int | None) -> int | str:
    return HIDDEN_MARK if value is None else value


def rows_of(table: Table, labels: Knowledge | Labeller) -> list[list[str | int]]:
    """A table as rows of a sheet: header, one row per row code, then the column totals."""
    name = _labeller(labels)
    totals = bool(table.row_totals)
    total_label = name("export", "total")
    header: list[str | int] = ["", *(name(table.column_dim, c) for c in table.columns)]
    if totals:
        header.append(total_label)
    out: list[list[str | int]] = [header]
    for r in table.rows:
        line: list[str | int] = [name(table.row_dim, r)]
        line += [_shown(table.cell(r, c)) for c in table.columns]
        if totals:
            line.append(_shown(table.row_totals.get(r)))
        out.append(line)
    if table.column_totals:
        line = [total_label, *(_shown(table.column_totals.get(c)) for c in table.columns)]
        if totals:
            line.append(_shown(table.total) if table.has_total else "")
        out.append(line)
    return out


def _legend(labels: Knowledge | Labeller) -> str:
    return f"{HIDDEN_MARK} = {_labeller(labels)('export', 'hidden')}"


def to_csv(tables: Sequence[Table], labels: Knowledge | Labeller) -> bytes:
    """Every table as a section of one CSV file (UTF-8 with BOM, for Excel)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([_legend(labels)])
    for table in tables:
        writer.writerow([])
        writer.writerow([f"# {table.id}"])
        writer.writerows(rows_of(table, labels))
    return ("\ufeff" + buffer.getvalue()).encode("utf-8")


def to_xlsx(tables: Sequence[Table], labels: Knowledge | Labeller) -> bytes:
    """Every table on its own sheet (named by its id), the legend under it."""
    # Imported here: openpyxl adds about 14 MB to a process, and only this download uses it
    # (``bot serve`` answers webhooks all day without it).
    from openpyxl import Workbook  # type: ignore[import-untyped]
    from openpyxl.styles import Font  # type: ignore[import-untyped]

    book = Workbook()
    book.remove(book.active)
    for table in tables:
        sheet = book.create_sheet(table.id[:31])
        for line in rows_of(table, labels):
            sheet.append(line)
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        sheet.append([])
        sheet.append([_legend(labels)])
    if not tables:
        book.create_sheet("empty")
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


__all__ = ["HIDDEN_MARK", "rows_of", "to_csv", "to_xlsx"]
