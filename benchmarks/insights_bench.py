"""Insights at national size: loading, rollups and the six views against raw queries (issue 13).

A fresh PostgreSQL database (``insights_bench`` on 127.0.0.1:5432, user ``postgres``, trust;
dropped at the end unless ``--keep``), migrated with the project's Alembic migrations, gets
synthetic data through ``COPY``: ``--users`` people (default 1,000,000) in the ``users`` table
and ``--events`` moments (default 10,000,000) in ``insight_events`` over ``--days`` Thai days
ending yesterday. The data is skewed the way a national roll-out would be: home provinces
weighted by the number of places each province has in ``knowledge/places/provinces.csv``
(a quarter of the people never say where they are), topics, guides, courses, markets and
agencies Zipf-distributed over the codes of the shipped knowledge, 45 % of the people never
assessed (no sector, stage 0), per-person activity log-normal (a few heavy users, many light
ones), every person following once on their first day and active for a few weeks after.

Then it measures:

1. ``insights.load.*``: generating and copying the rows, rebuilding the two indexes, ``VACUUM
   ANALYZE``;
2. ``insights.rollup_full_s``: ``bot.insights.rollup.rollup(db, full=True)``; the rollup
   table's row count and size (``pg_total_relation_size``);
3. ``insights.rollup_day_s``: one more day's moments (today, ``events / days`` of them) copied
   in and marked dirty, then ``rollup(db)``: **target <= 60 s**;
4. ``insights.view.<view>.<filters>.*``: ``bot.insights.views.build`` of each of the six views,
   p50 and max over ``--repeats`` fresh sessions: **target <= 1 s** each; filter sets:
   ``default`` (this month), ``region_sector`` (one region, one sector, this month) and
   ``quarter`` (this quarter, the largest stretch of raw data a single period covers);
5. the baseline, in the same run: the same figures counted directly on ``insight_events``
   (``COUNT(DISTINCT line_user_id)`` grouped by the same cells, with the total rows as
   grouping sets), ``insights.raw.<view>.<filters>.p50_s``, and the ratio raw / view;
6. a check: the cells of ``demand_topic`` that the view shows equal the direct count.

Usage: ``.venv/bin/python benchmarks/insights_bench.py [--users N] [--events N] [--days N]
[--repeats N] [--raw-repeats N] [--keep] [--reuse]``. At 1 % size (``--users 10000 --events
100000``) it takes well under a minute; the full size takes about half an hour on two cores.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import datetime as dt
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import _common as c
import numpy as np
import psycopg

c.ensure_root_on_path()

from bot.insights import records as r  # noqa: E402
from bot.kb.loader import Knowledge, load_knowledge  # noqa: E402
from bot.settings import Settings  # noqa: E402
from bot.storage.daily import local_day  # noqa: E402
from bot.storage.db import Database  # noqa: E402
from bot.storage.migrate import upgrade  # noqa: E402

HOST_DSN = "host=127.0.0.1 port=5432 user=postgres"
FORBIDDEN = {"test", "postgres", "template0", "template1"}
CHUNK = 250_000

#: Shares of the moments other than ``followed`` (one per person, on their first day).
KIND_SHARES: dict[str, float] = {
    r.ASKED: 30.0,
    r.INTENT: 18.0,
    r.GUIDE_SHOWN: 12.0,
    r.GUIDE_HELPFUL: 2.0,
    r.GUIDE_UNHELPFUL: 1.0,
    r.RECOMMENDATION_OPENED: 6.0,
    r.OFFICIAL_CLICKED: 2.5,
    r.UNFOLLOWED: 1.0,
    r.ASSESSMENT_STARTED: 5.0,
    r.ASSESSMENT_FINISHED: 3.5,
    r.DIGITAL_LOW: 1.2,
    r.HANDOFF: 1.0,
    r.UNANSWERED: 4.0,
    r.EXPORT_INTEREST: 2.0,
    r.NO_COURSE: 2.5,
    r.NOTICE_DELIVERED: 7.0,
    r.NOTICE_UNSUBSCRIBED: 0.3,
}
#: Sectors of assessed people (assessment.yaml's options), in plausible proportions.
SECTOR_SHARES = {
    "food": 25,
    "agriculture": 20,
    "services": 11,
    "restaurant": 10,
    "handicraft": 8,
    "fashion": 8,
    "beauty": 6,
    "lifestyle": 5,
    "digital": 5,
    "all": 2,
}
STAGE_SHARES = (30, 30, 20, 12, 8)
UNASSESSED = 0.45
NO_PROVINCE = 0.25
#: Moments about a place the person named rather than their own province.
NAMED_PLACE = 0.12
PLACE_KINDS = (r.ASKED, r.NO_COURSE, r.UNANSWERED, r.EXPORT_INTEREST, r.INTENT)
#: Topics by how often people ask (most asked first); the rest follow in any order.
TOPIC_ORDER = (
    "online_selling",
    "digital_marketing",
    "business_start",
    "digital_skills",
    "branding_packaging",
    "accounting_finance",
    "export_trade",
    "product_development",
    "logistics",
    "language",
)
INTENTS = (
    "greeting",
    "courses",
    "centres",
    "help",
    "assessment",
    "export",
    "subscriptions",
    "staff",
    "small_talk",
    "privacy",
    "out_of_scope",
)


# -- synthetic data ---------------------------------------------------------------------------


def zipf_cdf(n: int, s: float = 1.1) -> np.ndarray:
    weights = 1.0 / np.arange(1, n + 1) ** s
    return np.cumsum(weights) / weights.sum()


def weights_cdf(weights: Sequence[float]) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return np.cumsum(w) / w.sum()


def draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, rng.random(n)), len(cdf) - 1)


@dataclass
class Vocab:
    """Codes one kind's ``key`` takes, Zipf-ranked, and the share of moments with no key."""

    codes: np.ndarray
    cdf: np.ndarray
    blank: float = 0.0


