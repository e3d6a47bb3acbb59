"""Small-count and complementary suppression of an insights table (pure functions).

Why both: a cell built from fewer than ``INSIGHTS_MIN_COUNT`` people could point at someone
(primary suppression hides it), and a hidden cell must not be worked out again from what is
shown next to it: a row whose total is shown and which holds exactly one hidden cell gives
that cell away as "total minus the others". So every *line* (a row with its row total, a
column with its column total, the column totals with the grand total, the row totals with
the grand total) whose total is shown holds either no hidden member or at least two;
when a line has exactly one, its smallest non-zero shown member is hidden as well
(complementary suppression), or its total when no such member exists; repeated until no line
changes. Zero cells stay 0: "nobody" discloses nobody.

The totals of the views are distinct people (one person asking about two topics is one in
the row total, two in the cells), so a total is not always the sum of its cells; the rule is
applied anyway, as if it were, which is the safe side.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

#: Where a value sits: a cell (row, column), a row total, a column total or the grand total.
Place = (
    tuple[Literal["cell"], str, str]
    | tuple[Literal["row", "column"], str]
    | tuple[Literal["total"]]
)


@dataclass
class Table:
    """One table of a view: codes (labels come from ``views.label``), counts, ``None`` = hidden."""

    id: str
    row_dim: str
    column_dim: str
    rows: list[str]
    columns: list[str]
    cells: dict[tuple[str, str], int | None]
    row_totals: dict[str, int | None] = field(default_factory=dict)
    column_totals: dict[str, int | None] = field(default_factory=dict)
    total: int | None = None
    note: str = ""
    #: False for a table whose grand total means nothing (measures side by side): ``total``
    #: is then None without being hidden.
    has_total: bool = True
    #: What each value counts (kinds and dimension values), so that the same figure printed
    #: by two tables of one view is hidden in both or in neither (:func:`settle`).
    ids: dict[Place, Hashable] = field(default_factory=dict)

    def cell(self, row: str, column: str) -> int | None:
        """A cell's value; a cell nobody is in is 0."""
        return self.cells.get((row, column), 0)

    @property
    def hidden(self) -> int:
        """How many values (cells and totals) are hidden."""
        values = [self.cell(r, c) for r in self.rows for c in self.columns]
        values += [self.row_totals[r] for r in self.rows if r in self.row_totals]
        values += [self.column_totals[c] for c in self.columns if c in self.column_totals]
        return sum(v is None for v in values)


def primary(shown: int, raw: int, min_count: int) -> int | None:
    """A count as shown: 0 when nobody at all, hidden (None) under ``min_count``.

    ``raw`` counts everyone; ``shown`` only the per-period counts of ``min_count`` or more.
    A sum over several periods with a small one in it is hidden as a whole: shown without
    it, the figure would sit beside totals that include it (total minus the others gives
    the small count away), and shown with it, it would be that period's figure plus the
    others' (each period is on the page by itself too).
    """
    if raw <= 0:
        return 0
    if shown < min_count or shown < raw:
        return None
    return shown


def value_at(table: Table, place: Place) -> int | None:
    """The value at ``place`` (None: hidden)."""
    if place[0] == "cell":
        return table.cell(place[1], place[2])
    if place[0] == "row":
        return table.row_totals.get(place[1])
    if place[0] == "column":
        return table.column_totals.get(place[1])
    return table.total


def _hide(table: Table, place: Place) -> None:
    if place[0] == "cell":
        table.cells[(place[1], place[2])] = None
    elif place[0] == "row":
        table.row_totals[place[1]] = None
    elif place[0] == "column":
        table.column_totals[place[1]] = None
    else:
        table.total = None


def lines(table: Table) -> Iterator[tuple[Place, list[Place]]]:
    """Every line with a total: (the total's place, its members' places), in a fixed order."""
    for r in table.rows:
        if r in table.row_totals:
            yield ("row", r), [("cell", r, c) for c in table.columns]
    for c in table.columns:
        if c in table.column_totals:
            yield ("column", c), [("cell", r, c) for r in table.rows]
    if not table.has_total:
        return
    if table.columns and all(c in table.column_totals for c in table.columns):
        yield ("total",), [("column", c) for c in table.columns]
    if table.rows and all(r in table.row_totals for r in table.rows):
        yield ("total",), [("row", r) for r in table.rows]


