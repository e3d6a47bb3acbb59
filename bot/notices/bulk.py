"""Many rows in one statement: notice batches log up to 500 users × their courses each.

The rows of a batch are a product: every user times every course, all with the batch's
retry key, status and time (and, for the insight rows, the users' shared profile). On
PostgreSQL the parts of many batches travel as one JSON document; ``json_to_recordset``
and ``json_array_elements_text`` turn it back into typed rows and the database makes the
products: one statement, one round trip and one parameter, whatever the row count.
(An executemany sends one INSERT per row; a multi-row VALUES list runs out of
parameters at 65,535; arrays cost the driver a quoting pass per element.) SQLite,
in-process and without JSON record sets, takes an executemany of the products.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Table, cast, column, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.storage.json_values import json_param

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Product:
    """Every pair of one of ``firsts`` (column ``first``) and one of ``seconds`` (column
    ``second``), all with ``same``: a batch's users times its courses."""

    first: str
    firsts: Sequence[Any]
    second: str
    seconds: Sequence[Any]
    same: dict[str, Any]

    def expanded(self) -> list[dict[str, Any]]:
        return [
            {self.first: a, self.second: b, **self.same} for a in self.firsts for b in self.seconds
        ]


async def insert_products(
    conn: AsyncConnection,
    table: Table,
    parts: Sequence[Product],
    *,
    skip_existing: bool = False,
) -> int:
    """Insert every part's rows in one statement (the parts share their columns); with
    ``skip_existing`` a row whose key is taken already is left out (ON CONFLICT DO
    NOTHING). Returns the number of rows offered."""
    parts = [p for p in parts if p.firsts and p.seconds]
    if not parts:
        return 0
    offered = sum(len(p.firsts) * len(p.seconds) for p in parts)
    if conn.dialect.name != "postgresql":
        ins = sqlite.insert(table)
        rows = [row for p in parts for row in p.expanded()]
        await conn.execute(ins.on_conflict_do_nothing() if skip_existing else ins, rows)
        return offered
    first, second, same = parts[0].first, parts[0].second, list(parts[0].same)
    # plain lists of values (not an object per row): less to encode here and to parse there
    doc = [{"a": p.firsts, "b": p.seconds, **p.same} for p in parts]
    part = (
        func.json_to_recordset(json_param(doc))
        .table_valued(column("a", JSON), column("b", JSON), *_typed(table, same))
        .render_derived(with_types=True)
    )
    # A function in FROM sees the items before it (implicitly LATERAL in PostgreSQL).
    each_a = func.json_array_elements_text(part.c.a).table_valued("value").render_derived()
    each_b = func.json_array_elements_text(part.c.b).table_valued("value").render_derived()
    source = select(
        cast(each_a.c.value, table.c[first].type),
        cast(each_b.c.value, table.c[second].type),
        *(part.c[k] for k in same),
    ).select_from(part.join(each_a, true()).join(each_b, true()))
    stmt = postgresql.insert(table).from_select([first, second, *same], source)
    if not skip_existing:
        await conn.execute(stmt)
        return offered
    # A taken key is not expected (a batch's rows and its status commit together, and a run
    # with batches pending only resends those), and the check for one is a third of the
    # insert's cost on PostgreSQL. So first without it, in a savepoint, and only on a taken
    # key again with it, saying so: the run's reads missed a row they should have found.
    try:
        async with conn.begin_nested():
            await conn.execute(stmt)
    except IntegrityError:
        await conn.execute(stmt.on_conflict_do_nothing())
        log.warning("rows logged already were offered again", extra={"table": table.name})
    return offered


def _typed(table: Table, names: Sequence[str]) -> list[Any]:
    return [column(n, table.c[n].type) for n in names]
