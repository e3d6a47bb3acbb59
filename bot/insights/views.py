"""The insight views: tables built from the rollup only, already suppressed.

The console page, the exports and the API all call :func:`build`, so they cannot disagree,
and none of them can see a person: the views read ``insights_rollup`` (counts per period
and cell) plus the knowledge (names, courses, centres, programmes), never the raw moments.

Counting unit: distinct people per period cell (exact within one week or month; a quarter
is its three months added up).
A filter spanning several periods adds the per-period counts (a person active in two months
counts twice); a per-period count under ``min_count`` is never added into a sum, so a sum
cannot be differenced back into a small count. Regions add up their provinces; sectors and
stages add up over theirs when not filtered. Totals use the rollup's ``*`` rows (distinct
people over every key, or every province), so a total is not always the sum of its cells.
Every shown value under ``min_count`` is hidden (``None``), then complementary suppression
(:mod:`bot.insights.suppress`) stops a hidden cell being worked out from the totals.

Everything is filtered and added up in SQL (one query per table part), so a view answers in
milliseconds at national size; Python only places the few hundred results in a table.
"""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Final

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.insights import records as r
from bot.insights.records import ALL, FILTER_GRAINS, InsightRollup
from bot.insights.rollup import period_end, period_start, shift
from bot.insights.suppress import Link, Place, Table, complementary, primary, settle
from bot.kb.loader import Knowledge
from bot.kb.queries import thai_date
from bot.storage.daily import day_start, local_day
from bot.storage.db import NoticeRun

HERE: Final = Path(__file__).parent
VIEWS: Final = ("demand", "readiness", "funnel", "unmet", "notices", "trends")
#: Weeks the trends view shows unless the filters ask for weeks themselves.
TREND_WEEKS: Final = 12
MAX_PERIODS: Final = 156
STAGES: Final = ("1", "2", "3", "4", "5")
FUNNEL: Final = (
    r.FOLLOWED,
    r.ASSESSMENT_STARTED,
    r.ASSESSMENT_FINISHED,
    r.RECOMMENDATION_OPENED,
    r.OFFICIAL_CLICKED,
)
GUIDE_KINDS: Final = (r.GUIDE_SHOWN, r.GUIDE_HELPFUL, r.GUIDE_UNHELPFUL)
NOTICE_KINDS: Final = (r.NOTICE_DELIVERED, r.NOTICE_UNSUBSCRIBED)
TREND_KINDS: Final = (
    r.FOLLOWED,
    r.ASKED,
    r.ASSESSMENT_FINISHED,
    r.RECOMMENDATION_OPENED,
    r.OFFICIAL_CLICKED,
    r.UNANSWERED,
    r.HANDOFF,
)
#: Table dimension -> the rollup column it reads.
_SQL_DIM: Final = {
    "province": "province",
    "region": "region",
    "topic": "key",
    "guide": "key",
    "market": "key",
    "course": "key",
    "theme": "key",
    "agency": "key",
    "sector": "sector",
    "stage": "stage",
    "kind": "kind",
    "week": "start",
    "period": "start",
}
_SECTOR: Final = re.compile(r"^[a-z0-9_\-]{0,32}$")


@dataclass(frozen=True)
class Filters:
    """What the reader asked for (``parse_filters`` builds one from query parameters)."""

    grain: str = "month"  # "week" | "month" | "quarter"
    start: dt.date | None = None  # first period's start; None = the `periods` latest ending today
    periods: int = 1
    region: str = ""  # region code (regions.csv) or ""
    province: str = ""  # 2-digit province code or ""
    sector: str = ""
    stage: int = 0


# -- regions and labels -----------------------------------------------------------------------


@dataclass(frozen=True)
class Region:
    """A group of provinces (``regions.csv``; see ``regions.SOURCE.md``)."""

    code: str
    name_th: str
    name_en: str
    provinces: tuple[str, ...]


@lru_cache(maxsize=1)
def regions() -> dict[str, Region]:
    """The regions by code, in file order."""
    with (HERE / "regions.csv").open(encoding="utf-8", newline="") as f:
        return {
            row["code"]: Region(
                row["code"], row["name_th"], row["name_en"], tuple(row["provinces"].split())
            )
            for row in csv.DictReader(f)
        }


