"""Counted links to official pages: the funnel's last step ("clicked the official page").

A course or programme card's official-page button opens the agency's site directly, so the
bot never learns whether anyone followed it. With ``PUBLIC_BASE_URL`` set, a card built in
a one-to-one turn links to ``{PUBLIC_BASE_URL}/go/{token}`` instead; that route records an
``official_clicked`` moment for the person and redirects to the page.

The token names the person by the database's own row number (``users.id``), never the
LINE user id, plus the entry id and an HMAC over both and the LINE user id: a forged,
altered or replayed-after-erasure token (the row is gone, or belongs to someone else) still
redirects but records nothing. The target is always the knowledge's own URL for that entry,
never one taken from the request (no open redirect).

Cards built outside such a turn (notices to many people, the console's preview) keep the
direct link: the context below is only set by the pipeline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Final

from bot.kb.loader import Knowledge
from bot.settings import Settings

#: Route of the redirect (``bot.web.go``).
PATH: Final = "/go"
_MAC_BYTES: Final = 12


@dataclass(frozen=True)
class LinkContext:
    """Who the cards of this turn are for, and where the redirect lives."""

    base_url: str
    key: bytes
    user_pk: int
    user_id: str


#: Set by the pipeline for a citizen's one-to-one turn when ``PUBLIC_BASE_URL`` is set.
current: ContextVar[LinkContext | None] = ContextVar("insights_link", default=None)


def link_key(settings: Settings) -> bytes:
    """The key of the tokens: from CONSOLE_SECRET, else the channel secret (the same in
    every process of a deployment, so any process can check a token)."""
    secret = settings.console_secret
    base = secret.get_secret_value() if secret is not None else settings.channel_secret
    return hmac.new(base.encode(), b"insights-official-link", hashlib.sha256).digest()


def _mac(key: bytes, user_pk: int, user_id: str, entry_id: str) -> str:
    digest = hmac.new(key, f"{user_pk}|{user_id}|{entry_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:_MAC_BYTES]).decode().rstrip("=")


def official(url: str, entry_id: str) -> str:
    """The link for an entry's official page: counted when this turn has a link context."""
    ctx = current.get()
    if ctx is None or not entry_id or "." in entry_id or "/" in entry_id:
        return url
    token = f"{ctx.user_pk}.{entry_id}.{_mac(ctx.key, ctx.user_pk, ctx.user_id, entry_id)}"
    return f"{ctx.base_url.rstrip('/')}{PATH}/{token}"


@dataclass(frozen=True)
class Token:
    """A token read back: the person's row number, the entry and the MAC to check."""

    user_pk: int
    entry_id: str
    mac: str

    def valid_for(self, key: bytes, user_id: str) -> bool:
        """Was it made for this person (the LINE user id of row ``user_pk`` now)?"""
        return hmac.compare_digest(self.mac, _mac(key, self.user_pk, user_id, self.entry_id))


def parse(token: str) -> Token | None:
    """A token's parts, or None when it is not one of ours."""
    parts = token.split(".")
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1] or len(parts[0]) > 18:
        return None
    return Token(int(parts[0]), parts[1], parts[2])


def target(knowledge: Knowledge, entry_id: str) -> str | None:
    """The official page of a course or programme, from the knowledge (None: unknown)."""
    for course in knowledge.courses:
        if course.id == entry_id:
            return str(course.url) if course.url else None
    for programme in knowledge.programmes:
        if programme.id == entry_id:
            return str(programme.url) if programme.url else None
    return None


__all__ = ["PATH", "LinkContext", "Token", "current", "link_key", "official", "parse", "target"]
