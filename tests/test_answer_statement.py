"""On PostgreSQL an answer whose writes only add rows (turn and guide counters, insight
moments) is stored in one statement (``bot.pipeline.answer_statement``). It must leave
exactly the rows the general way leaves: the same counters, and insight rows that take
each dimension from the moment, the named province or the person's latest assessment
alike; nothing at all when another try stored its answer first; and any other write still
goes the general way, in one transaction with the answer."""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.insights import capture, records
from bot.insights.records import InsightEvent
from bot.line.messages import Text
from bot.pipeline.event_log import AlreadyDecided, EventLogStore
from bot.settings import Settings
from bot.storage import daily
from bot.storage.db import Assessment, Database, EventLog, GuideStat, Unanswered, utcnow
from bot.storage.queries import GuideCount, UnansweredText
from tests.conftest import run
from tests.helpers import add_unanswered, user_id

DAY = dt.date(2026, 12, 7)
WITH_SECTOR, ODD_SECTOR, NO_ASSESSMENT = user_id("fused-a"), user_id("fused-b"), user_id("fused-c")
#: Has a province of their own, and names another in the message.
NAMES_ANOTHER = user_id("fused-d")
USERS = (WITH_SECTOR, ODD_SECTOR, NO_ASSESSMENT, NAMES_ANOTHER)


@pytest.fixture
def settings(make_settings: Callable[..., Settings], pg_url: str) -> Settings:
    return make_settings(database_url=pg_url)


def turn_writes(user: str, i: int) -> list[Any]:
    """A turn's writes of every kind the one statement takes, with moments whose
    dimensions come from everywhere a row can take them."""
    named = "50" if user == NAMES_ANOTHER else ""
    moments = capture.Moments(
        user,
        DAY,
        named,
        [
            capture.Moment(records.INTENT, "greeting"),  # every dimension from the profile
            capture.Moment(records.ASKED, "ขายออนไลน์" * 20),  # key cut to its column
            capture.Moment(
                records.ASSESSMENT_FINISHED, "x", province="901234", sector="s" * 40, stage=4
            ),  # its own dimensions (province cut to 2, sector to 32)
            capture.Moment(records.ASKED, "", province="", stage=0),  # "" and 0 are kept
        ],
    )
    return [
        daily.TurnCount(DAY, "courses", daily.ANSWERED),
        daily.TurnCount(DAY, "greeting" if i else "courses", daily.UNANSWERED),
        GuideCount("open-shop", "shown", DAY),
        GuideCount("open-shop" if i else "export", "helpful", DAY),
        moments,
    ]


def plain_writes(user: str, i: int) -> list[Any]:
    """The commonest turn: counted, one moment with no dimension of its own, no guide."""
    return [
        daily.TurnCount(DAY, "greeting", daily.ANSWERED),
        capture.moments(user, [capture.Moment(records.INTENT, "greeting")], DAY),
    ]


def counted_only(user: str, i: int) -> list[Any]:
    """A turn that records no moment (a group chat, the simulator): only its counters."""
    return [daily.TurnCount(DAY, "step:ask", daily.DID_YOU_MEAN)]


def not_understood(user: str, i: int) -> list[Any]:
    """A text the bot could not place: counted, a moment, and the text kept for operators
    (the first one longer than its column, with a confidence that is not a number)."""
    text = "ร้านกาแฟ" * 100 if i == 0 else f"ถามเรื่องที่ {i}"
    return [
        daily.TurnCount(DAY, "fallback", daily.UNANSWERED),
        capture.moments(user, [capture.Moment(records.UNANSWERED, "greeting")], DAY),
        UnansweredText.of(
            text, "greeting" if i else "x" * 80, math.nan if i == 0 else 0.25 * i, "open-shop"
        ),
    ]


def no_writes(user: str, i: int) -> list[Any]:
    return []


SHAPES: dict[str, Callable[[str, int], list[Any]]] = {
    "full": turn_writes,
    "plain": plain_writes,
    "counted": counted_only,
    "not_understood": not_understood,
    "none": no_writes,
}


