"""Finding a course (``find_course``) and the "details" button of every recommendation card.

A person says what they want to learn and, often, where they are
("อยากเรียนขายของออนไลน์ที่เชียงใหม่"); the answer is a carousel of courses they
can take from there: the province's own courses plus online and nationwide ones,
open or upcoming rounds first. Without a topic the bot asks with topic buttons.
Their latest assessment (if any) supplies the province and stage they did not say.
When nothing fits, the bot says so and offers what is nearest: online courses,
other provinces, or a related topic, each a button that answers at once.

```mermaid
stateDiagram-v2
    [*] --> courses.topic: find_course without a topic
    [*] --> carousel: find_course with a topic
    courses.topic --> carousel: topic button / typed topic
    courses.topic --> courses.topic: not understood (at most twice)
    courses.topic --> [*]: third miss: buttons and the menu / back / another intent
    carousel --> carousel: alternative or "other topic" button (postback crs)
```

Every search button is a postback ``action=crs&t=<topics>&p=<province>&m=<mode>``
(mode ``o`` online only, ``a`` anywhere), so it works even after the step expired.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from bot.content.cards import DETAILS_ACTION, card_titles, carousel, course_bubble, details_for
from bot.content.menu import back_to_menu, help_button, intent_buttons, main_menu
from bot.dialogue.detours import offer_detour, offer_detour_first
from bot.dialogue.retries import miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.insights import capture, records
from bot.kb.queries import CourseHit, course_alternatives, find_courses, online_courses
from bot.line.messages import Action, PostbackAction, Text, postback_data
from bot.nlu.text import normalise
from bot.storage.db import Assessment

if TYPE_CHECKING:
    from bot.kb.loader import Knowledge


class CourseSteps(StepGroup, prefix="courses"):
    """Asking which topic, when the message named none."""

    topic = Step()


router = Router("courses", steps=CourseSteps)

#: Postback action of course searches (topic buttons, alternatives).
SEARCH = "crs"
#: Re-asks of a step before the bot offers buttons and a way out instead.
MAX_RETRIES = 2
#: Dialogue-answer key of the count of answers not understood.
TRIES = "tries"


# -- shared with the export conversation ---------------------------------------------------


async def assessment_of(turn: Turn) -> Assessment | None:
    """The latest finished assessment of the person writing (in a group: the sender)."""
    user = turn.event.user_id or turn.user_id
    return await turn.latest_assessment(user)


def province_in(turn: Turn) -> str | None:
    """The province the message names: a province, or the province of a named district or
    subdistrict when every place the name could mean lies in that one province."""
    return capture.named_province(turn.nlu)


def give_up(turn: Turn, key: str, buttons: Sequence[Action]) -> None:
    """Close the step after its last miss: reply ``key`` with the step's buttons and help."""
    turn.end()
    turn.say(key, *buttons[:12], help_button(turn))


def short_label(turn: Turn, key: str, name: str) -> str:
    """A button label: reply ``key`` when the reply files have it, else ``name``."""
    replies = turn.services.replies
    return replies.text(key) if key in replies else name


# -- pieces -------------------------------------------------------------------------------------


def topic_label(turn: Turn, topic: str) -> str:
    """A short button label for a topic (``courses.topic_label.<id>``, else its name)."""
    found = turn.services.knowledge.topics.get(topic)
    return short_label(turn, f"courses.topic_label.{topic}", found.label.th if found else topic)


def topic_name(kb: Knowledge, topics: list[str]) -> str:
    """Full topic names for a sentence ("คอร์สเรื่อง…")."""
    return ", ".join(kb.topics[t].label.th if t in kb.topics else t for t in topics)


def province_name(kb: Knowledge, code: str | None) -> str:
    if not code:
        return ""
    found = kb.places.provinces.get(code)
    return found.name_th if found else code


def search_button(
    label: str, topics: list[str] | str = "", province: str | None = None, mode: str = ""
) -> PostbackAction:
    """A button that runs a course search (works whether or not a step is open)."""
    joined = ",".join(topics) if isinstance(topics, list) else topics
    data = postback_data(SEARCH, t=joined, p=province or "", m=mode)
    return PostbackAction(label=label, data=data, display_text=label)