@dataclass
class World:
    """The codes of the shipped knowledge and the synthetic people."""

    provinces: list[str]
    province_cdf: np.ndarray
    sectors: list[str]
    vocab: dict[str, Vocab]
    kinds: np.ndarray
    kind_cdf: np.ndarray
    days: int
    first: dt.date
    user_ids: list[str] = field(default_factory=list)
    home: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    sector: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    stage: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    start: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    #: The day index from which a person's moments carry their sector and stage.
    assessed_on: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    activity_cdf: np.ndarray = field(default_factory=lambda: np.zeros(0))


def _vocab(codes: Sequence[str], blank: float = 0.0, seed: int = 0) -> Vocab:
    ordered = list(codes)
    np.random.default_rng(seed).shuffle(ordered)  # which code is most popular: arbitrary
    return Vocab(np.asarray(ordered, dtype=object), zipf_cdf(len(ordered)), blank)


def make_world(
    knowledge: Knowledge,
    users: int,
    days: int,
    today: dt.date,
    seed: int,
    changing_profiles: bool = False,
) -> World:
    """The people; with ``changing_profiles`` an assessed person's moments before their
    assessment (a few days after their first, exponential, mean 10) have no sector or stage."""
    with (c.ROOT / "knowledge" / "places" / "provinces.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    provinces = [row["code"] for row in rows]
    province_cdf = weights_cdf([float(row["n_points"]) for row in rows])
    guides = sorted(knowledge.guides.guides)
    offers = sorted(course.id for course in knowledge.courses) + sorted(
        p.id for p in knowledge.programmes
    )
    courses = sorted(course.id for course in knowledge.courses)
    topics = sorted(knowledge.topics, key=lambda t: (*TOPIC_ORDER, t).index(t))
    vocab = {
        r.ASKED: Vocab(np.asarray(topics, dtype=object), zipf_cdf(len(topics), 0.8), 0.10),
        r.NO_COURSE: Vocab(np.asarray(topics, dtype=object), zipf_cdf(len(topics), 0.8)),
        r.INTENT: _vocab(list(INTENTS) + [f"guide:{g}" for g in guides], 0.0, seed + 2),
        r.GUIDE_SHOWN: _vocab(guides, 0.0, seed + 3),
        r.GUIDE_HELPFUL: _vocab(guides, 0.0, seed + 3),
        r.GUIDE_UNHELPFUL: _vocab(guides, 0.0, seed + 4),
        r.RECOMMENDATION_OPENED: _vocab(offers, 0.0, seed + 5),
        r.OFFICIAL_CLICKED: _vocab(offers, 0.0, seed + 5),
        r.HANDOFF: _vocab(sorted(knowledge.agencies), 0.10, seed + 6),
        r.UNANSWERED: _vocab([f"guide:{g}" for g in guides] + list(INTENTS), 0.20, seed + 7),
        r.EXPORT_INTEREST: _vocab(sorted(knowledge.markets), 0.15, seed + 8),
        r.NOTICE_DELIVERED: _vocab(courses, 0.0, seed + 9),
        r.NOTICE_UNSUBSCRIBED: _vocab(courses, 0.3, seed + 9),
    }
    world = World(
        provinces=provinces,
        province_cdf=province_cdf,
        sectors=list(SECTOR_SHARES),
        vocab=vocab,
        kinds=np.asarray(list(KIND_SHARES), dtype=object),
        kind_cdf=weights_cdf(list(KIND_SHARES.values())),
        days=days,
        first=today - dt.timedelta(days=days),
    )
    rng = np.random.default_rng(seed)
    raw = rng.bytes(16 * users).hex()
    world.user_ids = ["U" + raw[i * 32 : (i + 1) * 32] for i in range(users)]
    # Home province index, or -1 for people who never said where they are.
    home = draw(rng, province_cdf, users)
    home[rng.random(users) < NO_PROVINCE] = -1
    world.home = home
    assessed = rng.random(users) >= UNASSESSED
    world.sector = np.where(
        assessed, draw(rng, weights_cdf(list(SECTOR_SHARES.values())), users), -1
    )
    world.stage = np.where(assessed, draw(rng, weights_cdf(STAGE_SHARES), users) + 1, 0)
    # More people join later in the window (the roll-out grows); u ** 0.8 leans late.
    world.start = np.minimum((days * rng.random(users) ** 0.8).astype(np.int64), days - 1)
    if changing_profiles:
        world.assessed_on = world.start + rng.exponential(10.0, users).astype(np.int64)
    else:
        world.assessed_on = np.zeros(users, dtype=np.int64)
    activity = rng.lognormal(0.0, 1.2, users)
    world.activity_cdf = np.cumsum(activity) / activity.sum()
    return world


def _province_codes(world: World, idx: np.ndarray) -> np.ndarray:
    table = np.asarray([*world.provinces, ""], dtype=object)
    return table[idx]  # -1 picks the trailing ""


def events_chunk(
    world: World, rng: np.random.Generator, n: int, day: int | None
) -> tuple[np.ndarray, ...]:
    """``n`` moments other than ``followed``: (user index, day index, kind, province, key).

    People are drawn by their activity; ``day`` fixes the day (the incremental run),
    otherwise each moment falls a few weeks (exponential, mean 20 days) after the person's
    first day.
    """
    if day is None:
        users, picked = [], 0
        while picked < n:
            # Moments that would fall after the window did not happen yet: draw again.
            u = draw(rng, world.activity_cdf, n)
            d = world.start[u] + rng.exponential(20.0, n).astype(np.int64)
            keep = d < world.days
            users.append((u[keep], d[keep]))
            picked += int(keep.sum())
        user = np.concatenate([u for u, _ in users])[:n]
        days = np.concatenate([d for _, d in users])[:n]
    else:
        user = draw(rng, world.activity_cdf, n)
        days = np.full(n, day, dtype=np.int64)
    kind = world.kinds[draw(rng, world.kind_cdf, n)]
    unassessed = world.stage[user] == 0
    kind[unassessed & ((kind == r.ASSESSMENT_FINISHED) | (kind == r.DIGITAL_LOW))] = (
        r.ASSESSMENT_STARTED
    )
    province = world.home[user].copy()
    named = np.isin(kind, PLACE_KINDS) & (rng.random(n) < NAMED_PLACE)
    province[named] = draw(rng, world.province_cdf, int(named.sum()))
    key = np.full(n, "", dtype=object)
    for k, vocab in world.vocab.items():
        mask = kind == k
        count = int(mask.sum())
        if not count:
            continue
        values = vocab.codes[draw(rng, vocab.cdf, count)]
        if vocab.blank:
            values[rng.random(count) < vocab.blank] = ""
        key[mask] = values
    return user, days, kind, province, key


def _copy_lines(
    world: World,
    first_id: int,
    user: np.ndarray,
    days: np.ndarray,
    kind: np.ndarray,
    province: np.ndarray,
    key: np.ndarray,
    rng: np.random.Generator,
) -> str:
    day_text = [(world.first + dt.timedelta(days=i)).isoformat() for i in range(world.days + 2)]
    minute = [f"{m // 60:02d}:{m % 60:02d}:00+07" for m in range(1440)]
    sectors = np.asarray([*world.sectors, ""], dtype=object)
    known = (days >= world.assessed_on[user]) | np.isin(
        kind, (r.ASSESSMENT_FINISHED, r.DIGITAL_LOW)
    )
    ids = world.user_ids
    lines = [
        f"{i}\t{day_text[d]}\t{ids[u]}\t{k}\t{p}\t{s}\t{st}\t{key_}\t{day_text[d]} {minute[m]}\n"
        for i, d, u, k, p, s, st, key_, m in zip(
            range(first_id, first_id + len(user)),
            days.tolist(),
            user.tolist(),
            kind.tolist(),
            _province_codes(world, province).tolist(),
            sectors[np.where(known, world.sector[user], -1)].tolist(),
            np.where(known, world.stage[user], 0).tolist(),
            key.tolist(),
            rng.integers(0, 1440, len(user)).tolist(),
            strict=True,
        )
    ]
    return "".join(lines)


EVENT_COLUMNS = "(id, day, line_user_id, kind, province, sector, stage, key, at)"


def copy_users(conn: psycopg.Connection[Any], world: World) -> None:
    with conn.cursor() as cur:
        cols = "(id, line_user_id, following, follow_changed_at, consent_at, first_seen_at, "
        cols += "last_seen_at)"
        with cur.copy(f"COPY users {cols} FROM STDIN") as copy:
            for lo in range(0, len(world.user_ids), CHUNK):
                hi = min(lo + CHUNK, len(world.user_ids))
                lines = []
                for i in range(lo, hi):
                    seen = f"{world.first + dt.timedelta(days=int(world.start[i]))} 09:00:00+07"
                    lines.append(
                        f"{i + 1}\t{world.user_ids[i]}\tt\t{seen}\t{seen}\t{seen}\t{seen}\n"
                    )
                copy.write("".join(lines))
        cur.execute(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), %s)", (len(world.user_ids),)
        )


