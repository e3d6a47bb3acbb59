"""Which reply keys the code uses, and which placeholders it fills in.

Read from the source with ``ast`` (no import, no execution): every call
``x.say("key", ..., name=...)``, ``x.reply_text("key", ...)`` or
``x.text("key", ...)`` with a literal key. ``bot kb validate`` compares this
with ``replies.yaml``: a key the code uses must exist there, and a
placeholder in its text must be one the code supplies, so an operator's
edit can never make the bot crash mid-conversation.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

_METHODS = {"say", "reply_text", "text"}


@dataclass(frozen=True)
class ReplyUse:
    """One place in the code that needs a reply."""

    key: str
    params: frozenset[str]
    #: True when the call passes ``**kwargs``: the supplied names cannot be known statically.
    open_params: bool
    where: str


def _uses_in(path: Path, root: Path) -> list[ReplyUse]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[ReplyUse] = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in _METHODS or not node.args:
            continue
        first = node.args[0]
        if not (isinstance(first, ast.Constant) and isinstance(first.value, str)):
            continue
        key = first.value
        if "." not in key or " " in key:
            continue  # not a reply key (e.g. an unrelated .text("...") call)
        names = frozenset(k.arg for k in node.keywords if k.arg is not None)
        open_params = any(k.arg is None for k in node.keywords)
        where = f"{path.relative_to(root)}:{node.lineno}"
        out.append(ReplyUse(key, names - {"rng"}, open_params, where))
    return out


@lru_cache(maxsize=4)
def reply_uses(root: Path) -> tuple[ReplyUse, ...]:
    """Every reply use under ``root``'s ``bot/`` and ``handlers/`` packages."""
    uses: list[ReplyUse] = []
    for package in ("bot", "handlers"):
        for path in sorted((root / package).rglob("*.py")):
            uses += _uses_in(path, root)
    return tuple(uses)


def code_root() -> Path:
    """The folder holding the ``bot`` and ``handlers`` packages."""
    return Path(__file__).resolve().parent.parent.parent