@lru_cache(maxsize=1)
def _labels() -> dict[tuple[str, str], str]:
    """Fixed labels (kinds, measures, the hidden mark) from ``labels.csv``."""
    with (HERE / "labels.csv").open(encoding="utf-8", newline="") as f:
        return {(row["dim"], row["code"]): row["name_th"] for row in csv.DictReader(f)}


def region_of(province: str) -> str:
    """The region code of a province ("" when none lists it)."""
    for region in regions().values():
        if province in region.provinces:
            return region.code
    return ""


def region_choices(knowledge: Knowledge | None = None) -> list[tuple[str, str]]:
    """(code, Thai name) of every region, for a filter's choices."""
    return [(g.code, g.name_th) for g in regions().values()]


def provinces_in(filters: Filters, knowledge: Knowledge) -> set[str]:
    """The province codes the filters cover (every province without a place filter)."""
    if filters.province:
        return {filters.province}
    if filters.region:
        return set(regions()[filters.region].provinces)
    return set(knowledge.places.provinces)


def label(dim: str, code: str, knowledge: Knowledge) -> str:
    """The Thai display name of a code of a dimension (the code itself when unknown)."""
    fixed = _labels()
    if code == "" and dim not in ("export",):
        return fixed.get(("unknown", ""), code)
    found: str | None = None
    if dim == "province":
        province = knowledge.places.provinces.get(code)
        found = province.name_th if province else None
    elif dim == "region":
        region = regions().get(code)
        found = region.name_th if region else None
    elif dim == "topic":
        topic = knowledge.topics.get(code)
        found = topic.label.th if topic else None
    elif dim == "sector":
        sector = knowledge.sectors.get(code)
        found = sector.label.th if sector else None
    elif dim == "stage":
        stage = next((d for d in knowledge.assessment.stages if str(d.stage) == code), None)
        found = stage.name if stage else fixed.get(("unknown", ""))
    elif dim == "market":
        market = knowledge.markets.get(code)
        found = market.name.th if market else None
    elif dim == "course":
        found = _names(knowledge).get(code)
    elif dim in ("guide", "theme"):
        guide = knowledge.guides.get(code.removeprefix("guide:"))
        found = guide.title if guide else None
    elif dim == "agency":
        agency = knowledge.agencies.get(code)
        found = (agency.short_th or agency.name.th) if agency else None
    elif dim in ("week", "period"):
        try:
            found = thai_date(dt.date.fromisoformat(code))
        except ValueError:
            found = None
    else:  # kind, measure, export
        found = fixed.get((dim, code)) or fixed.get(("kind", code)) or fixed.get(("measure", code))
    return found or code


_NAMES: dict[str, dict[str, str]] = {}


def _names(knowledge: Knowledge) -> dict[str, str]:
    """Course and programme names by id, once per knowledge version."""
    found = _NAMES.get(knowledge.version)
    if found is None:
        found = {c.id: c.name.th for c in knowledge.courses}
        found |= {p.id: p.name.th for p in knowledge.programmes}
        _NAMES.clear()
        _NAMES[knowledge.version] = found
    return found


def parse_filters(params: Mapping[str, str]) -> Filters:
    """Filters from query parameters; ValueError on anything malformed (never guessed)."""

    def get(name: str) -> str:
        return str(params.get(name, "") or "").strip()

    grain = get("grain") or "month"
    if grain not in FILTER_GRAINS:
        raise ValueError(f"grain must be one of {', '.join(FILTER_GRAINS)}")
    start = dt.date.fromisoformat(get("start")) if get("start") else None
    periods = int(get("periods") or 1)
    if not 1 <= periods <= MAX_PERIODS:
        raise ValueError(f"periods must be 1 to {MAX_PERIODS}")
    region = get("region")
    if region and region not in regions():
        raise ValueError("unknown region")
    province = get("province")
    if province and not re.fullmatch(r"\d{2}", province):
        raise ValueError("province must be a 2-digit code")
    if province and region and province not in regions()[region].provinces:
        raise ValueError("the province is not in the region")
    sector = get("sector")
    if not _SECTOR.match(sector):
        raise ValueError("malformed sector")
    stage = int(get("stage") or 0)
    if not 0 <= stage <= 5:
        raise ValueError("stage must be 1 to 5 (or 0: any)")
    return Filters(grain, start, periods, region, province, sector, stage)


