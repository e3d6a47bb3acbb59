"""The loops a bot process runs: the queue worker, push notices, housekeeping, the insights
rollup, and following knowledge reloads. ``bot serve`` (embedded mode) and ``bot worker`` start
them; the parts they work with are built by ``bot.services``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from bot.kb.loader import Knowledge
from bot.kb.store import watch
from bot.services import Services

if TYPE_CHECKING:  # imported by the worker loops only: `bot serve` in Redis mode runs none
    from bot.line.calls import Messenger
    from bot.line.client import LineClient
    from bot.pipeline.process import Pipeline

log = logging.getLogger(__name__)


def start_background(services: Services, stop: asyncio.Event) -> list[asyncio.Task[None]]:
    """Tasks every process runs: follow knowledge announcements; watch files in development."""
    tasks: list[asyncio.Task[None]] = [asyncio.create_task(services.sync.run(stop))]
    if services.settings.kb_watch_enabled:
        tasks.append(asyncio.create_task(watch(services.kb, stop, services.reload_knowledge)))
    return tasks


async def run_worker(services: Services, messenger: Messenger, stop: asyncio.Event) -> None:
    """Work the queue with this process's pipeline until ``stop`` is set."""
    from bot.line.client import LineClient
    from bot.pipeline.process import Pipeline

    pipeline = Pipeline(services, messenger)
    log.info(
        "worker started",
        extra={
            "queue": type(services.queue).__name__,
            "concurrency": services.settings.worker_concurrency,
        },
    )
    jobs = [asyncio.create_task(_housekeeping(pipeline, stop))]
    if services.settings.insights_rollup_seconds > 0:
        jobs.append(asyncio.create_task(_insights_job(services, stop)))
    if isinstance(messenger, LineClient):
        jobs.append(asyncio.create_task(_notice_job(services, messenger, stop)))
    try:
        await services.queue.run(pipeline.process, pipeline.dead_letter, stop)
    finally:
        for job in jobs:
            job.cancel()
        for job in jobs:
            with contextlib.suppress(asyncio.CancelledError):
                await job
    log.info("worker stopped")


async def run_worker_process(services: Services, messenger: Messenger, stop: asyncio.Event) -> None:
    """A whole worker process: the queue worker plus the knowledge follower and watcher."""
    await services.start_knowledge()
    background = start_background(services, stop)
    try:
        await run_worker(services, messenger, stop)
    finally:
        stop.set()
        await asyncio.gather(*background, return_exceptions=True)


async def _notice_job(services: Services, sender: LineClient, stop: asyncio.Event) -> None:
    """Push notices on the worker: after every knowledge reload and every
    ``NOTIFY_INTERVAL_SECONDS`` (so notices held by quiet hours go out in the morning).
    A lease in the database lets only one process run it at a time."""
    from bot.notices.runner import NoticeRunner

    runner = NoticeRunner(services, sender)
    wake = asyncio.Event()

    async def reloaded(_knowledge: Knowledge) -> None:
        wake.set()

    services.kb.on_change(reloaded)
    interval = services.settings.notify_interval_seconds
    trigger = "start"
    while not stop.is_set():
        if trigger != "start" or interval > 0:
            try:
                await runner.run(trigger=trigger)
            except Exception as exc:  # the next wake-up tries again; nothing is lost
                log.warning("notice run failed", extra={"error": type(exc).__name__})
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
        try:
            await asyncio.wait(
                waiters, timeout=interval or None, return_when=asyncio.FIRST_COMPLETED
            )
        finally:  # also when this job is cancelled mid-wait (the worker stopping)
            for w in waiters:
                w.cancel()
        trigger = "reload" if wake.is_set() else "schedule"
        wake.clear()


async def _housekeeping(pipeline: Pipeline, stop: asyncio.Event, every: float = 3600.0) -> None:
    """Prune old event-log rows and dead letters, hourly, while the worker runs."""
    while not stop.is_set():
        try:
            logs_gone, dead_gone = await pipeline.prune()
            if logs_gone or dead_gone:
                log.info("pruned old records", extra={"event_log": logs_gone, "dead": dead_gone})
        except Exception as exc:
            log.warning("pruning failed", extra={"error": type(exc).__name__})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


#: The first insights rollup waits this long after the worker starts (at most the interval):
#: a restart storm does not start a rollup per process, and short-lived test workers none.
INSIGHTS_FIRST_DELAY = 60.0


async def _insights_job(services: Services, stop: asyncio.Event) -> None:
    """Recompute the insights rollup every ``INSIGHTS_ROLLUP_SECONDS`` (a lease lets one
    process do it at a time; the days left dirty wait for the next run, nothing is lost)."""
    from bot.insights.rollup import rollup

    settings = services.settings
    wait = min(INSIGHTS_FIRST_DELAY, settings.insights_rollup_seconds)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), wait)
        if stop.is_set():
            break
        try:
            await rollup(services.db, raw_days=settings.insights_raw_days)
        except Exception as exc:
            log.warning("insights rollup failed", extra={"error": type(exc).__name__})
        wait = settings.insights_rollup_seconds
