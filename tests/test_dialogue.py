"""Dialogue state in Redis and in memory: steps, answers, expiry, isolation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from bot.dialogue.state import DialogueState, DialogueStore, MemoryDialogueStore, RedisDialogueStore


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest, redis_server: str) -> AsyncIterator[DialogueStore]:
    if request.param == "memory":
        yield MemoryDialogueStore()
        return
    prefix = request.getfixturevalue("redis_prefix")
    client = aioredis.from_url(redis_server, decode_responses=True)
    yield RedisDialogueStore(client, prefix)
    await client.aclose()


async def test_state_round_trips_and_users_are_isolated(store: DialogueStore) -> None:
    await store.save("U1", DialogueState("ask_goal", {"stage": "idea", "province": "50"}), ttl=60)
    assert (await store.load("U1")) == DialogueState(
        "ask_goal", {"stage": "idea", "province": "50"}
    )
    assert (await store.load("U2")) == DialogueState()
    await store.clear("U1")
    assert (await store.load("U1")) == DialogueState()


async def test_closing_a_dialogue_is_not_reported_as_a_timeout(store: DialogueStore) -> None:
    await store.save("U1", DialogueState("ask_goal"), ttl=60)
    await store.save("U1", DialogueState(), ttl=60)
    assert (await store.load("U1")) == DialogueState()


async def test_redis_state_expires_and_the_timeout_is_reported_once(
    redis_server: str, redis_prefix: str
) -> None:
    client = aioredis.from_url(redis_server, decode_responses=True)
    store = RedisDialogueStore(client, redis_prefix)
    await store.save("U1", DialogueState("ask_sector", {"stage": "idea"}), ttl=1)
    await asyncio.sleep(1.2)
    assert (await store.load("U1")) == DialogueState(expired_step="ask_sector")
    assert (await store.load("U1")) == DialogueState()
    await client.aclose()


async def test_memory_state_expires_like_redis() -> None:
    clock = Clock()
    store = MemoryDialogueStore(clock)
    await store.save("U1", DialogueState("ask_sector"), ttl=30)
    clock.now += 29
    assert (await store.load("U1")).step == "ask_sector"
    clock.now += 2
    assert (await store.load("U1")) == DialogueState(expired_step="ask_sector")
    assert (await store.load("U1")) == DialogueState()
