"""The read-only insights API for other government systems: ``/api/v1/insights/``.

The same tables as the console's insights page and its downloads (``bot.insights.views``),
already suppressed: a hidden value is ``null`` and the table says ``"suppressed": true``.
No user id or message text can come out: the views read the rollup only.

Authorisation: ``Authorization: Bearer $INSIGHTS_API_TOKEN``, compared in constant time;
401 for a missing or wrong token. Without ``INSIGHTS_API_TOKEN`` the API is closed (404),
so a deployment that never set it exposes nothing. Its own token, not ADMIN_TOKEN: a
partner system that reads statistics must not be able to reload knowledge.
"""

from __future__ import annotations

import datetime as dt
import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field

from bot.insights import views
from bot.insights.suppress import Table
from bot.kb.loader import Knowledge
from bot.services import Services

router = APIRouter(prefix="/api/v1/insights", tags=["insights"])


async def _authorised(
    request: Request,
    authorization: Annotated[str | None, Header(description="Bearer INSIGHTS_API_TOKEN")] = None,
) -> Services:
    """The app's services, once the request has shown the insights token."""
    services: Services = request.app.state.services
    setting = services.settings.insights_api_token
    token = setting.get_secret_value().strip() if setting is not None else ""
    if not token:  # unset or blank ("INSIGHTS_API_TOKEN=" in a .env): closed, never open
        raise HTTPException(404, "the insights API is not enabled: set INSIGHTS_API_TOKEN")
    scheme, _, given = (authorization or "").partition(" ")
    ok = hmac.compare_digest(given.strip().encode(), token.encode())
    if scheme.lower() != "bearer" or not ok:
        raise HTTPException(
            401, "missing or wrong insights token", headers={"WWW-Authenticate": "Bearer"}
        )
    return services


Reader = Annotated[Services, Depends(_authorised)]


class Coded(BaseModel):
    """A code (stable, for machines) and its Thai label (for people)."""

    code: str
    label: str


class TableOut(BaseModel):
    """One table: ``cells[i][j]`` is row ``i``, column ``j``; ``null`` means suppressed."""

    id: str
    row_dim: str
    column_dim: str
    note: str = ""
    rows: list[Coded]
    columns: list[Coded]
    cells: list[list[int | None]]
    #: Aligned with ``rows`` / ``columns``; absent when the table has no such totals.
    row_totals: list[int | None] | None = None
    column_totals: list[int | None] | None = None
    #: The grand total (distinct people); ``null`` when suppressed or when ``has_total`` is false.
    total: int | None = None
    has_total: bool = True
    #: Whether any value of the table was suppressed (below the minimum, or complementary).
    suppressed: bool = False
    #: How many values are suppressed.
    hidden: int = 0


class ViewOut(BaseModel):
    """A view for one set of filters."""

    view: str
    grain: str
    first_period: dt.date
    last_period: dt.date
    region: str = ""
    province: str = ""
    sector: str = ""
    stage: int = 0
    min_count: int = Field(description="values built from fewer people are suppressed (null)")
    counting: str = Field(
        default=(
            "distinct people per period and cell; several periods add up per-period counts "
            "(a person active in two periods counts twice), never counts under min_count"
        )
    )
    tables: list[TableOut]


class ViewRef(BaseModel):
    id: str
    url: str


class ViewList(BaseModel):
    views: list[ViewRef]


def table_out(table: Table, knowledge: Knowledge) -> TableOut:
    """A view's table as the API returns it (codes with labels, hidden values as null)."""

    def coded(dim: str, codes: list[str]) -> list[Coded]:
        return [Coded(code=c, label=views.label(dim, c, knowledge)) for c in codes]

    return TableOut(
        id=table.id,
        row_dim=table.row_dim,
        column_dim=table.column_dim,
        note=table.note,
        rows=coded(table.row_dim, table.rows),
        columns=coded(table.column_dim, table.columns),
        cells=[[table.cell(r, c) for c in table.columns] for r in table.rows],
        row_totals=[table.row_totals.get(r) for r in table.rows] if table.row_totals else None,
        column_totals=(
            [table.column_totals.get(c) for c in table.columns] if table.column_totals else None
        ),
        total=table.total if table.has_total else None,
        has_total=table.has_total,
        suppressed=table.hidden > 0 or (table.has_total and table.total is None),
        hidden=table.hidden + int(table.has_total and table.total is None),
    )


@router.get("/", response_model=ViewList, summary="The views")
async def list_views(request: Request, services: Reader) -> ViewList:
    """Every view this API serves."""
    base = str(request.url_for("insights_view", view="x")).rsplit("/", 1)[0]
    return ViewList(views=[ViewRef(id=v, url=f"{base}/{v}") for v in views.VIEWS])


@router.get("/{view}", response_model=ViewOut, name="insights_view", summary="One view")
async def get_view(
    services: Reader,
    view: Annotated[str, Path(description="one of " + ", ".join(views.VIEWS))],
    grain: Annotated[str, Query(description="week, month or quarter")] = "month",
    start: Annotated[
        dt.date | None, Query(description="first period's start; default: the latest periods")
    ] = None,
    periods: Annotated[int, Query(ge=1, le=views.MAX_PERIODS)] = 1,
    region: Annotated[str, Query(description="region code (north, northeast, ...)")] = "",
    province: Annotated[str, Query(description="2-digit province code")] = "",
    sector: str = "",
    stage: Annotated[int, Query(ge=0, le=5, description="1-5; 0: any")] = 0,
) -> ViewOut:
    """The tables of one view (demand, readiness, funnel, unmet, notices, trends)."""
    if view not in views.VIEWS:
        raise HTTPException(404, "no such view")
    params = {
        "grain": grain,
        "start": start.isoformat() if start else "",
        "periods": str(periods),
        "region": region,
        "province": province,
        "sector": sector,
        "stage": str(stage),
    }
    try:
        filters = views.parse_filters(params)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    knowledge = services.knowledge
    min_count = services.settings.insights_min_count
    async with services.db.session() as s:
        tables = await views.build(view, s, filters, knowledge, min_count)
    w = views.window(filters)
    return ViewOut(
        view=view,
        grain=filters.grain,
        first_period=w.first,
        last_period=w.last,
        region=filters.region,
        province=filters.province,
        sector=filters.sector,
        stage=filters.stage,
        min_count=min_count,
        tables=[table_out(t, knowledge) for t in tables],
    )
