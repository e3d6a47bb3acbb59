"""Conversation glue: the welcome, help menu, thanks, goodbye, cancel and back.

Each script talks to the running bot through the signed webhook (both
deployments); wording is read from the reply files, never hard-coded.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import redis.asyncio as aioredis

from bot.content.menu import MAIN_MENU
from bot.dialogue.state import DialogueState, RedisDialogueStore
from bot.kb.loader import load_replies
from tests.conversation import Chat, find_action, quick_labels, quick_replies, texts
from tests.helpers import ROOT, ServerThread

REPLIES = load_replies(ROOT / "knowledge")
MENU_LABELS = [REPLIES.text(f"menu.{i}") for i in MAIN_MENU]
#: What the fallback says: an answer that is none of these came from a capability.
FALLBACK = {
    t
    for key in ("not_understood", "stale_button", "out_of_scope", "sticker", "media")
    for t in REPLIES.texts[f"fallback.{key}"]
}


def variants(key: str) -> tuple[str, ...]:
    return REPLIES.texts[key]


def open_step(server: ServerThread, user: str, step: str) -> None:
    """Put ``user`` in the middle of a flow, as its first question would."""
    settings = server.settings

    async def save() -> None:
        if settings.redis_url:
            client = aioredis.from_url(settings.redis_url)
            try:
                store = RedisDialogueStore(client, settings.redis_prefix)
                await store.save(user, DialogueState(step=step), 600)
            finally:
                await client.aclose()
        else:
            await server.services.dialogue.save(user, DialogueState(step=step), 600)

    asyncio.run(save())


def test_follow_gives_greeting_privacy_notice_and_first_buttons(
    chat: Callable[[str], Chat],
) -> None:
    answer = chat("newcomer").follow()
    said = texts(answer)
    assert said[0] == REPLIES.text("greeting.welcome_named", name="ผู้ใช้ทดสอบ")
    assert said[1] in variants("greeting.privacy_notice")
    labels = quick_labels(answer)
    assert labels[0] == REPLIES.text("greeting.consent_button")
    assert labels[1:] == MENU_LABELS


def test_consent_then_the_menu(chat: Callable[[str], Chat]) -> None:
    c = chat("consents")
    answer = c.press(c.follow(), REPLIES.text("greeting.consent_button"))
    assert texts(answer) == [REPLIES.text("greeting.consent_thanks")]
    assert quick_labels(answer) == MENU_LABELS


def test_greeting_comes_with_the_menu(chat: Callable[[str], Chat]) -> None:
    answer = chat("hello").say("สวัสดีครับ")
    assert texts(answer)[0] in variants("greeting.hello")
    assert quick_labels(answer) == MENU_LABELS


def test_help_menu_buttons_each_start_their_capability(chat: Callable[[str], Chat]) -> None:
    answer = chat("helpme").say("ช่วยอะไรได้บ้าง")
    assert texts(answer) == [REPLIES.text("help.menu")]
    labels = quick_labels(answer)
    assert labels[: len(MENU_LABELS)] == MENU_LABELS
    assert REPLIES.text("menu.unsubscribe") in labels
    assert REPLIES.text("menu.delete_my_data") in labels
    assert len(labels) <= 13
    fell_back = []
    for n, action in enumerate(quick_replies(answer)):
        # A new user per button: one capability's open question never answers another's.
        pressed = chat(f"helpme-{n}").postback(action["data"])
        if not pressed or texts(pressed)[0] in FALLBACK:
            fell_back.append(action["label"])
    assert fell_back == [], f"these buttons got no answer of their own: {fell_back}"


def test_thanks_and_goodbye(chat: Callable[[str], Chat]) -> None:
    c = chat("polite")
    thanks = c.say("ขอบคุณมากครับ")
    assert texts(thanks)[0] in variants("help.thanks")
    assert quick_labels(thanks) == MENU_LABELS
    bye = c.say("บายครับ")
    assert texts(bye)[0] in variants("help.goodbye")


def test_cancel_with_nothing_open_says_so(chat: Callable[[str], Chat]) -> None:
    answer = chat("idle").say("ยกเลิก")
    assert texts(answer) == [REPLIES.text("help.nothing_to_cancel")]
    assert quick_labels(answer) == MENU_LABELS


def test_cancel_inside_a_step_ends_it_and_says_what(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("busy")
    other = chat("bystander")
    open_step(chat_bot, c.user, "courses.topic")
    open_step(chat_bot, other.user, "courses.topic")
    answer = c.say("ยกเลิก")
    what = REPLIES.text("help.flow_courses")
    assert texts(answer) == [REPLIES.text("help.cancelled", what=what)]
    assert quick_labels(answer) == MENU_LABELS
    # The step is closed: cancelling again finds nothing open ...
    assert texts(c.say("ยกเลิก")) == [REPLIES.text("help.nothing_to_cancel")]
    # ... while another user's open step is untouched.
    assert texts(other.say("ยกเลิก")) == [REPLIES.text("help.cancelled", what=what)]


def test_cancel_in_a_flow_we_do_not_name(
    chat: Callable[[str], Chat], chat_bot: ServerThread
) -> None:
    c = chat("odd-step")
    open_step(chat_bot, c.user, "somewhere.else")
    assert texts(c.say("พอแล้ว ยกเลิก")) == [REPLIES.text("help.cancelled_step")]


def test_back_outside_any_flow(chat: Callable[[str], Chat]) -> None:
    answer = chat("nowhere").say("ย้อนกลับ")
    assert texts(answer) == [REPLIES.text("help.nothing_to_go_back")]
    assert quick_labels(answer) == MENU_LABELS


def test_menu_button_from_anywhere_shows_help(chat: Callable[[str], Chat]) -> None:
    c = chat("lost")
    answer = c.say("ย้อนกลับ")
    answer = c.say("เมนูหลัก")
    assert texts(answer) == [REPLIES.text("help.menu")]
    assert find_action(answer, REPLIES.text("menu.contact_staff"))["type"] == "postback"
