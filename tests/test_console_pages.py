"""The console over HTTP: nothing without a session, text escaped, search and stale
entries, every change audited."""

from __future__ import annotations

import asyncio
import importlib
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute

from bot.console.web import PAGE_MODULES
from bot.settings import Settings
from bot.storage import accounts
from bot.storage.db import Database
from tests.helpers import ROOT, ServerThread, run_bot_with

PASSWORD = "a long test password"


def _on_db(settings: Settings, work: Callable[[Database], Any]) -> Any:
    async def go() -> Any:
        db = Database(settings.sqlalchemy_url)
        try:
            return await work(db)
        finally:
            await db.close()

    return asyncio.run(go())


@pytest.fixture
def server(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[ServerThread]:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    # One guide past its review date: the console lists it.
    path = folder / "guides" / "business_registration.yaml"
    text = path.read_text(encoding="utf-8")
    stale = text.replace(
        "checked_on: 2026-12-06\n      review_by: 2027-12-06",
        "checked_on: 2025-06-01\n      review_by: 2026-01-02",
        1,
    )
    assert stale != text
    path.write_text(stale, encoding="utf-8")
    with ServerThread(make_settings(knowledge_dir=folder)) as running:
        _on_db(
            running.settings,
            lambda db: accounts.add_operator(db, "ed", "editor", PASSWORD, by="test"),
        )
        yield running


def _client(server: ServerThread) -> httpx.Client:
    client = httpx.Client(base_url=server.base_url, follow_redirects=False, timeout=120)
    answer = client.post("/console/login", data={"name": "ed", "password": PASSWORD})
    assert answer.status_code == 303, answer.text
    return client


def _csrf(client: httpx.Client, path: str = "/console/simulator") -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found[1]


def test_no_console_route_answers_without_a_session(server: ServerThread) -> None:
    open_paths = {"/console/login"}
    routes = [
        r
        for name in PAGE_MODULES
        for r in importlib.import_module(name).router.routes
        if isinstance(r, APIRoute) and r.path not in open_paths
    ]
    assert len(routes) >= 15
    anonymous = httpx.Client(base_url=server.base_url, follow_redirects=False)
    for route in routes:
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        for method in route.methods:
            answer = anonymous.request(method, path, headers={"accept": "text/html"})
            if method == "GET":
                assert answer.status_code == 303, (method, path, answer.status_code)
                assert answer.headers["location"].startswith("/console/login")
            else:
                assert answer.status_code in (401, 403), (method, path, answer.status_code)


def test_user_text_is_escaped_in_the_simulator(server: ServerThread) -> None:
    client = _client(server)
    answer = client.post(
        "/console/simulator/send",
        data={"csrf_token": _csrf(client), "text": "<script>alert(1)</script> สวัสดี"},
    )
    assert answer.status_code == 200
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in answer.text
    assert "<script>alert(1)" not in answer.text


def test_search_and_stale_entries(server: ServerThread) -> None:
    client = _client(server)
    overview = client.get("/console/knowledge").text
    stale = overview.split('id="stale"', 1)[1].split("</table>", 1)[0]
    assert "/console/knowledge/guides/" in stale and "2026-01-02" in stale
    found = client.get("/console/knowledge/courses", params={"q": "genz"}).text
    rows = re.findall(r'href="/console/knowledge/courses/([^"]+)"', found)
    assert rows == ["course-nea-genz-ceo"]


def test_an_edit_is_audited_with_before_and_after(server: ServerThread) -> None:
    client = _client(server)
    answer = client.post(
        "/console/knowledge/replies/greeting.welcome",
        data={"csrf_token": _csrf(client), "welcome": "ยินดีต้อนรับครับ ฉบับทดสอบ"},
    )
    assert answer.status_code == 303 and "saved=2" in answer.headers["location"]
    entries = _on_db(server.settings, lambda db: accounts.list_audit(db, 10))
    edit = next(e for e in entries if e.action == "kb.edit")
    assert edit.operator == "ed" and edit.target == "replies/greeting.welcome"
    assert edit.after is not None and edit.after["welcome"] == "ยินดีต้อนรับครับ ฉบับทดสอบ"
    assert edit.before is not None and edit.before["welcome"] != edit.after["welcome"]
    assert server.services.replies.text("greeting.welcome") == "ยินดีต้อนรับครับ ฉบับทดสอบ"


def test_cli_publications_are_audited(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    settings = make_settings(knowledge_dir=folder)
    assert run_bot_with(settings, "kb", "publish", "--by", "somchai").returncode == 0
    entries = _on_db(settings, lambda db: accounts.list_audit(db, 10))
    assert [(e.operator, e.action, e.target) for e in entries] == [
        ("cli:somchai", "kb.publish", "version 1")
    ]


def test_entries_are_previewed_as_line_shows_them(server: ServerThread) -> None:
    client = _client(server)
    guide = client.get("/console/knowledge/guides/ecommerce_registration").text
    preview = guide.split('id="preview"', 1)[1]
    assert "ขายสินค้าหรือบริการทางออนไลน์" in preview  # the answer's text
    assert 'class="quick"' in preview  # with its next-step quick replies
    course = client.get("/console/knowledge/courses/course-nea-genz-ceo").text
    assert 'class="flex-bubble"' in course.split('id="preview"', 1)[1]


def test_an_altered_session_cookie_is_refused(server: ServerThread) -> None:
    client = _client(server)
    assert client.get("/console/knowledge").status_code == 200
    value = client.cookies["bot_console"]
    token, mac = value.rsplit(".", 1)
    assert len(token) >= 40 and len(mac) == 32  # a random token, signed
    forged = httpx.Client(base_url=server.base_url, follow_redirects=False)
    forged.cookies.set("bot_console", f"{token}.{'0' * 32}", path="/console")
    answer = forged.get("/console/knowledge", headers={"accept": "text/html"})
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/login")


def test_a_new_guide_is_refused_until_complete_then_served(server: ServerThread) -> None:
    client = _client(server)
    form = {
        "csrf_token": _csrf(client),
        "theme": "knowledge/guides/business_registration.yaml",
        "id": "console_test_guide",
        "title": "ทดสอบคู่มือใหม่จากคอนโซล",
        "short": "คู่มือทดสอบ",
        "examples": "คำถามทดสอบหนึ่ง",
        "answer": "คำตอบทดสอบ สอบถามกรมพัฒนาธุรกิจการค้า",
        "agency": "DBD",
        "source_urls": "https://www.dbd.go.th/",
    }
    refused = client.post("/console/knowledge/guides/new", data=form)
    assert refused.status_code == 422 and 'id="problems"' in refused.text
    assert "console_test_guide" not in server.services.knowledge.guides.guides
    form["examples"] = "\n".join(f"คำถามทดสอบคู่มือใหม่ข้อที่ {n}" for n in range(1, 8))
    saved = client.post("/console/knowledge/guides/new", data=form)
    assert saved.status_code == 303, saved.text[-2000:]
    assert saved.headers["location"].startswith("/console/knowledge/guides/console_test_guide")
    guide = server.services.knowledge.guides.guides["console_test_guide"]
    assert guide.provenance.status == "sample" and len(guide.examples) == 7
