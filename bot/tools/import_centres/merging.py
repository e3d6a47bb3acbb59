"""Merging imported centres with the ones already in the knowledge folder.

Ids are stable (``dcc-<area>-<hash of the name>``), so a re-import updates its own rows
and keeps every other one, including centres an operator entered by hand; a new centre
in the same area as a hand-made one is noted, since it may be the same centre.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.kb.sources import Problem
from bot.tools.import_centres.report import ImportReport
from bot.tools.import_centres.rows import ImportedRow
from bot.tools.import_centres.writing import (
    CENTRES_FILE,
    read_existing,
    render,
    validate_folder,
    write_atomic,
)

__all__ = ["merge_into"]


def merge_into(report: ImportReport, folder: Path, label: str, dry_run: bool) -> None:
    """Merge ``report.imported`` into the folder's centres; write unless ``dry_run``.

    Counts and problems go into ``report``; nothing is written when the old file has
    problems or the merged folder would not pass ``load_knowledge``.
    """
    target = folder / CENTRES_FILE
    existing, newline, before, problems = read_existing(target)
    if problems:
        report.errors += problems
        report.errors.append(
            Problem(str(target), 1, "(file)", "fix this file first (bot kb validate)")
        )
        return
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
    data = render(merged, newline, before.startswith(codecs.BOM_UTF8))
    origin = {
        number: f"{label}:{imported[row['id']].line}"
        for number, row in enumerate(merged, start=2)
        if row["id"] in imported
    }
    invalid = validate_folder(folder, data, origin)
    if invalid:
        report.errors += invalid
        report.invalid = True
        return
    if not dry_run and data != before:
        write_atomic(target, data)
        report.written = True


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
