"""Many values as one JSON parameter, for PostgreSQL statements over thousands of rows.

An ``IN`` list binds a parameter per value: for the 8,000 users of a group of notice
batches the driver rewrites the query for each one, a fifth of ``bot notify``'s CPU while
the calls go out. One JSON text is one parameter, encoded by the C encoder and expanded by
the database (``json_array_elements_text``). SQLite, in-process, keeps plain lists.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import JSON, Text, bindparam, cast, func, select
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql.elements import ColumnElement


def json_param(value: Any) -> ColumnElement[Any]:
    """One parameter holding ``value`` as JSON text (dates and times in ISO form)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return cast(bindparam(None, text, type_=Text), JSON)


def among(
    col: ColumnElement[str] | QueryableAttribute[str],
    values: Sequence[str],
    dialect: str,
) -> ColumnElement[bool]:
    """``col`` is one of ``values``: one JSON parameter on PostgreSQL, an IN list elsewhere."""
    if dialect != "postgresql":
        return col.in_(list(values))
    listed = func.json_array_elements_text(json_param(list(values))).table_valued("value")
    return col.in_(select(listed.c.value))
