"""The console's insights page (issue 13): for analysts and admins only, every number from
the views (suppressed), the same numbers in the CSV and Excel downloads, hidden cells never
shown as a number, the tile map of Thailand, and the page in a real headless browser.

The data are hand-made moments in ``insight_events``, rolled up by ``bot.insights.rollup``
as the worker would. The browser test saves ``test-output/screenshots/insights*.png``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any, TypeVar

import httpx
import openpyxl
import pytest
from sqlalchemy import insert

from bot.console import charts
from bot.insights import exports, rollup, tilemap, views
from bot.insights.records import InsightEvent
from bot.kb.places.loading import DEFAULT_FOLDER, read_tables
from bot.settings import Settings
from bot.storage import accounts
from bot.storage.daily import local_day
from bot.storage.db import Database
from tests.helpers import ROOT, ServerThread, bot_database, user_id

SHOTS = ROOT / "test-output" / "screenshots"
PASSWORD = "a long test password"
TODAY = local_day()
T = TypeVar("T")

#: Who asked what where: (province, topic, sector, stage, people). Nakhon Ratchasima's four
#: are under the threshold (10): hidden everywhere, never a number; Khon Kaen's ten are then
#: hidden too (complementary suppression: the smallest other cell of that column).
ASKED = [
    ("10", "online_selling", "food", 2, 18),
    ("10", "online_selling", "agriculture", 3, 12),
    ("10", "digital_marketing", "food", 2, 15),
    ("50", "online_selling", "handicraft", 1, 14),
    ("30", "online_selling", "food", 1, 4),
    ("40", "online_selling", "food", 1, 10),
    ("90", "language", "services", 2, 11),
]
#: Finished assessments: (province, sector, stage, people).
FINISHED = [("10", "food", 2, 20), ("10", "agriculture", 3, 10), ("50", "handicraft", 1, 12)]


def _in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on its own loop in another thread (Playwright's sync API keeps a loop in
    this one)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def seed(settings: Settings) -> None:
    """The moments above, today, then a rollup (as the worker's schedule runs it)."""
    rows: list[dict[str, Any]] = []
    person = 0
    for province, topic, sector, stage, people in ASKED:
        for _ in range(people):
            person += 1
            who = user_id(f"asker-{person}")
            common = {"day": TODAY, "line_user_id": who, "province": province}
            rows.append({**common, "kind": "followed", "sector": sector, "stage": stage, "key": ""})
            rows.append({**common, "kind": "asked", "sector": sector, "stage": stage, "key": topic})
    for province, sector, stage, people in FINISHED:
        for i in range(people):
            who = user_id(f"assessed-{province}-{sector}-{i}")
            common = {"day": TODAY, "line_user_id": who, "province": province, "key": ""}
            for kind in ("assessment_started", "assessment_finished"):
                rows.append({**common, "kind": kind, "sector": sector, "stage": stage})
    with bot_database(settings) as engine, engine.begin() as conn:
        conn.execute(insert(InsightEvent), rows)

    async def roll() -> None:
        db = Database(settings.sqlalchemy_url)
        try:
            await rollup.rollup(db, TODAY)
        finally:
            await db.close()

    _in_thread(roll())


def add_operators(settings: Settings, *named: tuple[str, str]) -> None:
    async def add() -> None:
        db = Database(settings.sqlalchemy_url)
        try:
            for name, role in named:
                await accounts.add_operator(db, name, role, PASSWORD, by="test")
        finally:
            await db.close()

    _in_thread(add())


@contextmanager
def signed_in(server: ServerThread, name: str) -> Iterator[httpx.Client]:
    """A browser signed in as ``name`` (httpx keeps the session cookie)."""
    with httpx.Client(
        base_url=server.base_url, headers={"Accept": "text/html"}, timeout=30
    ) as browser:
        answer = browser.post("/console/login", data={"name": name, "password": PASSWORD})
        assert answer.status_code == 303, answer.text
        yield browser


class Tables(HTMLParser):
    """The page's tables: table id -> (row code, column code) -> text, and which cells are
    hidden; the map's provinces: code -> (state, data-value)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.cells: dict[str, dict[tuple[str, str], str]] = {}
        self.hidden: dict[str, set[tuple[str, str]]] = {}
        self.tiles: dict[str, tuple[str, str | None]] = {}
        self._table: str | None = None
        self._row: str | None = None
        self._cell: tuple[str, bool] | None = None
        self._text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("data-table"):
            self._table = a["data-table"]
            self.cells[str(self._table)] = {}
            self.hidden[str(self._table)] = set()
        elif tag == "tr":
            self._row = a.get("data-row")
        elif tag == "td" and self._table and self._row is not None:
            self._cell, self._text = (str(a.get("data-col")), "data-hidden" in a), []
        elif tag == "g" and a.get("data-code") and a.get("data-state"):
            self.tiles[str(a["data-code"])] = (str(a["data-state"]), a.get("data-value"))

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "table":
            self._table = None
        elif tag == "td" and self._cell is not None and self._table and self._row is not None:
            place = (self._row, self._cell[0])
            self.cells[self._table][place] = "".join(self._text).strip()
            if self._cell[1]:
                self.hidden[self._table].add(place)
            self._cell = None

    def numbers(self, table: str) -> dict[tuple[str, str], int | None]:
        """Each cell as a number, None for a hidden one."""
        return {
            place: None if place in self.hidden[table] else int(text.replace(",", ""))
            for place, text in self.cells[table].items()
        }


@pytest.fixture
def bot(make_settings: Callable[..., Settings]) -> Iterator[ServerThread]:
    """The bot (embedded), its insights rolled up, and one operator of each role."""
    with ServerThread(make_settings()) as server:
        seed(server.settings)
        add_operators(
            server.settings,
            ("ana", "analyst"),
            ("adm", "admin"),
            ("ed", "editor"),
            ("vi", "viewer"),
            ("st", "staff"),
        )
        yield server


# -- who may see it ---------------------------------------------------------------------------


def test_only_analysts_and_admins_see_the_insights(bot: ServerThread) -> None:
    away = httpx.get(
        f"{bot.base_url}/console/insights/readiness",
        headers={"Accept": "text/html"},
        follow_redirects=False,
    )
    assert away.status_code == 303
    assert away.headers["location"] == "/console/login?next=%2Fconsole%2Finsights%2Freadiness"
    assert httpx.get(f"{bot.base_url}/console/insights/demand.csv").status_code == 401

    for name in ("ed", "vi", "st"):
        with signed_in(bot, name) as browser:
            for path in (
                "/console/insights",
                "/console/insights/funnel",
                "/console/insights/demand.csv",
            ):
                assert browser.get(path).status_code == 403, (name, path)
            assert "/console/insights" not in browser.get("/console").text  # not in the menu

    # An analyst lands on the insights (the dashboard is not theirs) and sees only them.
    with httpx.Client(base_url=bot.base_url, headers={"Accept": "text/html"}) as browser:
        answer = browser.post("/console/login", data={"name": "ana", "password": PASSWORD})
        assert answer.status_code == 303 and answer.headers["location"] == "/console/insights"
        assert browser.get("/console/login").headers["location"] == "/console/insights"
        assert browser.get("/console").status_code == 403
        home = browser.get("/console/insights")
        assert home.status_code == 200
        assert 'href="/console/insights"' in home.text and 'href="/console/inbox"' not in home.text
        assert browser.get("/console/insights/nothing").status_code == 404
    with signed_in(bot, "adm") as browser:
        assert 'href="/console/insights"' in browser.get("/console").text
        for view in ("demand", "readiness", "funnel", "unmet", "notices", "trends"):
            answer = browser.get(f"/console/insights/{view}")
            assert answer.status_code == 200, (view, answer.text[:500])
            assert "ข้อมูล ณ" in answer.text and 'id="min-count">10<' in answer.text


# -- what it shows ----------------------------------------------------------------------------


def test_the_page_shows_the_views_numbers_and_hides_small_ones(bot: ServerThread) -> None:
    with signed_in(bot, "ana") as browser:
        html = browser.get("/console/insights/demand").text
    page = Tables(html)
    topic = page.numbers("demand_topic")
    assert topic[("10", "online_selling")] == 30
    assert topic[("10", "digital_marketing")] == 15
    assert topic[("50", "online_selling")] == 14
    assert topic[("90", "language")] == 11
    assert topic[("30", "online_selling")] is None  # four people: hidden
    assert topic[("40", "online_selling")] is None  # ten, but it would give the four away
    # The map: Bangkok and Chiang Mai by their people, Nakhon Ratchasima hatched, no number.
    assert page.tiles["10"] == ("shown", "45")
    assert page.tiles["50"] == ("shown", "14")
    assert page.tiles["30"] == ("hidden", None)
    assert page.tiles["40"] == ("hidden", None)
    assert page.tiles["11"] == ("zero", "0")
    assert len(page.tiles) == 77
    assert "<svg" in html and 'data-chart="ranking"' in html
    # The as-of time of the rollup, the threshold and the counting unit.
    assert re.search(r"ข้อมูล ณ</strong>\s*<time", html)
    assert "น้อยกว่า 10 คน" in html and "หน่วยนับ" in html


def test_hidden_cells_never_show_a_number(bot: ServerThread) -> None:
    with signed_in(bot, "ana") as browser:
        for view in ("demand", "readiness", "funnel", "unmet", "notices", "trends"):
            for params in ({}, {"sector": "food"}, {"region": "northeast"}, {"grain": "week"}):
                html = browser.get(f"/console/insights/{view}", params=params).text
                page = Tables(html)
                for table, places in page.hidden.items():
                    for place in places:
                        text = page.cells[table][place]
                        assert not re.search(r"\d", text), (view, params, table, place, text)
                for code, (state, value) in page.tiles.items():
                    if state in ("hidden", "outside"):
                        assert value is None, (view, code)
    # Four people in Nakhon Ratchasima: the count never appears next to its name.
    assert "นครราชสีมา: 4" not in html


def test_a_filter_narrows_the_figures(bot: ServerThread) -> None:
    with signed_in(bot, "ana") as browser:
        food = Tables(browser.get("/console/insights/demand", params={"sector": "food"}).text)
        north = Tables(browser.get("/console/insights/demand", params={"region": "north"}).text)
        bad = browser.get("/console/insights/demand", params={"grain": "year"})
    assert food.numbers("demand_topic")[("10", "online_selling")] == 18
    assert ("50", "online_selling") not in food.numbers("demand_topic") or (
        food.numbers("demand_topic")[("50", "online_selling")] == 0
    )
    assert north.tiles["50"][0] == "shown" and north.tiles["10"][0] == "outside"
    assert bad.status_code == 400 and 'role="alert"' in bad.text


# -- downloads ---------------------------------------------------------------------------------


Grid = dict[tuple[str, str], int | None]


def _grid(lines: list[list[Any]]) -> Grid:
    """A section of an export (header, rows, column totals) by (row label, column label);
    None for the hidden mark, blank cells left out."""
    header, *rows = lines
    found: Grid = {}
    for line in rows:
        for column, value in zip(header[1:], line[1:], strict=False):
            if value in ("", None):
                continue
            shown = None if value == exports.HIDDEN_MARK else int(value)
            found[(str(line[0]), str(column))] = shown
    return found


def _csv_tables(body: bytes) -> dict[str, Grid]:
    """Each ``# <table id>`` section of a CSV export."""
    assert body.startswith(b"\xef\xbb\xbf")  # a BOM: Excel reads the Thai right
    sections: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for line in csv.reader(io.StringIO(body.decode("utf-8-sig"))):
        if line and line[0].startswith("# "):
            current = sections.setdefault(line[0][2:], [])
        elif line and current is not None:
            current.append(line)
    return {table: _grid(lines) for table, lines in sections.items()}


def _xlsx_tables(body: bytes) -> dict[str, Grid]:
    """Each sheet of an Excel export, down to the blank line before its legend."""
    book = openpyxl.load_workbook(io.BytesIO(body), read_only=True)
    found: dict[str, Grid] = {}
    for sheet in book.worksheets:
        lines: list[list[Any]] = []
        for row in sheet.iter_rows(values_only=True):
            if all(v in (None, "") for v in row):
                break
            lines.append(list(row))
        found[sheet.title] = _grid(lines)
    return found


def _labelled(page: Tables, html: str, bot: ServerThread) -> dict[str, Grid]:
    """The page's numbers by (row label, column label), as the exports name them."""
    knowledge = bot.services.knowledge
    total = views.label("export", "total", knowledge)
    dims = dict(re.findall(r'data-table="([^"]+)" data-row-dim="([^"]+)"', html))
    column_dims = dict(re.findall(r'data-table="([^"]+)"[^>]* data-column-dim="([^"]+)"', html))

    def name(dim: str, code: str) -> str:
        return total if code == "*" else views.label(dim, code, knowledge)

    return {
        table: {
            (name(dims[table], r), name(column_dims[table], c)): v
            for (r, c), v in page.numbers(table).items()
        }
        for table in page.cells
    }


def test_the_downloads_hold_the_pages_numbers_and_are_audited(bot: ServerThread) -> None:
    with signed_in(bot, "ana") as browser:
        for view, params in (
            ("demand", {}),
            ("demand", {"sector": "food"}),
            ("readiness", {"region": "central"}),
            ("funnel", {}),
            ("trends", {}),
        ):
            html = browser.get(f"/console/insights/{view}", params=params).text
            shown = _labelled(Tables(html), html, bot)
            as_csv = browser.get(f"/console/insights/{view}.csv", params=params)
            as_xlsx = browser.get(f"/console/insights/{view}.xlsx", params=params)
            assert as_csv.headers["content-type"].startswith("text/csv")
            assert "attachment" in as_csv.headers["content-disposition"]
            assert as_xlsx.headers["content-type"].startswith("application/vnd.openxml")
            from_csv, from_xlsx = _csv_tables(as_csv.content), _xlsx_tables(as_xlsx.content)
            assert shown and set(shown) <= set(from_csv)
            for table, cells in shown.items():
                # Every number on the page is in both files, the same, hidden alike; the
                # files also hold the rows of zeros the page leaves out.
                assert {k: from_csv[table].get(k) for k in cells} == cells, (view, table)
                assert {k: from_xlsx[table[:31]].get(k) for k in cells} == cells, (view, table)
            if view == "demand" and not params:
                korat = views.label("province", "30", bot.services.knowledge)
                online = views.label("topic", "online_selling", bot.services.knowledge)
                assert from_csv["demand_topic"][(korat, online)] is None
                assert shown["demand_topic"][(korat, online)] is None

    async def entries() -> list[accounts.AuditEntry]:
        db = Database(bot.settings.sqlalchemy_url)
        try:
            return await accounts.list_audit(db, 50)
        finally:
            await db.close()

    audited = [(e.operator, e.action, e.target, e.after) for e in _in_thread(entries())]
    assert ("ana", "insights.export", "demand.csv", None) in audited
    assert ("ana", "insights.export", "demand.xlsx", {"sector": "food"}) in audited
    assert ("ana", "insights.export", "readiness.csv", {"region": "central"}) in audited


# -- the map and the charts ----------------------------------------------------------------------


def test_the_tile_map_places_every_province_once_and_keeps_the_shape() -> None:
    provinces = read_tables(DEFAULT_FOLDER).provinces
    grid = tilemap.layout(provinces)
    assert set(grid) == set(provinces) and len(set(grid.values())) == len(provinces)
    assert grid == tilemap.layout(dict(reversed(list(provinces.items()))))  # deterministic
    rows = {code: row for code, (_, row) in grid.items()}
    columns = {code: column for code, (column, _) in grid.items()}
    assert rows["57"] == 0  # Chiang Rai at the top
    assert rows["96"] == max(rows.values())  # Narathiwat at the bottom
    assert columns["34"] == max(columns.values())  # Ubon Ratchathani in the east
    bangkok, nonthaburi = grid["10"], grid["12"]
    assert abs(bangkok[0] - nonthaburi[0]) <= 1 and abs(bangkok[1] - nonthaburi[1]) <= 1

    drawn = tilemap.tile_map(provinces, {"10": 120, "50": None, "30": 7}, included=None)
    by_code = {t.code: t for t in drawn.tiles}
    assert by_code["10"].state == "shown" and by_code["10"].css == "tile t5"
    assert by_code["30"].css == "tile t1"
    assert by_code["50"].state == "hidden" and by_code["50"].value is None
    assert by_code["11"].state == "zero" and by_code["11"].value == 0
    assert drawn.hidden == 1 and drawn.bands[-1].high >= 120
    assert tilemap.tile_map(provinces, {"50": None}).bands == ()
    north = tilemap.tile_map(provinces, {"50": 12}, included={"50", "57"})
    assert {t.code: t.state for t in north.tiles if t.state != "outside"} == {
        "50": "shown",
        "57": "zero",
    }


def test_line_chart_breaks_at_a_hidden_value() -> None:
    weeks = ["w1", "w2", "w3", "w4"]
    chart = charts.lines(weeks, {"asked": {"w1": 10, "w2": None, "w3": 30, "w4": 20}})
    (line,) = chart.lines
    assert [len(run) for run in line.runs] == [1, 2]
    assert line.runs[1][0].y < line.runs[1][1].y  # 30 above 20
    assert chart.ticks[-1].value >= 30 and not chart.empty
    assert charts.lines(weeks, {"asked": {}}).empty


# -- in a real browser -------------------------------------------------------------------------


def test_an_analyst_filters_the_insights_in_a_browser(browser: Any, bot: ServerThread) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(60_000)
    page.goto(f"{bot.base_url}/console/login")
    page.fill("#name", "ana")
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/insights")
    assert page.locator("#map-demand_topic svg.map").is_visible()
    assert page.locator("g[data-code='10'][data-state='shown']").count() == 1
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / "insights.png"), full_page=True)
    page.locator("#card-demand_topic .row").screenshot(path=str(SHOTS / "insights-map.png"))

    page.select_option("#f-region", "north")
    page.click("#filters button[type=submit]")
    page.wait_for_selector("g[data-code='10'][data-state='outside']")
    assert "region=north" in page.url
    assert page.locator("g[data-code='50'][data-state='shown']").count() == 1
    assert page.locator("svg[data-chart]").count() >= 1
    page.screenshot(path=str(SHOTS / "insights-north.png"), full_page=True)

    page.click("a[href^='/console/insights/readiness']")
    page.wait_for_url("**/console/insights/readiness**")
    assert "region=north" in page.url  # the filters follow the view
    assert page.locator("svg[data-chart='stacked'], #map-readiness_stage svg.map").count() >= 1
    page.screenshot(path=str(SHOTS / "insights-readiness.png"), full_page=True)

    page.click("a[href^='/console/insights/trends']")
    page.wait_for_selector("svg[data-chart='lines'] polyline")
    page.screenshot(path=str(SHOTS / "insights-trends.png"), full_page=True)
    for view in ("funnel", "unmet", "notices"):
        page.goto(f"{bot.base_url}/console/insights/{view}")
        assert page.locator("table[data-table]").count() >= 2
        page.screenshot(path=str(SHOTS / f"insights-{view}.png"), full_page=True)
    page.close()
