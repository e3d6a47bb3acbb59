"""The operator console in a real headless browser (Debian's Chromium, driven by Playwright
through its ``executable_path``; nothing downloads a browser build).

Each test signs in as an operator and does what an operator does: fix an unanswered
question and see the simulator answer it, make a broken edit and see it refused, roll a
version back, find that a viewer cannot edit and that a form without its CSRF token is
refused. Screenshots of the main pages go to ``test-output/screenshots/``.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.settings import Settings
from bot.storage import accounts
from bot.storage.db import Database
from tests.conftest import SECRET
from tests.fakeline import FakeLine
from tests.helpers import ROOT, ServerThread, envelope, post_signed, text_event, user_id

SHOTS = ROOT / "test-output" / "screenshots"
PASSWORD = "a long test password"


@pytest.fixture
def console(make_settings: Callable[..., Settings], tmp_path: Path) -> Iterator[ServerThread]:
    """The bot (embedded) with its own knowledge folder and three operators."""
    folder = tmp_path / "knowledge"
    shutil.copytree(ROOT / "knowledge", folder)
    settings = make_settings(knowledge_dir=folder, console_cv_folds=2)
    with ServerThread(settings) as server:

        async def add() -> None:
            db = Database(settings.sqlalchemy_url)
            try:
                for name, role in (
                    ("ed", "editor"),
                    ("vi", "viewer"),
                    ("ad", "admin"),
                    ("st", "staff"),
                ):
                    await accounts.add_operator(db, name, role, PASSWORD, by="test")
            finally:
                await db.close()

        # Playwright's sync API keeps an event loop in this thread: run ours in another.
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, add()).result()
        yield server


def _sign_in(browser: Any, server: ServerThread, name: str) -> Any:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    # A publication retrains the intent engine before the page answers: allow for it on a
    # busy machine.
    page.set_default_timeout(180_000)
    page.goto(f"{server.base_url}/console/knowledge")
    assert "/console/login" in page.url  # no session: the sign-in page
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"{server.base_url}/console**")
    return page


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _say(page: Any, text: str) -> str:
    """Type in the simulator; the bot's answer as text."""
    before = page.locator("#chat-log .bot-message").count()
    page.fill("#sim-text", text)
    page.click("#say button[type=submit]")
    page.wait_for_function(
        f"document.querySelectorAll('#chat-log .bot-message').length > {before}", timeout=60000
    )
    return str(page.locator("#chat-log .bot-message").last.inner_text())


def test_sign_in_and_out(browser: Any, console: ServerThread) -> None:
    page = _sign_in(browser, console, "ed")
    assert page.locator(".who").inner_text().startswith("ed (editor)")
    _shot(page, "knowledge")
    page.click(".who button")
    page.wait_for_url("**/console/login")
    page.goto(f"{console.base_url}/console/knowledge")
    assert "/console/login" in page.url  # the session is gone
    page.fill("#name", "ed")
    page.fill("#password", "wrong password!!")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").is_visible()


def test_an_unanswered_message_added_to_an_intent_is_then_answered(
    browser: Any, console: ServerThread
) -> None:
    phrase = "กะเหรี่ยงซอยแปดเก้าสิบ"  # nonsense the engine reads as off-topic
    page = _sign_in(browser, console, "ed")
    page.goto(f"{console.base_url}/console/simulator")
    first = _say(page, phrase)
    assert console.services.nlu.parse(phrase).intent != "find_centre", first
    _shot(page, "simulator")

    page.goto(f"{console.base_url}/console/inbox")
    group = page.locator(".inbox-group", has_text=phrase)
    assert group.count() == 1
    _shot(page, "inbox")
    group.locator("select[name=target]").select_option("find_centre")
    group.locator("button", has_text="เผยแพร่").click()
    page.wait_for_selector("[role=status]", timeout=120000)
    assert "เวอร์ชัน #2" in page.locator("[role=status]").inner_text()
    page.wait_for_selector("#cv-figures", timeout=30000)

    page.goto(f"{console.base_url}/console/simulator")
    second = _say(page, phrase)
    assert second != first
    assert console.services.nlu.parse(phrase).intent == "find_centre"
    page.goto(f"{console.base_url}/console/inbox")
    assert page.locator(".inbox-group", has_text=phrase).count() == 0