# -- the window and the queries ---------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """The rollup rows a view reads: a grain, a range of period starts, the place filter."""

    grain: str
    first: dt.date
    last: dt.date
    #: Province codes to add up (None: the whole country, read from the ``*`` rows).
    provinces: tuple[str, ...] | None
    sector: str | None
    stage: int | None

    def starts(self) -> list[dt.date]:
        out, at = [], self.first
        while at <= self.last:
            out.append(at)
            at = shift(self.grain, at, 1)
        return out


def window(filters: Filters, today: dt.date | None = None) -> Window:
    """The periods and places ``filters`` cover.

    A quarter is read as its three months added up (``FILTER_GRAINS``): the rollup keeps
    weeks and months only, because recomputing a whole quarter's distinct people on every
    run cost more than the rest of the rollup together at national size
    (benchmarks/insights_bench.py)."""
    if filters.grain not in FILTER_GRAINS:
        raise ValueError(f"unknown grain {filters.grain!r}")
    n = max(1, filters.periods)
    grain = filters.grain
    if grain == "quarter":
        grain, months = "month", 3
    else:
        months = 1
    if filters.start is None:
        last = period_start(filters.grain, today or local_day())
        first = shift(filters.grain, last, -(n - 1))
    else:
        first = period_start(filters.grain, filters.start)
        last = shift(filters.grain, first, n - 1)
    last = shift(grain, last, months - 1) if months > 1 else last
    places: tuple[str, ...] | None = None
    if filters.province:
        places = (filters.province,)
    elif filters.region:
        places = regions()[filters.region].provinces
    return Window(
        grain,
        first,
        last,
        places,
        filters.sector or None,
        filters.stage or None,
    )


def trend_window(filters: Filters, today: dt.date | None = None) -> Window:
    """Weeks for the trends: the filter's own weeks, else the 12 ending with its period."""
    w = window(filters, today)
    if filters.grain == "week" and filters.periods > 1:
        return w
    end = min(period_end(w.grain, w.last), today or local_day())
    last = period_start("week", end)
    first = shift("week", last, -(TREND_WEEKS - 1))
    return Window("week", first, last, w.provinces, w.sector, w.stage)


Counts = dict[tuple[str, ...], tuple[int, int]]


def _dim_expr(dim: str) -> Any:
    R = InsightRollup
    return {
        "province": R.province,
        "key": R.key,
        "sector": R.sector,
        "stage": R.stage,
        "kind": R.kind,
        "start": R.start,
    }[dim]


def _text(value: Any) -> str:
    if isinstance(value, dt.date):
        return value.isoformat()
    return "" if value is None else str(value)


PerPeriod = dict[tuple[str, ...], int]


async def per_period(
    s: AsyncSession, w: Window, kinds: Sequence[str], by: Sequence[str], *, keyed: bool
) -> PerPeriod:
    """People per period and value of the ``by`` dimensions (rollup columns), added up in SQL
    over the dimensions not asked for: (period start, *values) -> people.

    ``keyed``: read the rows of each key (else the key-total ``*`` rows, distinct people over
    keys). Province rows are read (and added up) when a province dimension or a place filter
    is in play, else the country's ``*`` rows.
    """
    R = InsightRollup
    geo = "province" in by or w.provinces is not None
    where: list[Any] = [
        R.grain == w.grain,
        # Equalities, not a range: the primary key (grain, start, kind, province, ...) is then
        # used for every column that follows.
        R.start.in_(w.starts()),
        R.kind.in_(list(kinds)) if len(kinds) > 1 else R.kind == kinds[0],
        R.key != ALL if keyed else R.key == ALL,
    ]
    if geo:
        where.append(R.province != ALL)
        if w.provinces is not None:
            where.append(R.province.in_(list(w.provinces)))
    else:
        where.append(R.province == ALL)
    if w.sector is None and w.stage is None and "sector" not in by and "stage" not in by:
        where.append(R.sector == ALL)  # every sector and stage: distinct people, few rows
    else:
        where.append(R.sector != ALL)
        if w.sector is not None:
            where.append(R.sector == w.sector)
        if w.stage is not None:
            where.append(R.stage == w.stage)
    columns = [_dim_expr(d) for d in by]
    query = select(R.start, *columns, func.sum(R.people)).where(*where).group_by(R.start, *columns)
    return {
        tuple(_text(v) for v in row[:-1]): int(row[-1] or 0)
        for row in (await s.execute(query)).all()
    }


