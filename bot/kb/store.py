"""The live knowledge snapshot of one process, and how every process moves to a new one.

A process serves one immutable ``Knowledge`` at a time. ``reload()`` reads
the folder again; only a snapshot without problems replaces the current one,
so a broken edit never reaches users: its problems are kept (``status()``,
``GET /admin/kb``, ``bot kb status``) and logged.

With Redis, a successful reload is announced: the version goes to
``P:kb:version`` and a message to the ``P:kb:reload`` channel. Every process
listens (and also polls the key, in case a message was missed while it was
disconnected) and reloads from its own copy of the files. Each process
reports its state in the ``P:kb:procs`` hash so an operator sees them all.
In development a watcher reloads when a file's size or modification time
changes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from bot.kb.loader import Knowledge, LoadResult, load_knowledge
from bot.kb.sources import Problem

log = logging.getLogger(__name__)


def _signature(*folders: Path) -> tuple[tuple[str, int, int], ...]:
    """Cheap change detector: every file's path, size and modification time."""
    out: list[tuple[str, int, int]] = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and not path.name.startswith("."):
                st = path.stat()
                out.append((str(path), st.st_size, st.st_mtime_ns))
    return tuple(out)


@dataclass
class ReloadOutcome:
    """What one reload attempt did."""

    ok: bool
    version: str | None
    changed: bool
    problems: list[Problem] = field(default_factory=list)


class KnowledgeStore:
    """Holds the current snapshot; swaps it only for a valid one."""

    def __init__(
        self,
        folder: Path,
        loader: Callable[[Path], LoadResult] | None = None,
        also: tuple[Path, ...] = (),
    ) -> None:
        self.folder = folder
        #: Other watched folders (the intent phrases): part of the version, reloaded together.
        self.also = also
        self._loader = loader or (lambda f: load_knowledge(f, also=also))
        self._current: Knowledge | None = None
        self.problems: list[Problem] = []
        self.last_attempt: float | None = None
        self.last_error_at: float | None = None
        self._lock = asyncio.Lock()
        self._listeners: list[Callable[[Knowledge], Awaitable[None]]] = []
        self.process_id = f"{socket.gethostname()}-{os.getpid()}"

    @property
    def current(self) -> Knowledge:
        """The snapshot being served (``load_initial`` must have succeeded)."""
        if self._current is None:
            raise RuntimeError("knowledge not loaded")
        return self._current

    def load_initial(self) -> Knowledge:
        """First load at start-up; a broken folder here stops the process with the problems."""
        result = self._loader(self.folder)
        if result.knowledge is None:
            self.problems = result.problems
            raise KnowledgeError(result.problems)
        self._current = result.knowledge
        return result.knowledge

    def on_change(self, listener: Callable[[Knowledge], Awaitable[None]]) -> None:
        """Call ``listener`` after every swap (e.g. to announce new courses)."""
        self._listeners.append(listener)

    async def reload(self) -> ReloadOutcome:
        """Read the folder again; swap in the result only when it has no problems."""
        async with self._lock:
            self.last_attempt = time.time()
            result = await asyncio.to_thread(self._loader, self.folder)
            if result.knowledge is None:
                self.problems = result.problems
                self.last_error_at = self.last_attempt
                log.error(
                    "knowledge reload refused; still serving the previous version",
                    extra={
                        "version": self._current.version if self._current else None,
                        "problems": [str(p) for p in result.problems[:20]],
                        "problem_count": len(result.problems),
                    },
                )
                return ReloadOutcome(
                    False, self._current.version if self._current else None, False, result.problems
                )
            self.problems = []
            changed = self._current is None or result.knowledge.version != self._current.version
            self._current = result.knowledge
        if changed:
            log.info(
                "knowledge reloaded",
                extra={"version": result.knowledge.version, **result.knowledge.counts},
            )
            for listener in self._listeners:
                try:
                    await listener(result.knowledge)
                except Exception:
                    log.exception("knowledge change listener failed")
        return ReloadOutcome(True, result.knowledge.version, changed)

    def status(self) -> dict[str, Any]:
        """What operators see: the version served and the last refused edit, if any."""
        current = self._current
        return {
            "process": self.process_id,
            "version": current.version if current else None,
            "loaded_at": current.loaded_at if current else None,
            "counts": current.counts if current else {},
            "ok": not self.problems,
            "problems": [str(p) for p in self.problems],
            "last_attempt": self.last_attempt,
            "last_error_at": self.last_error_at,
        }


