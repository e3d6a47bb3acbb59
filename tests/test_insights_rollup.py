"""The insights rollup (issue 13) on SQLite and PostgreSQL: every rollup row equals a direct
count of the raw moments, the views add them up as documented and hide small cells, and a
person erased is gone after the next rollup."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import delete, insert, select, update

from bot.insights import records as r
from bot.insights import rollup as rollup_module
from bot.insights import views
from bot.insights.exports import HIDDEN_MARK, rows_of, to_csv, to_xlsx
from bot.insights.records import (
    ALL,
    ALL_STAGES,
    InsightDirty,
    InsightEvent,
    InsightRollup,
    InsightRun,
)
from bot.insights.rollup import period_end, period_start, raw_cutoff, rollup, shift
from bot.insights.suppress import recoverable, value_at
from bot.kb.loader import Knowledge
from bot.settings import Settings
from bot.storage.db import Database, NoticeLease
from bot.storage.privacy import erase_user

TODAY = dt.date(2025, 6, 11)
PROVINCES = ("10", "50", "51", "90")
TOPICS = ("online_selling", "accounting_finance", "branding_packaging")
SECTORS = ("food", "handicraft")
MIN = 3

Event = dict[str, Any]


def make_events(seed: int = 13, users: int = 70) -> list[Event]:
    """Moments of ``users`` people over three months (Q1 and Q2 of 2025), a few per person."""
    rng = random.Random(seed)
    first = dt.date(2025, 3, 20)
    span = (TODAY - first).days
    out: list[Event] = []
    for n in range(users):
        uid = f"U{n:032d}"
        home = rng.choice(PROVINCES)
        sector = rng.choice((*SECTORS, ""))
        stage = rng.choice((0, 1, 2, 3, 4, 5))
        for _ in range(rng.randint(1, 6)):
            day = first + dt.timedelta(days=rng.randint(0, span))
            kind = rng.choice((r.ASKED, r.ASKED, r.ASSESSMENT_FINISHED, r.FOLLOWED, r.DIGITAL_LOW))
            key = rng.choice((*TOPICS, "")) if kind == r.ASKED else ""
            province = home if rng.random() < 0.8 else rng.choice(PROVINCES)
            out.append(
                {
                    "day": day,
                    "line_user_id": uid,
                    "kind": kind,
                    "province": province,
                    "sector": sector,
                    "stage": stage,
                    "key": key,
                }
            )
    return out


def expected_rollup(
    events: list[Event], since: dt.date | None = None
) -> dict[tuple[Any, ...], tuple[int, int]]:
    """What the rollup must hold, counted directly in Python: (grain, start, kind, province,
    sector, stage, key) -> (distinct people, moments)."""
    people: dict[tuple[Any, ...], set[str]] = defaultdict(set)
    moments: dict[tuple[Any, ...], int] = defaultdict(int)
    for e in events:
        for grain in r.GRAINS:
            start = period_start(grain, e["day"])
            if since is not None and start < since:
                continue
            profiles = ((e["sector"], e["stage"]), (ALL, ALL_STAGES))
            for province in (e["province"], ALL):
                for key in (e["key"], ALL):
                    for sector, stage in profiles:
                        cell = (grain, start, e["kind"], province, sector, stage, key)
                        people[cell].add(e["line_user_id"])
                        moments[cell] += 1
    return {cell: (len(who), moments[cell]) for cell, who in people.items()}


async def stored_rollup(db: Database) -> dict[tuple[Any, ...], tuple[int, int]]:
    async with db.session() as s:
        rows = (await s.execute(select(InsightRollup))).scalars().all()
    return {
        (x.grain, x.start, x.kind, x.province, x.sector, x.stage, x.key): (x.people, x.events)
        for x in rows
    }


async def add_events(db: Database, events: list[Event]) -> None:
    async with db.session() as s, s.begin():
        await s.execute(insert(InsightEvent), events)


@pytest.fixture
def settings(each_db_settings: Settings) -> Settings:
    return each_db_settings


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    database = Database(settings.sqlalchemy_url)
    yield database
    asyncio.run(database.close())


def run(coro: Any) -> Any:
    return asyncio.run(coro)


# -- the rollup ---------------------------------------------------------------------------


def test_full_rollup_equals_a_direct_count(db: Database) -> None:
    events = make_events()

    async def go() -> None:
        await add_events(db, events)
        report = await rollup(db, today=TODAY, full=True)
        assert report.skipped is None
        assert await stored_rollup(db) == expected_rollup(events)
        assert report.rows == len(expected_rollup(events))
        async with db.session() as s:
            run_row = (await s.execute(select(InsightRun))).scalars().one()
        assert run_row.finished_at is not None and run_row.rows == report.rows

    run(go())


def test_incremental_rollup_recomputes_dirty_days_and_today(db: Database) -> None:
    events = make_events()
    old = [e for e in events if e["day"] < dt.date(2025, 5, 1)]
    new = [e for e in events if e["day"] >= dt.date(2025, 5, 1)]

    async def go() -> None:
        await add_events(db, old)
        await rollup(db, today=TODAY, full=True)
        await add_events(db, new)
        # Without a mark, only today's and yesterday's periods are recomputed.
        async with db.session() as s, s.begin():
            await s.execute(
                insert(InsightDirty),
                [{"day": d} for d in sorted({e["day"] for e in new})],
            )
        report = await rollup(db, today=TODAY)
        assert await stored_rollup(db) == expected_rollup(events)
        assert ("week", period_start("week", TODAY)) in report.periods
        async with db.session() as s:
            assert (await s.execute(select(InsightDirty))).all() == []

    run(go())


def test_a_day_marked_during_the_run_stays_dirty(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    day = dt.date(2025, 4, 2)
    real = rollup_module.recompute

    async def go() -> None:
        await add_events(db, make_events())
        async with db.session() as s, s.begin():
            await s.execute(
                insert(InsightDirty).values(
                    day=day, marked_at=dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
                )
            )

        async def recompute_and_mark(conn: Any, grain: str, start: dt.date) -> int:
            # Someone is erased meanwhile: the day is marked again, later than the run began.
            async with db.session() as s, s.begin():
                await s.execute(
                    update(InsightDirty).values(
                        marked_at=dt.datetime(2025, 6, 11, 12, tzinfo=dt.UTC)
                    )
                )
            return await real(conn, grain, start)

        monkeypatch.setattr(rollup_module, "recompute", recompute_and_mark)
        await rollup(db, today=TODAY)
        async with db.session() as s:
            assert (await s.scalars(select(InsightDirty.day))).all() == [day]

    run(go())


def test_an_erased_person_is_gone_after_the_next_rollup(db: Database, knowledge: Knowledge) -> None:
    events = make_events()
    # The person with the most moments, some of them in an older month (not today's periods).
    counts: dict[str, int] = defaultdict(int)
    for e in events:
        if e["day"] < dt.date(2025, 5, 1):
            counts[e["line_user_id"]] += 1
    gone = max(counts, key=lambda u: counts[u])

    async def go() -> None:
        await add_events(db, events)
        await rollup(db, today=TODAY, full=True)
        await erase_user(db, gone)
        async with db.session() as s:
            marked = set((await s.scalars(select(InsightDirty.day))).all())
            assert (
                await s.scalar(select(InsightEvent.id).where(InsightEvent.line_user_id == gone))
                is None
            )
        assert marked == {e["day"] for e in events if e["line_user_id"] == gone}
        await rollup(db, today=TODAY)
        assert await stored_rollup(db) == expected_rollup(
            [e for e in events if e["line_user_id"] != gone]
        )

    run(go())


def test_old_moments_are_pruned_and_their_counts_kept(db: Database) -> None:
    events = make_events()
    later = TODAY + dt.timedelta(days=430)
    cutoff = raw_cutoff(later, 400)
    assert cutoff.weekday() == 0 and cutoff <= period_start(
        "quarter", later - dt.timedelta(days=400)
    )

    async def go() -> None:
        await add_events(db, events)
        await rollup(db, today=TODAY, full=True)
        before = await stored_rollup(db)
        report = await rollup(db, today=later, full=True, raw_days=400)
        assert report.pruned == sum(e["day"] < cutoff for e in events) > 0
        async with db.session() as s:
            left = (await s.scalars(select(InsightEvent.day))).all()
        assert all(d >= cutoff for d in left)
        # Frozen periods (before the cut) keep their counts; the others equal a fresh count.
        after = await stored_rollup(db)
        assert {k: v for k, v in after.items() if k[1] < cutoff} == {
            k: v for k, v in before.items() if k[1] < cutoff
        }
        assert {k: v for k, v in after.items() if k[1] >= cutoff} == expected_rollup(
            [e for e in events if e["day"] >= cutoff], since=cutoff
        )

    run(go())


def test_one_rollup_at_a_time(db: Database) -> None:
    async def go() -> None:
        async with db.session() as s, s.begin():
            await s.execute(
                insert(NoticeLease).values(name="insights", holder="elsewhere:1:x", expires_at=9e12)
            )
        report = await rollup(db, today=TODAY)
        assert report.skipped and report.run_id is None
        async with db.session() as s, s.begin():
            await s.execute(delete(NoticeLease))
        assert (await rollup(db, today=TODAY)).skipped is None

    run(go())


def test_periods() -> None:
    day = dt.date(2025, 6, 11)  # a Wednesday
    assert period_start("week", day) == dt.date(2025, 6, 9)
    assert period_start("month", day) == dt.date(2025, 6, 1)
    assert period_start("quarter", day) == dt.date(2025, 4, 1)
    assert period_end("quarter", dt.date(2025, 10, 1)) == dt.date(2025, 12, 31)
    assert shift("month", dt.date(2025, 1, 1), -1) == dt.date(2024, 12, 1)
    assert shift("week", dt.date(2025, 6, 9), 1) == dt.date(2025, 6, 16)


# -- the views ----------------------------------------------------------------------------


def direct(events: list[Event], grain: str, starts: list[dt.date], **match: Any) -> list[int]:
    """Distinct people per period among the events matching ``match`` (a direct count)."""
    out = []
    for start in starts:
        end = period_end(grain, start)
        who = {
            e["line_user_id"]
            for e in events
            if start <= e["day"] <= end and all(e[k] == v for k, v in match.items())
        }
        out.append(len(who))
    return out


def expected_value(per_period: list[int], min_count: int) -> int | None:
    """What the views show for these per-period counts, before complementary suppression:
    hidden when any period is small (see ``suppress.primary``)."""
    if sum(per_period) == 0:
        return 0
    if any(0 < n < min_count for n in per_period):
        return None
    return sum(per_period)


def build(
    db: Database, knowledge: Knowledge, view: str, filters: views.Filters, min_count: int = MIN
) -> dict[str, views.Table]:
    async def go() -> list[views.Table]:
        async with db.session() as s:
            return await views.build(view, s, filters, knowledge, min_count, today=TODAY)

    return {t.id: t for t in run(go())}


def test_views_equal_a_direct_count(db: Database, knowledge: Knowledge) -> None:
    events = make_events(users=160)
    run(add_events(db, events))
    run(rollup(db, today=TODAY, full=True))
    for filters in (
        views.Filters(grain="month", start=dt.date(2025, 5, 1)),
        views.Filters(grain="month", periods=2),
        views.Filters(grain="quarter", start=dt.date(2025, 1, 1), periods=2, region="north"),
        views.Filters(grain="week", periods=6, province="50", sector="food"),
    ):
        w = views.window(filters, TODAY)
        starts = w.starts()
        tables = build(db, knowledge, "demand", filters)
        table = tables["demand_topic"]
        assert recoverable(table) == []
        places = list(w.provinces or sorted(knowledge.places.provinces))
        assert table.rows == places
        sector = {"sector": filters.sector} if filters.sector else {}
        hidden_small = 0
        for province in places:
            for topic in TOPICS:
                want = expected_value(
                    direct(
                        events,
                        w.grain,
                        starts,
                        kind=r.ASKED,
                        province=province,
                        key=topic,
                        **sector,
                    ),
                    MIN,
                )
                got = table.cell(province, topic)
                if want is None:
                    hidden_small += 1
                    assert got is None
                else:
                    assert got in (want, None)  # None: hidden to protect another cell
            # Row total: distinct people over every topic (the key "*" rows).
            want_row = expected_value(
                direct(events, w.grain, starts, kind=r.ASKED, province=province, **sector), MIN
            )
            assert table.row_totals[province] in (
                (want_row,) if want_row is None else (want_row, None)
            )
        if w.provinces is None:
            # Column totals: distinct people over every province (the province "*" rows).
            for topic in TOPICS:
                want = expected_value(direct(events, w.grain, starts, kind=r.ASKED, key=topic), MIN)
                assert table.column_totals[topic] in (want, None)
        else:
            # A place filter adds up its provinces' per-period counts.
            for topic in TOPICS:
                per = [0] * len(starts)
                small = False
                for province in places:
                    for i, n in enumerate(
                        direct(
                            events,
                            w.grain,
                            starts,
                            kind=r.ASKED,
                            province=province,
                            key=topic,
                            **sector,
                        )
                    ):
                        per[i] += n
                        small = small or 0 < n < MIN
                assert table.column_totals[topic] is None or table.column_totals[topic] <= sum(per)
        for t in tables.values():
            assert recoverable(t) == [], t.id
    assert hidden_small  # the data set is small enough to hide something


def test_a_sum_with_a_small_period_is_hidden(db: Database, knowledge: Knowledge) -> None:
    """Two months of 2 and 4 people: one month alone hides the 2; both together are hidden
    too (6 would be May's 4 plus the hidden 2; 4 would sit beside totals that hold the 2)."""
    events = []
    for n, day in [(i, dt.date(2025, 4, 10)) for i in range(2)] + [
        (i, dt.date(2025, 5, 10)) for i in range(2, 6)
    ]:
        events.append(
            {
                "day": day,
                "line_user_id": f"U{n:032d}",
                "kind": r.FOLLOWED,
                "province": "10",
                "sector": "",
                "stage": 0,
                "key": "",
            }
        )
    run(add_events(db, events))
    run(rollup(db, today=TODAY, full=True))
    april = build(db, knowledge, "funnel", views.Filters(grain="month", start=dt.date(2025, 4, 1)))
    both = build(
        db, knowledge, "funnel", views.Filters(grain="month", start=dt.date(2025, 4, 1), periods=2)
    )
    assert april["funnel"].cells[(r.FOLLOWED, "people")] is None
    assert april["funnel"].cells[(r.ASSESSMENT_STARTED, "people")] == 0
    assert both["funnel"].cells[(r.FOLLOWED, "people")] is None
    may = build(db, knowledge, "funnel", views.Filters(grain="month", start=dt.date(2025, 5, 1)))
    assert may["funnel"].cells[(r.FOLLOWED, "people")] == 4


def moment(n: int, day: dt.date, kind: str, key: str = "", province: str = "10") -> Event:
    return {
        "day": day,
        "line_user_id": f"U{n:032d}",
        "kind": kind,
        "province": province,
        "sector": "",
        "stage": 0,
        "key": key,
    }


def test_a_multi_month_total_never_gives_a_hidden_month_away(
    db: Database, knowledge: Knowledge
) -> None:
    """The reviewer's case (threshold 10): topic A asked by 5 people in April and 12 in May,
    topic B by 20 each month. Over both months A must not show 12 beside a row total of 57
    (57 - 12 - 40 = April's hidden 5), nor 17 (May's 12 is on the page by itself)."""
    events = [moment(i, dt.date(2025, 4, 8), r.ASKED, "online_selling") for i in range(5)]
    events += [moment(100 + i, dt.date(2025, 5, 8), r.ASKED, "online_selling") for i in range(12)]
    for month in (4, 5):
        events += [
            moment(200 + 50 * month + i, dt.date(2025, month, 9), r.ASKED, "accounting_finance")
            for i in range(20)
        ]
    run(add_events(db, events))
    run(rollup(db, today=TODAY, full=True))
    for filters in (
        views.Filters(grain="month", start=dt.date(2025, 4, 1), periods=2),
        views.Filters(grain="quarter", start=dt.date(2025, 4, 1)),
    ):
        table = build(db, knowledge, "demand", filters, min_count=10)["demand_topic"]
        assert table.cell("10", "online_selling") is None
        shown = [table.cell("10", t) for t in table.columns]
        total = table.row_totals["10"]
        if total is not None:
            # What a reader can subtract is never a figure under the threshold.
            rest = total - sum(v for v in shown if v)
            assert rest == 0 or rest >= 10 or shown.count(None) >= 2
        assert recoverable(table) == []


def test_every_view_builds_and_exports_match(db: Database, knowledge: Knowledge) -> None:
    events = make_events(users=120)
    run(add_events(db, events))
    run(rollup(db, today=TODAY, full=True))
    filters = views.Filters(grain="quarter", start=dt.date(2025, 4, 1))
    for view in views.VIEWS:
        tables = list(build(db, knowledge, view, filters).values())
        assert tables, view
        # A figure two tables of the view both print is hidden in both or in neither.
        state: dict[Any, set[bool]] = defaultdict(set)
        for table in tables:
            for place, found in table.ids.items():
                state[found].add(value_at(table, place) is None)
        assert all(len(v) == 1 for v in state.values()), view
        for table in tables:
            assert recoverable(table) == [], (view, table.id)
            lines = rows_of(table, knowledge)
            for i, row in enumerate(table.rows, start=1):
                for j, column in enumerate(table.columns, start=1):
                    value = table.cell(row, column)
                    assert lines[i][j] == (HIDDEN_MARK if value is None else value)
        csv_text = to_csv(tables, knowledge).decode("utf-8")
        assert csv_text.startswith("\ufeff")
        for table in tables:
            assert f"# {table.id}" in csv_text
        import io

        from openpyxl import load_workbook  # type: ignore[import-untyped]

        book = load_workbook(io.BytesIO(to_xlsx(tables, knowledge)))
        for table in tables:
            sheet = [list(row) for row in book[table.id[:31]].iter_rows(values_only=True)]
            want = rows_of(table, knowledge)
            assert [[("" if v is None else v) for v in row] for row in sheet[: len(want)]] == [
                [("" if v == "" else v) for v in row] for row in want
            ]


def test_shared_totals_are_hidden_in_every_table_of_a_view(
    db: Database, knowledge: Knowledge
) -> None:
    """Many random small data sets: the province totals the sector and stage tables share,
    and the stage totals of the readiness tables, never show in one and hide in the other."""
    for seed in range(6):
        run(_clear(db))
        run(add_events(db, make_events(seed=seed, users=40)))
        run(rollup(db, today=TODAY, full=True))
        for view in ("demand", "readiness", "unmet", "funnel"):
            filters = views.Filters(grain="month", start=dt.date(2025, 5, 1))
            tables = list(build(db, knowledge, view, filters, min_count=5).values())
            state: dict[Any, set[bool]] = defaultdict(set)
            for table in tables:
                assert recoverable(table) == [], (seed, view, table.id)
                for place, found in table.ids.items():
                    state[found].add(value_at(table, place) is None)
            assert all(len(v) == 1 for v in state.values()), (seed, view)


async def _clear(db: Database) -> None:
    async with db.session() as s, s.begin():
        for model in (InsightEvent, InsightRollup, InsightDirty, InsightRun):
            await s.execute(delete(model))


def test_a_failed_rollup_is_not_a_finished_run(db: Database, monkeypatch: Any) -> None:
    """A run that fails leaves no finished mark: the next run still covers its days."""
    run(add_events(db, make_events(users=20)))

    async def broken(*args: Any, **kwargs: Any) -> int:
        raise RuntimeError("database went away")

    monkeypatch.setattr(rollup_module, "recompute", broken)
    with pytest.raises(RuntimeError):
        run(rollup(db, today=TODAY))
    monkeypatch.undo()
    assert run(rollup_module.last_run(db)) is None
    report = run(rollup(db, today=TODAY))
    assert report.full  # no finished run yet: every day with moments
    assert run(stored_rollup(db)) == expected_rollup(make_events(users=20))


def test_labels_and_filters(knowledge: Knowledge) -> None:
    assert views.label("province", "10", knowledge) == knowledge.places.provinces["10"].name_th
    assert views.label("region", "north", knowledge) != "north"
    assert views.label("kind", r.ASKED, knowledge) != r.ASKED
    assert views.label("topic", "", knowledge) == views.label("sector", "", knowledge)
    everything = [p for g in views.regions().values() for p in g.provinces]
    assert sorted(everything) == sorted(knowledge.places.provinces)  # each province once
    assert views.parse_filters(
        {"grain": "week", "periods": "4", "region": "south", "stage": "3"}
    ) == views.Filters(grain="week", periods=4, region="south", stage=3)
    for bad in (
        {"grain": "day"},
        {"periods": "0"},
        {"region": "mars"},
        {"province": "1"},
        {"stage": "9"},
        {"start": "soon"},
        {"region": "north", "province": "10"},
    ):
        with pytest.raises(ValueError):
            views.parse_filters(bad)
