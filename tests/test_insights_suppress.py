"""Small-count and complementary suppression (issue 13): cells under the threshold are hidden
and no hidden cell can be worked out from the shown cells and totals."""

from __future__ import annotations

import random

import pytest

from bot.insights.suppress import (
    Table,
    complementary,
    lines,
    linked,
    primary,
    recoverable,
    settle,
)

MIN = 10


def table(cells: list[list[int]], *, row_totals: bool = True, column_totals: bool = True) -> Table:
    """A table of raw counts with sums as totals, primary suppression applied."""
    rows = [f"r{i}" for i in range(len(cells))]
    columns = [f"c{j}" for j in range(len(cells[0]))]
    t = Table("t", "province", "topic", rows, columns, {})
    t.cells = {
        (r, c): primary(cells[i][j], cells[i][j], MIN)
        for i, r in enumerate(rows)
        for j, c in enumerate(columns)
    }
    if row_totals:
        t.row_totals = {r: primary(sum(cells[i]), sum(cells[i]), MIN) for i, r in enumerate(rows)}
    if column_totals:
        t.column_totals = {
            c: primary(sum(row[j] for row in cells), sum(row[j] for row in cells), MIN)
            for j, c in enumerate(columns)
        }
    grand = sum(map(sum, cells))
    t.total = primary(grand, grand, MIN)
    return t


def test_primary() -> None:
    assert primary(0, 0, MIN) == 0  # nobody: shown as 0
    assert primary(9, 9, MIN) is None
    assert primary(10, 10, MIN) == 10
    # Every period small: hidden, not a misleading 0.
    assert primary(0, 7, MIN) is None
    # A small period inside a sum: the whole sum is hidden (see primary).
    assert primary(12, 15, MIN) is None
    assert primary(30, 30, MIN) == 30


def test_a_lone_hidden_cell_gets_a_partner() -> None:
    t = complementary(table([[5, 20, 30], [40, 50, 60]]))
    # Row r0 had one hidden cell (5): its smallest shown cell (20) is hidden too, and column
    # c0 and c1 now each hold one hidden cell, so their smallest shown cells go as well.
    assert t.cells[("r0", "c0")] is None and t.cells[("r0", "c1")] is None
    assert t.cells[("r1", "c0")] is None and t.cells[("r1", "c1")] is None
    assert t.cells[("r0", "c2")] == 30 and t.cells[("r1", "c2")] == 60
    assert recoverable(t) == []


def test_no_shown_partner_hides_the_total() -> None:
    t = complementary(table([[5, 0, 0], [40, 50, 60]], column_totals=False))
    # Nothing non-zero to hide beside the 5: the row total goes instead (zeros stay 0).
    assert t.cells[("r0", "c1")] == 0 and t.cells[("r0", "c2")] == 0
    assert t.row_totals["r0"] is None
    assert recoverable(t) == []


def test_zero_cells_stay_zero_and_clean_tables_are_untouched() -> None:
    t = complementary(table([[0, 20], [30, 0]]))
    assert t.cells == {("r0", "c0"): 0, ("r0", "c1"): 20, ("r1", "c0"): 30, ("r1", "c1"): 0}
    assert t.hidden == 0


def test_tables_without_totals_only_get_primary_suppression() -> None:
    t = table([[5, 20]], row_totals=False, column_totals=False)
    t.has_total = False
    assert list(lines(t)) == []
    assert complementary(t).cells == {("r0", "c0"): None, ("r0", "c1"): 20}


@pytest.mark.parametrize("seed", range(300))
def test_no_hidden_cell_is_recoverable(seed: int) -> None:
    """Property: random tables, many small counts; after suppression every line (row, column,
    totals) whose total is shown holds 0 or at least 2 hidden members, nothing shown under
    the threshold, and every shown value unchanged."""
    rng = random.Random(seed)
    n_rows, n_cols = rng.randint(1, 8), rng.randint(1, 8)
    cells = [
        [
            rng.choice((0, 0, rng.randint(1, 9), rng.randint(1, 40), rng.randint(10, 300)))
            for _ in range(n_cols)
        ]
        for _ in range(n_rows)
    ]
    t = complementary(table(cells, row_totals=rng.random() < 0.8, column_totals=rng.random() < 0.8))
    for total, members in lines(t):
        values = [_value(t, m) for m in members]
        hidden = sum(v is None for v in values)
        assert _value(t, total) is None or hidden != 1, (total, values)
    assert recoverable(t) == []
    for i, row in enumerate(cells):
        for j, raw in enumerate(row):
            shown = t.cells[(f"r{i}", f"c{j}")]
            assert shown is None or shown == raw
            assert shown is None or shown == 0 or shown >= MIN


def _value(t: Table, place: tuple[str, ...]) -> int | None:
    if place[0] == "cell":
        return t.cell(place[1], place[2])
    if place[0] == "row":
        return t.row_totals.get(place[1])
    if place[0] == "column":
        return t.column_totals.get(place[1])
    return t.total


def test_a_region_never_gives_away_its_one_hidden_province() -> None:
    # Provinces p0..p2 form region R: p0's 4 people are hidden in the province table, and the
    # region table would show 4 + 20 + 30 = 54 next to them without the linked suppression.
    provinces = table([[4, 15], [20, 25], [30, 35]], row_totals=False)
    provinces.rows = ["p0", "p1", "p2"]
    provinces.cells = {(p, c): v for (r, c), v in provinces.cells.items() for p in [f"p{r[1:]}"]}
    region = table([[54, 75]], row_totals=False)
    region.rows = ["R"]
    region.cells = {("R", c): v for (_, c), v in region.cells.items()}
    linked(provinces, region, {"R": ["p0", "p1", "p2"]})
    hidden = [p for p in provinces.rows if provinces.cells[(p, "c0")] is None]
    assert region.cells[("R", "c0")] is None or len(hidden) >= 2
    assert provinces.cells[("p0", "c0")] is None  # still hidden
    # The untouched column keeps its figures.
    assert [provinces.cells[(p, "c1")] for p in provinces.rows] == [15, 25, 35]
    assert region.cells[("R", "c1")] == 75


def test_a_total_two_tables_share_is_hidden_in_both() -> None:
    # The same province total (12 people) in two tables: by sector, r0 holds one small cell
    # and nothing else to hide beside it, so its total is hidden; by stage it would print
    # the same 12, and 12 minus nothing gives the small cell away.
    sectors = Table("sectors", "province", "sector", ["r0"], ["s0", "s1"], {})
    sectors.cells = {("r0", "s0"): primary(5, 5, MIN), ("r0", "s1"): 0}
    sectors.row_totals = {"r0": 12}
    sectors.has_total = False
    stages = Table("stages", "province", "stage", ["r0"], ["1", "2"], {})
    stages.cells = {("r0", "1"): 12, ("r0", "2"): 0}
    stages.row_totals = {"r0": 12}
    stages.has_total = False
    for t in (sectors, stages):
        t.ids = {("row", "r0"): ("people", "r0")}
    settle([sectors, stages])
    assert sectors.row_totals["r0"] is None
    assert stages.row_totals["r0"] is None
    assert recoverable(sectors) == [] and recoverable(stages) == []
