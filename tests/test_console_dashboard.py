"""The console's dashboard (issue 12): daily counters written with each answer, and the page
that shows them (figures in a table next to every chart), for signed-in operators only."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any

import httpx
import pytest
from sqlalchemy import insert, select

from bot.console import charts
from bot.settings import Settings
from bot.storage import accounts, daily
from bot.storage.daily import DailyCount
from bot.storage.db import Assessment, Database, NoticeDelivery, NoticeRun, User, utcnow
from bot.storage.migrate import upgrade
from tests.conversation import Chat
from tests.fakeline import FakeLine
from tests.helpers import ServerThread, bot_database, user_id

PASSWORD = "correct horse battery"
#: Messages and what the dashboard must count them as (user, text, outcome, route).
SENT = [
    ("hello", "สวัสดีครับ", "answered", "greet"),
    ("unsure", "เริ่ม", "did_you_mean", "fallback"),
    ("weather", "วันนี้ฝนตกไหม", "unanswered", "fallback"),
    (
        "guide",
        "จะไปจดทะเบียนพาณิชย์ ต้องเตรียมเอกสารอะไรไปบ้างครับ",
        "answered",
        "guide:commercial_registration_documents",
    ),
    ("assess", "อยากทำแบบประเมินครับ", "answered", "start_assessment"),
    ("staff", "ขอคุยกับเจ้าหน้าที่", "staff", "contact_staff"),
]
TODAY = daily.local_day()


# -- reading the page -------------------------------------------------------------------------


class Page(HTMLParser):
    """The dashboard's tables: ``figures`` (data-figure rows), ``days`` (data-day rows, by
    outcome) and ``tops`` (table id -> data-key -> count)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.figures: dict[str, str] = {}
        self.days: dict[str, dict[str, str]] = {}
        self.tops: dict[str, dict[str, str]] = {}
        self._table: str | None = None
        self._row: dict[str, str | None] | None = None
        self._cell: dict[str, str | None] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._table = dict(attrs).get("id")
        elif tag == "tr":
            self._row = dict(attrs)
        elif tag == "td" and self._row is not None:
            self._cell, self._text = dict(attrs), []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag != "td" or self._cell is None or self._row is None:
            return
        text, row = "".join(self._text).strip(), self._row
        if row.get("data-figure"):
            self.figures[str(row["data-figure"])] = text
        elif row.get("data-day"):
            self.days.setdefault(str(row["data-day"]), {})[str(self._cell.get("data-outcome"))] = (
                text
            )
        elif row.get("data-key") and self._table:
            self.tops.setdefault(self._table, {})[str(row["data-key"])] = text  # last cell: count
        self._cell = None

    def number(self, figure: str) -> int:
        return int(self.figures[figure].replace(",", ""))


def numbers(cells: dict[str, str]) -> dict[str, int]:
    return {k: int(v.replace(",", "")) for k, v in cells.items()}


# -- helpers ------------------------------------------------------------------------------------


def add_operator(settings: Settings, name: str, role: str) -> None:
    async def add() -> None:
        db = Database(settings.sqlalchemy_url)
        try:
            await accounts.add_operator(db, name, role, PASSWORD, by="test")
        finally:
            await db.close()

    asyncio.run(add())