def topic_buttons(
    turn: Turn, province: str | None, first: list[str] | None = None
) -> tuple[PostbackAction, ...]:
    """One button per topic (the assessment's most-needed topics first)."""
    kb = turn.services.knowledge
    order = [t for t in (first or []) if t in kb.topics]
    order += [t for t in kb.topics if t not in order]
    return tuple(search_button(topic_label(turn, t), [t], province) for t in order[:12])


def _typed_topics(turn: Turn) -> list[str]:
    """Topic ids in the message: the intent engine's entities, else a button label typed out."""
    parse = turn.nlu
    found = [e.value for e in parse.entities_of("topic")] if parse else []
    if found:
        return list(dict.fromkeys(found))
    said = normalise(turn.text).replace(" ", "")
    if not said:
        return []
    kb = turn.services.knowledge
    for topic_id, topic in kb.topics.items():
        names = {topic.label.th, topic_label(turn, topic_id)}
        if any(said == normalise(n).replace(" ", "") for n in names):
            return [topic_id]
    return []


def _why(turn: Turn, hit: CourseHit, province: str | None) -> str | None:
    kb = turn.services.knowledge
    if hit.local and province:
        return turn.reply_text("courses.why_local", province=province_name(kb, province))
    if hit.course.format == "online":
        return turn.reply_text("courses.why_online")
    if hit.course.places.nationwide:
        return turn.reply_text("courses.why_nationwide")
    return None


def ask_topic(turn: Turn, province: str | None, first: list[str] | None = None) -> None:
    """Ask what to learn, with a button per topic; typed answers go to ``courses.topic``."""
    turn.goto(CourseSteps.topic, province=province, **{TRIES: 0}, first=first or [])
    turn.say("courses.ask_topic", *topic_buttons(turn, province, first))


async def show_courses(
    turn: Turn,
    topics: list[str],
    province: str | None,
    stage: int | None,
    mode: str = "",
) -> None:
    """The carousel of courses for topics and place, or what to try instead."""
    kb = turn.services.knowledge
    replies = turn.services.replies
    name = topic_name(kb, topics)
    place = province_name(kb, province)
    if mode == "o":
        hits = online_courses(kb, topics, stage=stage)[:10]
        if hits and topics:
            turn.say("courses.found_online_topic", topic=name, count=len(hits))
        elif hits:
            turn.say("courses.found_online", count=len(hits))
    elif mode == "a":
        hits = find_courses(kb, topics, stage=stage)
        if hits:
            turn.say("courses.found_other_provinces", topic=name, count=len(hits))
    else:
        hits = find_courses(kb, topics, stage=stage, province=province)
        _capture_unserved(turn, topics, province)
        if hits and province:
            turn.say("courses.found_in_province", topic=name, province=place, count=len(hits))
        elif hits:
            turn.say("courses.found", topic=name, count=len(hits))
    if hits:
        scope = province if mode == "" else None
        bubbles = [course_bubble(h.course, kb, replies, why=_why(turn, h, scope)) for h in hits]
        quick: list[Action] = [
            search_button(turn.reply_text("courses.button_other_topic"), "", province)
        ]
        if mode != "o":
            quick.append(search_button(turn.reply_text("courses.button_online"), topics, None, "o"))
        quick += intent_buttons(turn, ["subscribe", "help"])
        alt = turn.reply_text("courses.alt_text", count=len(bubbles), names=card_titles(bubbles))
        turn.send(carousel(bubbles, alt, tuple(quick)))
        return
    _nothing_fits(turn, topics, province, stage, mode)


def _capture_unserved(turn: Turn, topics: list[str], province: str | None) -> None:
    """Each topic asked for that no course (there, online or nationwide) serves: unmet
    demand. Whatever the person's stage: the views ask whether the province is served."""
    kb = turn.services.knowledge
    for topic in topics:
        if not find_courses(kb, [topic], province=province, limit=1):
            capture.note(turn, records.NO_COURSE, topic, province=province)