def fold(found: PerPeriod, min_count: int, regional: int | None = None) -> Counts:
    """Per-period counts added up over the periods: (the sum of those of ``min_count`` or
    more, the sum of all). ``regional``: the position of a province value to add up into
    its region first (per period, before the threshold)."""
    if regional is not None:
        grouped: PerPeriod = {}
        for key, n in found.items():
            i = regional + 1
            mapped = (*key[:i], region_of(key[i]), *key[i + 1 :])
            grouped[mapped] = grouped.get(mapped, 0) + n
        found = grouped
    out: dict[tuple[str, ...], list[int]] = {}
    for key, n in found.items():
        sums = out.setdefault(key[1:], [0, 0])
        if n >= min_count:
            sums[0] += n
        sums[1] += n
    return {k: (v[0], v[1]) for k, v in out.items()}


async def counts(
    s: AsyncSession,
    w: Window,
    kinds: Sequence[str],
    by: Sequence[str],
    *,
    keyed: bool,
    min_count: int,
) -> Counts:
    """People per value of the ``by`` dimensions (rollup columns, or ``region``): for each,
    (the sum of per-period counts of ``min_count`` or more, the sum of all of them)."""
    if "region" in by:
        i = list(by).index("region")
        base = tuple("province" if d == "region" else d for d in by)
        return fold(await per_period(s, w, kinds, base, keyed=keyed), min_count, regional=i)
    return fold(await per_period(s, w, kinds, by, keyed=keyed), min_count)


def _value(found: Counts, key: tuple[str, ...], min_count: int) -> int | None:
    shown, raw = found.get(key, (0, 0))
    return primary(shown, raw, min_count)


def _order(known: Iterable[str], seen: Iterable[str]) -> list[str]:
    """Known codes in knowledge order, then codes seen in the data but unknown (sorted)."""
    out = list(dict.fromkeys(known))
    listed = set(out)
    out += sorted({c for c in seen if c not in listed})
    return out


@dataclass
class _Ctx:
    s: AsyncSession
    w: Window
    knowledge: Knowledge
    min_count: int
    #: The weeks of the trends view.
    trend: Window
    #: Per-period results already read (a region table reuses its province table's).
    cache: dict[tuple[Any, ...], PerPeriod] = field(default_factory=dict)
    #: Region tables and the province tables they add up (suppressed together).
    links: list[Link] = field(default_factory=list)

    async def counts(self, kinds: Sequence[str], by: Sequence[str], *, keyed: bool) -> Counts:
        """``counts`` for this view's window, each SQL query run once per build."""
        regional = list(by).index("region") if "region" in by else None
        base = tuple("province" if d == "region" else d for d in by)
        key = (tuple(kinds), base, keyed)
        found = self.cache.get(key)
        if found is None:
            found = await per_period(self.s, self.w, kinds, base, keyed=keyed)
            self.cache[key] = found
        return fold(found, self.min_count, regional=regional)

    def provinces(self) -> list[str]:
        if self.w.provinces is not None:
            return list(self.w.provinces)
        return sorted(self.knowledge.places.provinces)


async def _grid(
    ctx: _Ctx,
    table_id: str,
    kinds: Sequence[str],
    row_dim: str,
    column_dim: str,
    rows: list[str] | None,
    columns: list[str] | None,
    *,
    keyed: bool | None = None,
    row_totals: bool = True,
    column_totals: bool = True,
    note: str = "",
    column_kinds: bool = False,
) -> Table:
    """A people table of ``row_dim`` x ``column_dim``, with totals, suppressed.

    ``rows``/``columns`` None: the values seen in the data (largest first for rows). A
    column dimension of kinds (``column_kinds``) makes row totals meaningless (measures
    side by side) and has no grand total.
    """
    rsql, csql = _SQL_DIM[row_dim], "kind" if column_kinds else _SQL_DIM[column_dim]
    if keyed is None:
        keyed = "key" in (rsql, csql)
    mc = ctx.min_count
    cells = await ctx.counts(kinds, (rsql, csql), keyed=keyed)
    if rows is None:
        sums: dict[str, int] = {}
        for (rv, _), (_, raw) in cells.items():
            sums[rv] = sums.get(rv, 0) + raw
        rows = sorted(sums, key=lambda k: (-sums[k], k))
    else:
        rows = _order(rows, (k[0] for k in cells if rsql in ("key", "sector", "stage")))
    if columns is None:
        columns = _order((), (k[1] for k in cells))
    elif csql in ("key", "sector"):
        columns = _order(columns, (k[1] for k in cells))
    table = Table(table_id, row_dim, column_dim, rows, columns, {}, note=note)
    table.cells = {(rv, cv): _value(cells, (rv, cv), mc) for rv in rows for cv in columns}
    if row_totals and not column_kinds:
        found = await ctx.counts(kinds, (rsql,), keyed=rsql == "key")
        table.row_totals = {rv: _value(found, (rv,), mc) for rv in rows}
    if column_totals:
        found = await ctx.counts(kinds, (csql,), keyed=csql == "key")
        table.column_totals = {cv: _value(found, (cv,), mc) for cv in columns}
    if column_kinds or not (row_totals or column_totals):
        table.has_total = False
    else:
        found = await ctx.counts(kinds, (), keyed=False)
        table.total = _value(found, (), mc)
    table.ids = _ids(table, kinds, rsql, csql, column_kinds)
    return complementary(table)


