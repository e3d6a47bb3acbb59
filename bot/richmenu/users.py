"""Per-user rich menus: the business menu after an assessment, the default again on erasure.

A handler decides (``Turn.menu``); the pipeline stores the decision in the event's outbox with
the answer and applies it on every try of delivering that answer, so a worker killed between
the two links on the retry, and a redelivered event links once more (LINE's link and unlink
are idempotent). The menu is named by its alias (its id in ``richmenus.yaml``); the alias is
resolved on LINE, where ``bot richmenu deploy`` points it, and cached for a minute (a link
LINE refuses looks the alias up again: a deploy replaces menus). A menu not deployed yet, or
LINE failing, is logged and never fails the answer's event; a deploy that replaces the menu
links everyone who should have it again (``relink``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import or_, select

from bot.kb.loader import Knowledge
from bot.line.calls import PermanentLineError
from bot.storage.db import Assessment, Database, User

if TYPE_CHECKING:
    from bot.line.client import LineClient

log = logging.getLogger(__name__)

#: ``Turn.menu`` value that removes the user's own menu (they see the default one).
UNLINK = ""
#: Seconds an alias's menu id is reused before asking LINE again (a deploy moves aliases).
ALIAS_TTL_SECONDS = 60.0


@runtime_checkable
class MenuApi(Protocol):
    """The part of the LINE adapter this needs (``bot.line.client.LineClient``)."""

    async def rich_menu_of_alias(self, alias_id: str) -> str | None: ...

    async def link_rich_menu(self, user_id: str, rich_menu_id: str) -> None: ...

    async def unlink_rich_menu(self, user_id: str) -> None: ...


def after_assessment(knowledge: Knowledge) -> str | None:
    """The alias of the menu a person gets once they finish an assessment (None: none)."""
    for menu in knowledge.richmenus.values():
        if menu.after_assessment:
            return menu.id
    return None


class UserMenus:
    """Links and unlinks users' menus through the adapter, aliases cached per process."""

    def __init__(self, api: object, clock: Callable[[], float] = time.monotonic) -> None:
        self.api = api if isinstance(api, MenuApi) else None
        self._clock = clock
        self._aliases: dict[str, tuple[float, str | None]] = {}

    async def apply(self, user_id: str, menu: str) -> bool:
        """Link ``menu`` (an alias) to the user, or unlink with ``UNLINK``; True when done.

        LINE refusing is logged (False); LINE unreachable (``TransientLineError``) propagates
        to the caller, which logs it (``bot.pipeline.process``).
        """
        if self.api is None:
            return False  # the terminal chat and the simulator have no rich menus
        if menu == UNLINK:
            await self.api.unlink_rich_menu(user_id)
            return True
        target = await self._menu_id(menu)
        if target is None:
            log.info("rich menu not deployed; the user keeps the default", extra={"alias": menu})
            return False
        try:
            await self.api.link_rich_menu(user_id, target)
        except PermanentLineError:
            fresh = await self._menu_id(menu, fresh=True)  # redeployed since it was cached?
            if fresh is None or fresh == target:
                log.warning("LINE refused the rich menu link", extra={"alias": menu})
                return False
            try:
                await self.api.link_rich_menu(user_id, fresh)
            except PermanentLineError:
                log.warning("LINE refused the rich menu link", extra={"alias": menu})
                return False
        return True

    async def _menu_id(self, alias: str, fresh: bool = False) -> str | None:
        now = self._clock()
        cached = self._aliases.get(alias)
        if cached is not None and cached[0] > now and not fresh:
            return cached[1]
        assert self.api is not None
        found = await self.api.rich_menu_of_alias(alias)
        self._aliases[alias] = (now + ALIAS_TTL_SECONDS, found)
        return found


#: LINE's bulk link takes at most this many users a call.
BULK_MAX = 500


async def assessed_users(db: Database) -> list[str]:
    """People who should have the after-assessment menu: an assessment kept (an erasure
    removes it) and still following the account."""
    stmt = (
        select(Assessment.line_user_id)
        .distinct()
        .outerjoin(User, User.line_user_id == Assessment.line_user_id)
        .where(or_(User.following.is_(None), User.following))
        .order_by(Assessment.line_user_id)
    )
    async with db.engine.connect() as conn:
        return [str(r[0]) for r in (await conn.execute(stmt)).all()]


async def relink(client: LineClient, users: Sequence[str], rich_menu_id: str) -> int:
    """Link ``users`` to ``rich_menu_id`` in LINE's bulk calls; how many were sent."""
    sent = 0
    for i in range(0, len(users), BULK_MAX):
        chunk = list(users[i : i + BULK_MAX])
        await client.link_rich_menu_to_users(chunk, rich_menu_id)
        sent += len(chunk)
    return sent