async def seed(db: Database, ids: list[str]) -> None:
    """Two assessments (the later counts) for one person, one with a sector that is not a
    text for another, none for the third, one with no sector for the fourth; an event row
    in ``processing`` for each id."""
    old = utcnow() - dt.timedelta(days=3)
    profiles: list[tuple[str, dict[str, Any], int, str | None, dt.datetime | None]] = [
        (WITH_SECTOR, {"sector": "crafts"}, 1, "11", old),
        (WITH_SECTOR, {"sector": "food"}, 3, "10", None),
        (ODD_SECTOR, {"sector": 7}, 2, None, None),
        (NAMES_ANOTHER, {}, 5, "20", None),
    ]
    async with db.session() as s, s.begin():
        for user, answers, stage, province, at in profiles:
            assessment = Assessment(
                line_user_id=user, answers=answers, stage=stage, topics=[], province_code=province
            )
            if at is not None:
                assessment.created_at = at
            s.add(assessment)
        for event_id in ids:
            s.add(
                EventLog(
                    webhook_event_id=event_id,
                    chat_id="c",
                    event_type="message",
                    event_ts=1,
                    status="processing",
                    attempts=1,
                )
            )


async def written(db: Database) -> tuple[list[tuple[Any, ...]], dict[str, int], dict[str, Any]]:
    """Every insight row (without id and time), counter and guide counter, then empties
    them for the next round."""
    async with db.session() as s, s.begin():
        rows = sorted(
            (r.day, r.line_user_id, r.kind, r.province, r.sector, r.stage, r.key)
            for r in await s.scalars(select(InsightEvent))
        )
        counts = {f"{c.kind}:{c.key}": c.count for c in await s.scalars(select(daily.DailyCount))}
        guides = {
            g.guide_id: (g.shown, g.offered, g.helpful, g.unhelpful)
            for g in await s.scalars(select(GuideStat))
        }
        for table in (InsightEvent, daily.DailyCount, GuideStat):
            await s.execute(delete(table))
    return rows, counts, guides


async def stored_at_once(
    store: EventLogStore, ids: list[str], writes: Callable[[int], list[Any]]
) -> list[BaseException | None]:
    """Store an answer for each id at once (they share the commits), the i-th with
    ``writes(i)``: each answer's outcome."""
    ok = {"messages": [Text("ok").to_line()], "state": None}
    return list(
        await asyncio.gather(
            *(store.sending(e, ok, "reply", "k", writes(i)) for i, e in enumerate(ids)),
            return_exceptions=True,
        )
    )


async def kept_texts(db: Database) -> list[tuple[Any, ...]]:
    """Every unanswered text kept (without id), then empties them for the next round."""
    async with db.session() as s, s.begin():
        found = sorted(
            (u.text, u.best_intent, u.confidence, u.best_guide)
            for u in await s.scalars(select(Unanswered))
        )
        await s.execute(delete(Unanswered))
    return found


