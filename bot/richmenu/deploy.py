"""Put the knowledge's rich menus on LINE, and say what is live (``bot richmenu``).

A deploy first plans, from what LINE has (menus, aliases, the default) and what the
knowledge defines, then applies the plan:

1. for each menu whose definition or image changed (or that LINE lacks): validate the
   menu object, create it, upload its image to the data host, and point its alias (the
   menu's id in the knowledge) at it, creating the alias the first time;
2. make the knowledge's default menu LINE's default;
3. delete the menus this bot made before that nothing points at any more, and the
   aliases of menus removed from the knowledge.

Menus this bot made carry a name beginning with :data:`NAME_PREFIX`, the menu's id and a
digest of its object and image (``bot-richmenu:newcomer@1a2b3c4d5e6f เมนูผู้ใช้ใหม่``;
LINE never shows the name to users). The digest makes a deploy idempotent: an unchanged
menu is kept as it is, so users linked to it keep it, and a second run changes nothing.
Menus made by anyone else (LINE's console, another tool) are never deleted.

Old menus go last, so a deploy that fails half-way leaves the previous menus working;
the next deploy finishes the job (an orphan of the failed one is deleted then).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from bot.kb.loader import Knowledge
from bot.line.client import LineClient

#: Start of the name of every rich menu this bot creates: what it may delete.
NAME_PREFIX = "bot-richmenu:"
NAME_MAX = 300


def digest(body: dict[str, Any], image: bytes) -> str:
    """A short fingerprint of a menu object (without its name) and its image."""
    h = hashlib.sha256()
    fields = {k: v for k, v in body.items() if k != "name"}
    h.update(json.dumps(fields, sort_keys=True, ensure_ascii=False).encode("utf-8"))
    h.update(image)
    return h.hexdigest()[:12]


def managed_name(menu_id: str, fingerprint: str, name: str) -> str:
    """The LINE name of a menu the bot made (at most 300 characters)."""
    return f"{NAME_PREFIX}{menu_id}@{fingerprint} {name}"[:NAME_MAX]


def parse_name(name: str) -> tuple[str, str] | None:
    """``(menu id, digest)`` of a name :func:`managed_name` made, else None."""
    if not name.startswith(NAME_PREFIX):
        return None
    head = name[len(NAME_PREFIX) :].split(" ", 1)[0]
    menu_id, sep, fingerprint = head.partition("@")
    return (menu_id, fingerprint) if sep and menu_id else None


@dataclass
class MenuPlan:
    """One menu of the knowledge: its LINE object and image, and what to do with it."""

    id: str
    body: dict[str, Any]
    image: bytes
    digest: str
    default: bool
    #: The live menu kept because it is the same (None: create a new one).
    keep: str | None = None
    #: The alias exists on LINE (update it) or not (create it).
    alias_exists: bool = False
    #: The alias points at ``keep`` already.
    alias_ok: bool = False
    #: The new menu's id, once created.
    created: str | None = None

    @property
    def live_id(self) -> str | None:
        """The id users will see once the plan is applied (None before creation)."""
        return self.keep or self.created


@dataclass
class Plan:
    """What a deploy will do, computed from LINE's state and the knowledge."""

    menus: list[MenuPlan]
    current_default: str | None
    #: ``(menu id, name)`` of the bot's menus that nothing will point at.
    delete_menus: list[tuple[str, str]] = field(default_factory=list)
    #: Aliases of menus no longer in the knowledge, pointing at the bot's menus.
    delete_aliases: list[str] = field(default_factory=list)

    @property
    def default(self) -> MenuPlan | None:
        """The knowledge's default menu."""
        return next((m for m in self.menus if m.default), None)

    @property
    def changes(self) -> bool:
        """Whether applying the plan would change anything on LINE."""
        default = self.default
        return bool(
            any(m.keep is None or not m.alias_ok for m in self.menus)
            or self.delete_menus
            or self.delete_aliases
            or (default is not None and default.keep != self.current_default)
        )

    def lines(self) -> list[str]:
        """The plan, one step a line, as ``bot richmenu deploy --dry-run`` prints it."""
        out: list[str] = []
        for m in self.menus:
            size = f"{m.body['size']['width']}x{m.body['size']['height']}"
            if m.keep is not None:
                out.append(f"keep {m.id}: {m.keep} (unchanged, digest {m.digest})")
            else:
                out.append(
                    f"create {m.id}: {size}, {len(m.body['areas'])} areas, "
                    f"image {len(m.image)} bytes, digest {m.digest}"
                )
            if m.keep is None or not m.alias_ok:
                verb = "update" if m.alias_exists else "create"
                out.append(f"{verb} alias {m.id} -> {m.keep or 'the new ' + m.id + ' menu'}")
        default = self.default
        if default is not None and (default.keep is None or default.keep != self.current_default):
            out.append(f"set default menu: {default.id}")
        out.extend(f"delete alias {a}" for a in self.delete_aliases)
        out.extend(f"delete menu {menu_id} ({name})" for menu_id, name in self.delete_menus)
        if not self.changes:
            out.append("nothing to do: LINE has these menus already")
        return out