def _ids(
    table: Table, kinds: Sequence[str], rsql: str, csql: str, column_kinds: bool
) -> dict[Place, Hashable]:
    """What each value of a grid counts: (kinds, dimension values). Two tables of a view
    printing the same figure (a province's people in the sector and in the stage table)
    then share an id, and ``settle`` hides it in both or neither."""
    every = tuple(sorted(kinds))

    def of(kind: str | None, **dims: str) -> Hashable:
        return ((kind,) if kind is not None else every, frozenset(dims.items()))

    ids: dict[Place, Hashable] = {}
    for rv in table.rows:
        for cv in table.columns:
            if column_kinds:
                ids[("cell", rv, cv)] = of(cv, **{rsql: rv})
            else:
                ids[("cell", rv, cv)] = of(None, **{rsql: rv, csql: cv})
        if rv in table.row_totals:
            ids[("row", rv)] = of(None, **{rsql: rv})
    for cv in table.columns:
        if cv in table.column_totals:
            ids[("column", cv)] = of(cv) if column_kinds else of(None, **{csql: cv})
    if table.has_total:
        ids[("total",)] = of(None)
    return ids


def rename_column(table: Table, old: str, new: str) -> None:
    """Rename one column (its cells, total and ids) of a built table."""
    table.columns = [new if c == old else c for c in table.columns]
    table.cells = {(rv, new if cv == old else cv): v for (rv, cv), v in table.cells.items()}
    if old in table.column_totals:
        table.column_totals[new] = table.column_totals.pop(old)
    renamed: dict[Place, Hashable] = {}
    for place, found in table.ids.items():
        if place[0] == "cell" and place[2] == old:
            place = ("cell", place[1], new)
        elif place[0] == "column" and place[1] == old:
            place = ("column", new)
        renamed[place] = found
    table.ids = renamed


def _people_column(table: Table, measure: str = "people") -> Table:
    """Rename the single kind column of a one-kind table to ``measure``."""
    (old,) = table.columns
    rename_column(table, old, measure)
    table.column_dim = "measure"
    return table


# -- the views --------------------------------------------------------------------------------


async def _demand(ctx: _Ctx) -> list[Table]:
    kb = ctx.knowledge
    provinces = ctx.provinces()
    sectors = [*kb.sectors, ""] if ctx.w.sector is None else [ctx.w.sector]
    stages = ["0", *STAGES] if ctx.w.stage is None else [str(ctx.w.stage)]
    both = (r.ASKED, r.ASSESSMENT_FINISHED)
    topic = await _grid(
        ctx, "demand_topic", (r.ASKED,), "province", "topic", provinces, list(kb.topics)
    )
    region = await _grid(
        ctx, "demand_region", (r.ASKED,), "region", "topic", _regions(ctx), list(kb.topics)
    )
    # A region adds up its provinces: suppressed together (``build``), so that no hidden
    # province is the region minus the shown others.
    ctx.links.append((topic, region, {g.code: list(g.provinces) for g in regions().values()}))
    sector = await _grid(
        ctx,
        "demand_sector",
        both,
        "province",
        "sector",
        provinces,
        sectors,
        note="asked_plus_assessed",
    )
    stage = await _grid(
        ctx,
        "demand_stage",
        both,
        "province",
        "stage",
        provinces,
        stages,
        note="asked_plus_assessed",
    )
    return [topic, region, sector, stage]


