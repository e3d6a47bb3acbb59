"""Many rows in one statement: notice batches log up to 500 users × their courses each.

The rows of a batch are a product: every user (with what varies per user) times every
course, all with the batch's retry key, status and time. On PostgreSQL the parts of
many batches travel as one JSON document; ``json_to_recordset`` and
``json_array_elements_text`` turn it back into typed rows and the database makes the
products: one statement, one round trip and one parameter, whatever the row count.
(An executemany sends one INSERT per row; a multi-row VALUES list runs out of
parameters at 65,535; arrays cost the driver a quoting pass per element.) SQLite,
in-process and without JSON record sets, takes an executemany of the products.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import JSON, Table, Text, bindparam, cast, column, func, select, true
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


@dataclass(frozen=True)
class Product:
    """Each of ``rows`` once per value of ``values`` (in column ``name``), all with ``same``."""

    rows: Sequence[dict[str, Any]]
    name: str
    values: Sequence[Any]
    same: dict[str, Any]

    def expanded(self) -> list[dict[str, Any]]:
        return [{**row, self.name: v, **self.same} for row in self.rows for v in self.values]


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
    parts = [p for p in parts if p.rows and p.values]
    if not parts:
        return 0
    offered = sum(len(p.rows) * len(p.values) for p in parts)
    if conn.dialect.name != "postgresql":
        ins = sqlite.insert(table)
        rows = [row for p in parts for row in p.expanded()]
        await conn.execute(ins.on_conflict_do_nothing() if skip_existing else ins, rows)
        return offered
    first = parts[0]
    names, name, same = list(first.rows[0]), first.name, list(first.same)
    doc = [{"r": p.rows, "v": p.values, **p.same} for p in parts]
    part = (
        func.json_to_recordset(_json(doc))
        .table_valued(column("r", JSON), column("v", JSON), *_typed(table, same))
        .render_derived(with_types=True)
    )
    # A function in FROM sees the items before it (implicitly LATERAL in PostgreSQL).
    each = (
        func.json_to_recordset(part.c.r)
        .table_valued(*_typed(table, names))
        .render_derived(with_types=True)
    )
    per = func.json_array_elements_text(part.c.v).table_valued("value").render_derived()
    source = select(
        *each.c, cast(per.c.value, table.c[name].type), *(part.c[k] for k in same)
    ).select_from(part.join(each, true()).join(per, true()))
    stmt = postgresql.insert(table).from_select([*names, name, *same], source)
    await conn.execute(stmt.on_conflict_do_nothing() if skip_existing else stmt)
    return offered


def _typed(table: Table, names: Sequence[str]) -> list[Any]:
    return [column(n, table.c[n].type) for n in names]


def _json(value: Any) -> Any:
    """One parameter holding ``value`` as JSON text (dates and times in ISO form)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return cast(bindparam(None, text, type_=Text), JSON)