def copy_events(
    conn: psycopg.Connection[Any],
    world: World,
    rng: np.random.Generator,
    total: int,
    first_id: int,
    day: int | None,
) -> tuple[int, float]:
    """COPY ``total`` moments (``followed`` once per person first, unless ``day`` is fixed);
    returns the next free id and the seconds spent generating (the rest is the COPY)."""
    gen_s = 0.0
    next_id = first_id
    with conn.cursor() as cur, cur.copy(f"COPY insight_events {EVENT_COLUMNS} FROM STDIN") as copy:
        remaining = total
        if day is None:
            users = len(world.user_ids)
            for lo in range(0, users, CHUNK):
                t0 = time.perf_counter()
                user = np.arange(lo, min(lo + CHUNK, users))
                n = len(user)
                kind = np.full(n, r.FOLLOWED, dtype=object)
                text = _copy_lines(
                    world,
                    next_id,
                    user,
                    world.start[user],
                    kind,
                    world.home[user],
                    np.full(n, "", dtype=object),
                    rng,
                )
                gen_s += time.perf_counter() - t0
                copy.write(text)
                next_id += n
            remaining -= users
        while remaining > 0:
            n = min(CHUNK, remaining)
            t0 = time.perf_counter()
            user, days, kind, province, key = events_chunk(world, rng, n, day)
            text = _copy_lines(world, next_id, user, days, kind, province, key, rng)
            gen_s += time.perf_counter() - t0
            copy.write(text)
            next_id += n
            remaining -= n
    return next_id, gen_s


