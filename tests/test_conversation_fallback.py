"""The fallback: "did you mean ...?", out-of-scope, media, stale buttons, and the
log of unanswered messages operators read with ``bot unanswered``."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import pytest
from sqlalchemy import select

from bot.content.menu import MAIN_MENU
from bot.kb.loader import load_replies
from bot.line.messages import postback_data
from bot.storage.db import Unanswered
from tests.conversation import Chat, quick_labels, texts
from tests.helpers import ROOT, ServerThread, bot_database, run_bot_with

REPLIES = load_replies(ROOT / "knowledge")
MENU_LABELS = [REPLIES.text(f"menu.{i}") for i in MAIN_MENU]
#: A message the engine is unsure about: "start" (help 0.57, start_assessment 0.40).
UNSURE = "เริ่ม"


def unanswered(server: ServerThread) -> list[Unanswered]:
    with bot_database(server.settings) as engine, engine.connect() as conn:
        rows = conn.execute(select(Unanswered).order_by(Unanswered.id)).all()
    return [Unanswered(**row._mapping) for row in rows]


def bot_cli(server: ServerThread, *args: str) -> subprocess.CompletedProcess[str]:
    return run_bot_with(server.settings, *args)


def test_unsure_message_asks_did_you_mean_and_a_suggestion_can_be_pressed(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("unsure")
    answer = c.say(UNSURE)
    guesses = [REPLIES.text("menu.help"), REPLIES.text("menu.start_assessment")]
    labels = quick_labels(answer)
    # the two best guesses first (a third, an intent or a guide, may follow); the menu button
    # is one of them, so there is no extra way out
    assert labels[:2] == guesses and len(labels) <= 3
    options = ", ".join(f"“{g}”" for g in labels)
    expected = {t.format(options=options) for t in REPLIES.texts["fallback.did_you_mean"]}
    assert texts(answer)[0] in expected
    pressed = c.press(answer, REPLIES.text("menu.help"))
    assert texts(pressed) == [REPLIES.text("help.menu")]

    (row,) = unanswered(chat_bot)
    assert row.text == UNSURE and row.best_intent == "help"
    assert row.confidence is not None and 0 < row.confidence < 1


def test_out_of_scope_is_polite_offers_the_menu_and_is_kept_without_user(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("weather")
    answer = c.say("วันนี้ฝนตกไหม")
    assert texts(answer)[0] in REPLIES.texts["fallback.out_of_scope"]
    assert quick_labels(answer) == MENU_LABELS

    (row,) = unanswered(chat_bot)
    assert row.text == "วันนี้ฝนตกไหม"
    assert row.best_intent == "out_of_scope" and row.confidence is not None
    assert row.created_at is not None
    kept = {c.name for c in Unanswered.__table__.columns}
    # no user id
    assert kept == {"id", "text", "best_intent", "best_guide", "confidence", "created_at"}

    listing = bot_cli(chat_bot, "unanswered")
    assert listing.returncode == 0, listing.stderr
    (line,) = [ln for ln in listing.stdout.splitlines() if "วันนี้ฝนตกไหม" in ln]
    assert "out_of_scope" in line and f"{row.confidence:.2f}" in line
    assert c.user not in listing.stdout


def test_long_unanswered_text_is_cut_to_500_characters(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    long = "ฝนตกไหม " * 100
    chat("rambler").say(long)
    (row,) = unanswered(chat_bot)
    assert row.text == long.strip()[:500]


@pytest.mark.parametrize("kind", ["sticker", "image", "audio", "video", "file"])
def test_media_gets_a_friendly_reply_with_the_menu(
    chat: Callable[[str], Chat], chat_bot: ServerThread, kind: str
) -> None:
    answer = chat(f"media-{kind}").send_media(kind)
    key = "fallback.sticker" if kind == "sticker" else "fallback.media"
    assert texts(answer)[0] in REPLIES.texts[key]
    assert quick_labels(answer) == MENU_LABELS
    assert unanswered(chat_bot) == []  # only texts are kept


def test_a_button_from_an_old_message_offers_the_menu(chat: Callable[[str], Chat]) -> None:
    answer = chat("old-button").postback(postback_data("gone", x=1))
    assert texts(answer) == [REPLIES.text("fallback.stale_button")]
    assert quick_labels(answer) == MENU_LABELS


def test_a_location_outside_any_question_points_to_the_centres(
    chat: Callable[[str], Chat],
) -> None:
    answer = chat("where").share_location(12.80, 99.97)
    assert answer
    if texts(answer)[0] == REPLIES.text("fallback.location"):  # no centre handler for it yet
        assert quick_labels(answer) == [REPLIES.text("menu.find_centre"), REPLIES.text("menu.help")]
