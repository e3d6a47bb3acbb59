"""``bot.storage.privacy`` on its own: export and erasure on a database and a real Redis.

The conversation tests erase through the chat; these check the parts a chat turn
cannot reach directly: what the queue keeps for the event being handled, and the
export an operator's command would print.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import redis.asyncio as aioredis
from sqlalchemy import create_engine

from bot.storage.db import Assessment, Base, Database, EventLog, LocalQueueItem, Subscription, User
from bot.storage.privacy import (
    ANONYMOUS,
    count_erasure,
    erase_keys,
    erase_rows,
    erase_user,
    export_user_data,
    load_profile,
    summary,
)

ALICE = "U" + "a" * 32
BOB = "U" + "b" * 32


def _database(tmp_path: Path) -> Database:
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
    engine = create_engine(f"sqlite:///{tmp_path / 'bot.db'}")
    Base.metadata.create_all(engine)
    engine.dispose()
    return Database(url)


async def _fill(database: Database) -> None:
    async with database.session() as s, s.begin():
        for user in (ALICE, BOB):
            s.add(User(line_user_id=user))
            s.add(Assessment(line_user_id=user, answers={}, stage=2, topics=["language"]))
            s.add(Subscription(line_user_id=user, topics=["language"], provinces=[], active=True))
            for n in range(2):
                s.add(
                    EventLog(
                        webhook_event_id=f"ev-{user[1]}-{n}",
                        chat_id=user,
                        event_type="message",
                        event_ts=n,
                        status="done",
                    )
                )
        s.add(LocalQueueItem(webhook_event_id="now", chat_id=ALICE, event_ts=1, payload={}))
        s.add(LocalQueueItem(webhook_event_id="next", chat_id=ALICE, event_ts=2, payload={}))


def test_export_then_erase_one_user(tmp_path: Path) -> None:
    async def scenario() -> None:
        database = _database(tmp_path)
        try:
            await _fill(database)
            exported = await export_user_data(database, ALICE)
            assert set(exported) >= {"users", "assessments", "subscriptions", "event_log"}
            assert all(ALICE in str(rows) for rows in exported.values())
            assert BOB not in str(exported)

            erasure = await erase_user(database, ALICE, handling_event="now")
            counts = summary(erasure)
            assert (counts["profile"], counts["assessments"], counts["subscriptions"]) == (1, 1, 1)
            assert erasure.rows["event_log"] == 2  # anonymised, not deleted
            assert erasure.queued == 1  # "next"; "now" is the queue's to remove

            left = await export_user_data(database, ALICE)
            assert set(left) == {"local_queue"}  # only the event being handled
            assert [r["webhook_event_id"] for r in left["local_queue"]] == ["now"]
            async with database.session() as s:
                anonymous = await s.get(EventLog, "ev-a-0")
                assert anonymous is not None and anonymous.chat_id == ANONYMOUS
            assert not (await load_profile(database, ALICE)).assessments
            bob = await load_profile(database, BOB)
            assert bob.assessments == 1 and bob.subscription is not None
        finally:
            await database.close()

    asyncio.run(scenario())


def test_erase_redis_keeps_what_the_queue_needs_for_this_turn(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    async def scenario() -> None:
        database = _database(tmp_path)
        client = aioredis.Redis.from_url(redis_server, decode_responses=True)
        p = redis_prefix
        now, later = "ev-now-" + uuid.uuid4().hex[:6], "ev-later-" + uuid.uuid4().hex[:6]
        try:
            await client.zadd(f"{p}:q:{ALICE}", {now: 1, later: 2})
            await client.hset(f"{p}:ev:{now}", mapping={"payload": "{}"})
            await client.hset(f"{p}:ev:{later}", mapping={"payload": "{}"})
            await client.set(f"{p}:lock:{ALICE}", "worker-token")
            await client.set(f"{p}:dlg:{ALICE}", "{}")
            await client.set(f"{p}:dlg-last:{ALICE}", "x")
            await client.set(f"{p}:dlg:{BOB}", "{}")

            erasure = await erase_user(database, ALICE, redis=client, prefix=p, handling_event=now)
            assert erasure.redis_keys == 2 and erasure.queued == 1
            assert await client.zrange(f"{p}:q:{ALICE}", 0, -1) == [now]
            assert await client.exists(f"{p}:ev:{now}", f"{p}:lock:{ALICE}") == 2
            assert not await client.exists(f"{p}:ev:{later}", f"{p}:dlg:{ALICE}")
            assert await client.exists(f"{p}:dlg:{BOB}")
        finally:
            await client.aclose()
            await database.close()

    asyncio.run(scenario())


def test_what_the_chat_announces_is_what_goes_and_erasing_again_is_harmless(
    tmp_path: Path, redis_server: str, redis_prefix: str
) -> None:
    """The chat counts before it erases (the rows go with its answer, the keys as it is
    sent): the count removes nothing and agrees with the erasure; a retried erasure (a
    worker cut off mid-delivery) finds nothing more and keeps the queue's entry."""

    async def scenario() -> None:
        database = _database(tmp_path)
        client = aioredis.Redis.from_url(redis_server, decode_responses=True)
        p = redis_prefix
        now = "ev-now-" + uuid.uuid4().hex[:6]
        try:
            await _fill(database)
            await client.zadd(f"{p}:q:{ALICE}", {now: 1, "ev-later": 2})
            await client.hset(f"{p}:ev:{now}", mapping={"payload": "{}"})
            await client.set(f"{p}:dlg:{ALICE}", "{}")
            before = await export_user_data(database, ALICE)

            counted = await count_erasure(
                database, ALICE, redis=client, prefix=p, handling_event=now
            )
            assert await export_user_data(database, ALICE) == before  # nothing went
            assert await client.exists(f"{p}:dlg:{ALICE}")

            async with database.session() as s, s.begin():
                rows = await erase_rows(s, ALICE, now)
            keys = await erase_keys(client, p, ALICE, now)
            rows.add(keys)
            assert summary(counted) == summary(rows)
            assert summary(rows)["assessments"] == 1

            async with database.session() as s, s.begin():
                again = await erase_rows(s, ALICE, now)
            again.add(await erase_keys(client, p, ALICE, now))
            assert again.total == 0
            assert await client.zrange(f"{p}:q:{ALICE}", 0, -1) == [now]
            assert await client.exists(f"{p}:ev:{now}")
            assert (await load_profile(database, BOB)).assessments == 1
        finally:
            await client.aclose()
            await database.close()

    asyncio.run(scenario())