def _regions(ctx: _Ctx) -> list[str]:
    if ctx.w.provinces is None:
        return list(regions())
    wanted = set(ctx.w.provinces)
    return [g.code for g in regions().values() if wanted & set(g.provinces)]


async def _readiness(ctx: _Ctx) -> list[Table]:
    kb = ctx.knowledge
    stages = list(STAGES) if ctx.w.stage is None else [str(ctx.w.stage)]
    sectors = [*kb.sectors, ""] if ctx.w.sector is None else [ctx.w.sector]
    finished = (r.ASSESSMENT_FINISHED,)
    by_stage = await _grid(
        ctx, "readiness_stage", finished, "province", "stage", ctx.provinces(), stages
    )
    by_sector = await _grid(ctx, "readiness_sector", finished, "sector", "stage", sectors, stages)
    return [by_stage, by_sector, await _digital_gap(ctx)]


async def _digital_gap(ctx: _Ctx) -> Table:
    """Finished assessments and low digital skills per province, beside the centres known."""
    provinces = ctx.provinces()
    gap = await _grid(
        ctx,
        "digital_gap",
        (r.ASSESSMENT_FINISHED, r.DIGITAL_LOW),
        "province",
        "kind",
        provinces,
        [r.ASSESSMENT_FINISHED, r.DIGITAL_LOW],
        column_kinds=True,
        note="digital_gap",
    )
    rename = {r.ASSESSMENT_FINISHED: "finished", r.DIGITAL_LOW: "digital_low"}
    gap.column_dim = "measure"
    for old, new in rename.items():
        rename_column(gap, old, new)
    gap.columns = [*rename.values(), "centres"]
    centres: dict[str, int] = {}
    for centre in ctx.knowledge.centres:
        if centre.status != "closed":
            centres[centre.province_code] = centres.get(centre.province_code, 0) + 1
    # Centres are places, not people: never hidden.
    for rv in provinces:
        gap.cells[(rv, "centres")] = centres.get(rv, 0)
    gap.column_totals["centres"] = sum(centres.get(rv, 0) for rv in provinces)
    return gap


async def _funnel(ctx: _Ctx) -> list[Table]:
    steps = await ctx.counts(FUNNEL, ("kind",), keyed=False)
    funnel = Table("funnel", "measure", "measure", list(FUNNEL), ["people"], {}, has_total=False)
    funnel.cells = {(k, "people"): _value(steps, (k,), ctx.min_count) for k in FUNNEL}
    guides = await _grid(
        ctx, "guides", GUIDE_KINDS, "guide", "kind", None, list(GUIDE_KINDS), column_kinds=True
    )
    handoffs = await _grid(
        ctx, "handoffs", (r.HANDOFF,), "agency", "kind", None, [r.HANDOFF], column_kinds=True
    )
    return [funnel, guides, _people_column(handoffs)]


async def _unmet(ctx: _Ctx) -> list[Table]:
    kb = ctx.knowledge
    no_course = await _grid(
        ctx, "no_course", (r.NO_COURSE,), "province", "topic", ctx.provinces(), list(kb.topics)
    )
    themes = _people_column(
        await _grid(
            ctx,
            "unanswered_themes",
            (r.UNANSWERED,),
            "theme",
            "kind",
            None,
            [r.UNANSWERED],
            column_kinds=True,
            note="themes_min_count",
        )
    )
    # Only clusters of at least min_count people are named (after suppression, so the
    # themes left out cannot be worked out from the total either).
    themes.rows = [t for t in themes.rows if themes.cells.get((t, "people")) is not None]
    themes.cells = {k: v for k, v in themes.cells.items() if k[0] in themes.rows}
    unhelpful = await _grid(
        ctx,
        "unhelpful_guides",
        (r.GUIDE_UNHELPFUL, r.GUIDE_SHOWN),
        "guide",
        "kind",
        None,
        [r.GUIDE_UNHELPFUL, r.GUIDE_SHOWN],
        column_kinds=True,
    )
    unhelpful.rows = sorted(
        (g for g in unhelpful.rows if unhelpful.cells.get((g, r.GUIDE_UNHELPFUL)) != 0),
        key=lambda g: (-(unhelpful.cells.get((g, r.GUIDE_UNHELPFUL)) or 0), g),
    )
    # A selection of guides: totals over all of them would count the ones left out.
    unhelpful.column_totals = {}
    sectors = [*kb.sectors, ""] if ctx.w.sector is None else [ctx.w.sector]
    export = await _grid(
        ctx, "export_interest", (r.EXPORT_INTEREST,), "market", "sector", list(kb.markets), sectors
    )
    return [no_course, themes, unhelpful, export, _programmes(ctx, export.rows)]


