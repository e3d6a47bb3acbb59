"""The pipeline on its own: what a handler writes commits with its answer, an erasure's
Redis part survives a cut-off delivery, and old event-log rows and dead letters are forgotten."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.state import DialogueState
from bot.line.calls import InvalidReplyToken, TransientLineError
from bot.line.messages import Message, Text
from bot.pipeline.event_log import AlreadyDecided, EventLogStore
from bot.pipeline.process import Pipeline
from bot.queue.base import QueuedEvent
from bot.services import Services
from bot.settings import Settings
from bot.storage.db import Database, DeadLetter, EventLog, Handoff, Unanswered, utcnow
from bot.storage.migrate import upgrade
from tests.conftest import REDIS_URL, run
from tests.helpers import add_unanswered, text_event, user_id


class Recorder:
    """A messenger that keeps what would have reached the user."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, list[dict[str, Any]]]] = []

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        self.sent.append(("reply", reply_token, [m.to_line() for m in messages]))

    async def push(self, to: str, messages: Sequence[Message], retry_key: str) -> bool:
        self.sent.append(("push", to, [m.to_line() for m in messages]))
        return True

    async def show_loading(self, chat_id: str, seconds: int = 20) -> None:
        return None

    async def profile(self, user_id: str) -> dict[str, Any]:
        return {"userId": user_id}


def _processing(event_id: str, chat: str = "U1") -> EventLog:
    return EventLog(
        webhook_event_id=event_id,
        chat_id=chat,
        event_type="message",
        event_ts=1,
        status="processing",
        attempts=1,
    )


