"""Checks of ``richmenus.yaml`` that one menu's schema cannot make on its own.

Each area must lie inside its menu's image and not overlap another (a tap on an overlap
would be ambiguous), a menu has at most LINE's 20 areas, an area's intent must be one the
bot knows, exactly one menu is the default, and at most one other is given to people who
finished an assessment (``after_assessment``). Every problem points at the line of the
area or field at fault, like the other knowledge files.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

from bot.kb.schemas import RICHMENU_MAX_AREAS, RichMenu
from bot.kb.sources import Located, Problem


def check_richmenus(
    doc: Located, menus: Sequence[tuple[int, RichMenu]], intents: Collection[str]
) -> list[Problem]:
    """Problems of valid menus (``(index in the file, menu)``) against each other and the bot."""
    problems: list[Problem] = []

    def problem(path: tuple[str | int, ...], field: str, message: str) -> None:
        problems.append(Problem(doc.file, doc.line_of(path), field, message))

    for i, menu in menus:
        base: tuple[str | int, ...] = ("items", i)
        if len(menu.areas) > RICHMENU_MAX_AREAS:
            problem(
                (*base, "areas"),
                f"{menu.id}.areas",
                f"{len(menu.areas)} areas; LINE allows at most {RICHMENU_MAX_AREAS}",
            )
        for j, area in enumerate(menu.areas):
            where = (*base, "areas", j)
            label = f"{menu.id}.areas[{j}]"
            b = area.bounds
            if b.x + b.width > menu.width or b.y + b.height > menu.height:
                problem(
                    (*where, "bounds"),
                    f"{label}.bounds",
                    f"x {b.x} + width {b.width}, y {b.y} + height {b.height} goes outside the "
                    f"{menu.size} image ({menu.width}x{menu.height})",
                )
            for k, other in enumerate(menu.areas[:j]):
                if b.overlaps(other.bounds):
                    problem(
                        (*where, "bounds"),
                        f"{label}.bounds",
                        f"overlaps areas[{k}] ('{other.label}', line "
                        f"{doc.line_of((*base, 'areas', k))}); areas must not overlap",
                    )
            if area.intent is not None and area.intent not in intents:
                problem(
                    (*where, "intent"),
                    f"{label}.intent",
                    f"unknown intent '{area.intent}'; use an intent name from intents/*.yaml "
                    "such as start_assessment or find_course",
                )

    def at_most_one(flag: str, message: str) -> list[tuple[int, RichMenu]]:
        """The menus with ``flag`` set; each after the first is a problem at its line."""
        marked = [(i, m) for i, m in menus if getattr(m, flag)]
        for i, menu in marked[1:]:
            first = doc.line_of(("items", marked[0][0], flag))
            problem(("items", i, flag), f"{menu.id}.{flag}", message.format(line=first))
        return marked

    defaults = at_most_one(
        "default", "another menu is already the default (line {line}); mark exactly one"
    )
    raw = doc.data.get("items") if isinstance(doc.data, dict) else None
    # A menu refused by its schema may be the default: only say none is when all are read.
    every_menu_read = isinstance(raw, list) and len(raw) == len(menus)
    if menus and every_menu_read and not defaults:
        problem(("items",), "default", "no menu has default: true; mark exactly one")
    linked = [(i, m) for i, m in menus if m.after_assessment]
    for i, menu in linked:
        if menu.default:
            problem(
                ("items", i, "after_assessment"),
                f"{menu.id}.after_assessment",
                "the default menu is everyone's already; give after_assessment to another menu",
            )
    at_most_one(
        "after_assessment",
        "another menu already has after_assessment: true (line {line}); mark at most one",
    )
    return problems
