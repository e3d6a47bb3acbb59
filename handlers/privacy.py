"""my_profile and delete_my_data: a user's PDPA rights to see and to erase their data.

``my_profile`` shows what we keep that matters to them: the latest assessment
(stage, topics to learn, date, province) and the subscription. ``delete_my_data``
asks first (buttons), then erases everything through ``bot.storage.privacy`` (database
rows with the answer, Redis keys as it is sent) and says what went, per kind. Only a
press of "yes" (or typing its exact label) while the question is open deletes
anything; an old "yes" button asks again.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from bot.content.menu import intent_buttons, main_menu
from bot.dialogue.detours import offer_detour
from bot.dialogue.retries import miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.kb.queries import thai_date
from bot.line.messages import PostbackAction, postback_data
from bot.richmenu.users import UNLINK
from bot.storage.db import Assessment, Subscription
from bot.storage.privacy import count_erasure, erase_rows, load_profile, summary


class PrivacySteps(StepGroup, prefix="privacy"):
    """Confirming a deletion before anything is erased."""

    confirm_delete = Step()


router = Router("privacy", steps=PrivacySteps)

CONFIRM_DELETE = PrivacySteps.confirm_delete
#: Postback of the delete question: ``action=pdel&a=yes|no``.
DELETE = "pdel"
MAX_TRIES = 2
#: Dialogue-answer key of the count of typed answers not understood.
TRIES = "pdel_tries"
BANGKOK = ZoneInfo("Asia/Bangkok")


# -- my_profile ---------------------------------------------------------------------------


def _local_date(moment: dt.datetime) -> dt.date:
    """The Thai calendar day of a stored time (SQLite returns it without a zone: UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(BANGKOK).date()


def _topics(turn: Turn, ids: list[str]) -> str:
    known = turn.services.knowledge.topics
    return ", ".join(known[t].label.th for t in ids if t in known)


def _assessment_text(turn: Turn, latest: Assessment | None, count: int) -> str:
    if latest is None:
        return turn.reply_text("privacy.profile_no_assessment")
    provinces = turn.services.knowledge.places.provinces
    code = latest.province_code
    province = (
        provinces[code].name_th
        if code and code in provinces
        else turn.reply_text("privacy.profile_no_province")
    )
    return turn.reply_text(
        "privacy.profile_assessment",
        date=thai_date(_local_date(latest.created_at)),
        stage=latest.stage,
        topics=_topics(turn, list(latest.topics)) or turn.reply_text("privacy.profile_no_topics"),
        province=province,
        count=count,
    )


def _subscription_text(turn: Turn, row: Subscription | None) -> str:
    if row is None:
        return turn.reply_text("privacy.profile_no_subscription")
    topics = _topics(turn, list(row.topics)) or turn.reply_text("privacy.profile_no_topics")
    if not row.active:
        return turn.reply_text("privacy.profile_subscription_stopped", topics=topics)
    provinces = turn.services.knowledge.places.provinces
    area = (
        ", ".join(provinces[p].name_th for p in row.provinces if p in provinces)
        if row.provinces
        else turn.reply_text("privacy.profile_nationwide")
    )
    return turn.reply_text("privacy.profile_subscription", topics=topics, area=area)


@router.intent("my_profile")
async def my_profile(turn: Turn) -> None:
    """The latest assessment result and the subscription, or that nothing is stored."""
    profile = await load_profile(turn.services.db, turn.user_id)
    turn.end()
    if profile.empty:
        turn.say(
            "privacy.profile_empty",
            *intent_buttons(turn, ["start_assessment", "subscribe", "help"]),
        )
        return
    sub = profile.subscription
    next_steps = ["start_assessment", "subscribe"]
    if sub is not None and sub.active:
        next_steps.append("unsubscribe")
    next_steps += ["delete_my_data", "help"]
    turn.say(
        "privacy.profile",
        *intent_buttons(turn, next_steps),
        assessment=_assessment_text(turn, profile.latest_assessment, profile.assessments),
        subscription=_subscription_text(turn, sub),
    )


# -- delete_my_data -----------------------------------------------------------------------


def _buttons(turn: Turn) -> tuple[PostbackAction, PostbackAction]:
    yes = turn.reply_text("privacy.button_yes")
    no = turn.reply_text("privacy.button_no")
    return (
        PostbackAction(label=yes, data=postback_data(DELETE, a="yes"), display_text=yes),
        PostbackAction(label=no, data=postback_data(DELETE, a="no"), display_text=no),
    )


@router.intent("delete_my_data", global_=True)
async def delete_my_data(turn: Turn) -> None:
    """Ask before erasing: it cannot be undone."""
    turn.end()
    turn.goto(CONFIRM_DELETE, **{TRIES: 0})
    turn.say("privacy.confirm_delete", *_buttons(turn))


async def erase(turn: Turn) -> None:
    """Erase the user's data everywhere and say what went.

    What will go is counted first (removing nothing); the rows are erased with the answer
    (one transaction: a retry after a crash finds them all still there and says the same),
    the Redis keys when it is sent.
    """
    services = turn.services
    user, event = turn.user_id, turn.event.id
    erasure = await count_erasure(
        services.db,
        user,
        redis=services.redis,
        prefix=services.settings.redis_prefix,
        handling_event=event,
    )
    turn.write(lambda s: erase_rows(s, user, event))
    turn.forget_user()
    turn.menu = UNLINK  # the default rich menu again, as for someone new
    turn.end()
    counts = summary(erasure)
    lines = []
    if counts["profile"]:
        lines.append(turn.reply_text("privacy.deleted_profile", count=counts["profile"]))
    if counts["assessments"]:
        lines.append(turn.reply_text("privacy.deleted_assessments", count=counts["assessments"]))
    if counts["subscriptions"]:
        lines.append(
            turn.reply_text("privacy.deleted_subscriptions", count=counts["subscriptions"])
        )
    if counts["handoffs"]:
        lines.append(turn.reply_text("privacy.deleted_handoffs", count=counts["handoffs"]))
    if counts["records"]:
        lines.append(turn.reply_text("privacy.deleted_records", count=counts["records"]))
    if not lines:
        lines.append(turn.reply_text("privacy.deleted_nothing"))
    turn.say("privacy.deleted", *main_menu(turn), lines="\n".join(lines))


def _cancelled(turn: Turn) -> None:
    turn.end()
    turn.say("privacy.delete_cancelled", *main_menu(turn))


@router.postback(DELETE, stamped=True, restart="delete_my_data")
async def delete_answer(turn: Turn) -> None:
    """Yes erases (only while the question is open); no keeps everything."""
    if turn.postback.get("a") != "yes":
        _cancelled(turn)
        return
    if turn.state.step != CONFIRM_DELETE:
        turn.end()
        turn.goto(CONFIRM_DELETE, **{TRIES: 0})
        turn.say("privacy.stale")
        turn.say("privacy.confirm_delete", *_buttons(turn))
        return
    await erase(turn)


@router.step(CONFIRM_DELETE)
async def delete_typed(turn: Turn) -> None:
    """Typed answers: only the exact button labels count; anything else asks again, twice."""
    text = turn.text.strip()
    if text == turn.reply_text("privacy.button_yes").strip():
        await erase(turn)
        return
    if text == turn.reply_text("privacy.button_no").strip():
        _cancelled(turn)
        return
    intent = turn.nlu.intent if turn.nlu else None
    if intent == "back":
        _cancelled(turn)
        return
    if offer_detour(turn):  # they asked something else: nothing is deleted
        return
    if intent and intent not in ("delete_my_data", "out_of_scope") and turn.can_hand_over(intent):
        turn.end()  # "show my data" instead: nothing is deleted
        await turn.hand_over(intent)
        return
    tries = miss(turn, TRIES, limit=MAX_TRIES)
    if not tries.again:
        _cancelled(turn)
        return
    turn.goto(CONFIRM_DELETE, **tries.saved())
    turn.say("privacy.confirm_again", *_buttons(turn))
