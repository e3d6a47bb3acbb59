"""The knowledge snapshot one process serves, swapped whole for a valid one only.

A process serves one immutable ``Knowledge`` at a time. ``reload()`` reads its own
folder (to validate and publish it, ``bot.kb.sync``); ``adopt()`` loads a published
version's files. Only a snapshot without problems replaces the current one, so a broken
edit never reaches users: its problems are kept (``status()``, ``GET /admin/kb``,
``bot kb status``) and logged. In development a watcher notices file edits (size or
modification time) and publishes them.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import socket
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bot.kb import snapshots
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
        cache_dir: Path | None = None,
    ) -> None:
        self.folder = folder
        #: Where published versions are unpacked to be loaded (``adopt``).
        self.cache_dir = cache_dir or folder.parent / ".kb-versions"
        #: This store's own sub-folders there (several processes, or test threads, share it).
        self._cache_tag = f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
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

    async def reload(
        self, before_swap: Callable[[Knowledge], Awaitable[None]] | None = None
    ) -> ReloadOutcome:
        """Read the folder again; swap in the result only when it has no problems.

        ``before_swap`` (publishing it for every process) runs on a valid result first;
        if it raises, nothing is swapped and the error is reported like a problem.
        """
        return await self._swap(
            lambda: self._loader(self.folder), before_swap, label=str(self.folder)
        )

    async def adopt(self, version: str, content: Mapping[str, bytes]) -> ReloadOutcome:
        """Serve a published version (its files unpacked under ``cache_dir``)."""
        if self._current is not None and self._current.version == version:
            return ReloadOutcome(True, version, False)
        dest = self.cache_dir / f"{version}-{self._cache_tag}"

        def load() -> LoadResult:
            knowledge_dir, intents_dir = snapshots.write_folders(content, dest)
            return load_knowledge(knowledge_dir, also=(intents_dir,))

        return await self._swap(load, None, label=f"published version {version}")

    async def load_content(
        self,
        content: Mapping[str, bytes],
        before_swap: Callable[[Knowledge], Awaitable[None]] | None = None,
    ) -> ReloadOutcome:
        """Validate and serve an edited set of files (the console's edits).

        Problems name the files as ``knowledge/...`` and ``intents/...``, the way an
        operator knows them, not the folder they were unpacked to.
        """
        dest = self.cache_dir / f"edit-{uuid.uuid4().hex[:8]}-{self._cache_tag}"

        def load() -> LoadResult:
            knowledge_dir, intents_dir = snapshots.write_folders(content, dest)
            result = load_knowledge(knowledge_dir, also=(intents_dir,))
            prefix = f"{dest}{os.sep}"
            result.problems = [
                dataclasses.replace(p, file=p.file.replace(prefix, "")) for p in result.problems
            ]
            return result

        outcome = await self._swap(load, before_swap, label="edit")
        if not outcome.ok:
            await asyncio.to_thread(shutil.rmtree, dest, True)
        return outcome

    def prune_cache(self) -> None:
        """Drop this store's unpacked versions but the one served (other processes keep
        theirs)."""
        serving = (
            self._current.folders[0].parent if self._current and self._current.folders else None
        )
        for path in self.cache_dir.glob(f"*-{self._cache_tag}"):
            if path != serving:
                shutil.rmtree(path, ignore_errors=True)

    async def _swap(
        self,
        load: Callable[[], LoadResult],
        before_swap: Callable[[Knowledge], Awaitable[None]] | None,
        label: str,
    ) -> ReloadOutcome:
        async with self._lock:
            self.last_attempt = time.time()
            result = await asyncio.to_thread(load)
            if result.knowledge is not None and before_swap is not None:
                try:
                    await before_swap(result.knowledge)
                except Exception as exc:
                    log.exception("knowledge could not be published")
                    result = LoadResult(
                        None, [Problem(label, 0, "publish", f"not published: {exc}")]
                    )
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