@contextmanager
def signed_in(server: ServerThread, name: str) -> Iterator[httpx.Client]:
    """A browser signed in as ``name`` (httpx keeps the session cookie)."""
    with httpx.Client(
        base_url=server.base_url, headers={"Accept": "text/html"}, timeout=15
    ) as browser:
        answer = browser.post("/console/login", data={"name": name, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        yield browser


def store_history(settings: Settings) -> None:
    """What the page counts from other tables: assessments and notice runs, in and out of
    the window (40 days ago), and a dry run (never counted)."""
    now, old = utcnow(), utcnow() - dt.timedelta(days=40)
    assessment = {"answers": {}, "stage": 1, "topics": [], "line_user_id": user_id("done")}
    with bot_database(settings) as engine, engine.begin() as conn:
        conn.execute(insert(Assessment), [{**assessment, "created_at": t} for t in (now, old)])
        conn.execute(
            insert(NoticeRun),
            [
                {"trigger": "job", "dry_run": False, "started_at": old, "counts": {"sent": 9}},
                {"trigger": "cli", "dry_run": True, "started_at": now, "counts": {"sent": 5}},
                {
                    "trigger": "job",
                    "dry_run": False,
                    "started_at": now,
                    "counts": {"sent": 2, "quota_left": 900},
                },
            ],
        )
        conn.execute(
            insert(NoticeDelivery),
            [
                {"line_user_id": u, "course_id": c, "retry_key": "k", "status": s, "at": now}
                for u, c, s in (("u1", "c1", "sent"), ("u2", "c1", "sent"), ("u3", "c1", "failed"))
            ],
        )


@pytest.fixture
def bot(make_settings: Callable[..., Settings], fake_line: FakeLine) -> Iterator[ServerThread]:
    """The bot in the embedded mode, LINE reporting a quota of 1000 messages this month."""
    fake_line.quota_limit = 1000
    try:
        with ServerThread(make_settings()) as server:
            yield server
    finally:
        fake_line.quota_limit = None


# -- the page, through the real app -----------------------------------------------------------


def test_the_dashboard_shows_what_users_sent_embedded(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    for name, text, _, _ in SENT:
        chat = Chat(bot, fake_line, user_id(name))
        try:
            assert chat.say(text), f"no answer to {text!r}"
        finally:
            chat.close()
    store_history(bot.settings)
    add_operator(bot.settings, "wan", "viewer")
    with signed_in(bot, "wan") as browser:
        answer = browser.get("/console", params={"days": 1})
        assert answer.status_code == 200, answer.text
        html = answer.text
        page = Page(html)

        outcomes = {o: sum(1 for s in SENT if s[2] == o) for o in daily.OUTCOMES}
        assert {o: page.number(o) for o in daily.OUTCOMES} == outcomes
        assert page.number("messages") == len(SENT)
        assert page.number("active_users") == len(SENT)
        assert numbers(page.days[TODAY.isoformat()]) == {**outcomes, "total": len(SENT)}
        assert numbers(page.days["total"]) == {**outcomes, "total": len(SENT)}
        assert numbers(page.tops["top-intents"]) == {
            "greet": 1,
            "start_assessment": 1,
            "contact_staff": 1,
        }
        assert numbers(page.tops["top-guides"]) == {"commercial_registration_documents": 1}
        assert page.number("assessments_started") == 1
        assert page.number("assessments_finished") == 1
        assert page.number("notices_sent") == 2
        assert page.number("notice_recipients") == 2
        assert page.number("notice_runs") == 1
        assert page.number("quota_left") == 1000  # replies are free: nothing used yet

        # Charts are inline SVG (no script, nothing from another site), beside the tables.
        assert html.count("<svg") >= 3 and 'class="bar b2"' in html and 'class="bar b4"' in html
        assert '<script src="http' not in html and "cdn" not in html.lower()
        assert 'aria-current="page">วันนี้' in html

        # A week and a month: a row for every day, the same totals (all sent today).
        for days in (7, 30):
            wider = Page(browser.get("/console", params={"days": days}).text)
            assert len(wider.days) == days + 1  # and the total row
            assert wider.number("messages") == len(SENT)
            assert wider.number("assessments_finished") == 1
            assert wider.number("notices_sent") == 2
        alias = Page(browser.get("/console/dashboard", params={"days": 99}).text)
        assert len(alias.days) == 7 + 1  # an unknown window is the week
        assert alias.number("messages") == len(SENT)

    # Counted once per event, in the answer's transaction: the rows agree with the page.
    with bot_database(bot.settings) as engine, engine.connect() as conn:
        rows = conn.execute(select(DailyCount.kind, DailyCount.key, DailyCount.count)).all()
    routes = {k: n for kind, k, n in rows if kind == daily.ROUTE}
    assert sum(routes.values()) == len(SENT)
    assert routes["fallback"] == 2 and routes["guide:commercial_registration_documents"] == 1


def test_sign_in_is_needed_and_an_unknown_quota_does_not_fail_the_page_embedded(
    bot: ServerThread, fake_line: FakeLine
) -> None:
    away = httpx.get(
        f"{bot.base_url}/console", headers={"Accept": "text/html"}, follow_redirects=False
    )
    assert away.status_code == 303
    assert away.headers["location"] == "/console/login?next=%2Fconsole"

    store_history(bot.settings)
    add_operator(bot.settings, "ploy", "analyst")  # insights only: not the dashboard
    with signed_in(bot, "ploy") as browser:
        assert browser.get("/console").status_code == 403

    fake_line.fail_next("quota", 500, times=50)
    add_operator(bot.settings, "kai", "staff")
    with signed_in(bot, "kai") as browser:
        answer = browser.get("/console")
        assert answer.status_code == 200
        page = Page(answer.text)
        assert page.figures["quota_left"] == "ไม่ทราบ"
        assert page.number("messages") == 0
        assert "900" in answer.text  # what LINE said at the last notice run


# -- the counters, on both databases ----------------------------------------------------------


async def _count_and_read(db: Database) -> None:
    yesterday, old = TODAY - dt.timedelta(days=1), TODAY - dt.timedelta(days=8)
    turns = [
        (TODAY, "greet", "answered"),
        (TODAY, "greet", "answered"),
        (TODAY, "guide:a", "answered"),
        (TODAY, "fallback", "did_you_mean"),
        (yesterday, "guide:b", "answered"),
        (yesterday, "guide:b", "answered"),
        (yesterday, "contact_staff", "staff"),
        (yesterday, "fallback", "unanswered"),
        (old, "greet", "answered"),  # outside the week
    ]

    async def one(day: dt.date, route: str, outcome: str) -> None:
        async with db.session() as s, s.begin():
            await daily.count_turn(s, day, route, outcome)

    # Concurrent transactions on the same rows: one upsert each, none lost.
    await asyncio.gather(*(one(*t) for t in turns))
    async with db.session() as s, s.begin():
        await daily.count_event(s, daily.ASSESSMENT_STARTED, TODAY)
        await daily.count_event(s, daily.ASSESSMENT_STARTED, old)
        s.add(User(line_user_id="Ua", last_seen_at=utcnow()))
        s.add(User(line_user_id="Ub", last_seen_at=utcnow() - dt.timedelta(days=20)))
        with pytest.raises(ValueError):
            await daily.count_turn(s, TODAY, "greet", "maybe")

    first, last = daily.window(7, TODAY)
    async with db.session() as s:
        f = await daily.figures(s, first, last)
    assert (first, last) == (TODAY - dt.timedelta(days=6), TODAY)
    assert list(f.by_day) == [first + dt.timedelta(days=i) for i in range(7)]
    assert f.by_day[TODAY] == {"answered": 3, "did_you_mean": 1, "unanswered": 0, "staff": 0}
    assert f.by_day[yesterday] == {"answered": 2, "did_you_mean": 0, "unanswered": 1, "staff": 1}
    assert f.outcomes == {"answered": 5, "did_you_mean": 1, "unanswered": 1, "staff": 1}
    assert f.messages == 8
    assert f.top_intents == [("greet", 2), ("contact_staff", 1)]
    assert f.top_guides == [("b", 2), ("a", 1)]
    assert f.assessments_started == 1
    assert f.active_users == 1
    async with db.session() as s:
        today_only = await daily.figures(s, *daily.window(1, TODAY))
    assert today_only.messages == 4 and list(today_only.by_day) == [TODAY]


async def test_counters_add_up_embedded(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    await asyncio.to_thread(upgrade, settings)
    db = Database(settings.sqlalchemy_url)
    try:
        await _count_and_read(db)
    finally:
        await db.close()


async def test_counters_add_up_shared(pg_url: str, make_settings: Callable[..., Settings]) -> None:
    db = Database(make_settings(database_url=pg_url).sqlalchemy_url)
    try:
        await _count_and_read(db)
    finally:
        await db.close()


# -- what is counted as what ------------------------------------------------------------------


def test_outcomes_and_routes_of_a_turn() -> None:
    assert daily.outcome_of("fallback", None, "did_you_mean") == "did_you_mean"
    assert daily.outcome_of("fallback", None, None) == "unanswered"  # an old button
    assert daily.outcome_of("intent:contact_staff", "contact_staff", None) == "staff"
    assert daily.outcome_of("step:assessment.goal", "contact_staff", None) == "staff"  # hand-over
    assert daily.outcome_of("intent:greet", "greet", None) == "answered"
    assert daily.outcome_of("message:sticker", None, None) == "answered"
    assert daily.route_key("intent:guide:x", "guide:x") == "guide:x"
    assert daily.route_key("step:assessment.goal", None) == "step:assessment.goal"
    assert daily.route_key("postback:" + "x" * 200, None) == ("postback:" + "x" * 200)[:100]
    assert [daily.is_intent(k) for k in ("greet", "guide:a", "step:a", "fallback")] == [
        True,
        False,
        False,
        False,
    ]


def test_thai_days() -> None:
    late = dt.datetime(2026, 12, 5, 17, 30, tzinfo=dt.UTC)  # 00:30 on the 6th in Bangkok
    assert daily.local_day(late) == dt.date(2026, 12, 6)
    assert daily.day_start(dt.date(2026, 12, 6)) == dt.datetime(2026, 12, 5, 17, tzinfo=dt.UTC)
    assert daily.window(30, dt.date(2026, 12, 6)) == (dt.date(2026, 11, 7), dt.date(2026, 12, 6))


def test_stacked_chart_geometry() -> None:
    days: dict[dt.date, dict[str, Any]] = {
        TODAY - dt.timedelta(days=1): {"answered": 30, "unanswered": 10},
        TODAY: {"answered": 0, "did_you_mean": 5},
    }
    chart = charts.stacked(days, daily.OUTCOMES)
    first, second = chart.columns
    assert first.total == 40 and [s.series for s in first.segments] == ["answered", "unanswered"]
    bottom, top = first.segments
    assert bottom.y + bottom.height == pytest.approx(chart.bottom)  # stacked from the axis up
    assert top.y + top.height == pytest.approx(bottom.y)
    assert bottom.height == pytest.approx(3 * top.height)
    assert [s.css for s in second.segments] == ["bar b2"]
    assert chart.ticks[0].value == 0 and chart.ticks[-1].value >= 40
    assert not chart.empty and charts.stacked({TODAY: {}}, daily.OUTCOMES).empty
    month = charts.stacked({TODAY + dt.timedelta(days=i): {} for i in range(30)}, daily.OUTCOMES)
    assert 5 <= sum(c.labelled for c in month.columns) <= 11  # dates under the axis fit
    ranking = charts.ranking([("a", 10), ("b", 5)])
    assert ranking.rows[0].length == pytest.approx(2 * ranking.rows[1].length)
    assert charts.nice_step(0) == 1 and charts.nice_step(37) == 10 and charts.nice_step(180) == 50