# -- the database -----------------------------------------------------------------------------


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(f"{HOST_DSN} dbname=postgres", autocommit=True)


def create_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(name: str) -> None:
    with admin() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def database_exists(name: str) -> bool:
    with admin() as conn:
        row = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
    return row is not None


def load(name: str, world: World, events: int, seed: int) -> dict[str, float]:
    """Users and moments through COPY, indexes rebuilt afterwards, then VACUUM ANALYZE."""
    figures: dict[str, float] = {}
    rng = np.random.default_rng(seed + 100)
    with psycopg.connect(f"{HOST_DSN} dbname={name}", autocommit=True) as conn:
        conn.execute("SET maintenance_work_mem = '256MB'")
        t0 = time.perf_counter()
        with conn.transaction():
            copy_users(conn, world)
        figures["insights.load.users_s"] = time.perf_counter() - t0
        conn.execute("DROP INDEX ix_insight_events_day")
        conn.execute("DROP INDEX ix_insight_events_line_user_id")
        t0 = time.perf_counter()
        with conn.transaction():
            next_id, gen_s = copy_events(conn, world, rng, events, 1, None)
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('insight_events', 'id'), %s)",
                (next_id - 1,),
            )
        figures["insights.load.events_s"] = time.perf_counter() - t0
        figures["insights.load.generate_s"] = gen_s
        figures["insights.load.events_per_s"] = events / figures["insights.load.events_s"]
        t0 = time.perf_counter()
        conn.execute("CREATE INDEX ix_insight_events_day ON insight_events (day)")
        conn.execute("CREATE INDEX ix_insight_events_line_user_id ON insight_events (line_user_id)")
        figures["insights.load.indexes_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        conn.execute("VACUUM ANALYZE users")
        conn.execute("VACUUM ANALYZE insight_events")
        figures["insights.load.vacuum_analyze_s"] = time.perf_counter() - t0
        figures["insights.load.events_table_mb"] = _size_mb(conn, "insight_events")
    figures["insights.load.total_s"] = sum(
        figures[f"insights.load.{k}"]
        for k in ("users_s", "events_s", "indexes_s", "vacuum_analyze_s")
    )
    return figures


def _size_mb(conn: psycopg.Connection[Any], table: str) -> float:
    row = conn.execute("SELECT pg_total_relation_size(%s)", (table,)).fetchone()
    return float(row[0]) / 2**20 if row else float("nan")


# -- the baseline: the same counts straight from the raw moments ------------------------------


@dataclass(frozen=True)
class Window:
    """One filter set: the period and the extra conditions, for views and raw queries alike."""

    name: str
    grain: str
    lo: dt.date
    hi: dt.date  # exclusive
    provinces: tuple[str, ...] = ()
    region: str = ""
    sector: str = ""

    def where(self) -> str:
        parts = [f"day >= DATE '{self.lo}'", f"day < DATE '{self.hi}'"]
        if self.provinces:
            parts.append("province IN (" + ", ".join(f"'{p}'" for p in self.provinces) + ")")
        if self.sector:
            parts.append(f"sector = '{self.sector}'")
        return " AND ".join(parts)


def _kinds(*kinds: str) -> str:
    return "kind IN (" + ", ".join(f"'{k}'" for k in kinds) + ")"


def _cross(kinds: Sequence[str], row: str, col: str, w: str) -> str:
    """Distinct people per (row, col) cell plus the row, column and grand totals."""
    return (
        f"SELECT {row}, {col}, COUNT(DISTINCT line_user_id) FROM insight_events "
        f"WHERE {_kinds(*kinds)} AND {w} GROUP BY GROUPING SETS (({row}, {col}), ({row}), "
        f"({col}), ())"
    )


def _per(kinds: Sequence[str], col: str, w: str) -> str:
    return (
        f"SELECT {col}, kind, COUNT(DISTINCT line_user_id) FROM insight_events "
        f"WHERE {_kinds(*kinds)} AND {w} GROUP BY GROUPING SETS (({col}, kind), (kind))"
    )


def raw_queries(view: str, window: Window, today: dt.date) -> list[str]:
    """What the view shows, counted on ``insight_events`` (one statement per table)."""
    w = window.where()
    if view == "demand":
        return [
            _cross([r.ASKED], "province", "key", w),
            _cross([r.ASKED, r.ASSESSMENT_FINISHED], "province", "sector", w),
            _cross([r.ASKED, r.ASSESSMENT_FINISHED], "province", "stage", w),
        ]
    if view == "readiness":
        return [
            _cross([r.ASSESSMENT_FINISHED], "province", "stage", w),
            _cross([r.ASSESSMENT_FINISHED], "sector", "stage", w),
            _per([r.ASSESSMENT_FINISHED, r.DIGITAL_LOW], "province", w),
        ]
    if view == "funnel":
        funnel = (
            r.FOLLOWED,
            r.ASSESSMENT_STARTED,
            r.ASSESSMENT_FINISHED,
            r.RECOMMENDATION_OPENED,
            r.OFFICIAL_CLICKED,
        )
        return [
            f"SELECT kind, COUNT(DISTINCT line_user_id) FROM insight_events "
            f"WHERE {_kinds(*funnel)} AND {w} GROUP BY kind",
            _per([r.GUIDE_SHOWN, r.GUIDE_HELPFUL, r.GUIDE_UNHELPFUL], "key", w),
            _per([r.HANDOFF], "key", w),
        ]
    if view == "unmet":
        return [
            _cross([r.NO_COURSE], "province", "key", w),
            _per([r.UNANSWERED], "key", w),
            _per([r.GUIDE_UNHELPFUL, r.GUIDE_SHOWN], "key", w),
            _cross([r.EXPORT_INTEREST], "key", "sector", w),
        ]
    if view == "notices":
        return [_per([r.NOTICE_DELIVERED, r.NOTICE_UNSUBSCRIBED], "key", w)]
    if view == "trends":
        # The last 12 weeks whatever the period (the view's own default), same place filters.
        monday = today - dt.timedelta(days=today.weekday())
        lo = monday - dt.timedelta(weeks=11)
        weeks = Window(
            window.name,
            "week",
            lo,
            today + dt.timedelta(days=1),
            window.provinces,
            "",
            window.sector,
        )
        return [
            "SELECT date_trunc('week', day)::date AS week, kind, COUNT(DISTINCT line_user_id) "
            f"FROM insight_events WHERE {weeks.where()} GROUP BY 1, 2"
        ]
    raise ValueError(view)


async def run_raw(db: Database, statements: Sequence[str]) -> tuple[float, list[list[Any]]]:
    from sqlalchemy import text

    t0 = time.perf_counter()
    out = []
    async with db.session() as session:
        for statement in statements:
            out.append([tuple(row) for row in (await session.execute(text(statement))).all()])
    return time.perf_counter() - t0, out


# -- timing helpers ---------------------------------------------------------------------------


async def timed(fn: Callable[[], Any], repeats: int) -> tuple[list[float], Any]:
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = await fn()
        times.append(time.perf_counter() - t0)
    return times, result


def quarter_start(day: dt.date) -> dt.date:
    return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def windows(today: dt.date, region: str, provinces: Sequence[str], sector: str) -> list[Window]:
    month = today.replace(day=1)
    quarter = quarter_start(today)
    after_quarter = next_month(next_month(next_month(quarter)))
    return [
        Window("default", "month", month, next_month(month)),
        Window(
            "region_sector", "month", month, next_month(month), tuple(provinces), region, sector
        ),
        Window("quarter", "quarter", quarter, after_quarter),
    ]


# -- the run ----------------------------------------------------------------------------------

VIEW_NAMES = ("demand", "readiness", "funnel", "unmet", "notices", "trends")


def pick_region() -> tuple[str, list[str]]:
    """The region with the most provinces (``bot/insights/regions.csv``) and its provinces."""
    with (c.ROOT / "bot" / "insights" / "regions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    row = max(rows, key=lambda row: len(row["provinces"].split()))
    return row["code"], sorted(row["provinces"].split())


async def incremental(db: Database, name: str, world: World, events: int, seed: int) -> float:
    """Copy today's moments (mark the day dirty, as capture does), then time ``rollup(db)``."""
    from bot.insights import rollup as rollup_module

    rng = np.random.default_rng(seed + 200)
    today = world.first + dt.timedelta(days=world.days)
    with psycopg.connect(f"{HOST_DSN} dbname={name}", autocommit=True) as conn:
        row = conn.execute("SELECT COALESCE(MAX(id), 0) FROM insight_events").fetchone()
        first_id = int(row[0]) + 1 if row else 1
        with conn.transaction():
            next_id, _ = copy_events(conn, world, rng, events, first_id, world.days)
            conn.execute(
                "SELECT setval(pg_get_serial_sequence('insight_events', 'id'), %s)",
                (next_id - 1,),
            )
            conn.execute(
                "INSERT INTO insights_dirty (day, marked_at) VALUES (%s, now())"
                " ON CONFLICT (day) DO NOTHING",
                (today,),
            )
        conn.execute("ANALYZE insight_events")
    t0 = time.perf_counter()
    await rollup_module.rollup(db)
    return time.perf_counter() - t0


def _optional(name: str) -> Any:
    """``bot.insights.<name>``, or None (noted) while it is still being written."""
    import importlib

    try:
        return importlib.import_module(f"bot.insights.{name}")
    except ImportError as e:
        c.note(f"bot.insights.{name} not importable ({e}); its figures are skipped")
        return None


async def measure(args: argparse.Namespace, url: str, world: World, knowledge: Knowledge) -> None:
    db = Database(Settings(database_url=url, _env_file=None).sqlalchemy_url)  # type: ignore[call-arg]
    try:
        await _measure(args, db, world, knowledge)
    finally:
        await db.close()


async def _measure(
    args: argparse.Namespace, db: Database, world: World, knowledge: Knowledge
) -> None:
    rollup_module, views = _optional("rollup"), _optional("views")
    name = args.db_name
    today = local_day()
    if rollup_module is not None and not args.no_rollup:
        t0 = time.perf_counter()
        await rollup_module.rollup(db, full=True)
        full_s = time.perf_counter() - t0
        c.emit("insights.rollup_full_s", full_s)
        report_rollup_table(name, "after_full")
        day_events = recent_daily(name)
        c.emit("insights.rollup_day_events", day_events)
        day_s = await incremental(db, name, world, day_events, args.seed)
        c.emit("insights.rollup_day_s", day_s)
        c.target("insights.rollup_day_s", day_s <= 60.0, f"one day's rollup {day_s:.1f} s <= 60 s")
        t0 = time.perf_counter()
        await rollup_module.rollup(db)
        c.emit("insights.rollup_nothing_dirty_s", time.perf_counter() - t0)
        report_rollup_table(name, "after_day")
        # What autovacuum does within a minute of a rollup: done here so the views' plans do
        # not depend on when it happens to run.
        t0 = time.perf_counter()
        with psycopg.connect(f"{HOST_DSN} dbname={name}", autocommit=True) as conn:
            conn.execute("VACUUM ANALYZE insights_rollup")
        c.emit("insights.rollup_vacuum_analyze_s", time.perf_counter() - t0)
    region, provinces = pick_region()
    sector = "food"
    c.note(f"region_sector filter: region {region} ({len(provinces)} provinces), sector {sector}")
    worst = 0.0
    for window in windows(today, region, provinces, sector):
        c.note(
            f"filters {window.name}: {window.grain} {window.lo} .. {window.hi - dt.timedelta(1)}"
        )
        for view in VIEW_NAMES:
            prefix = f"insights.{view}.{window.name}"
            view_p50 = float("nan")
            tables: Any = None
            if views is not None:
                filters = views.Filters(
                    grain=window.grain, region=window.region, sector=window.sector
                )

                async def build(view: str = view, filters: Any = filters) -> Any:
                    async with db.session() as session:
                        return await views.build(view, session, filters, knowledge, args.min_count)

                times, tables = await timed(build, args.repeats)
                view_p50 = statistics.median(times)
                worst = max(worst, max(times))
                c.emit(f"{prefix}.view_p50_s", view_p50)
                c.emit(f"{prefix}.view_max_s", max(times))
            statements = raw_queries(view, window, today)
            raw_times = []
            raw: list[list[Any]] = []
            for _ in range(args.raw_repeats):
                seconds, raw = await run_raw(db, statements)
                raw_times.append(seconds)
            raw_p50 = statistics.median(raw_times)
            c.emit(f"{prefix}.raw_p50_s", raw_p50)
            if views is not None:
                c.emit(f"{prefix}.ratio_raw_to_view", raw_p50 / view_p50)
            # A quarter is shown as its three months added up (a person active in two of
            # them counts twice), so only single-month windows equal a direct distinct count.
            if view == "demand" and tables is not None and window.grain != "quarter":
                check_demand(prefix, tables, raw[0])
    if views is not None:
        c.target("insights.view_max_s", worst <= 1.0, f"slowest view build {worst:.3f} s <= 1 s")


def check_demand(prefix: str, tables: Sequence[Any], raw_rows: Sequence[Sequence[Any]]) -> None:
    """The shown cells of demand_topic equal the direct count (hidden ones are skipped)."""
    table = next((t for t in tables if t.id == "demand_topic"), None)
    if table is None:
        c.note("no demand_topic table to check")
        return
    direct = {(p, k): n for p, k, n in raw_rows if p is not None and k is not None}
    shown = [(cell, n) for cell, n in table.cells.items() if n is not None]
    wrong = [(cell, n, direct.get(cell, 0)) for cell, n in shown if direct.get(cell, 0) != n]
    c.emit(f"{prefix}.check_cells_shown", len(shown))
    c.emit(f"{prefix}.check_cells_hidden", len(table.cells) - len(shown))
    c.emit(f"{prefix}.check_mismatches", len(wrong))
    for cell, n, want in wrong[:5]:
        c.note(f"demand_topic {cell}: view {n}, direct count {want}")


def recent_daily(name: str) -> int:
    """Moments per day over the last loaded week: the size of one more day."""
    with psycopg.connect(f"{HOST_DSN} dbname={name}", autocommit=True) as conn:
        row = conn.execute(
            "SELECT COUNT(*) / 7 FROM insight_events"
            " WHERE day >= (SELECT MAX(day) FROM insight_events) - 6"
        ).fetchone()
    return max(1, int(row[0]) if row else 1)


def report_rollup_table(name: str, when: str) -> None:
    with psycopg.connect(f"{HOST_DSN} dbname={name}", autocommit=True) as conn:
        row = conn.execute("SELECT COUNT(*) FROM insights_rollup").fetchone()
        c.emit(f"insights.rollup_rows.{when}", int(row[0]) if row else 0)
        c.emit(f"insights.rollup_table_mb.{when}", _size_mb(conn, "insights_rollup"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=120, help="days of history before today")
    parser.add_argument("--repeats", type=int, default=5, help="builds of each view")
    parser.add_argument("--raw-repeats", type=int, default=3, help="runs of each raw query")
    parser.add_argument("--min-count", type=int, default=10)
    parser.add_argument("--seed", type=int, default=13)
    parser.add_argument("--db-name", default="insights_bench")
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", action="store_true", help="use a database kept by --keep (no load)"
    )
    parser.add_argument(
        "--no-rollup", action="store_true", help="with --reuse: measure the views on its rollup"
    )
    parser.add_argument(
        "--changing-profiles",
        action="store_true",
        help="moments before a person's assessment have no sector or stage",
    )
    args = parser.parse_args()
    if args.db_name in FORBIDDEN:
        parser.error(f"refusing to use the {args.db_name!r} database")
    if args.events < args.users:
        parser.error("--events must be at least --users (everyone follows once)")
    c.emit("insights.background_busy_cores", c.background_load())
    url = f"postgresql://postgres@127.0.0.1:5432/{args.db_name}"
    knowledge = load_knowledge(c.ROOT / "knowledge").knowledge
    assert knowledge is not None
    today = local_day()
    world = make_world(knowledge, args.users, args.days, today, args.seed, args.changing_profiles)
    c.note(f"{args.users:,} users, {args.events:,} moments, {world.first} .. {today} (today)")
    reuse = args.reuse and database_exists(args.db_name)
    try:
        if not reuse:
            create_database(args.db_name)
            t0 = time.perf_counter()
            upgrade(Settings(database_url=url, _env_file=None))  # type: ignore[call-arg]
            c.emit("insights.migrate_s", time.perf_counter() - t0)
            for name, value in load(args.db_name, world, args.events, args.seed).items():
                c.emit(name, value)
        else:
            c.note(f"reusing database {args.db_name} (nothing loaded; rollup tables recomputed)")
        asyncio.run(measure(args, url, world, knowledge))
    finally:
        if not args.keep:
            drop_database(args.db_name)


if __name__ == "__main__":
    main()
