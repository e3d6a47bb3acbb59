"""Events recorded, and answers stored, together under load (one transaction for many):
each event still gets exactly its own row, user, hand-off check, answer and writes; the
merged counters add up; and one event's bad write or late decision fails only that event."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
from collections.abc import AsyncIterator, Callable, Sequence
from types import SimpleNamespace
from typing import Any, cast

import pytest
import sqlalchemy
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.router import Turn
from bot.dialogue.state import DialogueState
from bot.insights import capture, records
from bot.insights.records import InsightEvent
from bot.line.events import InboundEvent
from bot.line.messages import Text
from bot.pipeline import event_log
from bot.pipeline.event_log import AlreadyDecided, EventLogStore, Recorded
from bot.services import Services
from bot.settings import Settings
from bot.storage import daily
from bot.storage.db import (
    Assessment,
    Database,
    EventLog,
    GuideStat,
    Handoff,
    Unanswered,
    User,
    utcnow,
)
from bot.storage.merged import MergedWrite, run_together
from bot.storage.queries import GuideCount
from tests.conftest import run
from tests.helpers import add_unanswered, event_of, text_event, user_id

N = 12
DAY = dt.date(2026, 12, 6)


async def seed_rows(db: Database, status: Callable[[int], str], with_outbox: bool = False) -> None:
    """Event-log rows ``ev-0`` … ``ev-{N-1}``, each of its own user, in ``status(i)``."""
    async with db.session() as s, s.begin():
        for i in range(N):
            outbox = {"messages": [Text(f"answer {i}").to_line()], "state": None}
            s.add(
                EventLog(
                    webhook_event_id=f"ev-{i}",
                    chat_id=user_id(i),
                    event_type="message",
                    event_ts=1,
                    status=status(i),
                    outbox=outbox if with_outbox else None,
                    attempts=1,
                )
            )


@pytest.fixture
def settings(each_db_settings: Settings) -> Settings:
    return each_db_settings


def test_events_recorded_together_each_get_their_own_row_user_and_handoff(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    users = [user_id(f"group-{i}") for i in range(N)]
    events = [InboundEvent.from_dict(text_event("สวัสดี", u)) for u in users]

    async def scenario() -> tuple[list[Recorded], list[Recorded], dict[str, int], int]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                s.add(Handoff(line_user_id=users[3], until=utcnow() + dt.timedelta(hours=1)))
                s.add(Handoff(line_user_id=users[4], until=utcnow() - dt.timedelta(seconds=1)))
            first = await asyncio.gather(*(store.record(e, 1) for e in events))
            statements: list[str] = []
            listen = sqlalchemy.event.listen
            listen(
                db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
            )
            again = await asyncio.gather(*(store.record(e, 2) for e in events))
            # one upsert of the events and one of their users, not a statement per event
            assert len(statements) == 2, statements
            async with db.session() as s:
                pks = {u.line_user_id: u.id for u in await s.scalars(select(User))}
                rows = await s.scalar(select(func.count()).select_from(EventLog))
            return first, again, pks, int(rows or 0)
        finally:
            await db.close()

    first, again, pks, rows = run(scenario())
    assert "group commit failed" not in caplog.text  # recorded together, not one by one
    assert rows == N  # a redelivered attempt updates its row, never adds one
    assert [r.status for r in first] == ["processing"] * N
    assert [r.handed_off for r in first] == [i == 3 for i in range(N)]  # only the live one
    assert [r.user_pk for r in first] == [pks[u] for u in users]  # each its own user
    assert [r.user_pk for r in again] == [r.user_pk for r in first]
    assert len(set(pks.values())) == N


def test_events_recorded_one_at_a_time_get_the_same_rows_users_and_handoffs(
    settings: Settings,
) -> None:
    """Below full load each event is recorded alone (on PostgreSQL in one statement, the
    user's visit inside it): the same rows, users, hand-off checks and replay rules as
    events recorded together, and the follow's own upsert is kept. A user who had blocked
    the bot stays unfollowed by a message (only the visit time moves)."""
    alice, bob, carol = user_id("alone-a"), user_id("alone-b"), user_id("alone-c")
    dave, erin = user_id("alone-d"), user_id("alone-e")
    in_group = {"type": "group", "groupId": "C" + "a" * 32, "userId": dave}
    group = dict(text_event("สวัสดีทุกคน", dave), source=in_group)
    long_ago = utcnow() - dt.timedelta(days=30)
    raw = [
        text_event("สวัสดี", alice),
        text_event("ขอคุยกับเจ้าหน้าที่", bob),
        text_event("ดูคอร์ส", carol, mode="standby"),
        group,
        event_of("follow", carol),
        text_event("อีกข้อความ", alice),
        text_event("กลับมาแล้ว", erin),
    ]
    events = [InboundEvent.from_dict(e) for e in raw]

    async def scenario() -> tuple[list[Recorded], list[Recorded], dict[str, Any], list[str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                s.add(Handoff(line_user_id=bob, until=utcnow() + dt.timedelta(hours=1)))
                s.add(
                    User(
                        line_user_id=erin,
                        following=False,
                        follow_changed_at=long_ago,
                        first_seen_at=long_ago,
                        last_seen_at=long_ago,
                    )
                )
            statements: list[str] = []
            sqlalchemy.event.listen(
                db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
            )
            first = [await store.record(e, 1) for e in events]
            async with db.session() as s, s.begin():  # one failed for good, one answered
                await s.execute(
                    sqlalchemy.update(EventLog)
                    .where(EventLog.webhook_event_id == events[0].id)
                    .values(status="dead")
                )
                await s.execute(
                    sqlalchemy.update(EventLog)
                    .where(EventLog.webhook_event_id == events[1].id)
                    .values(status="done")
                )
            again = [await store.record(e, 2) for e in events]
            async with db.session() as s:
                users = {u.line_user_id: u for u in await s.scalars(select(User))}
                rows = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
            return first, again, {"users": users, "rows": rows}, statements
        finally:
            await db.close()

    first, again, found, statements = run(scenario())
    users, rows = found["users"], found["rows"]
    assert set(users) == {alice, bob, carol, erin}  # standby and group events add no visit
    assert [r.status for r in first] == [
        "processing",
        "processing",
        "standby",
        "processing",
        "processing",
        "processing",
        "processing",
    ]
    assert [r.handed_off for r in first] == [False, True, False, False, False, False, False]
    assert [r.user_pk for r in first] == [
        users[alice].id,
        users[bob].id,
        None,
        None,
        users[carol].id,
        users[alice].id,
        users[erin].id,
    ]
    returning = users[erin]
    assert not returning.following
    assert returning.first_seen_at.timestamp() == pytest.approx(long_ago.timestamp())
    assert returning.follow_changed_at.timestamp() == pytest.approx(long_ago.timestamp())
    assert returning.last_seen_at.timestamp() > long_ago.timestamp() + 29 * 86_400
    assert users[carol].follow_changed_at is not None and users[carol].following
    # A replay: the dead event is worked again, the answered one is not; the same users.
    assert [r.status for r in again][:2] == ["processing", "done"]
    assert [r.user_pk for r in again] == [r.user_pk for r in first]
    assert all(rows[e.id].attempts == 2 for e in events)
    if settings.sqlalchemy_url.startswith("postgresql"):
        # one statement per ordinary event (the follow keeps its two)
        recording = [x for x in statements if not x.startswith(("SELECT", "UPDATE"))]
        assert len(recording) == 2 * 8, [x[:60] for x in recording]


def test_answers_stored_together_keep_their_own_outbox_and_merged_counts_add_up(
    settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    """Twelve answers decided at once: each row holds its own answer, every turn counted
    once (routes and outcomes summed), guide counters summed, every insight row written;
    an answer another try decided first is refused alone, and its writes are dropped."""
    users = [user_id(f"answer-{i}") for i in range(N)]

    def writes(i: int) -> list[Any]:
        moments = capture.moments(users[i], [capture.Moment(records.INTENT, "greeting")], DAY)
        return [
            daily.TurnCount(DAY, "greeting" if i % 2 else "courses", daily.ANSWERED),
            GuideCount("open-shop", "shown", DAY),
            moments,
        ]

    async def scenario() -> tuple[list[BaseException | None], dict[str, Any], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                for i in range(N):
                    row = EventLog(
                        webhook_event_id=f"ev-{i}",
                        chat_id=users[i],
                        event_type="message",
                        event_ts=1,
                        status="sending" if i == 5 else "processing",  # 5: decided already
                        attempts=1,
                    )
                    s.add(row)
            results = await asyncio.gather(
                *(
                    store.sending(
                        f"ev-{i}",
                        {"messages": [Text(f"answer {i}").to_line()], "state": None},
                        "reply",
                        f"key-{i}",
                        writes(i),
                    )
                    for i in range(N)
                ),
                return_exceptions=True,
            )
            async with db.session() as s:
                outboxes = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
                counts = {
                    f"{c.kind}:{c.key}": c.count for c in await s.scalars(select(daily.DailyCount))
                }
                guide = await s.get(GuideStat, ("open-shop", DAY))
                counts["guide:shown"] = guide.shown if guide else 0
                insight = await s.scalar(select(func.count()).select_from(InsightEvent))
                counts["insight_rows"] = int(insight or 0)
            return list(results), outboxes, counts
        finally:
            await db.close()

    results, rows, counts = run(scenario())
    assert "group commit failed" not in caplog.text  # stored together, not one by one
    assert [type(r) for r in results] == [
        AlreadyDecided if i == 5 else type(None) for i in range(N)
    ]
    for i in range(N):
        row = rows[f"ev-{i}"]
        if i == 5:
            assert row.outbox is None  # untouched: the other try's answer stands
            continue
        assert row.status == "sending" and row.delivery == "reply"
        assert row.retry_key == f"key-{i}"
        assert row.outbox["messages"][0]["text"] == f"answer {i}"
    stored = N - 1
    assert counts["route:greeting"] + counts["route:courses"] == stored
    assert counts["outcome:answered"] == stored
    assert counts["guide:shown"] == stored
    assert counts["insight_rows"] == stored


def test_a_bad_write_fails_only_its_own_answer_when_stored_together(settings: Settings) -> None:

    async def broken(s: AsyncSession) -> None:
        await add_unanswered(s, "lost")
        raise RuntimeError("the database refused the handler's change")

    def kept(n: int) -> Callable[[AsyncSession], Any]:
        async def write(s: AsyncSession) -> None:
            await add_unanswered(s, f"kept {n}")

        return write

    async def scenario() -> tuple[list[BaseException | None], list[str], list[str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            await seed_rows(db, lambda i: "processing")
            outbox = {"messages": [Text("ok").to_line()], "state": None}
            results = await asyncio.gather(
                *(
                    store.sending(f"ev-{i}", outbox, "reply", "k", [broken if i == 7 else kept(i)])
                    for i in range(N)
                ),
                return_exceptions=True,
            )
            async with db.session() as s:
                texts = sorted(await s.scalars(select(Unanswered.text)))
                statuses = [
                    r.status
                    for r in await s.scalars(select(EventLog).order_by(EventLog.webhook_event_id))
                ]
            return list(results), texts, statuses
        finally:
            await db.close()

    results, texts, statuses = run(scenario())
    assert [isinstance(r, RuntimeError) for r in results] == [i == 7 for i in range(N)]
    assert texts == sorted(f"kept {i}" for i in range(N) if i != 7)  # "lost" rolled back
    by_id = dict(zip(sorted(f"ev-{i}" for i in range(N)), statuses, strict=True))
    assert by_id["ev-7"] == "processing"  # the retry runs the handler afresh
    assert all(v == "sending" for k, v in by_id.items() if k != "ev-7")


def test_answers_sent_together_are_marked_done_and_counted_once_by_way(
    settings: Settings,
) -> None:
    """Twelve answers finished at once, by reply and by push, and then again (a retry that
    finished the same answers): every row is done with its texts dropped, and each answer
    is counted once for ``bot quota``; a row no longer ``sending`` is neither changed nor
    counted (on PostgreSQL the mark and the count are one statement)."""

    async def scenario() -> tuple[dict[str, Any], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            # 3 failed for good: it is not the sending try's to finish
            await seed_rows(db, lambda i: "failed" if i == 3 else "sending", with_outbox=True)
            ways = ["push" if i % 3 == 0 else "reply" for i in range(N)]
            for _ in range(2):  # the second round: a retry finishing what is already done
                await asyncio.gather(*(store.finish(f"ev-{i}", delivery=ways[i]) for i in range(N)))
            async with db.session() as s:
                rows = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
                counts = {
                    f"{c.kind}:{c.key}": c.count
                    for c in await s.scalars(select(daily.DailyCount))
                    if c.kind == daily.DELIVERY
                }
            return rows, counts
        finally:
            await db.close()

    rows, counts = run(scenario())
    for i in range(N):
        row = rows[f"ev-{i}"]
        if i == 3:
            assert row.status == "failed" and row.outbox is not None
            continue
        assert row.status == "done", i
        assert row.outbox is None, i
        assert row.delivery == ("push" if i % 3 == 0 else "reply")
    assert counts == {"delivery:push": 3, "delivery:reply": 8}


def test_a_way_whose_count_fails_fails_only_its_own_answers_on_postgresql(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """On PostgreSQL each way (reply, push) is marked done and counted in a statement of its
    own: when the push statement fails, the replies finished with it are done and counted,
    and only the pushes fail (their retry finishes them; no reply is retried into a dead
    letter and an apology)."""
    settings = make_settings(database_url=pg_url)

    async def scenario() -> tuple[list[BaseException | None], dict[str, str], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            await seed_rows(db, lambda i: "sending", with_outbox=True)
            ways = ["push" if i % 2 else "reply" for i in range(N)]
            async with _refusing(db, "daily_counts", "NEW.key = 'push'", "push counter refused"):
                results = await asyncio.gather(
                    *(store.finish(f"ev-{i}", delivery=ways[i]) for i in range(N)),
                    return_exceptions=True,
                )
            statuses, counts = await _statuses_and_counts(db)
            return list(results), statuses, counts
        finally:
            await db.close()

    results, statuses, counts = run(scenario())
    # (all twelve wait for a carrier, then commit together: one statement per way)
    assert [r is None for r in results] == [i % 2 == 0 for i in range(N)]
    assert all("push counter refused" in str(r) for r in results[1::2])
    assert [statuses[f"ev-{i}"] for i in range(N)] == [
        "sending" if i % 2 else "done" for i in range(N)
    ]
    assert counts == {"reply": N // 2}


def test_merged_kinds_run_in_one_order_whatever_answer_came_first() -> None:
    """Two workers' shared transactions must take the counter rows' locks in the same
    order, or PostgreSQL deadlocks them (it did, under load, when kinds ran in the order
    they first appeared in a batch): other writes first, then the kinds by name."""
    calls: list[str] = []

    def kind(name: str) -> Any:
        async def run_all(cls: type, s: AsyncSession, changes: Sequence[Any]) -> None:
            calls.append(f"{name} " + ",".join(str(c.n) for c in changes))

        namespace: dict[str, Any] = {"run_all": classmethod(run_all)}
        return dataclasses.make_dataclass(
            name, [("n", int)], bases=(MergedWrite,), namespace=namespace
        )

    Zeta, Alpha = kind("zeta"), kind("alpha")

    async def other(s: AsyncSession) -> None:
        calls.append("other")

    async def scenario(batch: list[list[Any]]) -> list[str]:
        calls.clear()
        await run_together(cast(AsyncSession, None), batch)
        return list(calls)

    one = run(scenario([[Zeta(1), other], [Alpha(2), Zeta(3)]]))
    two = run(scenario([[Alpha(2)], [Zeta(1), Zeta(3), other]]))
    assert one == ["other", "alpha 2", "zeta 1,3"]
    assert two == ["other", "alpha 2", "zeta 1,3"]


def test_two_tries_of_one_event_decided_at_once_store_one_answer(settings: Settings) -> None:
    """A worker that lost a chat's lock and the retry that took it may decide the same
    event at the same moment: one answer is stored (with its writes, once), the other try
    is refused and must not send."""

    async def scenario() -> tuple[list[Any], dict[str, int], Any]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                s.add(
                    EventLog(
                        webhook_event_id="ev-twice",
                        chat_id=user_id("twice"),
                        event_type="message",
                        event_ts=1,
                        status="processing",
                        attempts=1,
                    )
                )
            results = await asyncio.gather(
                *(
                    store.sending(
                        "ev-twice",
                        {"messages": [Text(f"try {n}").to_line()], "state": None},
                        "reply",
                        "k",
                        [daily.TurnCount(DAY, "greeting", daily.ANSWERED)],
                    )
                    for n in (1, 2)
                ),
                return_exceptions=True,
            )
            async with db.session() as s:
                counts = {c.key: c.count for c in await s.scalars(select(daily.DailyCount))}
                row = await s.get(EventLog, "ev-twice")
            return list(results), counts, row.outbox if row else None
        finally:
            await db.close()

    results, counts, outbox = run(scenario())
    assert sorted(type(r).__name__ for r in results) == ["AlreadyDecided", "NoneType"]
    assert counts == {"greeting": 1, "answered": 1}
    stored = 1 if results[0] is None else 2
    assert outbox["messages"][0]["text"] == f"try {stored}"


@contextlib.asynccontextmanager
async def _refusing(db: Database, table: str, when: str, message: str) -> AsyncIterator[None]:
    """PostgreSQL refuses to insert the rows of ``table`` matching ``when`` (a trigger that
    raises ``message``) until the block ends."""
    name = f"refuse_{table}"
    async with db.engine.begin() as conn:
        await conn.execute(
            sqlalchemy.text(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS "
                f"$$ BEGIN RAISE EXCEPTION '{message}'; END $$"
            )
        )
        await conn.execute(
            sqlalchemy.text(
                f"CREATE TRIGGER {name} BEFORE INSERT ON {table} FOR EACH ROW "
                f"WHEN ({when}) EXECUTE FUNCTION {name}()"
            )
        )
    try:
        yield
    finally:
        async with db.engine.begin() as conn:
            await conn.execute(sqlalchemy.text(f"DROP TRIGGER IF EXISTS {name} ON {table}"))
            await conn.execute(sqlalchemy.text(f"DROP FUNCTION IF EXISTS {name}()"))


def _delivery_counts(rows: Sequence[daily.DailyCount]) -> dict[str, int]:
    return {c.key: c.count for c in rows if c.kind == daily.DELIVERY}


async def _statuses_and_counts(db: Database) -> tuple[dict[str, str], dict[str, int]]:
    """Each event-log row's status, and the day's answers counted per way."""
    async with db.session() as s:
        statuses = {r.webhook_event_id: r.status for r in await s.scalars(select(EventLog))}
        counts = _delivery_counts(list(await s.scalars(select(daily.DailyCount))))
    return statuses, counts


async def _finishing(
    db: Database, store: EventLogStore, ways: Sequence[str], first: int = 0
) -> tuple[list[str], list[asyncio.Future[None]]]:
    """Rows ``ev-*`` in ``sending`` (seeded unless ``first``), the statements sent from now on
    (a list that fills), and the finishes of answers ``first``… under way: waiting for a
    statement to carry them."""
    if not first:
        await seed_rows(db, lambda i: "sending", with_outbox=True)
    statements: list[str] = []
    sqlalchemy.event.listen(
        db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
    )
    finishing = [
        asyncio.ensure_future(store.finish(f"ev-{i}", delivery=way))
        for i, way in enumerate(ways)
        if i >= first
    ]
    await asyncio.sleep(0)
    return statements, finishing


def test_answers_finished_meanwhile_are_marked_done_by_the_next_events_record(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """PostgreSQL, below full load: answers that finish are marked done and counted by the
    statement recording the next event, not by a transaction of their own; each ``finish``
    returns once its row is done, each answer is counted once, and a retry's finish of the
    same answers changes and counts nothing."""
    settings = make_settings(database_url=pg_url)
    newcomer = InboundEvent.from_dict(text_event("สวัสดี", user_id("next")))

    async def scenario() -> tuple[list[str], dict[str, EventLog], dict[str, int], Recorded]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            ways = ["push" if i % 4 == 0 else "reply" for i in range(N)]
            statements, finishing = await _finishing(db, store, ways)
            recorded = await store.record(newcomer, 1)
            await asyncio.gather(*finishing)
            await asyncio.gather(*(store.finish(f"ev-{i}", delivery=ways[i]) for i in range(N)))
            async with db.session() as s:
                rows = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
                counts = _delivery_counts(list(await s.scalars(select(daily.DailyCount))))
            return statements, rows, counts, recorded
        finally:
            await db.close()

    statements, rows, counts, recorded = run(scenario())
    first_round = statements[:1]  # the record, carrying all twelve
    assert len([s for s in statements if "INSERT INTO event_log" in s]) == 1
    assert "marked AS" in first_round[0] and "INSERT INTO event_log" in first_round[0]
    assert recorded.status == "processing" and recorded.user_pk is not None
    for i in range(N):
        row = rows[f"ev-{i}"]
        assert (row.status, row.outbox, row.delivery) == (
            "done",
            None,
            "push" if i % 4 == 0 else "reply",
        ), i
    assert counts == {"push": 3, "reply": 9}  # the retry's round counted nothing again


def test_done_marks_commit_on_their_own_when_no_event_comes_or_the_carrier_fails(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """PostgreSQL: with no next event an answer's mark commits on its own after the short
    wait; when the statement carrying marks fails (here the next event's own row is
    refused), the marks are handed back and still commit, counted once, while only that
    event's recording fails."""
    settings = make_settings(database_url=pg_url)
    refused_chat = user_id("refused")
    refused = InboundEvent.from_dict(text_event("สวัสดี", refused_chat))

    async def scenario() -> tuple[
        str, list[str], BaseException | None, dict[str, str], dict[str, int]
    ]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            await seed_rows(db, lambda i: "sending", with_outbox=True)
            await store.finish("ev-0", delivery="reply")  # nobody carries it: it commits alone
            async with db.session() as s:
                alone = (await s.get(EventLog, "ev-0") or EventLog()).status
            failed: BaseException | None = None
            async with _refusing(db, "event_log", f"NEW.chat_id = '{refused_chat}'", "refused"):
                statements, finishing = await _finishing(db, store, ["reply"] * N, first=1)
                try:
                    await store.record(refused, 1)
                except Exception as exc:
                    failed = exc
                await asyncio.wait_for(asyncio.gather(*finishing), 10)  # (not hang if lost)
            statuses, counts = await _statuses_and_counts(db)
            return alone, statements, failed, statuses, counts
        finally:
            await db.close()

    alone, statements, failed, statuses, counts = run(scenario())
    assert alone == "done"
    # the refused event's statement did carry the marks, and failed
    assert any("marked AS" in s and "INSERT INTO event_log" in s for s in statements)
    assert failed is not None and "refused" in str(failed)
    assert all(statuses[f"ev-{i}"] == "done" for i in range(N))
    assert counts == {"reply": N}


def test_events_recorded_together_carry_the_done_marks_in_their_transaction(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """PostgreSQL under load: events recorded in one shared transaction carry the answers
    finished meanwhile (no wait, no transaction of their own); each answer is done and
    counted once, and each event still gets its own row."""
    settings = make_settings(database_url=pg_url)
    events = [InboundEvent.from_dict(text_event("สวัสดี", user_id(f"busy-{i}"))) for i in range(N)]

    async def scenario() -> tuple[list[str], dict[str, str], dict[str, int], list[Recorded]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            statements, finishing = await _finishing(db, store, ["reply"] * N)
            recorded = await asyncio.gather(*(store.record(e, 1) for e in events))
            await asyncio.gather(*finishing)
            statuses, counts = await _statuses_and_counts(db)
            return statements, statuses, counts, list(recorded)
        finally:
            await db.close()

    statements, statuses, counts, recorded = run(scenario())
    written = [s for s in statements if not s.startswith("SELECT")]  # (not the check's reads)
    assert len(written) == 3, written  # the events, their users, the marks
    assert "marked AS" in written[2]
    assert all(statuses[f"ev-{i}"] == "done" for i in range(N))
    assert sum(1 for k in statuses if not k.startswith("ev-")) == N
    assert [r.status for r in recorded] == ["processing"] * N
    assert counts == {"reply": N}


def test_a_carrier_cut_off_by_the_commit_time_limit_hands_the_marks_back(
    make_settings: Callable[..., Settings], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: the statement carrying done marks hangs (here a slow trigger) until the
    group commit's time limit cancels it: only that event's recording fails; the marks it
    took commit on their own, each counted once."""
    monkeypatch.setattr(event_log, "COMMIT_SECONDS", 0.5)
    settings = make_settings(database_url=pg_url)
    slow_chat = user_id("slow")
    slow = InboundEvent.from_dict(text_event("สวัสดี", slow_chat))

    async def scenario() -> tuple[BaseException | None, dict[str, str], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.engine.begin() as conn:
                await conn.execute(
                    sqlalchemy.text(
                        "CREATE FUNCTION slow_event() RETURNS trigger LANGUAGE plpgsql AS "
                        "$$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$"
                    )
                )
                await conn.execute(
                    sqlalchemy.text(
                        "CREATE TRIGGER slow_event BEFORE INSERT ON event_log FOR EACH ROW "
                        f"WHEN (NEW.chat_id = '{slow_chat}') EXECUTE FUNCTION slow_event()"
                    )
                )
            _, finishing = await _finishing(db, store, ["reply"] * N)
            failed: BaseException | None = None
            try:
                await store.record(slow, 1)
            except BaseException as exc:  # (the time limit: TimeoutError)
                failed = exc
            await asyncio.wait_for(asyncio.gather(*finishing), 10)
            statuses, counts = await _statuses_and_counts(db)
            return failed, statuses, counts
        finally:
            async with db.engine.begin() as conn:
                await conn.execute(
                    sqlalchemy.text("DROP TRIGGER IF EXISTS slow_event ON event_log")
                )
                await conn.execute(sqlalchemy.text("DROP FUNCTION IF EXISTS slow_event()"))
            await db.close()

    failed, statuses, counts = run(scenario())
    assert isinstance(failed, TimeoutError)
    assert all(statuses[f"ev-{i}"] == "done" for i in range(N))
    assert slow.id not in statuses  # its recording was cut off: the retry records it
    assert counts == {"reply": N}


def test_an_events_own_done_mark_never_rides_in_its_own_recording(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """PostgreSQL: a second try of an event recorded while the first try's done mark waits
    (a chat lock lost under load) must not carry that mark: PostgreSQL would silently skip
    one of two changes to the same row in one statement, leaving the answer ``sending`` and
    uncounted while its finish reported done."""
    settings = make_settings(database_url=pg_url)
    again = InboundEvent.from_dict(text_event("สวัสดี", user_id(0), event_id="ev-0"))

    async def scenario() -> tuple[Recorded, dict[str, str], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            _, finishing = await _finishing(db, store, ["reply"] * N)
            recorded = await store.record(again, 2)
            await asyncio.wait_for(asyncio.gather(*finishing), 10)
            statuses, counts = await _statuses_and_counts(db)
            return recorded, statuses, counts
        finally:
            await db.close()

    recorded, statuses, counts = run(scenario())
    assert recorded.status == "sending"  # the second try resends the stored answer
    assert all(statuses[f"ev-{i}"] == "done" for i in range(N))
    assert counts == {"reply": N}


def test_a_mark_that_fails_fails_only_its_own_finish_not_the_event_carrying_it(
    make_settings: Callable[..., Settings], pg_url: str
) -> None:
    """PostgreSQL: when the carried marks are what fails (here their count is refused),
    the event carrying them is recorded all the same, and only those finishes fail (their
    retries finish them)."""
    settings = make_settings(database_url=pg_url)
    newcomer = InboundEvent.from_dict(text_event("สวัสดี", user_id("carrier")))

    async def scenario() -> tuple[Recorded, list[BaseException | None], dict[str, str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with _refusing(db, "daily_counts", "NEW.key = 'reply'", "count refused"):
                _, finishing = await _finishing(db, store, ["reply"] * N)
                recorded = await store.record(newcomer, 1)
                results = await asyncio.wait_for(
                    asyncio.gather(*finishing, return_exceptions=True), 10
                )
            async with db.session() as s:
                statuses = {r.webhook_event_id: r.status for r in await s.scalars(select(EventLog))}
            return recorded, list(results), statuses
        finally:
            await db.close()

    recorded, results, statuses = run(scenario())
    assert recorded.status == "processing" and statuses[newcomer.id] == "processing"
    assert all("count refused" in str(r) for r in results)
    assert all(statuses[f"ev-{i}"] == "sending" for i in range(N))


def test_an_events_record_brings_the_chats_latest_assessment(settings: Settings) -> None:
    """A handler asking for the writer's latest assessment (courses, a subscription's
    province, staff) gets the newest one with its answers and topics, or None for a user
    never assessed. On PostgreSQL it came with the event's record, so the turn sends no
    read of its own; SQLite (and a group's sender) read it then."""
    alice, bob, dave = user_id("assessed"), user_id("never-assessed"), user_id("in-a-group")
    now = utcnow()
    older = {"answers": {"q": "a"}, "stage": 1, "topics": ["start"], "province_code": "10"}
    newer = {"answers": {"q": "b", "n": 2}, "stage": 3, "topics": ["online", "export"]}
    group = {"type": "group", "groupId": "C" + "b" * 32, "userId": dave}
    events = [
        InboundEvent.from_dict(text_event("ดูคอร์ส", alice)),
        InboundEvent.from_dict(text_event("ดูคอร์ส", bob)),
        InboundEvent.from_dict(dict(text_event("ดูคอร์ส", dave), source=group)),
    ]

    async def scenario() -> tuple[list[Assessment | None], list[str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            async with db.session() as s, s.begin():
                s.add(
                    Assessment(line_user_id=alice, created_at=now - dt.timedelta(days=1), **older)
                )
                s.add(Assessment(line_user_id=alice, province_code="50", created_at=now, **newer))
                s.add(Assessment(line_user_id=dave, created_at=now, **older))
            reads: list[str] = []
            sqlalchemy.event.listen(
                db.engine.sync_engine,
                "before_cursor_execute",
                lambda *a: reads.append(a[2]) if a[2].lstrip().startswith("SELECT") else None,
            )
            found = []
            for event in events:
                row = await store.record(event, 1)
                turn = Turn(
                    event=event,
                    services=cast(Services, SimpleNamespace(db=db)),
                    state=DialogueState(),
                    assessments=dict(row.assessments),
                )
                found.append(await turn.latest_assessment(event.user_id or ""))
                found.append(await turn.latest_assessment(event.user_id or ""))  # asked twice
            return found, reads
        finally:
            await db.close()

    found, reads = run(scenario())
    mine, again, none, none_again, daves, _ = found
    assert mine is not None and again is mine
    assert (mine.stage, mine.topics, mine.answers, mine.province_code) == (
        3,
        ["online", "export"],
        {"q": "b", "n": 2},
        "50",
    )
    made = mine.created_at
    made = made if made.tzinfo else made.replace(tzinfo=dt.UTC)  # (SQLite keeps UTC, no zone)
    assert mine.line_user_id == alice and abs((made - now).total_seconds()) < 1
    assert none is None and none_again is None
    assert daves is not None and daves.stage == 1  # the sender's, not the group's
    on_postgres = settings.sqlalchemy_url.startswith("postgresql")
    # one read per user at most; none for a one-to-one chat on PostgreSQL
    assert len(reads) == (1 if on_postgres else 3), reads


def test_a_done_mark_added_late_in_the_wait_still_rides_with_a_later_record(
    make_settings: Callable[..., Settings], pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL: answers finishing one after another while events keep coming are all
    carried by records, also one that finishes just before the first one's wait ends (it
    waits about as long since the last record took the others), and none commits alone."""
    linger = 0.4
    monkeypatch.setattr(event_log, "DONE_LINGER_SECONDS", linger)
    settings = make_settings(database_url=pg_url)
    comers = [InboundEvent.from_dict(text_event("สวัสดี", user_id(f"late-{i}"))) for i in (1, 2)]

    async def scenario() -> tuple[list[str], dict[str, str], dict[str, int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            statements, first = await _finishing(db, store, ["reply"], first=0)
            await asyncio.sleep(linger / 2)
            await store.record(comers[0], 1)  # carries ev-0
            await asyncio.sleep(linger * 0.4)  # just before ev-0's wait would have ended
            late = asyncio.ensure_future(store.finish("ev-1", delivery="push"))
            await asyncio.sleep(linger * 0.35)  # ev-0's wait is over; ev-1's is not
            await store.record(comers[1], 1)  # carries ev-1
            await asyncio.wait_for(asyncio.gather(*first, late), 5)
            statuses, counts = await _statuses_and_counts(db)
            return statements, statuses, counts
        finally:
            await db.close()

    statements, statuses, counts = run(scenario())
    writes = [s for s in statements if "event_log" in s and not s.startswith("SELECT")]
    assert len(writes) == 2 and all("marked AS" in s for s in writes), writes
    assert (statuses["ev-0"], statuses["ev-1"]) == ("done", "done")
    assert counts == {"reply": 1, "push": 1}


def test_a_held_answer_is_stamped_and_forgotten_a_day_later(settings: Settings) -> None:
    """``hold`` keeps a late answer for its tap and stamps when (``held_at``, the column the
    hourly prune finds held answers by, without an index on ``status``): a day later the
    prune forgets it and its texts; an answer held an hour ago stays."""
    from bot.pipeline import held
    from bot.pipeline.process import HELD_KEEP_SECONDS, Pipeline

    async def scenario() -> tuple[dict[str, EventLog], set[str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            await seed_rows(db, lambda i: "sending" if i < 2 else "done", with_outbox=True)
            before = utcnow()
            await store.hold("ev-0")
            await store.hold("ev-1")
            await store.hold("ev-2")  # already done: not held
            async with db.session() as s:
                rows = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
            await store.hold("ev-3")  # (ev-3 was done: not held either)
            async with db.session() as s, s.begin():
                row = await s.get(EventLog, "ev-3")
                assert row is not None
                row.status, row.held_at = "held", utcnow()
            async with db.session() as s, s.begin():
                await held.taken("ev-3")(s)  # tapped for: done, out of the held answers
            async with db.session() as s:
                tapped = await s.get(EventLog, "ev-3")
                assert tapped is not None and tapped.status == "done" and tapped.held_at is None
            async with db.session() as s, s.begin():
                row = await s.get(EventLog, "ev-0")
                assert row is not None
                row.held_at = before - dt.timedelta(seconds=HELD_KEEP_SECONDS + 60)
            services = Services.build(settings)
            try:
                await Pipeline(services, messenger=None).prune()  # type: ignore[arg-type]
            finally:
                await services.close()
            async with db.session() as s:
                left = set((await s.scalars(select(EventLog.webhook_event_id))).all())
            return rows, left
        finally:
            await db.close()

    rows, left = run(scenario())
    for event_id in ("ev-0", "ev-1"):
        assert rows[event_id].status == "held" and rows[event_id].outbox is not None
        stamp = rows[event_id].held_at
        assert stamp is not None and abs((utcnow() - _aware(stamp)).total_seconds()) < 60
    assert rows["ev-2"].status == "done" and rows["ev-2"].held_at is None
    assert "ev-0" not in left  # held over a day: forgotten with its texts
    assert {"ev-1", "ev-2"} <= left


def _aware(moment: dt.datetime) -> dt.datetime:
    """SQLite hands back naive UTC times."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
