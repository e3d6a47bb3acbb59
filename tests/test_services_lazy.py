"""``bot serve`` in Redis mode builds the intent engine and the handlers on first use; a
console page that needs them first builds them off the event loop, so webhooks arriving in
the meantime are still acknowledged at once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from bot.services import Services
from bot.settings import Settings
from bot.storage.migrate import upgrade
from tests.conftest import run


def test_first_use_builds_the_engine_without_stalling_the_loop(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    upgrade(settings)
    services = Services.build(settings, lazy=True)

    async def scenario() -> tuple[float, float, bool]:
        try:
            await services.start_knowledge()
            assert services._nlu is None and services._dispatcher is None  # nothing yet
            gaps: list[float] = []
            done = asyncio.Event()

            async def ticker() -> None:  # stands for the webhooks this process acknowledges
                last = time.monotonic()
                while not done.is_set():
                    await asyncio.sleep(0.01)
                    now = time.monotonic()
                    gaps.append(now - last)
                    last = now

            tick = asyncio.create_task(ticker())
            await asyncio.sleep(0.05)  # the ticker is running before the build starts
            started = time.monotonic()
            await services.ready()
            took = time.monotonic() - started
            await asyncio.sleep(0.05)  # one more tick: a stalled loop shows as one long gap
            done.set()
            await tick
            return took, max(gaps), bool(services.nlu.intents)
        finally:
            await services.close()

    took, worst_gap, has_intents = run(scenario())
    assert has_intents
    assert worst_gap < max(0.25, took / 3), (took, worst_gap)  # the loop kept turning
