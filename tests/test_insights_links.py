"""Counted official-page links (``PUBLIC_BASE_URL``): a course card in a citizen's chat links
through ``/go/``; the click is counted once for that person and lands on the knowledge's own
page; a forged token, or one whose person is gone, still lands there but counts nothing; an
entry the knowledge lacks is 404; cards without a person (notices) link directly.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import delete, select

from bot.insights import links, records
from bot.insights.records import InsightEvent
from bot.kb.loader import Knowledge
from bot.settings import Settings
from bot.storage.db import User
from tests.conversation import Chat
from tests.helpers import ServerThread, bot_database

BASE = "https://bot.example.go.th"
QUESTION = "อยากเรียนพัฒนาผลิตภัณฑ์ที่เชียงใหม่"
GO = re.compile(re.escape(BASE) + r"/go/([^\"\s]+)")


@pytest.fixture
def mode_settings(mode_settings: Settings) -> Settings:
    """Both deployments, with a public address: official buttons go through /go/."""
    return mode_settings.model_copy(update={"public_base_url": BASE})


def clicks(server: ServerThread, user: str) -> list[str]:
    """The entries the person's counted clicks were on."""
    stmt = select(InsightEvent.key).where(
        InsightEvent.line_user_id == user, InsightEvent.kind == records.OFFICIAL_CLICKED
    )
    with bot_database(server.settings) as engine, engine.connect() as conn:
        return list(conn.scalars(stmt))


def go(server: ServerThread, token: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}/go/{token}", follow_redirects=False, timeout=10)


def test_a_card_click_is_counted_once_and_lands_on_the_official_page(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kb: Knowledge
) -> None:
    c = chat("clicker")
    answer = c.say(QUESTION)
    tokens = GO.findall(json.dumps(answer, ensure_ascii=False))
    assert tokens, "the course cards carry counted official links"
    token = tokens[0]
    parsed = links.parse(token)
    assert parsed is not None
    assert c.user not in token  # the LINE user id never appears in a link
    official = links.target(kb, parsed.entry_id)
    assert official

    resp = go(chat_bot, token)
    assert resp.status_code == 302
    assert resp.headers["location"] == official
    assert clicks(chat_bot, c.user) == [parsed.entry_id]

    # An altered token still reaches the page, and counts nothing.
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    resp = go(chat_bot, forged)
    assert (resp.status_code, resp.headers["location"]) == (302, official)
    # Someone else's row number with this person's MAC: not counted either.
    other = f"{parsed.user_pk + 1}.{parsed.entry_id}.{parsed.mac}"
    assert go(chat_bot, other).status_code == 302
    assert clicks(chat_bot, c.user) == [parsed.entry_id]

    # An entry the knowledge does not have, or no token at all: 404, no redirect anywhere.
    assert go(chat_bot, f"{parsed.user_pk}.course-nope.{parsed.mac}").status_code == 404
    assert go(chat_bot, "rubbish").status_code == 404

    # The person's row gone (erasure): the old link still opens the page, counts nothing.
    with bot_database(chat_bot.settings) as engine, engine.begin() as conn:
        conn.execute(delete(InsightEvent).where(InsightEvent.line_user_id == c.user))
        conn.execute(delete(User).where(User.line_user_id == c.user))
    assert go(chat_bot, token).status_code == 302
    assert clicks(chat_bot, c.user) == []


def test_without_a_person_the_link_is_direct() -> None:
    # Notices (one message for many people) and the console's preview build cards outside
    # a citizen's turn: their official buttons open the page itself.
    assert links.official("https://www.dbd.go.th/x", "course-a") == "https://www.dbd.go.th/x"
