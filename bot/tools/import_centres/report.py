"""What one import did and found, as ``bot kb import-centres`` prints it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from bot.kb.sources import Problem
from bot.tools.import_centres.column_table import COLUMNS_FILE
from bot.tools.import_centres.locating import PlacedBy
from bot.tools.import_centres.rows import ImportedRow
from bot.tools.import_centres.writing import CENTRES_FILE

__all__ = ["ImportReport"]


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
