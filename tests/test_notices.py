"""Push notices against the fake LINE API and real PostgreSQL: exact, once, within quota.

Every test makes a few courses "new" (the rest of the shipped courses are
marked as announced long ago), inserts subscribers straight into the
database, runs a notice run and checks what LINE delivered to whom.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import io
import json
import os
import random
import shutil
import signal
import subprocess
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from bot.insights import records
from bot.insights.records import InsightEvent
from bot.kb.loader import load_knowledge
from bot.kb.queries import availability
from bot.kb.schemas import Course
from bot.notices.command import notify
from bot.notices.quiet import QuietHours
from bot.notices.runner import NoticeRunner, RunReport
from bot.notices.select import Offer, Subscriber, group, plan, reaches, stage_fits
from bot.services import Services
from bot.settings import Settings
from bot.storage.db import NoticeBatch, NoticeCourse, NoticeDelivery, NoticeRun, Subscription, User
from bot.storage.migrate import upgrade
from tests.fakeline import FakeLine
from tests.helpers import ROOT, WorkerThread, bot_database, spawn_bot, user_id, wait_until

KB = load_knowledge(ROOT / "knowledge").knowledge
assert KB is not None
#: Courses that can still be announced, with a topic each, in a stable order.
OPEN = [c for c in KB.courses if availability(c.schedule) != "closed"]


@pytest.fixture
def settings(make_settings: Callable[..., Settings], pg_url: str) -> Settings:
    return make_settings(
        database_url=pg_url,
        notify_quiet_hours="",
        notify_interval_seconds=0,
        line_backoff_seconds=0.05,
    )


@pytest.fixture
def db(settings: Settings) -> Iterator[Engine]:
    with bot_database(settings) as engine:
        yield engine


def only_new(db: Engine, *course_ids: str) -> None:
    """Every other course counts as announced long ago."""
    old = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    with db.begin() as conn:
        conn.execute(
            insert(NoticeCourse),
            [
                {"course_id": c.id, "first_seen_at": old, "done_at": old}
                for c in KB.courses
                if c.id not in course_ids
            ],
        )


def subscribe(
    db: Engine,
    users: list[str],
    topics: list[str],
    provinces: list[str] | None = None,
    *,
    active: bool = True,
    following: bool = True,
) -> None:
    with db.begin() as conn:
        conn.execute(insert(User), [{"line_user_id": u, "following": following} for u in users])
        conn.execute(
            insert(Subscription),
            [
                {
                    "line_user_id": u,
                    "topics": topics,
                    "provinces": provinces or [],
                    "stage": None,
                    "active": active,
                }
                for u in users
            ],
        )


def one_new_course(db: Engine, name: str, count: int) -> tuple[Course, list[str]]:
    """The first open course is the only new one, and ``count`` users (``name`` and a
    number) subscribe to its first topic."""
    course = OPEN[0]
    only_new(db, course.id)
    users = [user_id(f"{name}{i}") for i in range(count)]
    subscribe(db, users, [course.topics[0]])
    return course, users


def run_notices(settings: Settings, dry_run: bool = False) -> RunReport:
    async def go() -> RunReport:
        services = Services.build(settings)
        try:
            return await NoticeRunner(services, services.line_client()).run(dry_run=dry_run)
        finally:
            await services.close()

    return asyncio.run(go())


def recipients(fake: FakeLine) -> Counter[str]:
    """How many notice *deliveries* (first message of each call) each user got."""
    got: Counter[str] = Counter()
    for rec in fake.calls("multicast"):
        got.update(rec.body["to"])
    for rec in fake.calls("push"):
        got[rec.body["to"]] += 1
    return got


def test_1234_subscribers_get_one_course_in_three_multicasts(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    course, users = one_new_course(db, "n", 1234)

    report = run_notices(settings)

    calls = fake_line.calls("multicast")
    assert sorted(len(c.body["to"]) for c in calls) == [234, 500, 500]
    assert report.sent == 1234 and report.calls == report.minimum_calls == 3
    got = recipients(fake_line)
    assert set(got) == set(users) and set(got.values()) == {1}
    # What a user reads: the course by name, and its card.
    first = calls[0].body["messages"]
    assert course.name.th in first[0]["text"] and first[1]["type"] == "flex"
    # Every key was stored before the call and every delivery logged per user and course.
    with db.connect() as conn:
        keys = set(conn.scalars(select(NoticeBatch.retry_key)))
        logged = conn.execute(select(NoticeDelivery.line_user_id, NoticeDelivery.course_id)).all()
    assert keys == {c.headers["x-line-retry-key"] for c in calls}
    assert sorted(logged) == sorted((u, course.id) for u in users)

    # A second run right after sends nothing.
    again = run_notices(settings)
    assert again.sent == 0 and len(fake_line.calls("multicast")) == 3


def test_crash_after_the_first_call_and_a_rerun_reach_nobody_twice(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    _, users = one_new_course(db, "c", 1234)
    # Slow sending (2 calls/s, one at a time) so the test can act between calls.
    slow = {"NOTIFY_CONCURRENCY": "1", "NOTIFY_RATE_PER_SECOND": "2"}
    proc = spawn_bot(
        settings, "notify", extra_env=slow, stderr=subprocess.DEVNULL, new_session=True
    )
    try:
        wait_until(lambda: len(fake_line.calls("multicast")) >= 1, timeout=60)
        # The second call is accepted by LINE but its answer never reaches the process,
        # which is killed meanwhile: the worst moment for a crash.
        fake_line.hang_next("multicast", 3, after_effect=True)
        wait_until(lambda: len(fake_line.calls("multicast", None)) >= 2, timeout=30)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    with db.connect() as conn:
        states = Counter(conn.scalars(select(NoticeBatch.status)))
    assert states == {"sent": 1, "pending": 2}

    report = run_notices(settings)

    # The two pending batches were resent with their stored keys: LINE had accepted
    # one of them (409, counted as sent) and delivers the other now.
    assert report.recovered == 734 and report.sent == 734
    assert len(fake_line.calls("multicast", 409)) == 1
    wait_until(lambda: not fake_line.calls("multicast", 0), timeout=10)  # the hung answer
    got = Counter[str]()
    for to, _message in fake_line.delivered():
        got[to] += 1
    # Two messages (text + cards) per delivery; every user exactly one delivery.
    assert set(got) == set(users) and set(got.values()) == {2}


def test_429_then_success_backs_off_and_sends_once(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    one_new_course(db, "r", 20)
    fake_line.fail_next("multicast", 429, retry_after=0.2)

    report = run_notices(settings)

    assert len(fake_line.calls("multicast", 429)) == 1
    assert report.sent == 20 and report.failed == 0
    assert set(recipients(fake_line).values()) == {1}


def test_quota_running_out_stops_there_and_the_rest_waits(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    _, users = one_new_course(db, "q", 1234)
    fake_line.quota_limit = 1000

    first = run_notices(settings)
    assert first.sent == 1000 and first.held_quota == 234
    assert fake_line.quota_usage == 1000 and fake_line.calls("multicast", 429) == []

    second = run_notices(settings)  # nothing left this month
    assert second.sent == 0 and second.held_quota == 234

    fake_line.quota_limit = 5000  # a raised quota (or a new month)
    third = run_notices(settings)
    assert third.sent == 234
    got = recipients(fake_line)
    assert set(got) == set(users) and set(got.values()) == {1}


def test_quiet_hours_defer_until_they_end(
    make_settings: Callable[..., Settings], pg_url: str, db: Engine, fake_line: FakeLine
) -> None:
    one_new_course(db, "z", 5)
    hour = dt.datetime.now(QuietHours.parse("21-08").zone).hour
    night = make_settings(
        database_url=pg_url,
        notify_quiet_hours=f"{hour:02d}-{(hour + 2) % 24:02d}",
        notify_interval_seconds=0,
    )

    deferred = run_notices(night)
    assert deferred.sent == 0 and deferred.deferred_quiet == 5
    assert fake_line.calls("multicast", None) == [] and fake_line.calls("push", None) == []

    morning = make_settings(database_url=pg_url, notify_quiet_hours="", notify_interval_seconds=0)
    assert run_notices(morning).sent == 5


def test_unsubscribed_and_unfollowed_users_never_receive(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    course = OPEN[0]
    only_new(db, course.id)
    topic = course.topics[0]
    keen = [user_id(f"k{i}") for i in range(3)]
    stopped = [user_id(f"s{i}") for i in range(3)]
    blocked = [user_id(f"b{i}") for i in range(3)]
    subscribe(db, keen, [topic])
    subscribe(db, stopped, [topic], active=False)
    subscribe(db, blocked, [topic], following=False)
    other = [user_id("other-topic")]
    subscribe(db, other, [t for t in KB.topics if t not in course.topics][:1])

    run_notices(settings)

    assert set(recipients(fake_line)) == set(keen)


def test_a_user_matching_several_courses_gets_one_digest(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    a, b = OPEN[0], next(c for c in OPEN[1:] if c.places.nationwide or c.format == "online")
    only_new(db, a.id, b.id)
    both = user_id("both")
    subscribe(db, [both], sorted({a.topics[0], b.topics[0]}))

    report = run_notices(settings)

    pushes = fake_line.calls("push")
    assert len(pushes) == 1 and fake_line.calls("multicast", None) == []
    body = pushes[0].body
    assert body["to"] == both
    cards = body["messages"][1]["contents"]
    assert cards["type"] == "carousel" and len(cards["contents"]) == 2
    assert report.sent == 1
    with db.connect() as conn:
        logged = {r[0] for r in conn.execute(select(NoticeDelivery.course_id))}
    assert logged == {a.id, b.id}


def test_one_notice_per_user_per_day(settings: Settings, db: Engine, fake_line: FakeLine) -> None:
    a, b = OPEN[0], OPEN[1]
    only_new(db, a.id)
    user = user_id("daily")
    subscribe(db, [user], sorted(set(a.topics) | set(b.topics)))
    assert run_notices(settings).sent == 1
    # The operators add another course the same day: it waits for tomorrow.
    with db.begin() as conn:
        conn.execute(
            update(NoticeCourse).where(NoticeCourse.course_id == b.id).values(done_at=None)
        )
    later = run_notices(settings)
    assert later.sent == 0 and later.deferred_daily == 1
    assert len(recipients(fake_line)) == 1


def test_dry_run_sends_nothing_and_explains(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    course, _ = one_new_course(db, "d", 7)

    out = io.StringIO()
    code = asyncio.run(notify(settings, out, dry_run=True, show_history=False, as_json=False))

    text = out.getvalue()
    assert code == 0
    assert f"{course.id}" in text and "7 user(s) would get it" in text
    assert f"topic {course.topics[0]}: 7" in text and "e.g. U" in text
    assert fake_line.calls("multicast", None) == [] and fake_line.calls("push", None) == []
    with db.connect() as conn:
        assert conn.scalars(select(NoticeBatch.retry_key)).all() == []
        assert conn.scalars(select(NoticeRun.id)).all() == []
    # The real run afterwards sends exactly what the preview promised.
    assert run_notices(settings).sent == 7


def test_history_lists_past_runs_with_counts(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    one_new_course(db, "h", 2)
    run_notices(settings)
    run_notices(settings)

    out = io.StringIO()
    asyncio.run(notify(settings, out, dry_run=False, show_history=True, as_json=False))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "sent 0" in lines[0] and "sent 2" in lines[1]


def test_quiet_hours_parse_and_wrap_midnight() -> None:
    q = QuietHours.parse("21-08")
    bkk = q.zone
    assert q.active(dt.datetime(2026, 1, 1, 23, 0, tzinfo=bkk))
    assert q.active(dt.datetime(2026, 1, 1, 7, 59, tzinfo=bkk))
    assert not q.active(dt.datetime(2026, 1, 1, 8, 0, tzinfo=bkk))
    assert not q.active(dt.datetime(2026, 1, 1, 20, 59, tzinfo=bkk))
    assert not QuietHours.parse("").active(dt.datetime(2026, 1, 1, 3, 0, tzinfo=bkk))
    with pytest.raises(ValueError):
        QuietHours.parse("nine to five")


def test_a_knowledge_reload_with_a_new_course_notifies_from_the_worker(
    make_shared_settings: Callable[..., Settings], db: Engine, fake_line: FakeLine, tmp_path: Path
) -> None:
    """Operators add a course; the reload reaches the worker, which sends the notice."""
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    settings = make_shared_settings(
        knowledge_dir=folder,
        notify_quiet_hours="",
        kb_watch=False,
        kb_poll_seconds=0.2,
    )
    only_new(db)  # every shipped course is old news
    source = OPEN[0]
    user = user_id("reload")
    subscribe(db, [user], [source.topics[0]])

    with WorkerThread(settings) as worker:
        # the worker serves its published start-up version before the operators edit: an
        # edit during its start-up publish would be refused there (FilesChanged) or loaded
        # at start, and the reload below would not be what brings the course
        assert worker.services is not None
        sync = worker.services.sync
        wait_until(lambda: sync.live_number is not None, timeout=60)
        doc = yaml.safe_load((folder / "courses.yaml").read_text(encoding="utf-8"))
        template = next(i for i in doc["items"] if i["id"] == source.id)
        added = copy.deepcopy(template)
        added["id"] = "course-added-by-operator"
        doc["items"].append(added)
        (folder / "courses.yaml").write_text(
            yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8"
        )

        async def reload() -> None:
            services = Services.build(settings)
            try:
                outcome = await services.reload_knowledge()
                assert outcome.problems == [], outcome.problems
            finally:
                await services.close()

        asyncio.run(reload())
        pushes = fake_line.wait_for("push", 1, timeout=30)

    assert pushes[0].body["to"] == user

    def logged() -> list[tuple[str, str]]:
        with db.connect() as conn:
            query = select(NoticeDelivery.line_user_id, NoticeDelivery.course_id)
            return [(row[0], row[1]) for row in conn.execute(query)]

    # the runner records deliveries once the call has returned: the push reaches LINE first
    assert wait_until(logged) == [(user, "course-added-by-operator")]


def test_batches_of_one_digest_carry_the_same_messages_and_are_logged_in_bulk(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    """Two courses, 1,234 users: three multicasts with byte-identical messages (the
    digest is built once), and 2,468 delivery rows written by far fewer statements."""
    a, b = OPEN[0], next(c for c in OPEN[1:] if c.places.nationwide or c.format == "online")
    only_new(db, a.id, b.id)
    users = [user_id(f"bulk{i}") for i in range(1234)]
    subscribe(db, users, sorted({a.topics[0], b.topics[0]}))

    report = run_notices(settings)

    calls = fake_line.calls("multicast")
    assert len(calls) == report.calls == report.minimum_calls == 3
    assert len({json.dumps(c.body["messages"], sort_keys=True) for c in calls}) == 1
    assert set(recipients(fake_line).values()) == {1}
    assert report.delivery_rows == 2 * 1234 and 1 <= report.delivery_inserts <= 3
    with db.connect() as conn:
        logged = conn.execute(select(NoticeDelivery.line_user_id, NoticeDelivery.course_id)).all()
        events = conn.execute(
            select(InsightEvent.line_user_id, InsightEvent.key).where(
                InsightEvent.kind == records.NOTICE_DELIVERED
            )
        ).all()
    expected = sorted((u, c) for u in users for c in (a.id, b.id))
    assert sorted(logged) == expected and sorted(events) == expected


def test_a_server_error_is_retried_under_the_same_key_and_delivered_once(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    _, users = one_new_course(db, "e", 600)
    fake_line.fail_next("multicast", 503)

    report = run_notices(settings)

    failed = fake_line.calls("multicast", 503)
    assert len(failed) == 1 and report.sent == 600 and report.calls == 2
    retried = [c for c in fake_line.calls("multicast") if c.body["to"] == failed[0].body["to"]]
    assert [c.headers["x-line-retry-key"] for c in retried] == [
        failed[0].headers["x-line-retry-key"]
    ]
    got = recipients(fake_line)  # delivered (200) calls only: the 503 had no effect
    assert set(got) == set(users) and set(got.values()) == {1}


def test_a_refused_batch_is_logged_failed_and_not_retried(
    settings: Settings, db: Engine, fake_line: FakeLine
) -> None:
    one_new_course(db, "f", 3)
    fake_line.fail_next("multicast", 400)

    report = run_notices(settings)
    again = run_notices(settings)

    assert report.failed == 3 and report.sent == 0 and again.sent == 0
    assert len(fake_line.calls("multicast", None)) == 1
    with db.connect() as conn:
        states = set(conn.scalars(select(NoticeDelivery.status)))
    assert states == {"failed"}


def test_quiet_hours_beginning_during_a_run_hold_the_rest_until_morning(
    make_settings: Callable[..., Settings], pg_url: str, db: Engine, fake_line: FakeLine
) -> None:
    """The clock reaches quiet hours after the first call: the other batches stay
    stored, and the first run after quiet hours sends them, nobody twice."""
    _, users = one_new_course(db, "late", 1234)
    evening = make_settings(
        database_url=pg_url,
        notify_quiet_hours="21-08",
        notify_interval_seconds=0,
        notify_concurrency=1,
    )
    zone = QuietHours.parse("21-08").zone
    before = dt.datetime(2026, 3, 2, 20, 59, 59, tzinfo=zone)
    after = dt.datetime(2026, 3, 2, 21, 0, 1, tzinfo=zone)

    async def go() -> RunReport:
        services = Services.build(evening)
        try:
            runner = NoticeRunner(services, services.line_client())
            runner.clock = lambda: after if fake_line.calls("multicast") else before
            return await runner.run()
        finally:
            await services.close()

    first = asyncio.run(go())

    assert first.sent == 500 and first.pending == 734
    assert len(fake_line.calls("multicast", None)) == 1
    morning = make_settings(database_url=pg_url, notify_quiet_hours="", notify_interval_seconds=0)
    second = run_notices(morning)
    assert second.recovered == 734
    got = recipients(fake_line)
    assert set(got) == set(users) and set(got.values()) == {1}


def test_matching_by_groups_agrees_with_checking_every_pair() -> None:
    """The grouped matcher against a plain loop over every (subscriber, course) pair,
    with deliveries already made, users at their daily cap and identical subscriptions."""
    rnd = random.Random(5)
    topics = [f"t{i}" for i in range(6)]
    provinces = [f"{i:02d}" for i in range(10, 18)]
    offers = [
        Offer(
            f"c{i}",
            frozenset(rnd.sample(topics, rnd.choice((1, 2)))),
            None if rnd.random() < 0.5 else frozenset(rnd.sample(provinces, 2)),
            rnd.randint(1, 5),
        )
        for i in range(8)
    ]
    subs = [
        Subscriber(
            f"U{i}",
            frozenset(rnd.sample(topics, rnd.choice((1, 2, 3)))),
            frozenset(rnd.sample(provinces, rnd.choice((0, 0, 1)))),
            rnd.choice((None, 1, 2, 3, 4, 5)),
        )
        for i in range(3000)
    ]
    delivered = {(s.user_id, o.id) for s in subs[:400] for o in offers if rnd.random() < 0.3}
    capped = {s.user_id for s in subs[400:600]}

    got = plan(offers, group(subs), delivered, capped, spread=1)

    wanted: dict[str, tuple[str, ...]] = {}
    already: Counter[str] = Counter()
    for s in subs:
        fits = [
            o.id for o in offers if reaches(o, s) and stage_fits(o, s, 1) and o.topics & s.topics
        ]
        already.update(c for c in fits if (s.user_id, c) in delivered)
        new = tuple(sorted(c for c in fits if (s.user_id, c) not in delivered))
        if new:
            wanted[s.user_id] = new
    digests: dict[tuple[str, ...], set[str]] = {}
    for user, ids in wanted.items():
        if user not in capped:
            digests.setdefault(ids, set()).add(user)
    assert {k: set(v) for k, v in got.digests.items()} == digests
    assert got.capped == {u for u in wanted if u in capped}
    for o in offers:
        m = got.matches[o.id]
        assert sorted(m.users) == sorted(u for u, ids in wanted.items() if o.id in ids)
        assert m.already == already[o.id] and sum(m.by_topic.values()) == len(m.users)


def test_on_sqlite_too_everyone_gets_one_digest_and_every_row_is_logged(
    make_settings: Callable[..., Settings], tmp_path: Path, fake_line: FakeLine
) -> None:
    """The single-machine setup (no PostgreSQL): the same outcome through SQLite."""
    settings = make_settings(
        database_url=f"sqlite:///{tmp_path / 'bot.db'}",
        notify_quiet_hours="",
        notify_interval_seconds=0,
    )
    upgrade(settings)
    with bot_database(settings) as engine:
        course, users = one_new_course(engine, "lite", 620)
        report = run_notices(settings)
        with engine.connect() as conn:
            logged = conn.execute(
                select(NoticeDelivery.line_user_id, NoticeDelivery.course_id)
            ).all()
    assert report.sent == 620 and report.calls == report.minimum_calls == 2
    got = recipients(fake_line)
    assert set(got) == set(users) and set(got.values()) == {1}
    assert sorted(logged) == sorted((u, course.id) for u in users)


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_a_course_still_open_from_yesterday_and_a_new_one_reach_only_who_lacks_them(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    fake_line: FakeLine,
    request: pytest.FixtureRequest,
    database: str,
) -> None:
    """A course seen yesterday and not done (someone was capped), and a course new today.
    Who had yesterday's course gets only the new one, even with their row stamped a few
    hours before the course was first seen (another machine's clock); the others get both.
    A preview and the run work alike on both databases (SQLite gives times back without
    their zone)."""
    url = f"sqlite:///{tmp_path / 'bot.db'}" if database == "sqlite" else None
    settings = make_settings(
        database_url=url or request.getfixturevalue("pg_url"),
        notify_quiet_hours="",
        notify_interval_seconds=0,
    )
    if database == "sqlite":
        upgrade(settings)
    a, c = OPEN[0], next(x for x in OPEN[1:] if x.places.nationwide or x.format == "online")
    had, lacks, skewed = user_id("had-a"), user_id("lacks-a"), user_id("skewed-a")
    now = dt.datetime.now(dt.UTC)
    seen = now - dt.timedelta(hours=31)
    with bot_database(settings) as engine:
        only_new(engine, a.id, c.id)
        subscribe(engine, [had, lacks, skewed], sorted({a.topics[0], c.topics[0]}))
        with engine.begin() as conn:
            conn.execute(insert(NoticeCourse).values(course_id=a.id, first_seen_at=seen))
            conn.execute(
                insert(NoticeDelivery),
                [
                    {
                        "line_user_id": u,
                        "course_id": a.id,
                        "retry_key": k,
                        "status": "sent",
                        "at": t,
                    }
                    for u, k, t in (
                        (had, "k-had", seen + dt.timedelta(hours=1)),
                        (skewed, "k-skewed", seen - dt.timedelta(hours=3)),
                    )
                ],
            )

        preview = run_notices(settings, dry_run=True)
        report = run_notices(settings)

        with engine.connect() as conn:
            logged = conn.execute(
                select(
                    NoticeDelivery.line_user_id, NoticeDelivery.course_id, NoticeDelivery.retry_key
                )
            ).all()
            done = dict(conn.execute(select(NoticeCourse.course_id, NoticeCourse.done_at)).all())
    assert preview.matched == report.sent == 3
    # each person one call (one digest; a digest for one person is a push), and what each
    # call carried by its retry key
    calls = fake_line.calls("multicast") + fake_line.calls("push")
    to: list[str] = []
    for call in calls:
        to += call.body["to"] if isinstance(call.body["to"], list) else [call.body["to"]]
    assert sorted(to) == sorted([had, lacks, skewed])
    sent = {call.headers["x-line-retry-key"] for call in calls}
    got: dict[str, set[str]] = {}
    for user, course, key in logged:
        if key in sent:
            got.setdefault(user, set()).add(course)
    assert got == {had: {c.id}, skewed: {c.id}, lacks: {a.id, c.id}}
    assert len(logged) == 6  # the two earlier rows kept, four new
    assert done[a.id] is not None and done[c.id] is not None
