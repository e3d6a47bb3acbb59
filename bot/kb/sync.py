"""Every process of a deployment serves the one published knowledge version.

Publishing (``bot kb publish``, ``POST /admin/reload``, the development file watcher, the
console) validates a knowledge set, stores it whole in the database
(``bot.storage.kb_versions``) and announces its digest on Redis. Every process follows:

- it listens on ``P:kb:reload`` and polls the database's live version every
  ``KB_POLL_SECONDS``, so a process that missed an announcement (Redis restarting, a
  network cut) catches up on its next poll; without Redis (the embedded default) the poll
  alone does it;
- it loads the announced version from the database, not from its own disk, so machines
  whose files differ still serve the same thing;
- a version it cannot load leaves it on its current one; the problem is kept, logged and
  reported in ``P:kb:procs`` (``bot kb status``, ``GET /admin/kb``).

At start-up a process serves the live version. Its own folder is published only when
nothing is live yet, or (``KB_PUBLISH_ON_START``, the embedded default) when those files
were never published before: an edit made while the bot was stopped goes live, while a
rollback stays in force until the files change again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bot.kb import snapshots
from bot.kb.loader import Knowledge, folder_version
from bot.kb.sources import Problem
from bot.kb.store import KnowledgeStore, ReloadOutcome
from bot.storage import kb_versions
from bot.storage.db import Database

log = logging.getLogger(__name__)


class FilesChanged(RuntimeError):
    """The files changed between validating and storing them: publish again."""


@dataclass
class PublishOutcome:
    """What a publish did, for the CLI, the admin endpoint and the console."""

    ok: bool
    version: str | None
    number: int | None = None
    changed: bool = False
    changes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def folder_content(knowledge: Knowledge) -> dict[str, bytes]:
    """The files a snapshot was loaded from, checked to be exactly what was validated."""
    folder, *also = knowledge.folders
    content = snapshots.read_folders(folder, also[0] if also else folder / ".none")
    if folder_version(folder, *also) != knowledge.version:
        raise FilesChanged("the files changed while they were being published; publish again")
    return content


class Announcer:
    """The Redis side: the announced version, the reload channel, the processes' reports."""

    def __init__(self, redis: aioredis.Redis, prefix: str) -> None:
        self.redis = redis
        self.version_key = f"{prefix}:kb:version"
        self.channel = f"{prefix}:kb:reload"
        self.procs_key = f"{prefix}:kb:procs"

    async def announce(self, version: str) -> None:
        """Set the version key and tell every listener."""
        await self.redis.set(self.version_key, version)
        await self.redis.publish(self.channel, version)

    async def report(self, process_id: str, status: dict[str, Any]) -> None:
        """Record one process's state (the hash expires an hour after the last report)."""
        await self.redis.hset(self.procs_key, process_id, json.dumps(status, ensure_ascii=False))
        await self.redis.expire(self.procs_key, 3600)

    async def processes(self) -> list[dict[str, Any]]:
        """Every process's last report, newest first."""
        raw = await self.redis.hgetall(self.procs_key)
        out = [json.loads(v) for v in raw.values()]
        return sorted(out, key=lambda s: s.get("reported_at", 0), reverse=True)


