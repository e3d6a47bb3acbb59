"""What a LINE call can end in, how hard to try one, and what the pipeline needs from a
channel to the user: without the LINE SDK.

Why a module of its own: the console pages, the notice runner and the pipeline name these
errors and this policy, but only ``bot.line.client`` calls LINE, and it brings aiohttp (about
10 MB); so ``bot serve`` in Redis mode (webhooks and the console, no worker) loads aiohttp only
when a console page first calls LINE (the dashboard's quota, a notice run, the simulator). The
LINE SDK itself (``linebot.v3``, about 34 MB) is loaded only to deploy rich menus
(``bot richmenu``, through ``bot.line.client``).
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.line.messages import Message

if TYPE_CHECKING:
    from bot.settings import Settings


class LineError(Exception):
    """LINE did not accept a call."""

    def __init__(self, kind: str, status: int | None, detail: str = "") -> None:
        super().__init__(f"LINE {kind} failed: status={status} {detail}".strip())
        self.kind = kind
        self.status = status
        self.detail = detail


class PermanentLineError(LineError):
    """A 4xx other than 429: retrying the same request cannot help."""


class InvalidReplyToken(PermanentLineError):
    """The reply token was used already or has expired: fall back to push."""


class TransientLineError(LineError):
    """5xx, 429 or timeouts persisted through every attempt: try again later.

    ``may_have_reached``: False only when no attempt can have reached LINE (every one was
    refused before a request went out), so the call surely had no effect."""

    may_have_reached: bool = True


class Messenger(Protocol):
    """What the pipeline needs from a channel to the user (LINE, or the terminal chat)."""

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None: ...

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool: ...

    async def show_loading(self, chat_id: str, seconds: int = 20) -> None: ...

    async def profile(self, user_id: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one LINE call before giving up for now."""

    attempts: int = 4
    timeout: float = 5.0
    backoff: float = 0.5
    max_backoff: float = 8.0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy the settings ask for (``LINE_MAX_ATTEMPTS``, ``LINE_TIMEOUT_SECONDS``,
        ``LINE_BACKOFF_SECONDS``): one place for every LINE client the bot builds."""
        return cls(
            attempts=settings.line_max_attempts,
            timeout=settings.line_timeout_seconds,
            backoff=settings.line_backoff_seconds,
        )

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Exponential backoff with jitter; a server's Retry-After wins."""
        if retry_after is not None:
            return min(retry_after, self.max_backoff * 4)
        base: float = min(self.backoff * (2**attempt), self.max_backoff)
        return base * (0.75 + random.random() * 0.5)
