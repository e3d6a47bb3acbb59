"""Reply texts from ``knowledge/replies.yaml``: every sentence the bot says.

Handlers refer to replies by key (``<capability>.<moment>``) and pass named
placeholders; the Thai wording lives only in the file operators edit. A key
may hold one text or a list of variants (one is picked at random, so the bot
does not sound like a machine). Missing keys or placeholders are errors that
name the file and key, never a silent English fallback. The file is read and
checked by ``bot.kb.loader`` with the rest of the knowledge.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass
from typing import Any

#: The first part of every reply key (the top-level groups of replies.yaml and replies/*.yaml).
#: Declared here, in code, so that ``bot kb validate`` recognises a key wherever the code names
#: it, even when an operator has deleted the whole group from the files.
REPLY_NAMESPACES = frozenset(
    {
        "greeting",
        "chat_events",
        "fallback",
        "errors",
        "guides",
        "menu",
        "assessment",
        "cards",
        "centres",
        "courses",
        "export",
        "help",
        "notices",
        "privacy",
        "staff",
        "subscribe",
        "unsubscribe",
    }
)


class ContentError(ValueError):
    """A knowledge file is unusable; the message names the file, line and field."""


@dataclass(frozen=True)
class Replies:
    """An immutable snapshot of the reply texts."""

    texts: dict[str, tuple[str, ...]]
    source: str = "knowledge/replies.yaml"

    def __contains__(self, key: str) -> bool:
        return key in self.texts

    def text(self, key: str, rng: random.Random | None = None, **params: Any) -> str:
        """The reply for ``key`` with its placeholders filled."""
        try:
            variants = self.texts[key]
        except KeyError:
            raise ContentError(f"{self.source}: {key}: no such reply key") from None
        template = (rng or random).choice(variants) if len(variants) > 1 else variants[0]
        try:
            return template.format_map(params)
        except KeyError as exc:
            raise ContentError(
                f"{self.source}: {key}: placeholder {{{exc.args[0]}}} was not supplied"
            ) from None

    def placeholders(self, key: str) -> set[str]:
        """Names used in ``{...}`` by any variant of ``key`` (for validation)."""
        names: set[str] = set()
        for variant in self.texts.get(key, ()):
            names |= {f for _, f, _, _ in string.Formatter().parse(variant) if f}
        return names
