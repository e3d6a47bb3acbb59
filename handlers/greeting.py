"""Greeting a user: the ``greet`` intent, a new friend (``follow``) and consent.

Following the account is the first contact, so the welcome carries a short
privacy notice and the first buttons: consent, then the main menu. Pressing
consent records the consent time (PDPA), which is all we keep about it.
"""

from __future__ import annotations

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.content.menu import main_menu
from bot.dialogue.router import Router, Turn
from bot.insights import capture, records
from bot.line.messages import PostbackAction, postback_data
from bot.storage.db import User, utcnow

router = Router("greeting")


def _consent_button(turn: Turn) -> PostbackAction:
    return PostbackAction(
        label=turn.reply_text("greeting.consent_button"),
        data=postback_data("consent"),
        display_text=turn.reply_text("greeting.consent_button"),
    )


@router.intent("greet")
async def greet(turn: Turn) -> None:
    """Say hello and what the bot can do, with the menu to start from."""
    turn.say("greeting.hello", *main_menu(turn))


@router.event("follow")
async def welcome(turn: Turn) -> None:
    """A new (or returning) friend: welcome by name, privacy notice, consent and menu buttons."""
    name = await turn.display_name()
    if name:
        turn.say("greeting.welcome_named", name=name)
    else:
        turn.say("greeting.welcome")
    turn.say("greeting.privacy_notice", _consent_button(turn), *main_menu(turn))
    capture.note(turn, records.FOLLOWED)


async def _record_consent(s: AsyncSession, user_id: str) -> None:
    """The first consent's time is kept; pressing the button again changes nothing."""
    await s.execute(
        update(User)
        .where(User.line_user_id == user_id, User.consent_at.is_(None))
        .values(consent_at=utcnow())
    )


@router.postback("consent")
async def consent(turn: Turn) -> None:
    """Record that the user accepted the privacy notice."""
    user = turn.event.user_id
    if user is None:
        return
    turn.write(lambda s: _record_consent(s, user))
    turn.say("greeting.consent_thanks", *main_menu(turn))
