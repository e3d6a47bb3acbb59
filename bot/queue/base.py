"""The durable event queue both backends share the rules of.

Guarantees, whichever backend runs:

* ``enqueue`` de-duplicates on ``webhookEventId`` and stores the event
  durably before returning; if it cannot, it raises ``QueueUnavailable`` and
  the webhook answers 5xx so LINE redelivers instead of losing the event.
* Events are delivered at least once and removed only after ``process``
  returned (that is, after the reply was sent).
* One chat's events are processed one at a time, in ``timestamp`` order;
  different chats in parallel.
* Every try counts (a crash mid-event too); after ``max_attempts`` the event
  goes to the dead-letter list, from which an operator can replay it.

Backends: ``bot.queue.redis_queue`` (Redis streams with a consumer group, shared by
any number of processes) and ``bot.queue.local_queue`` (the embedded mode: a table
in the SQLite/PostgreSQL database, worked inside ``bot serve``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from bot.line.events import source_key
from bot.logs import user_ref

if TYPE_CHECKING:
    from bot.dialogue.state import Prefetched

log = logging.getLogger(__name__)


class QueueUnavailable(RuntimeError):
    """The queue could not store an event durably (answer 5xx so LINE retries)."""


@dataclass(frozen=True)
class QueuedEvent:
    """One event as a worker receives it."""

    event_id: str
    chat_id: str
    timestamp_ms: int
    payload: dict[str, Any]
    attempts: int
    #: The chat's dialogue state as stored (raw state, last-step marker), read by the queue
    #: in the round trip that handed out the event (``RedisQueue``); None: not read.
    dialogue: Prefetched | None = None


Process = Callable[[QueuedEvent], Awaitable[None]]
DeadLetterSink = Callable[[QueuedEvent, str], Awaitable[None]]


class EventQueue(Protocol):
    """What the webhook, the workers and the CLI need from a queue backend."""

    async def enqueue(self, events: list[dict[str, Any]]) -> int:
        """Store new events (duplicates skipped); returns how many were new."""
        ...

    async def requeue(self, payload: dict[str, Any]) -> None:
        """Put a dead-lettered event back, bypassing de-duplication."""
        ...

    async def run(self, process: Process, dead: DeadLetterSink, stop: asyncio.Event) -> None:
        """Work events until ``stop`` is set."""
        ...

    async def forget_chat(self, chat_id: str) -> int:
        """Drop a chat's queued events (the user asked to delete their data)."""
        ...

    async def pending(self) -> int:
        """Events stored and not yet finished (for health pages and tests)."""
        ...

    async def ping(self) -> None:
        """Raise if the queue's store is unreachable."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...


def describe(event: dict[str, Any]) -> tuple[str, str, int]:
    """The (event id, chat, timestamp) triple that orders and de-duplicates an event."""
    return str(event["webhookEventId"]), source_key(event), int(event["timestamp"])


async def attempt(
    item: QueuedEvent,
    process: Process,
    dead: DeadLetterSink,
    max_attempts: int,
    time_limit: float,
) -> bool:
    """Run one try of one event; True when it is finished (done or dead-lettered).

    ``item.attempts`` already counts this try (backends increment before
    calling, so a crash is counted too).
    """
    if item.attempts > max_attempts:
        await dead(item, "crashed or timed out on every attempt")
        return True
    try:
        await asyncio.wait_for(process(item), time_limit)
        return True
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning(
            "event failed",
            extra={
                "event_id": item.event_id,
                "chat": user_ref(item.chat_id),
                "attempt": item.attempts,
                "error": error,
            },
            exc_info=not isinstance(exc, TimeoutError),
        )
        if item.attempts >= max_attempts:
            await dead(item, error)
            return True
        return False
