"""The skills assessment: seven short questions, then a result with recommendations.

The questions, buttons and scoring come from ``knowledge/assessment.yaml``; typed answers
are read by ``bot.assessment.scoring.AnswerMatcher``; every sentence is in
``knowledge/replies/assessment.yaml``. Each question is a dialogue step
``assessment.<question id>`` (saved with the dialogue TTL on every turn, so an unanswered
assessment times out); the answers so far live in the dialogue state, and only the
finished result is stored (an ``Assessment`` row per attempt, history kept).

```mermaid
stateDiagram-v2
    [*] --> business_stage: start_assessment
    business_stage --> sector
    sector --> sales_channels
    sales_channels --> sales_channels: a channel button (pick more)
    sales_channels --> digital_skill: "done" / typed channels
    digital_skill --> goal
    goal --> province
    province --> notify: typed place, shared location or skip
    notify --> [*]: result (summary + cards), saved
```

Any question: "ย้อนกลับ" (or the back button) returns one question; "ยกเลิก" is handled
globally (``handlers.help``); starting again asks resume or restart; an answer not
understood is asked again twice, the third time the bot offers the buttons and a way out,
the fourth ends the assessment (no endless loops).

Buttons are postbacks ``action=asm&q=<question>&o=<option>`` or ``action=asm&do=<what>``
(back, done, skip, resume, restart, exit): ids only, far below LINE's 300 bytes.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.assessment.scoring import AnswerMatcher, Pick, match_place, rank, score
from bot.content.cards import (
    card_titles,
    carousel,
    centre_bubble,
    course_bubble,
    programme_bubble,
)
from bot.content.menu import go_button, main_menu
from bot.dialogue.detours import offer_detour, offer_detour_first
from bot.dialogue.retries import miss
from bot.dialogue.router import Router, Turn
from bot.dialogue.steps import Step, StepGroup
from bot.insights import capture, records
from bot.kb.assessment_schema import DONE, SKIP, AssessmentDef, Question
from bot.kb.loader import Knowledge
from bot.kb.queries import (
    BusinessProfile,
    CourseHit,
    ProgrammeHit,
    find_courses,
    find_programmes,
    nearest_centres,
    where_am_i,
)
from bot.kb.schemas import Centre
from bot.line.messages import Action, LocationAction, PostbackAction, postback_data
from bot.richmenu.users import after_assessment
from bot.storage.daily import ASSESSMENT_STARTED, count_event
from bot.storage.db import Assessment
from bot.storage.queries import Merge, save_subscription


class AssessmentSteps(StepGroup, prefix="assessment"):
    """One step per question of knowledge/assessment.yaml (its ids are fixed by the schema,
    ``bot.kb.assessment_schema.QUESTION_IDS``; their order and wording are the operators')."""

    business_stage = Step()
    sector = Step()
    sales_channels = Step()
    digital_skill = Step()
    goal = Step()
    province = Step()
    notify = Step()


router = Router("assessment", steps=AssessmentSteps)

#: Postback action of every assessment button.
ACTION = "asm"
PREFIX = AssessmentSteps.prefix + "."
#: Dialogue-state keys besides the question ids: answers not understood in a row, and a
#: shared location (kept only for the nearest centre; never stored in the database).
MISSES = "_misses"
WHERE = "_loc"
#: The third answer not understood offers the buttons and a way out; the fourth ends it.
OFFER_AT = 3
GIVE_UP_AT = 4
#: Place names shared by more provinces than this are not offered as buttons.
MAX_PLACE_CHOICES = 10
#: A shared location farther than this from any subdistrict point is not in Thailand.
MAX_LOCATION_KM = 50.0

_MATCHERS: dict[tuple[str, int], AnswerMatcher] = {}


def _def(turn: Turn) -> AssessmentDef:
    return turn.services.knowledge.assessment


def matcher(turn: Turn) -> AnswerMatcher:
    """The answer reader of the live knowledge and intent engine (built once per pair)."""
    engine = turn.services.nlu
    key = (turn.services.knowledge.version, id(engine))
    found = _MATCHERS.get(key)
    if found is None:
        found = AnswerMatcher(_def(turn), lambda text: engine.words(text)[1])
        if len(_MATCHERS) >= 4:
            _MATCHERS.pop(next(iter(_MATCHERS)))
        _MATCHERS[key] = found
    return found


def current(turn: Turn) -> str | None:
    """The question the user's open assessment is at (None: no assessment open)."""
    step = turn.state.step or ""
    if step.startswith(PREFIX) and step[len(PREFIX) :] in _def(turn).ids:
        return step[len(PREFIX) :]
    return None


def _answers(turn: Turn) -> dict[str, Any]:
    return dict((turn.next_state or turn.state).answers)


# -- asking ------------------------------------------------------------------------------------


def _control(turn: Turn, do: str, key: str) -> PostbackAction:
    label = turn.reply_text(key)
    return PostbackAction(label, postback_data(ACTION, do=do), display_text=label)


def _option_buttons(q: Question, hide: frozenset[str] = frozenset()) -> list[Action]:
    return [
        PostbackAction(o.label, postback_data(ACTION, q=q.id, o=o.id), display_text=o.label)
        for o in q.options
        if o.id not in hide
    ]


def _buttons(
    turn: Turn, q: Question, answers: dict[str, Any], *, exit_: bool = False
) -> list[Action]:
    """A question's quick replies: its options (or place buttons), then back / exit."""
    a = _def(turn)
    picked = answers.get(q.id) if q.kind == "multi" else None
    buttons: list[Action]
    if q.kind == "place":
        buttons = [
            LocationAction(turn.reply_text("assessment.button_location")),
            _control(turn, "skip", "assessment.button_skip"),
        ]
    elif picked:
        hide = frozenset(picked) | {o.id for o in q.options if o.exclusive}
        buttons = [*_option_buttons(q, hide), _control(turn, "done", "assessment.button_done")]
    else:
        buttons = _option_buttons(q)
    if a.before(q.id):
        buttons.append(_control(turn, "back", "assessment.button_back"))
    if exit_:
        buttons.append(_control(turn, "exit", "assessment.button_exit"))
    return buttons


def _ask(turn: Turn, qid: str, answers: dict[str, Any]) -> None:
    """Ask question ``qid`` ("ข้อ 2/7 · ...") with its buttons."""
    a = _def(turn)
    q = a.question(qid)
    number, total = a.number(qid), len(a.ids)
    buttons = _buttons(turn, q, answers)
    picked = answers.get(qid) if q.kind == "multi" else None
    if picked:
        labels = [o.label for o in q.options if o.id in picked]
        turn.say(
            "assessment.question_more",
            *buttons,
            number=number,
            total=total,
            chosen=", ".join(labels),
            done=turn.reply_text("assessment.button_done"),
        )
    else:
        turn.say("assessment.question", *buttons, number=number, total=total, question=q.text)


def _stay(turn: Turn, qid: str, **changes: Any) -> None:
    """Keep the user at ``qid`` (refreshing the time-out) with some state changed."""
    turn.goto(AssessmentSteps.get(qid), **changes)


# -- starting, resuming, leaving -------------------------------------------------------------------


def _begin(turn: Turn) -> None:
    """A fresh assessment from the first question (earlier answers dropped)."""
    a = _def(turn)
    first = a.ids[0]
    turn.end()
    turn.goto(AssessmentSteps.get(first), **{MISSES: 0})
    turn.say("assessment.intro", total=len(a.ids))
    _ask(turn, first, {})
    turn.write(lambda s: count_event(s, ASSESSMENT_STARTED))  # the dashboard's "started"
    capture.note(turn, records.ASSESSMENT_STARTED)


def _offer_resume(turn: Turn, qid: str) -> None:
    a = _def(turn)
    _stay(turn, qid)
    turn.say(
        "assessment.resume_or_restart",
        _control(turn, "resume", "assessment.button_resume"),
        _control(turn, "restart", "assessment.button_restart"),
        _control(turn, "exit", "assessment.button_exit"),
        number=a.number(qid),
        total=len(a.ids),
    )


def _exit(turn: Turn) -> None:
    turn.end()
    turn.say("assessment.exited", *main_menu(turn))


def _back(turn: Turn, qid: str) -> None:
    """One question back; its answer (and this one's) is asked again."""
    prev = _def(turn).before(qid)
    if prev is None:
        _stay(turn, qid, **{MISSES: 0})
        turn.say("assessment.first_question")
        _ask(turn, qid, _answers(turn))
        return
    turn.goto(AssessmentSteps.get(prev), **{prev: None, qid: None, MISSES: 0})
    _ask(turn, prev, _answers(turn))


def _miss(turn: Turn, q: Question) -> None:
    if offer_detour(turn):  # another question, not a bad answer: offer it, keep the answers
        return
    """An answer not understood: ask again twice, then offer buttons and a way out, then stop."""
    tries = miss(turn, MISSES, limit=GIVE_UP_AT - 1)
    if not tries.again:
        turn.end()
        turn.say("assessment.gave_up", *main_menu(turn))
        return
    _stay(turn, q.id, **tries.saved())
    answers = _answers(turn)
    misses = tries.count
    if misses >= OFFER_AT:
        exit_label = turn.reply_text("assessment.button_exit")
        turn.say(
            "assessment.offer_buttons", *_buttons(turn, q, answers, exit_=True), exit=exit_label
        )
        return
    place = q.kind == "place"
    if misses == 1:
        turn.say("assessment.place_not_understood" if place else "assessment.not_understood")
    else:
        turn.say(
            "assessment.place_not_understood_again" if place else "assessment.not_understood_again"
        )
    _ask(turn, q.id, answers)


# -- recording answers ---------------------------------------------------------------------------


async def _accept(turn: Turn, qid: str, value: Any, **extra: Any) -> None:
    """Record an answer and ask the next question, or finish after the last one."""
    a = _def(turn)
    answers = _answers(turn)
    answers.update({qid: value, MISSES: 0, **extra})
    nxt = a.after(qid)
    if nxt is None:
        await _finish(turn, answers)
        return
    turn.goto(AssessmentSteps.get(nxt), **{qid: value, MISSES: 0, **extra})
    _ask(turn, nxt, answers)


async def _pick(turn: Turn, q: Question, options: tuple[str, ...], *, finish: bool) -> None:
    """Add channels to a multi-choice answer; a button adds one and asks for more."""
    exclusive = {o.id for o in q.options if o.exclusive}
    picked = [o for o in (_answers(turn).get(q.id) or []) if q.option(o) is not None]
    new = [o for o in options if o not in picked]
    if new and all(o in exclusive for o in new):
        # "not selling online" ends the question (after channels picked: it means "that's all")
        picked, finish = (picked or [new[0]]), True
    else:
        picked = [o for o in picked + new if o not in exclusive]
    choosable = [o.id for o in q.options if o.id not in exclusive]
    if finish or set(choosable) <= set(picked):
        await _accept(turn, q.id, picked)
        return
    _stay(turn, q.id, **{q.id: picked, MISSES: 0})
    _ask(turn, q.id, _answers(turn))


async def _take_place(turn: Turn, code: str, where: list[float] | None = None) -> None:
    kb = turn.services.knowledge
    turn.say("assessment.place_got", place=kb.places.provinces[code].name_th)
    await _accept(turn, "province", code, **({WHERE: where} if where else {}))


# -- handlers ----------------------------------------------------------------------------------


@router.intent("start_assessment")
async def start(turn: Turn) -> None:
    """Start the assessment (or, with one open, ask whether to resume or restart)."""
    qid = current(turn)
    if qid is not None:
        _offer_resume(turn, qid)
        return
    _begin(turn)


@router.postback(ACTION, stamped=True, restart="start_assessment")
async def pressed(turn: Turn) -> None:
    """A button of the assessment: an option, or back / done / skip / resume / restart / exit."""
    data = turn.postback
    qid = current(turn)
    if qid is None:
        if (turn.state.expired_step or "").startswith(PREFIX):
            return  # the time-out notice has just said so
        label = turn.reply_text("assessment.button_start_again")
        turn.say("assessment.stale_button", go_button(label, "start_assessment"))
        return
    a = _def(turn)
    q = a.question(qid)
    do = data.get("do")
    if do == "resume":
        _stay(turn, qid)
        _ask(turn, qid, _answers(turn))
    elif do == "restart":
        _begin(turn)
    elif do == "exit":
        _exit(turn)
    elif do == "back":
        _back(turn, qid)
    elif do == "done" and q.kind == "multi" and _answers(turn).get(qid):
        await _accept(turn, qid, _answers(turn)[qid])
    elif do == "skip" and q.kind == "place":
        turn.say("assessment.place_skipped")
        await _accept(turn, qid, None)
    elif data.get("q") != qid or do:
        _stay(turn, qid)
        turn.say("assessment.old_button", number=a.number(qid))
        _ask(turn, qid, _answers(turn))
    elif q.kind == "place":
        code = data.get("o", "")
        if code in turn.services.knowledge.places.provinces:
            await _take_place(turn, code)
        else:
            _ask(turn, qid, _answers(turn))
    elif q.option(data.get("o", "")) is None:
        _stay(turn, qid)
        _ask(turn, qid, _answers(turn))
    elif q.kind == "multi":
        await _pick(turn, q, (data["o"],), finish=False)
    else:
        await _accept(turn, qid, data["o"])


async def answer(turn: Turn) -> None:
    """A typed answer (or, for the province, a shared location) to the open question."""
    qid = current(turn)
    if qid is None:  # pragma: no cover - the router only calls us at our steps
        return
    q = _def(turn).question(qid)
    location = turn.event.location
    if location is not None:
        await _answer_location(turn, q, location.latitude, location.longitude)
        return
    parse = turn.nlu
    intent = parse.intent if parse else None
    text = turn.text
    reader = matcher(turn)
    entities = [(e.type, e.value) for e in parse.entities] if parse else []
    found = reader.match(q, text, entities)
    if found.how in ("number", "exact"):
        await _answered(turn, q, found.options, found.special)
        return
    if found.how in ("entity", "meaning") and offer_detour_first(turn):
        return  # a question that merely names a topic or sector is not this answer
    if intent == "back":
        _back(turn, qid)
        return
    if q.kind == "place" and not found:
        if await _answer_place(turn, q, text):
            return
    elif found:
        await _answered(turn, q, found.options, found.special)
        return
    if intent == "start_assessment":
        _offer_resume(turn, qid)
    elif intent == "cancel":  # normally handled globally (handlers.help) before any step
        _exit(turn)
    else:
        _miss(turn, q)


def claims(turn: Turn) -> bool:
    """A text that names an option outright (number, label or phrase) is an answer,
    even if it also sounds like "cancel" ("ไม่ต้องครับ" to the notices question)."""
    qid = current(turn)
    if qid is None or not turn.text:
        return False
    q = _def(turn).question(qid)
    if q.kind == "place":
        return False
    return matcher(turn).match(q, turn.text).how in ("number", "exact")


for _step in AssessmentSteps.steps():
    if _step == AssessmentSteps.province:
        router.step(_step, accepts=("location",))(answer)
    else:
        router.step(_step, claims=claims)(answer)


async def _answered(turn: Turn, q: Question, options: tuple[str, ...], special: str | None) -> None:
    """Act on a typed answer: options named, "that's all", or "skip".

    Channels typed in a message are taken as the whole answer ("หน้าร้านกับเฟซ"): people
    who type list what they do; the buttons are there to add one at a time.
    """
    if special == SKIP:
        turn.say("assessment.place_skipped")
        await _accept(turn, q.id, None)
    elif special == DONE:
        if _answers(turn).get(q.id):
            await _accept(turn, q.id, _answers(turn)[q.id])
        else:
            _miss(turn, q)
    elif q.kind == "multi":
        await _pick(turn, q, options, finish=True)
    else:
        await _accept(turn, q.id, options[0])


async def _answer_place(turn: Turn, q: Question, text: str) -> bool:
    """A typed place: its province, or buttons when the name is in several (True: handled)."""
    kb = turn.services.knowledge
    parse = turn.nlu
    places = [
        (e.value, e.candidates)
        for e in (parse.entities if parse else ())
        if e.type in ("province", "district", "subdistrict")
    ]
    found = match_place(text, places, kb.places)
    if found.province:
        await _take_place(turn, found.province)
        return True
    if not found.choices:
        return False
    name = text.strip()
    _stay(turn, q.id)
    if len(found.choices) > MAX_PLACE_CHOICES:
        turn.say("assessment.place_too_many", *_buttons(turn, q, _answers(turn)), name=name)
        return True
    buttons: list[Action] = []
    for code in sorted(found.choices, key=lambda c: kb.places.provinces[c].name_th):
        label = kb.places.provinces[code].name_th
        buttons.append(
            PostbackAction(label, postback_data(ACTION, q=q.id, o=code), display_text=label)
        )
    buttons.append(LocationAction(turn.reply_text("assessment.button_location")))
    turn.say("assessment.place_which", *buttons, name=name)
    return True


async def _answer_location(turn: Turn, q: Question, lat: float, lng: float) -> None:
    kb = turn.services.knowledge
    subdistrict, km = where_am_i(kb, lat, lng)
    if km > MAX_LOCATION_KM:
        _stay(turn, q.id)
        turn.say("assessment.place_far", *_buttons(turn, q, _answers(turn)))
        return
    await _take_place(turn, subdistrict.province_code, [lat, lng])


@router.on_timeout("assessment")
async def timed_out(turn: Turn) -> None:
    """The user's assessment expired since their last message: say so, offer a restart."""
    minutes = max(1, turn.services.settings.dialogue_ttl_seconds // 60)
    label = turn.reply_text("assessment.button_start_again")
    turn.say("assessment.timed_out", go_button(label, "start_assessment"), minutes=minutes)


# -- the result ----------------------------------------------------------------------------------


def _nearest_centre(
    kb: Knowledge, where: Any, province: str | None
) -> tuple[Centre, float, bool] | None:
    """The centre nearest the shared location, else nearest the province's mid-point.

    The flag says whether the distance is from the user (only then is it shown).
    """
    if isinstance(where, list) and len(where) == 2:
        found = nearest_centres(kb, float(where[0]), float(where[1]), k=1)
        return (found[0][0], found[0][1], True) if found else None
    if province and province in kb.places.provinces:
        point = kb.places.provinces[province]
        found = nearest_centres(kb, point.lat, point.lng, k=1)
        return (found[0][0], found[0][1], False) if found else None
    return None


def _bubble(turn: Turn, pick: Pick, kb: Knowledge, show_distance: bool) -> dict[str, Any]:
    replies = turn.services.replies
    if isinstance(pick.item, CourseHit):
        why = None
        if pick.topic and pick.topic in kb.topics:
            why = turn.reply_text("assessment.why_topic", topic=kb.topics[pick.topic].label.th)
        return course_bubble(pick.item.course, kb, replies, why=why)
    if isinstance(pick.item, ProgrammeHit):
        return programme_bubble(
            pick.item.programme,
            kb,
            replies,
            reasons=pick.item.reasons,
            why=turn.reply_text("assessment.why_programme"),
        )
    distance = pick.distance_km if show_distance else None
    return centre_bubble(pick.item, kb, replies, distance_km=distance)


async def _save(
    s: AsyncSession, user_id: str, answers: dict[str, Any], stage: int, topics: list[str], keep: int
) -> None:
    """The result as an ``Assessment`` row; a yes to notices creates or updates the
    subscription with the result's first ``keep`` topics (added before the earlier ones)."""
    province = answers.get("province")
    s.add(
        Assessment(
            line_user_id=user_id,
            answers=answers,
            stage=stage,
            topics=topics,
            province_code=province,
        )
    )
    if answers.get("notify") != "yes":
        return
    await save_subscription(
        s,
        user_id,
        topics[:keep],
        [province] if province else [],
        stage=stage,
        merge=Merge.ADD,
    )


#: The question whose answer rates the person's digital skills (an id fixed by the schema).
DIGITAL_QUESTION = "digital_skill"


def digital_low(a: AssessmentDef, answers: dict[str, Any]) -> bool:
    """Did the person rate their digital skills low? The options that send them to a
    digital centre (``suggest_centre`` in knowledge/assessment.yaml) are the low ones, so
    operators move the line there, not here."""
    if DIGITAL_QUESTION not in a.ids:
        return False
    chosen = a.question(DIGITAL_QUESTION).option(str(answers.get(DIGITAL_QUESTION) or ""))
    return chosen is not None and chosen.suggest_centre


def _capture_result(turn: Turn, a: AssessmentDef, answers: dict[str, Any], stage: int) -> None:
    """The finished assessment as insight moments, with the profile it gives the person."""
    sector = answers.get("sector")
    dims: dict[str, Any] = {
        "province": str(answers.get("province") or ""),
        "sector": sector if isinstance(sector, str) else "",
        "stage": stage,
    }
    capture.note(turn, records.ASSESSMENT_FINISHED, **dims)
    if digital_low(a, answers):
        capture.note(turn, records.DIGITAL_LOW, **dims)


async def _finish(turn: Turn, answers: dict[str, Any]) -> None:
    """Score, recommend, save, and answer: summary, notice confirmation, cards (≤ 3 messages)."""
    kb = turn.services.knowledge
    a = kb.assessment
    final = {qid: answers.get(qid) for qid in a.ids}
    result = score(a, final, {t: topic.stage for t, topic in kb.topics.items()})
    province = final.get("province")
    courses = find_courses(kb, result.topics, stage=result.stage, province=province)
    programmes = (
        find_programmes(kb, sector=final.get("sector"), profile=BusinessProfile(stage=result.stage))
        if result.export_ready
        else []
    )
    near = _nearest_centre(kb, answers.get(WHERE), province) if result.suggest_centre else None
    picks = rank(a, result, courses, programmes, (near[0], near[1]) if near else None)
    user, stage_no, topics = turn.user_id, result.stage, list(result.topics)
    keep = a.scoring.show_topics
    turn.write(lambda s: _save(s, user, final, stage_no, topics, keep))
    _capture_result(turn, a, final, stage_no)
    turn.end()
    turn.menu = after_assessment(kb)  # the business menu under the chat, from now on

    def labels(ids: tuple[str, ...] | list[str]) -> str:
        return ", ".join(kb.topics[t].label.th for t in ids if t in kb.topics)

    stage = a.stage_def(result.stage)
    turn.say(
        "assessment.result",
        stage=result.stage,
        stage_name=stage.name,
        stage_summary=stage.summary,
        strengths=labels(result.strengths) or turn.reply_text("assessment.no_strengths"),
        next_topics=labels(result.topics[: a.scoring.show_topics]),
    )
    if final.get("notify") == "yes":
        place = kb.places.provinces[province].name_th if province else None
        turn.say(
            "assessment.notify_saved",
            topics=labels(result.topics[: a.scoring.show_topics]),
            place=place or turn.reply_text("assessment.nationwide"),
        )
    if not picks:
        turn.say("assessment.no_cards", *main_menu(turn))
        return
    show_distance = bool(near and near[2])
    bubbles = [_bubble(turn, p, kb, show_distance) for p in picks]
    alt = turn.reply_text("assessment.cards_alt", count=len(bubbles), names=card_titles(bubbles))
    turn.send(carousel(bubbles, alt, quick=main_menu(turn)))
