"""Event queue for the embedded mode (no Redis): a database table worked in-process.

``bot serve`` on a laptop keeps its events in the ``local_queue`` table of
the SQLite file, so a restart loses nothing; the same table lets
``bot events replay`` (a separate process) hand an event back to the
running server, which polls for such rows every second. Ordering, per-chat
exclusivity, retries and dead letters follow ``bot.queue.base``'s rules, with an
``asyncio`` task per busy chat instead of Redis locks.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from sqlalchemy import delete, func, select, update

from bot.queue.base import DeadLetterSink, Process, QueuedEvent, QueueUnavailable, attempt, describe
from bot.storage.db import Database, LocalQueueItem, SeenEvent

log = logging.getLogger(__name__)


def _fresh_item(event: dict[str, Any]) -> LocalQueueItem:
    """The queue row of an event not tried yet, due now."""
    event_id, chat, ts = describe(event)
    return LocalQueueItem(
        webhook_event_id=event_id,
        chat_id=chat,
        event_ts=ts,
        payload=event,
        attempts=0,
        available_at=0.0,
    )


def _forget(active: dict[str, asyncio.Task[None]], chat: str) -> Any:
    """A done-callback that drops a chat's finished drain task."""

    def done(_task: asyncio.Task[None]) -> None:
        active.pop(chat, None)

    return done


class LocalQueue:
    """Single-process durable queue on the bot's own database."""

    def __init__(
        self,
        db: Database,
        *,
        dedupe_seconds: int = 86_400,
        max_attempts: int = 5,
        retry_seconds: float = 10.0,
        handler_timeout: float = 25.0,
        concurrency: int = 32,
        poll_seconds: float = 1.0,
    ) -> None:
        self.db = db
        self.dedupe_seconds = dedupe_seconds
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds
        self.handler_timeout = handler_timeout
        self.concurrency = concurrency
        self.poll_seconds = poll_seconds
        self._wake = asyncio.Event()
        self._write = asyncio.Lock()
        self._last_prune = 0.0

    async def enqueue(self, events: list[dict[str, Any]]) -> int:
        """Insert new events and their de-duplication markers in one transaction."""
        now = time.time()
        added = 0
        try:
            async with self._write, self.db.session() as s, s.begin():
                ids = [describe(e)[0] for e in events]
                seen_rows = await s.execute(
                    select(SeenEvent.webhook_event_id).where(
                        SeenEvent.webhook_event_id.in_(ids),
                        SeenEvent.seen_at > now - self.dedupe_seconds,
                    )
                )
                seen = set(seen_rows.scalars())
                for event in events:
                    item = _fresh_item(event)
                    if item.webhook_event_id in seen:
                        continue
                    seen.add(item.webhook_event_id)
                    await s.merge(SeenEvent(webhook_event_id=item.webhook_event_id, seen_at=now))
                    s.add(item)
                    added += 1
                if now - self._last_prune > 3600:
                    self._last_prune = now
                    await s.execute(
                        delete(SeenEvent).where(SeenEvent.seen_at < now - self.dedupe_seconds)
                    )
        except Exception as exc:
            raise QueueUnavailable(
                f"database did not take the events: {type(exc).__name__}"
            ) from exc
        if added:
            self._wake.set()
        return added

    async def requeue(self, payload: dict[str, Any]) -> None:
        """Put a dead-lettered event back with a fresh attempt count."""
        async with self.db.session() as s, s.begin():
            await s.merge(_fresh_item(payload))
        self._wake.set()

    async def forget_chat(self, chat_id: str) -> int:
        """Delete a chat's pending events (PDPA erasure)."""
        async with self.db.session() as s, s.begin():
            result = await s.execute(
                delete(LocalQueueItem).where(LocalQueueItem.chat_id == chat_id)
            )
        return int(getattr(result, "rowcount", 0) or 0)

    async def pending(self) -> int:
        """Events stored and not yet finished."""
        async with self.db.session() as s:
            return int(await s.scalar(select(func.count()).select_from(LocalQueueItem)) or 0)

    async def ping(self) -> None:
        """The queue lives in the database."""
        await self.db.ping()

    async def close(self) -> None:
        """Nothing of its own to release (the database is closed by its owner)."""

    async def run(self, process: Process, dead: DeadLetterSink, stop: asyncio.Event) -> None:
        """Start a drain task for each chat with due events, until ``stop``."""
        active: dict[str, asyncio.Task[None]] = {}
        slots = asyncio.Semaphore(self.concurrency)
        while not stop.is_set():
            self._wake.clear()
            try:
                async with self.db.session() as s:
                    rows = await s.execute(
                        select(LocalQueueItem.chat_id)
                        .where(LocalQueueItem.available_at <= time.time())
                        .group_by(LocalQueueItem.chat_id)
                        .limit(1000)
                    )
                    chats = list(rows.scalars())
            except Exception:
                log.exception("local queue could not read the database")
                chats = []
            for chat in chats:
                if chat not in active:
                    task = asyncio.create_task(self._drain(chat, process, dead, slots))
                    active[chat] = task
                    task.add_done_callback(_forget(active, chat))
            waiters = [asyncio.create_task(self._wake.wait()), asyncio.create_task(stop.wait())]
            await asyncio.wait(
                waiters, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED
            )
            for w in waiters:
                w.cancel()
        if active:
            await asyncio.wait(list(active.values()), timeout=self.handler_timeout + 5)

    async def _drain(
        self, chat: str, process: Process, dead: DeadLetterSink, slots: asyncio.Semaphore
    ) -> None:
        async with slots:
            try:
                while True:
                    async with self.db.session() as s, s.begin():
                        head = await s.scalar(
                            select(LocalQueueItem)
                            .where(LocalQueueItem.chat_id == chat)
                            .order_by(LocalQueueItem.event_ts, LocalQueueItem.webhook_event_id)
                            .limit(1)
                        )
                        if head is None or head.available_at > time.time():
                            return  # empty, or the head waits for its retry (order is kept)
                        head.attempts += 1
                        item = QueuedEvent(
                            head.webhook_event_id, chat, head.event_ts, head.payload, head.attempts
                        )
                    done = await attempt(
                        item, process, dead, self.max_attempts, self.handler_timeout
                    )
                    async with self.db.session() as s, s.begin():
                        if done:
                            await s.execute(
                                delete(LocalQueueItem).where(
                                    LocalQueueItem.webhook_event_id == item.event_id
                                )
                            )
                        else:
                            await s.execute(
                                update(LocalQueueItem)
                                .where(LocalQueueItem.webhook_event_id == item.event_id)
                                .values(available_at=time.time() + self.retry_seconds)
                            )
                    if not done:
                        return
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("local queue failed while draining a chat")
