"""Insights for decision makers (issue 13): anonymised demand, readiness, funnel, unmet
demand, notices and trends, for analysts and admins.

Every number comes from :func:`bot.insights.views.build`, which reads the rollup only and
has already hidden every cell built from fewer than ``INSIGHTS_MIN_COUNT`` people (and the
cells that would let one be worked out from the totals); this page never counts anything
itself. A hidden cell is drawn as a mark, never a number, in the tables, the charts and the
map alike. The downloads (CSV, Excel) are the same tables through
:mod:`bot.insights.exports`, and each one is written to the audit log (who took which view,
with which filters). The filters are a plain GET form: the page works without JavaScript.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from bot.console import charts
from bot.console.auth import CanSeeInsights, SignedIn
from bot.console.web import page
from bot.insights import exports, rollup, tilemap, views
from bot.insights.records import FILTER_GRAINS
from bot.services import Services
from bot.storage import accounts
from bot.storage.daily import local_day

router = APIRouter(prefix="/console/insights")

#: The query parameters that are filters (``views.parse_filters`` reads them); others, such
#: as the map's table, are the page's own.
FILTER_KEYS: Final = ("grain", "start", "periods", "region", "province", "sector", "stage")
STAGES: Final = (1, 2, 3, 4, 5)
#: The most bars a ranking chart shows, and the most rows a stacked chart draws.
RANKED: Final = 12
STACKED_ROWS: Final = 40
#: A table this short shows every row; a longer one leaves out its rows of zeros.
SHORT_TABLE: Final = 12
#: Column dimensions whose values split a row into parts (drawn as stacked columns).
PARTS: Final = frozenset({"stage", "sector", "topic"})
#: Row dimensions drawn in their own order (a funnel's steps), not largest first.
ORDERED: Final = frozenset({"measure"})
XLSX: Final = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass
class Shown:
    """A table as the page draws it: labels for its codes and the chart that suits it."""

    table: views.Table
    rows: dict[str, str]
    columns: dict[str, str]
    chart_kind: str = ""  # "lines" | "stacked" | "ranking" | ""
    chart: Any = None
    #: A ranking of the column totals beside a province table's map ("which topics").
    column_ranking: charts.Ranking | None = None
    tile_map: tilemap.TileMap | None = None
    hidden_in_chart: bool = False
    #: The rows the table shows: rows of zeros only (no one, nothing hidden) are left out
    #: of a long table; the downloads keep them.
    visible: list[str] = field(default_factory=list)


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def _filter_params(request: Request) -> dict[str, str]:
    return {k: v for k in FILTER_KEYS if (v := request.query_params.get(k, "").strip())}


def _query(params: dict[str, str], **more: str) -> str:
    """The filters as a query string (for the view tabs and the downloads)."""
    merged = {**params, **{k: v for k, v in more.items() if v}}
    return ("?" + urlencode(merged)) if merged else ""


def _labels(dim: str, codes: list[str], services: Services) -> dict[str, str]:
    return {code: views.label(dim, code, services.knowledge) for code in codes}


def _ranking(items: dict[str, int | None], ordered: bool = False) -> tuple[charts.Ranking, bool]:
    """Bars for the shown values (largest first unless ``ordered``), and whether some were
    hidden."""
    shown = [(k, v) for k, v in items.items() if v is not None]
    if not ordered:
        shown = sorted(shown, key=lambda kv: -kv[1])
    bars = [kv for kv in shown if kv[1] > 0][:RANKED] if not ordered else shown[:RANKED]
    return charts.ranking(bars), len(shown) < len(items)


def _visible(table: views.Table) -> list[str]:
    """The rows worth a line on the page: those with someone (or something hidden) in them,
    or all of a short table."""
    if len(table.rows) <= SHORT_TABLE:
        return list(table.rows)
    return [
        r
        for r in table.rows
        if table.row_totals.get(r, 0) != 0
        or any(table.cells.get((r, c), 0) != 0 for c in table.columns)
    ]


def _map_values(table: views.Table) -> dict[str, int | None]:
    """Per province: the row total when the table has totals, else its single column."""
    if table.row_totals:
        return {r: table.row_totals.get(r) for r in table.rows}
    first = table.columns[0] if table.columns else ""
    return {r: table.cells.get((r, first)) for r in table.rows}


def _shown(
    table: views.Table, services: Services, included: set[str] | None, on_map: bool
) -> Shown:
    """Labels and a chart for ``table`` (``on_map``: the table whose province totals the
    page's map shows)."""
    shown = Shown(
        table,
        _labels(table.row_dim, table.rows, services),
        _labels(table.column_dim, table.columns, services),
        visible=_visible(table),
    )
    if table.row_dim == "period":
        pass  # measures of different units side by side: the table says it best
    elif table.row_dim == "week":
        series = {c: {r: table.cells.get((r, c), 0) for r in table.rows} for c in table.columns}
        shown.chart_kind, shown.chart = "lines", charts.lines(table.rows, series)
        shown.hidden_in_chart = any(v is None for s in series.values() for v in s.values())
    elif table.row_dim == "province":
        if on_map:
            provinces = services.knowledge.places.provinces
            shown.tile_map = tilemap.tile_map(provinces, _map_values(table), included)
        if len(table.columns) > 1 and table.column_totals and table.column_dim in PARTS:
            shown.column_ranking, _ = _ranking(dict(table.column_totals))
    elif table.column_dim in PARTS and 1 < len(table.columns) <= len(charts.SERIES_CLASSES):
        rows = table.rows[:STACKED_ROWS]
        data = {r: {c: table.cells.get((r, c)) or 0 for c in table.columns} for r in rows}
        shown.chart_kind = "stacked"
        shown.chart = charts.stacked(data, table.columns)
        shown.hidden_in_chart = any(
            table.cells.get((r, c)) is None for r in rows for c in table.columns
        )
    elif table.columns:
        first = table.columns[0]
        values = (
            dict(table.row_totals)
            if table.row_totals
            else {r: table.cells.get((r, first), 0) for r in table.rows}
        )
        shown.chart_kind = "ranking"
        shown.chart, shown.hidden_in_chart = _ranking(values, table.row_dim in ORDERED)
    return shown


async def _tables(services: Services, view: str, filters: views.Filters) -> list[views.Table]:
    async with services.db.session() as s:
        return await views.build(
            view, s, filters, services.knowledge, services.settings.insights_min_count
        )


def _view_or_404(view: str) -> str:
    if view not in views.VIEWS:
        raise HTTPException(404, "no such view")
    return view


async def _render(request: Request, who: SignedIn, view: str) -> Response:
    services = _services(request)
    params = _filter_params(request)
    problem = ""
    try:
        filters = views.parse_filters(params)
    except ValueError:
        problem, filters, params = "filters", views.Filters(), {}
    tables = await _tables(services, view, filters)
    # The dates the figures cover (the trends' own weeks on the trends view).
    window = views.trend_window(filters) if view == "trends" else views.window(filters)
    included = (
        views.provinces_in(filters, services.knowledge)
        if filters.region or filters.province
        else None
    )
    by_province = [t.id for t in tables if t.row_dim == "province"]
    chosen = request.query_params.get("map", "")
    on_map = chosen if chosen in by_province else (by_province[0] if by_province else "")
    shown = [_shown(t, services, included, t.id == on_map) for t in tables]
    knowledge = services.knowledge
    return page(
        request,
        "insights.html",
        who,
        status_code=400 if problem else 200,
        problem=problem,
        view=view,
        views=views.VIEWS,
        filters=filters,
        params=params,
        query=_query(params),
        on_map=on_map,
        map_links=[(t, _query(params, map=t)) for t in by_province] if len(by_province) > 1 else [],
        grains=FILTER_GRAINS,  # week, month, quarter
        max_periods=views.MAX_PERIODS,
        stages=STAGES,
        regions=views.region_choices(knowledge),
        provinces=sorted(
            ((p.code, p.name_th) for p in knowledge.places.provinces.values()), key=lambda p: p[1]
        ),
        sectors=[(code, views.label("sector", code, knowledge)) for code in knowledge.sectors],
        shown=shown,
        min_count=services.settings.insights_min_count,
        last_run=await rollup.last_run(services.db),
        first_day=window.first,
        last_day=rollup.period_end(window.grain, window.last),
    )


@router.get("", response_class=HTMLResponse)
async def insights_home(request: Request, who: CanSeeInsights) -> Response:
    """The first view (demand, with the map)."""
    return await _render(request, who, views.VIEWS[0])


async def _download(request: Request, who: SignedIn, view: str, kind: str) -> Response:
    services = _services(request)
    params = _filter_params(request)
    try:
        filters = views.parse_filters(params)
    except ValueError as exc:
        raise HTTPException(400, "bad filters") from exc
    tables = await _tables(services, view, filters)
    await accounts.record_audit(
        services.db, who.operator, "insights.export", f"{view}.{kind}", None, params or None
    )
    name = f"insights-{view}-{local_day().isoformat()}.{kind}"
    disposition = {"Content-Disposition": f'attachment; filename="{name}"'}
    if kind == "csv":
        body, media = exports.to_csv(tables, services.knowledge), "text/csv; charset=utf-8"
    else:
        body, media = exports.to_xlsx(tables, services.knowledge), XLSX
    return Response(body, media_type=media, headers=disposition)


@router.get("/{view}.csv")
async def insights_csv(request: Request, who: CanSeeInsights, view: str) -> Response:
    """The view's tables as CSV (suppression applied), for spreadsheets."""
    return await _download(request, who, _view_or_404(view), "csv")


@router.get("/{view}.xlsx")
async def insights_xlsx(request: Request, who: CanSeeInsights, view: str) -> Response:
    """The view's tables as an Excel workbook (suppression applied)."""
    return await _download(request, who, _view_or_404(view), "xlsx")


@router.get("/{view}", response_class=HTMLResponse)
async def insights_view(request: Request, who: CanSeeInsights, view: str) -> Response:
    """One view: its tables, charts and (for tables by province) the map."""
    return await _render(request, who, _view_or_404(view))