def complementary(table: Table) -> Table:
    """Hide more values until no line with a shown total holds exactly one hidden member
    (changes ``table`` in place and returns it)."""
    changed = True
    while changed:
        changed = False
        for total, members in lines(table):
            if value_at(table, total) is None:
                continue
            values = [value_at(table, m) for m in members]
            if sum(v is None for v in values) != 1:
                continue
            shown = [(v, i) for i, v in enumerate(values) if v]
            if shown:
                _hide(table, members[min(shown)[1]])
            else:
                _hide(table, total)
            changed = True
    return table


def _settle_line(total: tuple[Table, Place], members: list[tuple[Table, Place]]) -> bool:
    """One line whose total and members sit in different tables: hide one more value when it
    holds exactly one hidden member under a shown total (True when something was hidden)."""
    if value_at(*total) is None:
        return False
    values = [value_at(t, m) for t, m in members]
    if sum(v is None for v in values) != 1:
        return False
    shown = [(v, i) for i, v in enumerate(values) if v]
    if shown:
        _hide(*members[min(shown)[1]])
    else:
        _hide(*total)
    return True


def linked(fine: Table, coarse: Table, groups: Mapping[str, Sequence[str]]) -> None:
    """Suppress two tables with the same columns where a ``coarse`` row adds up ``fine`` rows
    (a region and its provinces), so that no hidden province is worked out as "the region
    minus its other provinces" across the two tables. Both tables are changed in place.

    A group whose fine rows are not all in ``fine`` (a province filter) is left out: the
    difference then covers several provinces at least.
    """
    changed = True
    while changed:
        changed = False
        complementary(fine)
        complementary(coarse)
        for row, members in groups.items():
            if row not in coarse.rows or not members or not set(members) <= set(fine.rows):
                continue
            for c in coarse.columns:
                if c not in fine.columns:
                    continue
                cells: list[tuple[Table, Place]] = [(fine, ("cell", m, c)) for m in members]
                changed |= _settle_line((coarse, ("cell", row, c)), cells)
            if row in coarse.row_totals and all(m in fine.row_totals for m in members):
                totals: list[tuple[Table, Place]] = [(fine, ("row", m)) for m in members]
                changed |= _settle_line((coarse, ("row", row)), totals)


def _hidden_count(tables: Sequence[Table]) -> int:
    return sum(value_at(t, p) is None for t in tables for p in _places(t))


def _places(table: Table) -> Iterator[Place]:
    for r in table.rows:
        for c in table.columns:
            yield ("cell", r, c)
    for r in table.rows:
        if r in table.row_totals:
            yield ("row", r)
    for c in table.columns:
        if c in table.column_totals:
            yield ("column", c)
    if table.has_total:
        yield ("total",)


Link = tuple[Table, Table, Mapping[str, Sequence[str]]]


def settle(tables: Sequence[Table], links: Sequence[Link] = ()) -> None:
    """Suppress the tables of one view together: complementary suppression in each, the
    region-province ``links``, and one figure printed by two tables (the same ``ids``:
    a province's total in the sector and in the stage table) hidden in both once one hides
    it; repeated until nothing more is hidden. Changes the tables in place."""
    before = -1
    while before != (now := _hidden_count(tables)):
        before = now
        for table in tables:
            complementary(table)
        for fine, coarse, groups in links:
            linked(fine, coarse, groups)
        hidden = {
            t.ids[p] for t in tables for p in _places(t) if p in t.ids and value_at(t, p) is None
        }
        for table in tables:
            for place in _places(table):
                if table.ids.get(place) in hidden and value_at(table, place) is not None:
                    _hide(table, place)


def recoverable(table: Table) -> list[Place]:
    """Lines whose shown total and single hidden member would give that member away
    (empty for a suppressed table; the tests check every view with it)."""
    out: list[Place] = []
    for total, members in lines(table):
        if value_at(table, total) is None:
            continue
        hidden = [m for m in members if value_at(table, m) is None]
        if len(hidden) == 1:
            out.append(hidden[0])
    return out


__all__ = [
    "Link",
    "Place",
    "Table",
    "complementary",
    "lines",
    "linked",
    "primary",
    "recoverable",
    "settle",
    "value_at",
]
