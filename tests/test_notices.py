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
import os
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

from bot.kb.loader import load_knowledge
from bot.kb.queries import availability
from bot.kb.schemas import Course
from bot.notices.command import notify
from bot.notices.quiet import QuietHours
from bot.notices.runner import NoticeRunner, RunReport
from bot.services import Services
from bot.settings import Settings
from bot.storage.db import NoticeBatch, NoticeCourse, NoticeDelivery, NoticeRun, Subscription, User
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

    with WorkerThread(settings):
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
    with db.connect() as conn:
        logged = conn.execute(select(NoticeDelivery.line_user_id, NoticeDelivery.course_id)).all()
    assert logged == [(user, "course-added-by-operator")]