class KnowledgeError(RuntimeError):
    """The knowledge folder has problems (listed one per line)."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


class ReloadBus:
    """Moves every process of a deployment to the same knowledge version through Redis."""

    def __init__(
        self, store: KnowledgeStore, client: aioredis.Redis, prefix: str, poll_seconds: float = 5.0
    ) -> None:
        self.store = store
        self.redis = client
        self.version_key = f"{prefix}:kb:version"
        self.channel = f"{prefix}:kb:reload"
        self.procs_key = f"{prefix}:kb:procs"
        self.poll_seconds = poll_seconds
        self._last_follow: tuple[str, tuple[tuple[str, int, int], ...]] | None = None

    async def announce(self) -> None:
        """Tell every process the version this one now serves."""
        version = self.store.current.version
        await self.redis.set(self.version_key, version)
        await self.redis.publish(self.channel, version)
        await self.report()

    async def report(self) -> None:
        """Record this process's state for ``bot kb status`` (entries expire with the process)."""
        status = self.store.status()
        status["reported_at"] = time.time()
        await self.redis.hset(
            self.procs_key, self.store.process_id, json.dumps(status, ensure_ascii=False)
        )
        await self.redis.expire(self.procs_key, 3600)

    async def reload_and_announce(self) -> ReloadOutcome:
        """Reload here; announce the new version to the others when it is good."""
        outcome = await self.store.reload()
        if outcome.ok:
            await self.announce()
        else:
            await self.report()
        return outcome

    async def _follow(self, wanted: str | None) -> None:
        if not wanted or wanted == self.store.current.version:
            return
        # Files here that cannot reach the announced version (not deployed yet, or broken)
        # are read again only once they change, not on every poll.
        attempt = (wanted, await asyncio.to_thread(_signature, self.store.folder, *self.store.also))
        if attempt == self._last_follow:
            return
        self._last_follow = attempt
        outcome = await self.store.reload()
        if outcome.ok and outcome.version != wanted:
            log.warning(
                "knowledge files here differ from the announced version",
                extra={"announced": wanted, "here": outcome.version},
            )
        await self.report()

    async def run(self, stop: asyncio.Event) -> None:
        """Listen for announcements (and poll the version key) until ``stop``."""
        pubsub = None
        next_poll = 0.0
        while not stop.is_set():
            try:
                if pubsub is None:
                    pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
                    await pubsub.subscribe(self.channel)
                    await self.report()
                message = await pubsub.get_message(timeout=1.0)
                if message and message.get("type") == "message":
                    await self._follow(str(message["data"]))
                if time.monotonic() >= next_poll:
                    next_poll = time.monotonic() + self.poll_seconds
                    announced = await self.redis.get(self.version_key)
                    await self._follow(str(announced) if announced else None)
                    await self.report()
            except (RedisError, OSError) as exc:
                log.warning("knowledge bus: Redis unreachable", extra={"error": type(exc).__name__})
                if pubsub is not None:
                    with contextlib.suppress(Exception):
                        await pubsub.aclose()
                pubsub = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 2.0)
        if pubsub is not None:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def processes(self) -> list[dict[str, Any]]:
        """Every process's last report, newest first."""
        raw = await self.redis.hgetall(self.procs_key)
        out = [json.loads(v) for v in raw.values()]
        return sorted(out, key=lambda s: s.get("reported_at", 0), reverse=True)


async def watch(
    store: KnowledgeStore,
    stop: asyncio.Event,
    on_reload: Callable[[], Awaitable[Any]] | None = None,
    every: float = 1.0,
) -> None:
    """Development: reload when a file in the folder changes (no restart needed)."""
    seen = await asyncio.to_thread(_signature, store.folder, *store.also)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
        if stop.is_set():
            break
        now = await asyncio.to_thread(_signature, store.folder, *store.also)
        if now != seen:
            seen = now
            log.info("knowledge files changed; reloading")
            if on_reload is not None:
                await on_reload()
            else:
                await store.reload()
