"""The read-only insights API (issue 13): its own bearer token, closed when unset, the same
suppressed numbers as the views, and described in the app's OpenAPI document."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable

import httpx

from bot.insights import records as r
from bot.insights import views
from bot.insights.rollup import rollup
from bot.kb.loader import Knowledge
from bot.settings import Settings
from bot.storage.db import Database
from bot.storage.migrate import upgrade
from tests.helpers import ServerThread
from tests.test_insights_rollup import TODAY, add_events, make_events

TOKEN = "insights-token-0123456789abcdef"
MIN = 3


def _seeded(make_settings: Callable[..., Settings], **overrides: object) -> Settings:
    settings = make_settings(insights_min_count=MIN, **overrides)
    upgrade(settings)

    async def seed() -> None:
        db = Database(settings.sqlalchemy_url)
        try:
            await add_events(db, make_events(users=160))
            await rollup(db, today=TODAY, full=True)
        finally:
            await db.close()

    asyncio.run(seed())
    return settings


def test_the_api_needs_its_token(make_settings: Callable[..., Settings]) -> None:
    with ServerThread(make_settings(insights_api_token=TOKEN)) as server:
        url = f"{server.base_url}/api/v1/insights/demand"
        assert httpx.get(url).status_code == 401
        assert httpx.get(url, headers={"Authorization": "Bearer nope"}).status_code == 401
        assert httpx.get(url, headers={"Authorization": TOKEN}).status_code == 401
        assert httpx.get(url, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert httpx.get(f"{server.base_url}/api/v1/insights/", headers=_auth()).status_code == 200


def test_the_api_is_closed_without_a_token(make_settings: Callable[..., Settings]) -> None:
    with ServerThread(make_settings()) as server:
        for path in ("/api/v1/insights/", "/api/v1/insights/demand"):
            assert httpx.get(f"{server.base_url}{path}", headers=_auth()).status_code == 404
    # "INSIGHTS_API_TOKEN=" (blank, e.g. in a .env): closed, never open to an empty bearer.
    with ServerThread(make_settings(insights_api_token="  ")) as server:
        url = f"{server.base_url}/api/v1/insights/"
        for header in ("Bearer", "Bearer x"):
            assert httpx.get(url, headers={"Authorization": header}).status_code == 404


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


def test_the_api_answers_the_views_numbers(
    make_settings: Callable[..., Settings], knowledge: Knowledge
) -> None:
    settings = _seeded(make_settings, insights_api_token=TOKEN)
    filters = views.Filters(grain="month", start=dt.date(2025, 5, 1))

    async def expected() -> list[views.Table]:
        db = Database(settings.sqlalchemy_url)
        try:
            async with db.session() as s:
                return await views.build("demand", s, filters, knowledge, MIN)
        finally:
            await db.close()

    tables = {t.id: t for t in asyncio.run(expected())}
    with ServerThread(settings) as server:
        listed = httpx.get(f"{server.base_url}/api/v1/insights/", headers=_auth()).json()
        assert [v["id"] for v in listed["views"]] == list(views.VIEWS)
        answer = httpx.get(
            f"{server.base_url}/api/v1/insights/demand",
            params={"grain": "month", "start": "2025-05-01"},
            headers=_auth(),
        )
        assert answer.status_code == 200, answer.text
        body = answer.json()
        bad = httpx.get(
            f"{server.base_url}/api/v1/insights/demand", params={"region": "mars"}, headers=_auth()
        )
        assert bad.status_code == 422
        assert (
            httpx.get(f"{server.base_url}/api/v1/insights/nothing", headers=_auth()).status_code
            == 404
        )
    assert body["min_count"] == MIN and body["first_period"] == "2025-05-01"
    assert [t["id"] for t in body["tables"]] == list(tables)
    seen_hidden = False
    for out in body["tables"]:
        table = tables[out["id"]]
        assert [c["code"] for c in out["rows"]] == table.rows
        assert [c["code"] for c in out["columns"]] == table.columns
        assert out["cells"] == [[table.cell(rw, c) for c in table.columns] for rw in table.rows]
        assert out["total"] == table.total
        assert out["suppressed"] == (out["hidden"] > 0)
        seen_hidden = seen_hidden or out["suppressed"]
        if out["row_dim"] == "province":
            assert out["rows"][0]["label"] == knowledge.places.provinces[table.rows[0]].name_th
    assert seen_hidden
    # One cell against a direct count of the raw moments.
    from tests.test_insights_rollup import direct, expected_value

    demand = next(t for t in body["tables"] if t["id"] == "demand_topic")
    row = [c["code"] for c in demand["rows"]].index("10")
    column = [c["code"] for c in demand["columns"]].index("online_selling")
    want = expected_value(
        direct(
            make_events(users=160),
            "month",
            [dt.date(2025, 5, 1)],
            kind=r.ASKED,
            province="10",
            key="online_selling",
        ),
        MIN,
    )
    assert demand["cells"][row][column] in (want, None)


def test_the_api_is_in_the_openapi_document(make_settings: Callable[..., Settings]) -> None:
    with ServerThread(make_settings()) as server:
        document = httpx.get(f"{server.base_url}/openapi.json").json()
    paths = document["paths"]
    assert "/api/v1/insights/" in paths and "/api/v1/insights/{view}" in paths
    operation = paths["/api/v1/insights/{view}"]["get"]
    assert {p["name"] for p in operation["parameters"]} >= {
        "view",
        "grain",
        "start",
        "periods",
        "region",
        "province",
        "sector",
        "stage",
    }
    schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/ViewOut")
    assert "TableOut" in document["components"]["schemas"]
