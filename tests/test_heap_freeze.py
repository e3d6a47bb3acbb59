"""``bot serve`` and ``bot worker`` freeze their start-up heap (no full-collection pauses
walking the knowledge), and a knowledge reload unfreezes it so the replaced snapshot is
collected instead of kept for the life of the process."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest

from bot import cli


class _Snapshot:
    """Stands for a knowledge snapshot: objects in reference cycles."""

    def __init__(self) -> None:
        self.me = self


class _Store:
    def __init__(self) -> None:
        self.listeners: list[Callable[[Any], Awaitable[None]]] = []

    def on_change(self, listener: Callable[[Any], Awaitable[None]]) -> None:
        self.listeners.append(listener)


class _Services:
    def __init__(self) -> None:
        self.kb = _Store()


@pytest.fixture
def thawed() -> Iterator[None]:
    yield
    gc.unfreeze()  # the test process must not keep a frozen heap


async def test_reload_lets_the_replaced_snapshot_go(
    thawed: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cli, "REFREEZE_AFTER_SECONDS", 0.01)
    services = _Services()
    old = _Snapshot()
    gone = weakref.ref(old)
    cli.freeze_heap(services)  # type: ignore[arg-type]
    assert gc.get_freeze_count() > 0
    del old
    gc.collect()
    assert gone() is not None  # frozen: a collection never looks at it

    for listener in services.kb.listeners:  # the knowledge was reloaded
        await listener(object())
    await asyncio.sleep(0.1)
    assert gone() is None  # unfrozen and collected
    assert gc.get_freeze_count() > 0  # and the heap is frozen again