def _programmes(ctx: _Ctx, markets: list[str]) -> Table:
    """Export programmes per market, from the knowledge (places to send the interest)."""
    count = {m: 0 for m in markets}
    for programme in ctx.knowledge.programmes:
        for m in programme.markets:
            if m in count:
                count[m] += 1
    table = Table(
        "programmes_per_market", "market", "measure", markets, ["programmes"], {}, has_total=False
    )
    table.cells = {(m, "programmes"): count[m] for m in markets}
    return table


async def _notices(ctx: _Ctx) -> list[Table]:
    notices = await _grid(
        ctx, "notices", NOTICE_KINDS, "course", "kind", None, list(NOTICE_KINDS), column_kinds=True
    )
    return [notices, await _quota(ctx)]


async def _quota(ctx: _Ctx) -> Table:
    """Per period: people notified (rollup), notice runs and the quota LINE reported last."""
    w = ctx.w
    starts = [p.isoformat() for p in w.starts()]
    people = await counts(
        ctx.s, w, (r.NOTICE_DELIVERED,), ("start",), keyed=False, min_count=ctx.min_count
    )
    table = Table("quota", "period", "measure", starts, ["notice_people", "runs", "quota_left"], {})
    table.has_total = False
    # Thai days, like the periods the runs are put in.
    first = day_start(w.first)
    last = day_start(period_end(w.grain, w.last) + dt.timedelta(days=1))
    runs = (
        await ctx.s.execute(
            select(NoticeRun.started_at, NoticeRun.counts)
            .where(
                NoticeRun.dry_run.is_(False),
                NoticeRun.started_at >= first,
                NoticeRun.started_at < last,
            )
            .order_by(NoticeRun.started_at)
        )
    ).all()
    per: dict[str, tuple[int, int | None]] = {}
    for started, figures in runs:
        key = period_start(
            w.grain, local_day(started if started.tzinfo else started.replace(tzinfo=dt.UTC))
        ).isoformat()
        n, quota = per.get(key, (0, None))
        left = (figures or {}).get("quota_left")
        per[key] = (n + 1, int(left) if isinstance(left, int) else quota)
    for p in starts:
        table.cells[(p, "notice_people")] = _value(people, (p,), ctx.min_count)
        n, quota = per.get(p, (0, None))
        table.cells[(p, "runs")] = n
        table.cells[(p, "quota_left")] = quota
    return table


async def _trends(ctx: _Ctx) -> list[Table]:
    w = ctx.trend
    weeks = [p.isoformat() for p in w.starts()]
    found = await counts(
        ctx.s, w, TREND_KINDS, ("start", "kind"), keyed=False, min_count=ctx.min_count
    )
    table = Table("trends", "week", "kind", weeks, list(TREND_KINDS), {}, has_total=False)
    table.cells = {(p, k): _value(found, (p, k), ctx.min_count) for p in weeks for k in TREND_KINDS}
    return [table]


_BUILDERS: Final = {
    "demand": _demand,
    "readiness": _readiness,
    "funnel": _funnel,
    "unmet": _unmet,
    "notices": _notices,
    "trends": _trends,
}


async def build(
    view: str,
    session: AsyncSession,
    filters: Filters,
    knowledge: Knowledge,
    min_count: int,
    today: dt.date | None = None,
) -> list[Table]:
    """The tables of one view for ``filters``, suppressed with ``min_count``."""
    builder = _BUILDERS.get(view)
    if builder is None:
        raise ValueError(f"unknown view {view!r}")
    ctx = _Ctx(session, window(filters, today), knowledge, min_count, trend_window(filters, today))
    tables = await builder(ctx)
    settle(tables, ctx.links)
    return tables


__all__ = [
    "VIEWS",
    "Filters",
    "Region",
    "Table",
    "Window",
    "build",
    "counts",
    "label",
    "parse_filters",
    "provinces_in",
    "region_choices",
    "regions",
    "trend_window",
    "window",
]
