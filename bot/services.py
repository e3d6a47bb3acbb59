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
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.content.replies import Replies
from bot.dialogue.router import Dispatcher, Router
from bot.dialogue.state import DialogueStore, MemoryDialogueStore, RedisDialogueStore
from bot.kb.loader import Knowledge
from bot.kb.store import KnowledgeStore
from bot.kb.sync import KnowledgeSync, PublishOutcome
from bot.line.client import LineClient, RetryPolicy
from bot.nlu import IntentEngine, IntentFileError, build_engine
from bot.queue.base import EventQueue
from bot.queue.local_queue import LocalQueue
from bot.queue.redis_queue import RedisQueue, connect
from bot.settings import Settings
from bot.storage.db import Database

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
    return [importlib.import_module(name).router for name in modules]


@dataclass
class Services:
    """Shared parts every event handler and endpoint may use."""

    settings: Settings
    db: Database
    queue: EventQueue
    dialogue: DialogueStore
    kb: KnowledgeStore
    nlu: IntentEngine
    dispatcher: Dispatcher
    sync: KnowledgeSync
    redis: aioredis.Redis | None = None
    line: LineClient | None = None

    @property
    def knowledge(self) -> Knowledge:
        """The knowledge snapshot being served right now (swapped whole on reload)."""
        return self.kb.current

    @property
    def replies(self) -> Replies:
        """Reply texts of the current snapshot."""
        return self.kb.current.replies

    @classmethod
    def build(cls, settings: Settings) -> Services:
        """Create (not yet connect) every part; nothing here does network I/O."""
        db = Database(settings.sqlalchemy_url, pool_size=max(10, settings.worker_concurrency + 4))
        redis_client = connect(settings.redis_url) if settings.redis_url else None
        queue: EventQueue
        dialogue: DialogueStore
        if redis_client is not None:
            queue = RedisQueue(
                redis_client,
                settings.redis_prefix,
                dedupe_seconds=settings.dedupe_seconds,
                max_attempts=settings.event_max_attempts,
                retry_seconds=settings.event_retry_seconds,
                lock_seconds=settings.event_lock_seconds,
                handler_timeout=settings.handler_timeout_seconds,
                concurrency=settings.worker_concurrency,
            )
            dialogue = RedisDialogueStore(redis_client, settings.redis_prefix)
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
            nlu=build_engine(settings.intents_dir, kb.current, settings.data_dir / "nlu-cache"),
            dispatcher=Dispatcher(load_routers()),
            sync=KnowledgeSync(
                kb, db, redis_client, settings.redis_prefix, settings.kb_poll_seconds
            ),
            redis=redis_client,
        )
        kb.on_change(services.rebuild_nlu)
        return services

    async def rebuild_nlu(self, knowledge: Knowledge) -> None:
        """New knowledge, new synonyms and place names: rebuild the engine, then swap it whole.

        The intent files are read again too; if they are broken now, the engine being served
        stays (the problems are logged), exactly like a refused knowledge edit.
        """
        settings = self.settings
        # A published version carries its own intent folder (unpacked beside its knowledge).
        intents_dir = knowledge.folders[1] if len(knowledge.folders) > 1 else settings.intents_dir
        try:
            engine = await asyncio.to_thread(
                build_engine, intents_dir, knowledge, settings.data_dir / "nlu-cache"
            )
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
            st = self.settings
            self.line = LineClient(
                st.line_api_base_url,
                st.access_token,
                RetryPolicy(
                    attempts=st.line_max_attempts,
                    timeout=st.line_timeout_seconds,
                    backoff=st.line_backoff_seconds,
                ),
            )
        return self.line

    async def close(self) -> None:
        """Close network clients and the database pool."""
        if self.line is not None:
            await self.line.close()
        await self.queue.close()
        await self.db.close()
