"""Answers that finish together are marked done in one shared transaction (group commit),
and none is lost or counted twice: a failed commit fails every event it carried (each is
retried and resent under the usual in-doubt rules), and the next commit goes on."""

from __future__ import annotations

import asyncio

import pytest

from bot.pipeline import event_log
from bot.pipeline.event_log import MAX_GROUP, GroupCommit


async def test_items_arriving_during_a_commit_share_the_next_one() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def commit(items: list[int]) -> None:
        batches.append(items)
        if len(batches) == 1:
            await gate.wait()  # the first commit is slow: everything else queues behind it

    group: GroupCommit[int] = GroupCommit(commit)
    first = asyncio.create_task(group.add(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.add(i)) for i in range(1, 8)]
    await asyncio.sleep(0.01)
    assert batches == [[0]]  # nothing waits for a batch to fill when the store is idle
    gate.set()
    await asyncio.gather(first, *rest)
    assert batches == [[0], [1, 2, 3, 4, 5, 6, 7]]


async def test_a_failed_commit_fails_its_items_and_the_next_one_goes_on() -> None:
    calls: list[list[str]] = []

    async def commit(items: list[str]) -> None:
        calls.append(items)
        if "bad" in items:
            raise RuntimeError("database restarted")

    group: GroupCommit[str] = GroupCommit(commit)
    with pytest.raises(RuntimeError, match="database restarted"):
        await group.add("bad")
    await group.add("good")  # a fresh commit, not stuck behind the failure
    assert calls == [["bad"], ["good"]]


async def test_a_batch_never_exceeds_the_group_limit() -> None:
    sizes: list[int] = []
    gate = asyncio.Event()

    async def commit(items: list[int]) -> None:
        sizes.append(len(items))
        if len(sizes) == 1:
            await gate.wait()

    group: GroupCommit[int] = GroupCommit(commit)
    tasks = [asyncio.create_task(group.add(i)) for i in range(MAX_GROUP + 30)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*tasks)
    assert sum(sizes) == MAX_GROUP + 30 and max(sizes) <= MAX_GROUP


async def test_one_bad_item_fails_alone_when_the_shared_commit_fails() -> None:
    """With ``alone``: a batch of one runs alone; a batch whose shared commit fails is
    committed again item by item, so only the bad item's event fails."""
    together_calls: list[list[str]] = []
    alone_calls: list[str] = []
    gate = asyncio.Event()

    async def together(items: list[str]) -> None:
        together_calls.append(items)
        if "bad" in items:
            raise RuntimeError("one write broke a constraint")

    async def alone(item: str) -> None:
        alone_calls.append(item)
        if item == "first":
            await gate.wait()  # holds the store busy so the rest arrive as one batch
        if item == "bad":
            raise RuntimeError("one write broke a constraint")

    group: GroupCommit[str] = GroupCommit(together, alone)
    first = asyncio.create_task(group.add("first"))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.add(name)) for name in ("a", "bad", "b")]
    await asyncio.sleep(0.01)
    gate.set()
    results = await asyncio.gather(first, *rest, return_exceptions=True)
    assert together_calls == [["a", "bad", "b"]]
    assert alone_calls == ["first", "a", "bad", "b"]
    assert [isinstance(r, RuntimeError) for r in results] == [False, False, True, False]


async def test_an_item_whose_caller_gave_up_is_not_committed() -> None:
    """The handler time-out cancels a try while its answer waits for the next batch: that
    answer must not be stored later (the retry decides afresh)."""
    committed: list[str] = []
    gate = asyncio.Event()

    async def together(items: list[str]) -> None:
        committed.extend(items)

    async def alone(item: str) -> None:
        if item == "first":
            await gate.wait()
        committed.append(item)

    group: GroupCommit[str] = GroupCommit(together, alone, drop_cancelled=True)
    first = asyncio.create_task(group.add("first"))
    await asyncio.sleep(0)
    given_up = asyncio.create_task(group.add("given up"))
    kept = asyncio.create_task(group.add("kept"))
    await asyncio.sleep(0.01)
    given_up.cancel()
    gate.set()
    await asyncio.gather(first, kept)
    assert committed == ["first", "kept"]


async def test_each_item_on_its_own_gets_its_own_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """After a shared commit failed, the items committed one by one each get the full
    time: one that committed is never reported failed because the others took long."""
    monkeypatch.setattr(event_log, "COMMIT_SECONDS", 0.5)
    committed: list[str] = []

    async def together(items: list[str]) -> None:
        raise RuntimeError("one bad write")

    async def alone(item: str) -> None:
        await asyncio.sleep(0.3)
        committed.append(item)

    group: GroupCommit[str] = GroupCommit(together, alone)
    results = await asyncio.gather(*(group.add(x) for x in "WXYZ"), return_exceptions=True)
    assert committed == list("WXYZ")
    assert results == [None] * 4