class KnowledgeSync:
    """Publishes this process's knowledge and follows what others publish."""

    def __init__(
        self,
        store: KnowledgeStore,
        db: Database,
        redis: aioredis.Redis | None,
        prefix: str,
        poll_seconds: float = 5.0,
    ) -> None:
        self.store = store
        self.db = db
        self.redis = redis
        self.announcer = Announcer(redis, prefix) if redis is not None else None
        self.poll_seconds = poll_seconds
        #: The live version this process could not load, tried again only when it changes.
        self._refused: str | None = None
        #: Version numbers by digest, as learnt from the database.
        self._numbers: dict[str, int] = {}

    # --- publishing -------------------------------------------------------------------

    async def publish_folder(self, actor: str, note: str | None = None) -> PublishOutcome:
        """Validate this process's folder; publish it and serve it when it is good."""
        stored: list[kb_versions.Published] = []

        async def store_it(knowledge: Knowledge) -> None:
            content = await asyncio.to_thread(folder_content, knowledge)
            stored.append(
                await kb_versions.publish(
                    self.db, knowledge.version, content, _counts(knowledge), actor, note
                )
            )

        outcome = await self.store.reload(before_swap=store_it)
        return await self._finish(outcome, stored)

    async def publish_content(
        self, content: dict[str, bytes], actor: str, note: str | None = None
    ) -> PublishOutcome:
        """Validate an edited set of files (knowledge/..., intents/...); publish it if good."""
        stored: list[kb_versions.Published] = []

        async def store_it(knowledge: Knowledge) -> None:
            stored.append(
                await kb_versions.publish(
                    self.db, knowledge.version, content, _counts(knowledge), actor, note
                )
            )

        outcome = await self.store.load_content(content, before_swap=store_it)
        return await self._finish(outcome, stored)

    async def rollback(self, number: int, actor: str, note: str | None = None) -> PublishOutcome:
        """Make an earlier version live here and everywhere."""
        published = await kb_versions.rollback(self.db, number, actor, note)
        outcome = await self.follow(published.digest, number)
        return await self._finish(outcome, [published])

    async def _finish(
        self, outcome: ReloadOutcome, stored: list[kb_versions.Published]
    ) -> PublishOutcome:
        if not outcome.ok or not stored:
            await self.report()
            return PublishOutcome(False, outcome.version, problems=outcome.problems)
        published = stored[0]
        self._numbers[published.digest] = published.number
        self._refused = None
        await asyncio.to_thread(self.store.prune_cache)
        await self.announce(published.digest)
        return PublishOutcome(
            True, published.digest, published.number, published.changed, published.changes
        )

    async def announce(self, version: str) -> None:
        """Tell the other processes now instead of at their next poll (needs Redis)."""
        if self.announcer is None:
            return
        try:
            await self.announcer.announce(version)
        except (RedisError, OSError) as exc:
            log.warning(
                "knowledge announcement failed; processes catch up at their next poll",
                extra={"error": type(exc).__name__},
            )
        await self.report()

    # --- following --------------------------------------------------------------------

    async def start(self, publish_local: bool) -> None:
        """At start-up: serve the live version, or publish this folder (see the module doc)."""
        live = await kb_versions.live(self.db)
        current = self.store.current
        if live is None or (
            publish_local
            and live.digest != current.version
            and not await kb_versions.known(self.db, current.version)
        ):
            outcome = await self._publish_loaded(current, "start-up")
            log.info(
                "knowledge published from this process's files",
                extra={"version": outcome.version, "number": outcome.number},
            )
            return
        await self.follow(live.digest, live.number)

    async def _publish_loaded(self, knowledge: Knowledge, actor: str) -> PublishOutcome:
        content = await asyncio.to_thread(folder_content, knowledge)
        published = await kb_versions.publish(
            self.db, knowledge.version, content, _counts(knowledge), actor
        )
        self._numbers[published.digest] = published.number
        await self.announce(published.digest)
        return PublishOutcome(
            True, published.digest, published.number, published.changed, published.changes
        )

    async def served_content(self) -> dict[str, bytes]:
        """The files of the version this process serves (what an edit starts from)."""
        found = await kb_versions.files(self.db, self.store.current.version)
        if found is not None:
            return found
        return await asyncio.to_thread(folder_content, self.store.current)

    async def follow(self, digest: str, number: int | None = None) -> ReloadOutcome:
        """Serve the published version ``digest`` (loaded from the database)."""
        if number is not None:
            self._numbers[digest] = number
        if digest == self.store.current.version:
            if self._refused is not None:  # the refused version is no longer live
                self._refused = None
                self.store.problems = []
                await self.report()
            return ReloadOutcome(True, digest, False)
        if digest == self._refused:
            return ReloadOutcome(False, self.store.current.version, False, self.store.problems)
        content = await kb_versions.files(self.db, digest)
        if content is None:
            problem = Problem(f"published version {digest}", 0, "version", "not in the database")
            self.store.problems = [problem]
            outcome = ReloadOutcome(False, self.store.current.version, False, [problem])
        else:
            outcome = await self.store.adopt(digest, content)
        if outcome.ok:
            self._refused = None
            await asyncio.to_thread(self.store.prune_cache)
        else:
            self._refused = digest
            log.error(
                "published knowledge could not be loaded here; still serving the previous one",
                extra={"wanted": digest, "serving": self.store.current.version},
            )
        await self.report()
        return outcome

    async def poll(self) -> None:
        """Follow the database's live version (the truth, whatever Redis said)."""
        live = await kb_versions.live(self.db)
        if live is not None:
            await self.follow(live.digest, live.number)

    async def run(self, stop: asyncio.Event) -> None:
        """Listen for announcements and poll the database until ``stop``."""
        pubsub: Any = None
        next_poll = 0.0
        while not stop.is_set():
            try:
                if self.announcer is not None and pubsub is None:
                    pubsub = self.announcer.redis.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self.announcer.channel)
                    await self.report()
                if pubsub is not None:
                    message = await pubsub.get_message(timeout=1.0)
                    if message and message.get("type") == "message":
                        await self.poll()
                else:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stop.wait(), min(1.0, self.poll_seconds))
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_seconds
                    await self.poll()
                    await self.report()
            except (RedisError, OSError, SQLAlchemyError) as exc:
                log.warning(
                    "knowledge follower: Redis or the database unreachable",
                    extra={"error": type(exc).__name__, "detail": str(exc)[:200]},
                )
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    @property
    def live_number(self) -> int | None:
        """The number of the version this process serves (None if never published)."""
        return self._numbers.get(self.store.current.version)

    # --- reports ----------------------------------------------------------------------

    async def report(self) -> None:
        """Record this process's state for ``bot kb status`` (entries expire with the hash)."""
        if self.announcer is None:
            return
        status = self.store.status() | {"number": self.live_number, "reported_at": time.time()}
        with contextlib.suppress(RedisError, OSError):
            await self.announcer.report(self.store.process_id, status)

    async def processes(self) -> list[dict[str, Any]]:
        """Every process's last report, newest first (only this one without Redis)."""
        if self.announcer is None:
            return [self.store.status() | {"number": self.live_number}]
        return await self.announcer.processes()


def _counts(knowledge: Knowledge) -> dict[str, Any]:
    return {k: v for k, v in knowledge.counts.items() if k != "load_ms"}
