"""``bot.storage.queries``, the reads and writes handlers share, on SQLite and PostgreSQL.

The conversations use them through the chat; these pin down the rules a user meets in
several places at once: which assessment counts, how a new result merges into notices
they chose earlier, when the bot is quiet for someone with staff, what an unanswered
message leaves behind.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.settings import Settings
from bot.storage import handoff
from bot.storage.db import Assessment, Database, Handoff, Subscription, Unanswered, utcnow
from bot.storage.migrate import upgrade
from bot.storage.queries import (
    Merge,
    UnansweredText,
    deactivate,
    handed_off,
    latest_assessment,
    load_subscription,
    save_subscription,
    set_topics,
)

ALICE = "U" + "a" * 32
BOB = "U" + "b" * 32
T = TypeVar("T")


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """The migrated schema on a SQLite file, and on the test PostgreSQL (emptied)."""
    if request.param == "sqlite":
        settings = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'bot.db'}")  # type: ignore[call-arg]
        upgrade(settings)
    else:
        url = request.getfixturevalue("pg_url")
        settings = Settings(_env_file=None, database_url=url)  # type: ignore[call-arg]
    db = Database(settings.sqlalchemy_url)
    yield db
    asyncio.run(db.close())


def write(db: Database, change: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Run ``change`` in one committed transaction, as the pipeline runs a turn's writes."""

    async def go() -> T:
        async with db.session() as s, s.begin():
            return await change(s)

    return asyncio.run(go())


def read(db: Database, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
    async def go() -> T:
        async with db.session() as s:
            return await query(s)

    return asyncio.run(go())


def add(db: Database, *rows: Any) -> None:
    async def go(s: AsyncSession) -> None:
        s.add_all(rows)

    write(db, go)


# -- the latest assessment -------------------------------------------------------------------


def test_the_newest_assessment_of_that_user_counts(database: Database) -> None:
    now = utcnow()
    add(
        database,
        Assessment(line_user_id=ALICE, answers={}, stage=1, topics=["a"], created_at=now),
        Assessment(line_user_id=ALICE, answers={}, stage=4, topics=["b"], created_at=now),
        Assessment(
            line_user_id=ALICE,
            answers={},
            stage=2,
            topics=["c"],
            created_at=now - dt.timedelta(days=1),
        ),
        Assessment(
            line_user_id=BOB,
            answers={},
            stage=5,
            topics=["d"],
            created_at=now + dt.timedelta(days=1),
        ),
    )
    latest = read(database, lambda s: latest_assessment(s, ALICE))
    assert latest is not None and (latest.stage, latest.topics) == (4, ["b"])  # same time: last
    assert read(database, lambda s: latest_assessment(s, "U" + "c" * 32)) is None


# -- subscriptions ---------------------------------------------------------------------------


def test_topics_chosen_in_the_conversation_replace_the_earlier_ones(database: Database) -> None:
    write(
        database,
        lambda s: save_subscription(s, ALICE, ["a", "b"], ["10"], stage=None, merge=Merge.REPLACE),
    )
    write(
        database,
        lambda s: save_subscription(s, ALICE, ["c"], [], stage=3, merge=Merge.REPLACE),
    )
    row = read(database, lambda s: load_subscription(s, ALICE))
    assert row is not None
    assert (row.topics, row.provinces, row.stage, row.active) == (["c"], [], 3, True)


def test_an_assessment_adds_its_topics_first_and_keeps_the_earlier_ones(
    database: Database,
) -> None:
    add(database, Subscription(line_user_id=ALICE, topics=["a", "b"], provinces=[], active=True))
    write(
        database,
        lambda s: save_subscription(s, ALICE, ["b", "c"], ["50"], stage=2, merge=Merge.ADD),
    )
    row = read(database, lambda s: load_subscription(s, ALICE))
    assert row is not None
    assert (row.topics, row.provinces, row.stage, row.active) == (["b", "c", "a"], ["50"], 2, True)


def test_an_assessment_after_stopping_starts_notices_afresh(database: Database) -> None:
    add(database, Subscription(line_user_id=ALICE, topics=["a"], provinces=["10"], active=False))
    write(database, lambda s: save_subscription(s, ALICE, ["c"], [], stage=4, merge=Merge.ADD))
    row = read(database, lambda s: load_subscription(s, ALICE))
    assert row is not None and (row.topics, row.active) == (["c"], True)


def test_stopping_some_topics_then_every_notice(database: Database) -> None:
    add(
        database,
        Subscription(line_user_id=ALICE, topics=["a", "b"], provinces=[], active=True),
        Subscription(line_user_id=BOB, topics=["a"], provinces=[], active=True),
    )
    write(database, lambda s: set_topics(s, ALICE, ["b"]))
    assert write(database, lambda s: deactivate(s, ALICE)) is True
    assert write(database, lambda s: deactivate(s, ALICE)) is False  # already stopped
    row = read(database, lambda s: load_subscription(s, ALICE))
    assert row is not None and (row.topics, row.active) == (["b"], False)
    bob = read(database, lambda s: load_subscription(s, BOB))
    assert bob is not None and bob.active


# -- hand-offs -------------------------------------------------------------------------------


def test_the_bot_is_quiet_only_while_a_handoff_lasts(database: Database) -> None:
    now = utcnow()
    add(
        database,
        Handoff(line_user_id=ALICE, agency="DITP", until=now + dt.timedelta(minutes=5)),
        Handoff(line_user_id=BOB, agency=None, until=now - dt.timedelta(seconds=1)),
    )
    assert read(database, lambda s: handed_off(s, ALICE)) is True
    assert read(database, lambda s: handed_off(s, BOB)) is False  # ended, not yet pruned
    assert read(database, lambda s: handed_off(s, "U" + "c" * 32)) is False
    assert asyncio.run(handoff.is_open(database, ALICE)) is True
    write(database, lambda s: handoff.start_in(s, BOB, "DBD", 60))
    assert read(database, lambda s: handed_off(s, BOB)) is True


# -- unanswered messages ---------------------------------------------------------------------


def test_an_unanswered_message_is_cut_and_kept_without_its_sender(database: Database) -> None:
    long = "ฝนตกไหม " * 100
    write(database, UnansweredText.of(long, "out_of_scope", 0.91))

    async def rows(s: AsyncSession) -> list[Unanswered]:
        return list((await s.scalars(select(Unanswered))).all())

    (row,) = read(database, rows)
    assert row.text == long[:500] and len(row.text) == 500
    assert (row.best_intent, row.confidence) == ("out_of_scope", pytest.approx(0.91))
    assert "line_user_id" not in Unanswered.__table__.columns