async def _stored_reply(
    services: Services, event_id: str, chat: str, answer: dict[str, Any]
) -> None:
    """An earlier try decided ``answer``, to go by reply, and was cut off after storing it."""
    async with services.db.session() as s, s.begin():
        row = _processing(event_id, chat)
        row.status, row.outbox, row.delivery = "sending", answer, "reply"
        s.add(row)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_handlers_writes_commit_only_with_its_answer(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest, backend: str
) -> None:
    """A write that fails takes the stored answer and the other writes with it (the retry
    runs the handler afresh); writes that succeed are stored with the answer."""
    if backend == "sqlite":
        settings = make_settings()
        upgrade(settings)
    else:
        settings = make_settings(database_url=request.getfixturevalue("pg_url"))
    outbox = {"messages": [Text("ok").to_line()], "state": None}

    async def kept(s: AsyncSession) -> None:
        await add_unanswered(s, "kept")

    async def broken(s: AsyncSession) -> None:
        await add_unanswered(s, "lost")
        raise RuntimeError("the database refused the handler's change")

    async def scenario() -> tuple[EventLog | None, EventLog | None, list[str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                s.add_all([_processing("ev-broken"), _processing("ev-fine")])
            with pytest.raises(RuntimeError):
                await store.sending("ev-broken", outbox, "reply", "k1", [kept, broken])
            await store.sending("ev-fine", outbox, "reply", "k2", [kept])
            async with db.session() as s:
                failed = await s.get(EventLog, "ev-broken")
                fine = await s.get(EventLog, "ev-fine")
                texts = list((await s.scalars(select(Unanswered.text))).all())
            return failed, fine, texts
        finally:
            await db.close()

    failed, fine, texts = run(scenario())
    assert failed is not None and (failed.status, failed.outbox) == ("processing", None)
    assert fine is not None and (fine.status, fine.outbox) == ("sending", outbox)
    assert texts == ["kept"]


def test_an_erasure_cut_off_after_its_answer_was_stored_still_forgets_the_user(
    make_settings: Callable[..., Settings], redis_prefix: str
) -> None:
    """The rows went with the stored answer; the worker died before the Redis keys did.
    The retry deletes them (and the dialogue) before sending that answer, once."""
    settings = make_settings(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    upgrade(settings)
    alice, bob = user_id("erased"), user_id("kept")
    event = text_event("ใช่", alice)
    answer = {
        "messages": [Text("ลบแล้ว").to_line()],
        "state": DialogueState().to_json(),
        "forget": True,
    }
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    p = redis_prefix
    client.set(f"{p}:dlg:{alice}", '{"step": "privacy.confirm_delete", "answers": {}}')
    client.set(f"{p}:dlg-last:{alice}", "privacy.confirm_delete")
    client.set(f"{p}:kb-seen:{alice}", "1")  # any other key naming the user
    client.set(f"{p}:dlg:{bob}", '{"step": "courses.topic", "answers": {}}')
    services = Services.build(settings)
    recorder = Recorder()

    async def scenario() -> int:
        try:
            await _stored_reply(services, event["webhookEventId"], "deleted", answer)
            pipeline = Pipeline(services, recorder)
            item = QueuedEvent(event["webhookEventId"], alice, event["timestamp"], event, 2)
            await pipeline.process(item)
            await pipeline.process(item)  # a redelivery: already done
            async with services.db.session() as s:
                return int(await s.scalar(select(func.count()).select_from(EventLog)) or 0)
        finally:
            await services.close()

    try:
        assert run(scenario()) == 1
        assert [k for k in client.scan_iter(f"{p}:*") if alice in k] == []
        assert client.get(f"{p}:dlg:{bob}") is not None
    finally:
        client.close()
    assert recorder.sent == [("reply", event["replyToken"], answer["messages"])]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_the_bot_stays_quiet_only_while_a_chat_is_with_staff(
    make_settings: Callable[..., Settings], request: pytest.FixtureRequest, backend: str
) -> None:
    """The hand-off check is part of recording the event (one statement on both
    databases): a current hand-off silences the bot, an ended one does not."""
    if backend == "sqlite":
        settings = make_settings()
        upgrade(settings)
    else:
        settings = make_settings(database_url=request.getfixturevalue("pg_url"))
    with_staff, ended = user_id("with-staff"), user_id("ended")
    events = [text_event("สวัสดี", with_staff), text_event("สวัสดี", ended)]
    services = Services.build(settings)
    recorder = Recorder()

    async def scenario() -> None:
        try:
            now = utcnow()
            async with services.db.session() as s, s.begin():
                s.add(Handoff(line_user_id=with_staff, until=now + dt.timedelta(hours=1)))
                s.add(Handoff(line_user_id=ended, until=now - dt.timedelta(seconds=1)))
            pipeline = Pipeline(services, recorder)
            for e in events:
                chat = e["source"]["userId"]
                await pipeline.process(QueuedEvent(e["webhookEventId"], chat, e["timestamp"], e, 1))
        finally:
            await services.close()

    run(scenario())
    assert [(kind, to) for kind, to, _ in recorder.sent] == [("reply", events[1]["replyToken"])]


class TokenGone(Recorder):
    """LINE after about a minute: every reply token is refused (used and expired alike)."""

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        raise InvalidReplyToken("reply", 400, "Invalid reply token")


@pytest.mark.parametrize("reached_line", [False, True])
def test_a_retry_knows_whether_the_stored_reply_ever_reached_line(
    make_settings: Callable[..., Settings], redis_prefix: str, reached_line: bool
) -> None:
    """The first try stored its answer (to go by reply) and died. If it died *before*
    calling LINE (Redis down while saving the dialogue, a killed worker), the retry, now
    past the token's life, pushes the answer; if it had called LINE, LINE's refusal of the
    token means the answer went, and it is not pushed again (found by benchmarks/soak.py:
    answers were lost when every such retry counted as sent)."""
    settings = make_settings(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    upgrade(settings)
    alice = user_id("in-doubt")
    event = text_event("สวัสดี", alice, ts=int((time.time() - 120) * 1000))
    answer = {"messages": [Text("สวัสดีค่ะ").to_line()], "state": None}
    services = Services.build(settings)
    line = TokenGone()

    async def scenario() -> str | None:
        try:
            await _stored_reply(services, event["webhookEventId"], alice, answer)
            pipeline = Pipeline(services, line)
            if reached_line:
                await pipeline._calling_reply(event["webhookEventId"])
            item = QueuedEvent(event["webhookEventId"], alice, event["timestamp"], event, 2)
            await pipeline.process(item)
            async with services.db.session() as s:
                done = await s.get(EventLog, event["webhookEventId"])
                return done.status if done else None
        finally:
            await services.close()

    assert run(scenario()) == "done"
    if reached_line:
        assert line.sent == []  # it went with the first try: never twice
    else:
        assert line.sent == [("push", alice, answer["messages"])]


class Unreachable(Recorder):
    """LINE cannot be reached at all: every attempt's connection is refused."""

    async def reply(self, reply_token: str, messages: Sequence[Message]) -> None:
        error = TransientLineError("reply", None, "ClientConnectorError")
        error.may_have_reached = False
        raise error


def test_a_reply_that_never_left_is_pushed_when_the_retry_comes_too_late(
    make_settings: Callable[..., Settings], redis_prefix: str
) -> None:
    """Every reply attempt was refused before a request went out (LINE unreachable), and
    the retry comes after the token's life: the answer goes by push, not counted as sent."""
    settings = make_settings(redis_url=REDIS_URL, redis_prefix=redis_prefix)
    upgrade(settings)
    alice = user_id("unreachable")
    event = text_event("สวัสดี", alice, ts=int((time.time() - 30) * 1000))
    answer = {"messages": [Text("สวัสดีค่ะ").to_line()], "state": None}
    services = Services.build(settings)
    later = TokenGone()

    async def scenario() -> None:
        try:
            await _stored_reply(services, event["webhookEventId"], alice, answer)
            item = QueuedEvent(event["webhookEventId"], alice, event["timestamp"], event, 1)
            with pytest.raises(TransientLineError):
                await Pipeline(services, Unreachable()).process(item)
            retry = Pipeline(services, later)
            retry.clock = lambda: time.time() + 60  # the token has expired by now
            await retry.process(item)
        finally:
            await services.close()

    run(scenario())
    assert later.sent == [("push", alice, answer["messages"])]


def test_a_second_try_that_decides_late_stores_nothing(
    make_settings: Callable[..., Settings],
) -> None:
    """Two tries of one event decided (the first one's worker lost the chat's lock): the
    later one's answer and writes are dropped; the stored answer is the one resent."""
    settings = make_settings()
    upgrade(settings)
    first = {"messages": [Text("first").to_line()], "state": None}
    second = {"messages": [Text("second").to_line()], "state": None}

    async def write(s: AsyncSession) -> None:
        await add_unanswered(s, "written twice")

    async def scenario() -> tuple[Any, list[str]]:
        db = Database(settings.sqlalchemy_url)
        try:
            async with db.session() as s, s.begin():
                s.add(_processing("ev-twice"))
            store = EventLogStore(db)
            await store.sending("ev-twice", first, "reply", "k", [write])
            with pytest.raises(AlreadyDecided):
                await store.sending("ev-twice", second, "reply", "k", [write])
            async with db.session() as s:
                row = await s.get(EventLog, "ev-twice")
                texts = list(await s.scalars(select(Unanswered.text)))
                return (row.outbox if row else None), texts
        finally:
            await db.close()

    outbox, texts = run(scenario())
    assert outbox == first
    assert texts == ["written twice"]  # once: the late try's writes rolled back


def test_prune_keeps_recent_and_pending_records(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(event_log_days=7, dead_letter_days=30)
    upgrade(settings)
    services = Services.build(settings)
    old = utcnow() - dt.timedelta(days=8)
    ancient = utcnow() - dt.timedelta(days=31)

    def row(
        event_id: str,
        status: str,
        updated: dt.datetime,
        created: dt.datetime | None = None,
        stamped: bool = True,
    ) -> EventLog:
        held = updated if status == "held" and stamped else None
        return EventLog(
            webhook_event_id=event_id,
            chat_id="U1",
            event_type="message",
            event_ts=1,
            status=status,
            attempts=1,
            created_at=created or updated,
            updated_at=updated,
            held_at=held,
        )

    def dead_letter(event_id: str, died: dt.datetime) -> DeadLetter:
        return DeadLetter(
            webhook_event_id=event_id,
            chat_id="U1",
            event_type="message",
            payload={},
            attempts=5,
            died_at=died,
        )

    async def scenario() -> tuple[set[str], set[str]]:
        async with services.db.session() as s, s.begin():
            s.add_all(
                [
                    row("old-done", "done", old),
                    row("old-sending", "sending", old),  # still in flight: must survive
                    row("new-done", "done", utcnow()),
                    # first seen long ago, answered only now (replayed): kept like any new one
                    row("old-replayed", "done", utcnow(), created=old),
                    # a late answer nobody tapped for: kept a day, then forgotten
                    row("held-2-days", "held", utcnow() - dt.timedelta(days=2)),
                    row("held-an-hour", "held", utcnow() - dt.timedelta(hours=1), created=old),
                    # held by a worker of the version before ``held_at`` (during an upgrade):
                    # forgotten with the old rows
                    row("held-unstamped-old", "held", old, stamped=False),
                    row("held-unstamped-new", "held", utcnow(), stamped=False),
                ]
            )
            s.add_all(
                [
                    dead_letter("dead-old", ancient),
                    dead_letter("dead-new", old),
                ]
            )
        await Pipeline(services, messenger=None).prune()  # type: ignore[arg-type]
        async with services.db.session() as s:
            logs = set((await s.scalars(select(EventLog.webhook_event_id))).all())
            dead = set((await s.scalars(select(DeadLetter.webhook_event_id))).all())
        await services.close()
        return logs, dead

    logs, dead = run(scenario())
    assert logs == {
        "old-sending",
        "new-done",
        "old-replayed",
        "held-an-hour",
        "held-unstamped-new",
    }
    assert dead == {"dead-new"}