def build_menus(knowledge: Knowledge) -> list[MenuPlan]:
    """Each menu of the knowledge as LINE's object (named by :func:`managed_name`) and PNG."""
    from bot.richmenu.definitions import request_body
    from bot.richmenu.render import render

    out: list[MenuPlan] = []
    for menu in knowledge.richmenus.values():
        body = request_body(menu, knowledge)
        image = render(menu, knowledge)
        fingerprint = digest(body, image)
        body = {**body, "name": managed_name(menu.id, fingerprint, str(body["name"]))}
        out.append(MenuPlan(menu.id, body, image, fingerprint, bool(menu.default)))
    return out


async def plan(client: LineClient, menus: list[MenuPlan], force: bool = False) -> Plan:
    """Compare the menus with LINE (read calls only) and decide each step.

    ``force``: create every menu anew even when LINE has the same one.
    """
    live = await client.rich_menus()
    aliases = await client.rich_menu_aliases()
    current_default = await client.default_rich_menu()
    ours = {
        str(m["richMenuId"]): str(m.get("name", ""))
        for m in live
        if parse_name(str(m.get("name", ""))) is not None
    }
    for m in menus:
        target = aliases.get(m.id)
        m.alias_exists = target is not None
        parsed = parse_name(ours.get(target or "", ""))
        if not force and target is not None and parsed == (m.id, m.digest):
            m.keep = target
            m.alias_ok = True
    kept = {m.keep for m in menus if m.keep is not None}
    known = {m.id for m in menus}
    result = Plan(menus, current_default)
    result.delete_aliases = sorted(
        alias for alias, target in aliases.items() if alias not in known and target in ours
    )
    result.delete_menus = [(i, name) for i, name in ours.items() if i not in kept]
    return result


async def apply(
    client: LineClient,
    p: Plan,
    say: Callable[[str], None] = print,
    before_delete: Callable[[Plan], Awaitable[None]] | None = None,
) -> None:
    """Carry out a plan; ``say`` hears each step once done. New menus first, old ones last;
    ``before_delete`` runs once the aliases and the default point at the new menus (the
    per-user links move then, before the menus they point at are deleted)."""
    for m in p.menus:
        if m.keep is not None:
            continue
        await client.validate_rich_menu(m.body)
        m.created = await client.create_rich_menu(m.body)
        say(f"created {m.id}: {m.created}")
        await client.set_rich_menu_image(m.created, m.image, "image/png")
        say(f"uploaded the image of {m.id} ({len(m.image)} bytes)")
    for m in p.menus:
        if m.alias_ok:
            continue
        target = m.live_id
        assert target is not None
        if m.alias_exists:
            await client.update_rich_menu_alias(m.id, target)
            say(f"alias {m.id} -> {target} (updated)")
        else:
            await client.create_rich_menu_alias(m.id, target)
            say(f"alias {m.id} -> {target} (created)")
    default = p.default
    if default is not None and default.live_id != p.current_default:
        assert default.live_id is not None
        await client.set_default_rich_menu(default.live_id)
        say(f"default menu: {default.id} ({default.live_id})")
    if before_delete is not None:
        await before_delete(p)
    for alias in p.delete_aliases:
        await client.delete_rich_menu_alias(alias)
        say(f"deleted alias {alias}")
    for menu_id, name in p.delete_menus:
        await client.delete_rich_menu(menu_id)
        say(f"deleted menu {menu_id} ({name})")


@dataclass
class Status:
    """What LINE shows now, for ``bot richmenu status``."""

    default: str | None
    aliases: dict[str, str]
    #: Every rich menu of the channel: id -> name.
    menus: dict[str, str]

    def lines(self, knowledge: Knowledge | None = None) -> list[str]:
        """Default menu, aliases and the bot's menus, one a line."""

        def describe(menu_id: str | None) -> str:
            if menu_id is None:
                return "none"
            name = self.menus.get(menu_id)
            parsed = parse_name(name or "")
            if name is None:
                return f"{menu_id} (missing)"
            return f"{menu_id} ({parsed[0]}@{parsed[1]})" if parsed else f"{menu_id} ({name})"

        out = [f"default menu: {describe(self.default)}"]
        wanted = list(knowledge.richmenus) if knowledge is not None else []
        for alias in [*wanted, *sorted(set(self.aliases) - set(wanted))]:
            target = self.aliases.get(alias)
            note = "" if not wanted or alias in wanted else " (not in the knowledge)"
            out.append(
                f"alias {alias}: "
                + (describe(target) if target else "not on LINE (bot richmenu deploy)")
                + note
            )
        ours = {i: n for i, n in self.menus.items() if parse_name(n) is not None}
        others = len(self.menus) - len(ours)
        out.append(f"menus made by this bot: {len(ours)}")
        for menu_id, name in ours.items():
            pointed = [a for a, t in self.aliases.items() if t == menu_id]
            used = ", ".join(pointed) if pointed else "no alias: deleted by the next deploy"
            out.append(f"  {menu_id}  {name}  [{used}]")
        if others:
            out.append(f"other menus (made elsewhere, left alone): {others}")
        return out


async def status(client: LineClient) -> Status:
    """Read the default menu, the aliases and the menus from LINE."""
    menus = {str(m["richMenuId"]): str(m.get("name", "")) for m in await client.rich_menus()}
    return Status(await client.default_rich_menu(), await client.rich_menu_aliases(), menus)
