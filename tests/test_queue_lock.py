"""The per-chat lock on Redis is short and renewed while its holder works: a handler slower
than the lock's life still has its chat to itself (no second worker answers the same person
at the same time, order kept), and a killed worker's chat comes free within that short life."""

from __future__ import annotations

import asyncio
import contextlib
import time

from bot.dialogue.state import DialogueState, RedisDialogueStore
from bot.queue.base import QueuedEvent
from bot.queue.redis_queue import RedisQueue, connect
from tests.helpers import text_event, user_id


async def _never_dead(item: QueuedEvent, error: str) -> None:
    raise AssertionError(f"nothing should be dead-lettered: {error}")


async def test_a_slow_handler_keeps_its_chat_while_the_lock_is_renewed(
    redis_server: str, redis_prefix: str
) -> None:
    alice = user_id("slow")
    lock_seconds = 0.3  # a handler below takes three times as long
    spans: list[tuple[str, float, float]] = []
    both = asyncio.Event()

    async def slow(item: QueuedEvent) -> None:
        started = time.monotonic()
        await asyncio.sleep(0.9)
        spans.append((item.event_id, started, time.monotonic()))
        if len(spans) == 2:
            both.set()

    workers = [
        RedisQueue(
            connect(redis_server), redis_prefix, lock_seconds=lock_seconds, retry_seconds=0.5
        )
        for _ in range(2)
    ]
    events = [text_event(f"ข้อความ {i}", alice, ts=1_700_000_000_000 + i) for i in range(2)]
    await workers[0].enqueue(events)
    stop = asyncio.Event()
    runs = [asyncio.create_task(w.run(slow, _never_dead, stop)) for w in workers]
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(both.wait(), 15)
    finally:
        stop.set()
        await asyncio.gather(*runs)
        for w in workers:
            await w.close()
    assert [event_id for event_id, _, _ in spans] == [e["webhookEventId"] for e in events]
    (_, _, first_end), (_, second_start, _) = spans
    assert second_start >= first_end  # one at a time for one person, in order


async def test_a_dead_holders_chat_comes_free_within_the_lock_life(
    redis_server: str, redis_prefix: str
) -> None:
    """A worker killed mid-event renews nothing: its chat is free after the lock's life."""
    alice = user_id("orphaned")
    client = connect(redis_server)
    queue = RedisQueue(client, redis_prefix, lock_seconds=0.5, retry_seconds=0.5)
    await queue.enqueue([text_event("สวัสดี", alice)])
    # The killed worker had read the event's token and taken the chat when it died.
    await queue._ensure_group()
    await client.xreadgroup("workers", "killed-worker", {f"{redis_prefix}:stream": ">"}, count=1)
    await client.set(f"{redis_prefix}:lock:{alice}", "killed-worker-token", px=500)
    done: list[float] = []
    answered = asyncio.Event()
    started = time.monotonic()

    async def record(item: QueuedEvent) -> None:
        done.append(time.monotonic() - started)
        answered.set()

    stop = asyncio.Event()
    run = asyncio.create_task(queue.run(record, _never_dead, stop))
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(answered.wait(), 10)
    finally:
        stop.set()
        await run
        await queue.close()
    assert done and done[0] < 5.0


async def test_each_event_brings_its_chats_dialogue_state_as_the_last_event_left_it(
    redis_server: str, redis_prefix: str
) -> None:
    """The queue reads the chat's dialogue keys in the round trip that hands out each event
    (one round trip fewer per event): the state the chat's previous event saved, a new chat's
    nothing, and a timed-out flow's marker, which is reported once."""
    client = connect(redis_server)
    store = RedisDialogueStore(client, redis_prefix)
    queue = RedisQueue(client, redis_prefix, retry_seconds=0.5, dialogue_keys=store.keys)
    alice, bob = user_id("prefetch-a"), user_id("prefetch-b")
    await store.save(bob, DialogueState("ask_sector"), ttl=60)
    await client.delete(store.keys(bob)[0])  # bob's flow has timed out since his last turn
    events = [text_event(f"ข้อความ {i}", alice, ts=1_700_000_000_000 + i) for i in range(3)]
    await queue.enqueue([*events, text_event("สวัสดี", bob)])
    seen: list[tuple[str, bool, DialogueState]] = []
    all_in = asyncio.Event()

    async def handle(item: QueuedEvent) -> None:
        state = await store.load(item.chat_id, item.dialogue)
        seen.append((item.chat_id, item.dialogue is not None, state))
        if item.chat_id == alice:  # each of alice's turns moves her flow on
            turn = sum(1 for chat, _, _ in seen if chat == alice)
            await store.save(alice, DialogueState("ask_sector", {"turn": turn}), ttl=60)
        if len(seen) == 4:
            all_in.set()

    stop = asyncio.Event()
    run = asyncio.create_task(queue.run(handle, _never_dead, stop))
    try:
        await asyncio.wait_for(all_in.wait(), 15)
    finally:
        stop.set()
        await run
    after = await store.load(bob)
    await queue.close()
    assert all(prefetched for _, prefetched, _ in seen)
    assert [state for chat, _, state in seen if chat == alice] == [
        DialogueState(),
        DialogueState("ask_sector", {"turn": 1}),
        DialogueState("ask_sector", {"turn": 2}),
    ]
    assert [state for chat, _, state in seen if chat == bob] == [
        DialogueState(expired_step="ask_sector")
    ]
    assert after == DialogueState()  # the time-out is told once
