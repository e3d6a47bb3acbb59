"""Per-user rich menus through the signed webhook: the business menu after an assessment,
the default again after delete-my-data; every call checked by the fake LINE API's spec."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import cli
from bot.kb.loader import Knowledge, load_replies
from bot.line.calls import RetryPolicy
from bot.line.client import LineClient
from bot.line.messages import LABEL_MAX, fit, postback_data
from bot.richmenu import deploy
from bot.richmenu.users import after_assessment
from bot.storage.db import Assessment
from tests.conversation import Chat
from tests.fakeline import FakeLine
from tests.helpers import ROOT, bot_database

R = load_replies(ROOT / "knowledge")
START = postback_data("go", i="start_assessment")


def deployed(fake: FakeLine, kb: Knowledge) -> dict[str, str]:
    """Deploy the shipped menus to the fake, as ``bot richmenu deploy`` does; alias -> id."""

    async def go() -> None:
        client = LineClient(
            fake.base_url, "t", RetryPolicy(attempts=2, timeout=5, backoff=0.01), fake.data_url
        )
        try:
            await deploy.apply(client, await deploy.plan(client, deploy.build_menus(kb)), str)
        finally:
            await client.close()

    asyncio.run(go())
    return fake.rich_menu_aliases


def finish_assessment(c: Chat) -> None:
    c.postback(START)
    for text in ("2", "1", "3", "3", "3", "ข้าม", "2"):
        c.say(text)
    with bot_database(c.server.settings) as engine, Session(engine) as s:
        saved = s.scalars(select(Assessment).where(Assessment.line_user_id == c.user)).all()
    assert len(saved) == 1  # finished and saved


def linked(fake: FakeLine, user: str, timeout: float = 5.0) -> str | None:
    """The user's own menu on the fake, once the worker has set it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = fake.user_rich_menus.get(user)
        if found is not None:
            return found
        time.sleep(0.05)
    return None


def test_the_business_menu_after_an_assessment_and_the_default_after_erasure(
    chat: Callable[[str], Chat], fake_line: FakeLine, kb: Knowledge
) -> None:
    alias = after_assessment(kb)
    assert alias is not None and not kb.richmenus[alias].default
    aliases = deployed(fake_line, kb)
    c = chat("menu-business")
    finish_assessment(c)
    assert linked(fake_line, c.user) == aliases[alias]
    links = fake_line.calls("richmenu_user_link")
    assert [r.path for r in links] == [f"/v2/bot/user/{c.user}/richmenu/{aliases[alias]}"]

    question = c.say("ลบข้อมูลของฉัน")
    c.press(question, fit(R.text("privacy.button_yes"), LABEL_MAX))
    assert c.user not in fake_line.user_rich_menus
    assert len(fake_line.calls("richmenu_user_unlink")) == 1


def test_without_deployed_menus_the_assessment_still_answers(
    chat: Callable[[str], Chat], fake_line: FakeLine
) -> None:
    c = chat("menu-none")
    finish_assessment(c)  # the alias is not on LINE: the answer comes, no link is tried
    assert fake_line.user_rich_menus == {}
    assert fake_line.calls("richmenu_user_link") == []


def test_a_redeploy_moves_everyone_and_the_next_link_follows(
    chat: Callable[[str], Chat],
    fake_line: FakeLine,
    kb: Knowledge,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alias = after_assessment(kb)
    assert alias is not None
    first = deployed(fake_line, kb)[alias]
    a = chat("menu-before")
    finish_assessment(a)
    assert linked(fake_line, a.user) == first

    # An operator redeploys (a changed menu is replaced; --force replaces them all).
    settings = a.server.settings.model_copy(update={"line_api_data_url": fake_line.data_url})
    monkeypatch.setattr(cli, "_settings", lambda: settings)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        assert cli.main(["richmenu", "deploy", "--force"]) == 0
    finally:
        root.handlers, root.level = handlers, level  # the command configured logging
    second = fake_line.rich_menu_aliases[alias]
    assert second != first and first not in fake_line.rich_menus
    assert fake_line.user_rich_menus.get(a.user) == second  # moved with one bulk call
    [bulk] = fake_line.calls("richmenu_bulk_link", 202)
    assert bulk.body == {"richMenuId": second, "userIds": [a.user]}

    # The worker had the old menu's id cached: refused once, looked up again, linked.
    b = chat("menu-after")
    finish_assessment(b)
    assert linked(fake_line, b.user) == second
    refused = fake_line.take_errors()
    assert len(refused) == 1 and "richmenu not found" in refused[0]