def test_one_statement_writes_what_the_general_way_writes(settings: Settings) -> None:
    """Every shape of turn, for people with every kind of profile: the same rows both ways,
    in one statement per answer."""

    texts: dict[str, list[tuple[Any, ...]]] = {}

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], list[int], list[int]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        statements: list[str] = []
        sqlalchemy.event.listen(
            db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        ids = [
            f"{way}-{shape}-{i}"
            for way in ("one", "general")
            for shape in SHAPES
            for i in range(len(USERS))
        ]
        try:
            await seed(db, ids)
            per_answer: dict[str, list[int]] = {"one": [], "general": []}
            results: dict[str, dict[str, Any]] = {"one": {}, "general": {}}
            for way in ("one", "general"):
                store._postgres = way == "one"  # (off: the general way, as on SQLite)
                for shape, writes in SHAPES.items():
                    for i, user in enumerate(USERS):
                        before = len(statements)
                        outbox = {"messages": [Text(f"{way} {i}").to_line()], "state": None}
                        await store.sending(
                            f"{way}-{shape}-{i}", outbox, "reply", f"k-{i}", writes(user, i)
                        )
                        per_answer[way].append(len(statements) - before)
                    results[way][shape] = await written(db)
                    if shape == "not_understood":
                        texts[way] = await kept_texts(db)
            async with db.session() as s:
                stored = {r.webhook_event_id: r for r in await s.scalars(select(EventLog))}
            assert all(r.status == "sending" for r in stored.values())
            one = stored["one-full-2"]
            assert one.outbox["messages"][0]["text"] == "one 2"
            assert one.retry_key == "k-2" and one.delivery == "reply"
            return results["one"], results["general"], per_answer["one"], per_answer["general"]
        finally:
            await db.close()

    one, general, one_statements, general_statements = run(scenario())
    assert one_statements == [1] * len(SHAPES) * len(USERS)
    # the general way: the update, the profile, one insert per kind (and BEGIN, COMMIT)
    assert general_statements[: len(USERS)] == [5] * len(USERS)
    assert one == general
    rows, counts, guides = one["full"]
    by_user = {(r[1], r[2], r[6][:5]): r for r in rows}
    # the latest assessment's dimensions; a province the message names wins over their own
    assert by_user[(WITH_SECTOR, records.INTENT, "greet")][3:6] == ("10", "food", 3)
    assert by_user[(ODD_SECTOR, records.INTENT, "greet")][3:6] == ("", "", 2)
    assert by_user[(NO_ASSESSMENT, records.INTENT, "greet")][3:6] == ("", "", 0)
    assert by_user[(NAMES_ANOTHER, records.INTENT, "greet")][3:6] == ("50", "", 5)
    assert by_user[(NO_ASSESSMENT, records.ASSESSMENT_FINISHED, "x")][3:6] == ("90", "s" * 32, 4)
    assert by_user[(NAMES_ANOTHER, records.ASKED, "")][3:6] == ("", "", 0)  # its own "" and 0
    assert len(by_user[(WITH_SECTOR, records.ASKED, "ขายออ")][6]) == records.KEY_CHARS
    assert counts == {
        "route:courses": 5,
        "route:greeting": 3,
        "outcome:answered": 4,
        "outcome:unanswered": 4,
    }
    assert guides == {"open-shop": (4, 0, 3, 0), "export": (0, 0, 1, 0)}
    plain_rows, plain_counts, plain_guides = one["plain"]
    assert sorted(r[3:6] for r in plain_rows) == [
        ("", "", 0),
        ("", "", 2),
        ("10", "food", 3),
        ("20", "", 5),
    ]
    assert plain_counts == {"route:greeting": 4, "outcome:answered": 4} and plain_guides == {}
    assert one["counted"] == ([], {"route:step:ask": 4, "outcome:did_you_mean": 4}, {})
    assert one["none"] == ([], {}, {})
    # texts the bot could not place: kept alike both ways, each field cut to its column
    assert texts["one"] == texts["general"]
    assert sorted(t[0] for t in texts["one"]) == sorted(
        [("ร้านกาแฟ" * 100)[:500], "ถามเรื่องที่ 1", "ถามเรื่องที่ 2", "ถามเรื่องที่ 3"]
    )
    cut = next(t for t in texts["one"] if t[0].startswith("ร้าน"))
    assert cut[1:] == ("x" * 64, None, "open-shop")  # NaN kept as no confidence
    assert one["not_understood"][1] == {"route:fallback": 4, "outcome:unanswered": 4}


def test_answers_decided_at_once_share_one_statement_and_write_the_same(
    settings: Settings,
) -> None:
    """Under load the answers decided while one was being stored go together: every
    shape for every person in one statement after the first, each answer with its own
    outbox, the same rows as the general way's shared transaction; an answer another try
    stored first is refused alone and writes nothing."""
    answers = [(shape, i, user) for shape in SHAPES for i, user in enumerate(USERS)]

    def outbox(event_id: str) -> dict[str, Any]:
        return {"messages": [Text(f"answer of {event_id}").to_line()], "state": None}

    async def together(store: EventLogStore, way: str) -> list[Any]:
        return await asyncio.gather(
            *(
                store.sending(
                    f"{way}-{s}-{i}",
                    outbox(f"{way}-{s}-{i}"),
                    "reply",
                    f"k-{i}",
                    SHAPES[s](user, i),
                )
                for s, i, user in answers
            ),
            store.sending(f"{way}-taken", outbox("x"), "reply", "k", turn_writes(WITH_SECTOR, 0)),
            return_exceptions=True,
        )

    async def scenario() -> tuple[dict[str, Any], dict[str, int], dict[str, list[Any]], Any]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        statements: list[str] = []
        sqlalchemy.event.listen(
            db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        ways = ("one", "general")
        ids = [f"{way}-{s}-{i}" for way in ways for s, i, _ in answers]
        try:
            await seed(db, [*ids, *(f"{way}-taken" for way in ways)])
            async with db.session() as s, s.begin():
                for way in ways:
                    row = await s.get(EventLog, f"{way}-taken")
                    assert row is not None
                    row.status = "sending"  # another try stored its answer first
            results: dict[str, Any] = {}
            counted: dict[str, int] = {}
            outcomes: dict[str, list[Any]] = {}
            for way in ways:
                store._postgres = way == "one"  # (off: the general way, as on SQLite)
                before = len(statements)
                outcomes[way] = await together(store, way)
                counted[way] = len(statements) - before
                results[way] = await written(db)
            async with db.session() as s:
                texts = {
                    r.webhook_event_id: r.outbox["messages"][0]["text"]
                    for r in await s.scalars(select(EventLog))
                    if r.outbox is not None and r.status == "sending"
                }
            return results, counted, outcomes, texts
        finally:
            await db.close()

    results, statements, outcomes, texts = run(scenario())
    assert statements["one"] <= 2  # the first answer alone, the others in one statement
    assert statements["general"] > 4  # BEGIN, the claim, outboxes, profiles, one per kind
    for way in ("one", "general"):
        names = [type(o).__name__ for o in outcomes[way]]
        assert names == ["NoneType"] * len(answers) + ["AlreadyDecided"]
    assert results["one"] == results["general"]
    assert results["one"][1]["outcome:answered"] == 2 * len(USERS)  # the refused one is not
    stored = {k: v for k, v in texts.items() if k.startswith("one-")}
    assert stored == {f"one-{s}-{i}": f"answer of one-{s}-{i}" for s, i, _ in answers}


def test_an_answer_the_one_statement_cannot_take_sends_its_batch_the_general_way(
    settings: Settings,
) -> None:
    """A handler's own write among answers decided at once sends the whole batch the
    general way, and a NUL character in an answer (``json_to_recordset`` cannot decode
    one) sends that answer: every answer and write is stored all the same."""

    async def unanswered(s: AsyncSession) -> None:
        await add_unanswered(s, "คำถามใหม่")

    async def scenario() -> tuple[list[Any], list[str], dict[str, int], str]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        ids = [f"mixed-{i}" for i in range(6)]
        try:
            await seed(db, [*ids, "nul"])
            outcomes = await stored_at_once(
                store,
                ids,
                lambda i: [
                    *plain_writes(USERS[i % len(USERS)], i),
                    *([unanswered] if i == 2 else []),
                ],
            )
            odd = {"messages": [Text("before\x00after").to_line()], "state": None}
            await store.sending("nul", odd, "reply", "k", plain_writes(WITH_SECTOR, 0))
            async with db.session() as s:
                texts = list(await s.scalars(select(Unanswered.text)))
                kept = await s.get(EventLog, "nul")
                odd_text = kept.outbox["messages"][0]["text"] if kept and kept.outbox else ""
            _rows, counts, _ = await written(db)
            return list(outcomes), texts, counts, odd_text
        finally:
            await db.close()

    outcomes, texts, counts, odd_text = run(scenario())
    assert outcomes == [None] * 6
    assert texts == ["คำถามใหม่"]
    assert counts == {"route:greeting": 7, "outcome:answered": 7}
    assert odd_text == "before\x00after"


def test_an_answer_decided_first_elsewhere_leaves_no_write(settings: Settings) -> None:
    async def scenario() -> tuple[Any, Any]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        try:
            await seed(db, ["late"])
            async with db.session() as s, s.begin():
                row = await s.get(EventLog, "late")
                assert row is not None
                row.status = "sending"  # the other try stored its answer first
            outbox = {"messages": [Text("late").to_line()], "state": None}
            with pytest.raises(AlreadyDecided):
                await store.sending("late", outbox, "reply", "k", turn_writes(WITH_SECTOR, 0))
            async with db.session() as s:
                kept = await s.get(EventLog, "late")
            return await written(db), kept.outbox if kept else "gone"
        finally:
            await db.close()

    left, outbox = run(scenario())
    assert left == ([], {}, {})
    assert outbox is None  # the other try's row is untouched


def test_a_handlers_own_write_goes_the_general_way_in_the_answers_transaction(
    settings: Settings,
) -> None:
    """A write the statement cannot take (here an unanswered question, and a moment about
    the last notice) is stored with the counters in one transaction, as before."""

    async def unanswered(s: AsyncSession) -> None:
        await add_unanswered(s, "คำถามใหม่")

    async def scenario() -> tuple[list[str], Any, int, int]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        statements: list[str] = []
        sqlalchemy.event.listen(
            db.engine.sync_engine, "before_cursor_execute", lambda *a: statements.append(a[2])
        )
        try:
            await seed(db, ["own", "notice"])
            outbox = {"messages": [Text("ok").to_line()], "state": None}
            await store.sending(
                "own", outbox, "reply", "k", [unanswered, *turn_writes(WITH_SECTOR, 0)]
            )
            before = len(statements)
            notice = capture.Moments(
                WITH_SECTOR, DAY, "", [capture.Moment(records.INTENT, last_notice=True)]
            )
            await store.sending("notice", outbox, "reply", "k", [notice])
            async with db.session() as s:
                texts = list(await s.scalars(select(Unanswered.text)))
            rows, counts, _ = await written(db)
            return texts, counts, len(statements) - before, len(rows)
        finally:
            await db.close()

    texts, counts, notice_statements, insight_rows = run(scenario())
    assert texts == ["คำถามใหม่"]
    assert counts["outcome:answered"] == 1
    assert notice_statements > 1  # the last notice is read the general way
    assert insight_rows == 4 + 1


def test_an_unanswered_text_the_database_refuses_costs_no_answer(settings: Settings) -> None:
    """The one statement fails as a whole when the database refuses a write in it (here a
    trigger refuses one unanswered text): those answers are then stored the general way,
    where the text's savepoint lets every answer through and keeps every other text."""
    from tests.test_event_log_groups import _refusing

    async def scenario() -> tuple[list[Any], list[str], dict[str, str]]:
        db = Database(settings.sqlalchemy_url)
        store = EventLogStore(db)
        ids = [f"refused-{i}" for i in range(4)]
        try:
            await seed(db, ids)
            async with _refusing(db, "unanswered", "NEW.text = 'refused'", "no room"):
                outcomes = await stored_at_once(
                    store,
                    ids,
                    lambda i: [
                        *not_understood(USERS[i], i + 1),
                        UnansweredText.of("refused" if i == 1 else f"kept {i}", None, None),
                    ],
                )
            async with db.session() as s:
                texts = sorted(await s.scalars(select(Unanswered.text)))
                statuses = {r.webhook_event_id: r.status for r in await s.scalars(select(EventLog))}
            return list(outcomes), texts, statuses
        finally:
            await db.close()

    outcomes, texts, statuses = run(scenario())
    assert outcomes == [None] * 4
    assert statuses == {f"refused-{i}": "sending" for i in range(4)}
    assert "refused" not in texts
    assert {"kept 0", "kept 2", "kept 3"} <= set(texts)