def _nothing_fits(
    turn: Turn, topics: list[str], province: str | None, stage: int | None, mode: str
) -> None:
    """Say nothing fits, then offer the nearest things that do have courses."""
    kb = turn.services.knowledge
    name = topic_name(kb, topics)
    if mode == "o" and not topics:
        turn.say("courses.none_online")
    elif province and mode == "":
        turn.say("courses.none", topic=name, province=province_name(kb, province))
    else:
        turn.say("courses.none_anywhere", topic=name)
    buttons: list[Action] = []
    if topics:
        alt = course_alternatives(kb, topics[0], province if mode == "" else None, stage)
        if alt.online and mode != "o":
            buttons.append(search_button(turn.reply_text("courses.button_online"), "", None, "o"))
        if alt.other_provinces and mode == "":
            label = turn.reply_text("courses.button_other_provinces")
            buttons.append(search_button(label, topics, None, "a"))
        scope = province if mode == "" else None
        buttons += [search_button(topic_label(turn, t), [t], scope) for t in alt.topics]
        if "export_trade" in topics:
            buttons += intent_buttons(turn, ["export_programme"])
    buttons.append(search_button(turn.reply_text("courses.button_other_topic"), "", province))
    if len(buttons) > 1:
        turn.say("courses.alternatives", *buttons, *intent_buttons(turn, ["subscribe"]))
    else:
        turn.say("courses.no_alternatives", *buttons, *intent_buttons(turn, ["subscribe", "help"]))


# -- handlers -----------------------------------------------------------------------------------


@router.intent("find_course")
async def find_course(turn: Turn) -> None:
    """Courses by topic and place; asks for the topic when the message has none."""
    topics = _typed_topics(turn)
    province = province_in(turn)
    latest = await assessment_of(turn)
    stage = latest.stage if latest else None
    if province is None and latest is not None and latest.province_code:
        province = latest.province_code
        kb = turn.services.knowledge
        turn.say("courses.place_from_assessment", province=province_name(kb, province))
    if not topics:
        ask_topic(turn, province, list(latest.topics) if latest else None)
        return
    turn.end()
    await show_courses(turn, topics, province, stage)


@router.step(CourseSteps.topic)
async def topic_answer(turn: Turn) -> None:
    """A typed answer to "what do you want to learn?"; asks again at most twice."""
    answers = turn.state.answers
    province = province_in(turn) or answers.get("province")
    if back_to_menu(turn, "courses.back"):
        return
    if offer_detour_first(turn):  # a question that merely names a topic is not the answer
        return
    topics = _typed_topics(turn)
    if topics:
        turn.end()
        latest = await assessment_of(turn)
        await show_courses(turn, topics, province, latest.stage if latest else None)
        return
    if offer_detour(turn):
        return
    tries = miss(turn, TRIES, limit=MAX_RETRIES)
    first = list(answers.get("first") or [])
    buttons = topic_buttons(turn, province, first)
    if tries.again:
        turn.goto(CourseSteps.topic, province=province, **tries.saved())
        turn.say("courses.ask_topic_again", *buttons)
        return
    give_up(turn, "courses.give_up", buttons)


@router.postback(SEARCH)
async def search_pressed(turn: Turn) -> None:
    """A topic, alternative or "other topic" button: search at once (no step needed)."""
    data = turn.postback
    kb = turn.services.knowledge
    topics = [t for t in data.get("t", "").split(",") if t in kb.topics]
    province = data.get("p") or None
    if province is not None and province not in kb.places.provinces:
        province = None
    mode = data.get("m", "")
    latest = await assessment_of(turn)
    if not topics and mode != "o":
        ask_topic(turn, province, list(latest.topics) if latest else None)
        return
    turn.end()
    await show_courses(turn, topics, province, latest.stage if latest else None, mode)


@router.postback(DETAILS_ACTION)
async def details_pressed(turn: Turn) -> None:
    """The "details" button of any course or programme card: everything we know about it."""
    kb = turn.services.knowledge
    text = details_for(turn.postback.get("id", ""), kb, turn.services.replies)
    if text is None:
        turn.say("courses.details_gone", *main_menu(turn))
        return
    turn.send(Text(text))
    capture.note(turn, records.RECOMMENDATION_OPENED, turn.postback.get("id", ""))
