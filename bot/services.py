"""The running bot's parts, built once per process from ``Settings``.

This module only builds and holds parts; the loops a process runs with them (the queue
worker, push notices, housekeeping, following knowledge reloads) are in ``bot.workers``.

Embedded mode (no ``REDIS_URL``): SQLite (or any DATABASE_URL), the
database-backed local queue and in-memory dialogue state. Shared mode:
Redis for the queue, de-duplication, locks and dialogue state; any number
of web and worker processes build the same ``Services`` and cooperate.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import redis.asyncio as aioredis

from bot.content.replies import Replies
from bot.dialogue.state import DialogueStore, MemoryDialogueStore, RedisDialogueStore
from bot.kb.loader import Knowledge
from bot.kb.store import KnowledgeStore
from bot.kb.sync import KnowledgeSync, PublishOutcome
from bot.queue.base import EventQueue
from bot.queue.local_queue import LocalQueue
from bot.queue.redis_queue import RedisQueue, connect
from bot.settings import Settings
from bot.storage.db import Database

if TYPE_CHECKING:  # imported where first needed: a web process in Redis mode never needs them
    from bot.dialogue.router import Dispatcher, Router
    from bot.line.client import LineClient
    from bot.nlu import IntentEngine

log = logging.getLogger(__name__)

#: Handler modules, in registration order: what the bot can do is visible here.
HANDLER_MODULES = (
    "handlers.greeting",
    "handlers.help",
    "handlers.assessment_dialogue",
    "handlers.courses",
    "handlers.export",
    "handlers.centres",
    "handlers.subscriptions",
    "handlers.privacy",
    "handlers.staff",
    "handlers.guides",
    "handlers.chat_events",
    "handlers.fallback",
)


def load_routers(modules: tuple[str, ...] = HANDLER_MODULES) -> list[Router]:
    """Import the listed handler modules and collect their routers."""
    routers: list[Router] = [importlib.import_module(name).router for name in modules]
    return routers


def _intents_dir(settings: Settings, knowledge: Knowledge) -> Path:
    """A published version carries its own intent folder (unpacked beside its knowledge)."""
    return knowledge.folders[1] if len(knowledge.folders) > 1 else settings.intents_dir


def _build_engine(settings: Settings, knowledge: Knowledge) -> IntentEngine:
    from bot.nlu import build_engine

    return build_engine(
        _intents_dir(settings, knowledge), knowledge, settings.data_dir / "nlu-cache"
    )


@dataclass
class Services:
    """Shared parts every event handler and endpoint may use.

    The intent engine and the handlers' dispatcher are built on first use when ``build``
    was told ``lazy=True`` (``bot serve`` in Redis mode: its webhook never classifies a
    message, and they are most of a process's memory); otherwise at once.
    """

    settings: Settings
    db: Database
    queue: EventQueue
    dialogue: DialogueStore
    kb: KnowledgeStore
    sync: KnowledgeSync
    redis: aioredis.Redis | None = None
    line: LineClient | None = None
    _nlu: IntentEngine | None = field(default=None, repr=False)
    _dispatcher: Dispatcher | None = field(default=None, repr=False)

    @property
    def nlu(self) -> IntentEngine:
        """The intent engine of the current knowledge (built here on first use if lazy)."""
        if self._nlu is None:
            self._nlu = _build_engine(self.settings, self.kb.current)
        return self._nlu

    @nlu.setter
    def nlu(self, engine: IntentEngine) -> None:
        self._nlu = engine

    @property
    def dispatcher(self) -> Dispatcher:
        """The handlers' dispatcher (importing the handler modules on first use if lazy)."""
        if self._dispatcher is None:
            from bot.dialogue.router import Dispatcher

            self._dispatcher = Dispatcher(load_routers())
        return self._dispatcher

    async def ready(self) -> None:
        """Build the intent engine and the dispatcher off the event loop if this (lazy)
        process has not yet: a console page's first use must not stall the webhooks
        (0.3-0.4 s from the cache, seconds when it trains)."""
        if self._nlu is None:
            engine = await asyncio.to_thread(_build_engine, self.settings, self.kb.current)
            if self._nlu is None:
                self._nlu = engine
        if self._dispatcher is None:
            await asyncio.to_thread(lambda: self.dispatcher)

    @property
    def knowledge(self) -> Knowledge:
        """The knowledge snapshot being served right now (swapped whole on reload)."""
        return self.kb.current

    @property
    def replies(self) -> Replies:
        """Reply texts of the current snapshot."""
        return self.kb.current.replies

    @classmethod
    def build(cls, settings: Settings, *, lazy: bool = False) -> Services:
        """Create (not yet connect) every part; nothing here does network I/O.

        ``lazy``: leave the intent engine and the dispatcher to their first use.
        """
        db = Database(settings.sqlalchemy_url, pool_size=max(10, settings.worker_concurrency + 4))
        redis_client = connect(settings.redis_url) if settings.redis_url else None
        queue: EventQueue
        dialogue: DialogueStore
        if redis_client is not None:
            redis_dialogue = RedisDialogueStore(redis_client, settings.redis_prefix)
            dialogue = redis_dialogue
            queue = RedisQueue(
                redis_client,
                settings.redis_prefix,
                dedupe_seconds=settings.dedupe_seconds,
                max_attempts=settings.event_max_attempts,
                retry_seconds=settings.event_retry_seconds,
                lock_seconds=settings.event_lock_seconds,
                handler_timeout=settings.handler_timeout_seconds,
                concurrency=settings.worker_concurrency,
                dialogue_keys=redis_dialogue.keys,
            )
        else:
            queue = LocalQueue(
                db,
                dedupe_seconds=settings.dedupe_seconds,
                max_attempts=settings.event_max_attempts,
                retry_seconds=settings.event_retry_seconds,
                handler_timeout=settings.handler_timeout_seconds,
                concurrency=settings.worker_concurrency,
            )
            dialogue = MemoryDialogueStore()
        kb = KnowledgeStore(
            settings.knowledge_dir,
            also=(settings.intents_dir,),
            cache_dir=settings.data_dir / "kb-versions",
        )
        kb.load_initial()
        services = cls(
            settings=settings,
            db=db,
            queue=queue,
            dialogue=dialogue,
            kb=kb,
            sync=KnowledgeSync(
                kb, db, redis_client, settings.redis_prefix, settings.kb_poll_seconds
            ),
            redis=redis_client,
        )
        if not lazy:
            services.nlu  # noqa: B018  (built now, not on the first event)
            services.dispatcher  # noqa: B018
        kb.on_change(services.rebuild_nlu)
        return services

    async def rebuild_nlu(self, knowledge: Knowledge) -> None:
        """New knowledge, new synonyms and place names: rebuild the engine, then swap it whole.

        The intent files are read again too; if they are broken now, the engine being served
        stays (the problems are logged), exactly like a refused knowledge edit.
        """
        from bot.nlu import IntentFileError

        if self._nlu is None:
            return  # never used here: the first use builds it from the knowledge then served
        try:
            engine = await asyncio.to_thread(_build_engine, self.settings, knowledge)
        except IntentFileError as exc:
            log.error(
                "intent files refused; still serving the previous engine",
                extra={"problems": [str(p) for p in exc.problems[:20]]},
            )
            return
        self.nlu = engine

    async def reload_knowledge(self, actor: str = "reload") -> PublishOutcome:
        """Publish this process's files (after checking them): every process follows."""
        return await self.sync.publish_folder(actor)

    async def start_knowledge(self) -> None:
        """Serve the published version (or publish this folder first; ``bot.kb.sync``)."""
        try:
            await self.sync.start(self.settings.kb_publish_on_start_enabled)
        except Exception:
            log.exception(
                "published knowledge unavailable (is the database upgraded? `bot db upgrade`); "
                "serving this process's own files"
            )

    def line_client(self) -> LineClient:
        """The LINE API client (created on first use, closed with the services)."""
        if self.line is None:
            from bot.line.calls import RetryPolicy
            from bot.line.client import LineClient

            st = self.settings
            self.line = LineClient(
                st.line_api_base_url,
                st.access_token,
                RetryPolicy.from_settings(st),
            )
        return self.line

    async def close(self) -> None:
        """Close network clients and the database pool."""
        if self.line is not None:
            await self.line.close()
        await self.queue.close()
        await self.db.close()