def test_a_broken_edit_shows_its_error_and_changes_nothing_live(
    browser: Any, console: ServerThread
) -> None:
    page = _sign_in(browser, console, "ed")
    course = console.services.knowledge.courses[0]
    live = console.services.kb.current.version
    page.goto(f"{console.base_url}/console/knowledge/courses/{course.id}")
    _shot(page, "course-edit")
    page.fill("input[name=format]", "internet")
    page.click("#edit-form button[type=submit]")
    page.wait_for_selector("#problems")
    assert "'internet' is not allowed" in page.locator("#problems").inner_text()
    assert page.locator(".field-error[data-field=format]").is_visible()
    assert console.services.kb.current.version == live
    assert console.services.knowledge.courses[0].format == course.format


def test_an_edit_then_a_rollback(browser: Any, console: ServerThread) -> None:
    page = _sign_in(browser, console, "ad")
    first = console.services.kb.current.version
    page.goto(f"{console.base_url}/console/knowledge/replies/greeting.welcome")
    page.fill("textarea[name=welcome]", "ยินดีต้อนรับสู่บอททดสอบครับ")
    page.click("#edit-form button[type=submit]")
    page.wait_for_selector("[role=status]")
    assert console.services.replies.text("greeting.welcome") == "ยินดีต้อนรับสู่บอททดสอบครับ"
    page.goto(f"{console.base_url}/console/versions")
    _shot(page, "versions")
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("tr[data-number='1'] button").click()
    page.wait_for_selector("[role=status]")
    assert console.services.kb.current.version == first
    assert page.locator("#history tbody tr").first.get_attribute("data-number") == "1"


def test_a_viewer_cannot_edit_and_a_form_without_csrf_is_refused(
    browser: Any, console: ServerThread
) -> None:
    page = _sign_in(browser, console, "vi")
    course = console.services.knowledge.courses[0]
    page.goto(f"{console.base_url}/console/knowledge/courses/{course.id}")
    assert page.locator("#edit-form button[type=submit]").count() == 0
    assert page.locator("input[name=format]").get_attribute("readonly") is not None
    cookies = {c["name"]: c["value"] for c in page.context.cookies()}
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    url = f"{console.base_url}/console/knowledge/courses/{course.id}"
    # The viewer's own session and token: the role is refused on the server.
    as_viewer = httpx.post(url, data={"csrf_token": token, "format": "online"}, cookies=cookies)
    assert as_viewer.status_code == 403

    editor = _sign_in(browser, console, "ed")
    editor.goto(url)
    # The same form posted by the page without its token (as another site's form would).
    status = editor.evaluate(
        """async (url) => {
            const body = new URLSearchParams({format: "hybrid"});
            const r = await fetch(url, {method: "POST", body, redirect: "manual"});
            return r.status;
        }""",
        url,
    )
    assert status == 403
    assert console.services.knowledge.courses[0].format == course.format


def test_a_staff_reply_reaches_the_user_through_line(
    browser: Any, console: ServerThread, fake_line: FakeLine
) -> None:
    user = user_id("browser-handoff")
    body = envelope(text_event("ขอคุยกับเจ้าหน้าที่", user=user))
    assert post_signed(console.base_url, SECRET, body).status_code == 200
    fake_line.wait_for("reply", 1, timeout=30)  # "staff will answer you here"
    body = envelope(text_event("อยากถามเรื่องภาษีร้านออนไลน์ค่ะ", user=user))
    assert post_signed(console.base_url, SECRET, body).status_code == 200
    page = _sign_in(browser, console, "st")
    page.goto(f"{console.base_url}/console/handoffs")
    page.wait_for_selector(f"a[href*='{user}']", timeout=30_000)
    page.click(f"a[href*='{user}']")
    page.wait_for_selector("text=อยากถามเรื่องภาษีร้านออนไลน์ค่ะ", timeout=30_000)
    _shot(page, "handoff")
    page.fill("#text", "สวัสดีค่ะ เจ้าหน้าที่ตอบนะคะ")
    page.click("#reply button[type=submit]")
    pushes = fake_line.wait_for("push", 1, timeout=30)
    assert pushes[0].body["to"] == user
    assert "สวัสดีค่ะ เจ้าหน้าที่ตอบนะคะ" in pushes[0].body["messages"][0]["text"]
