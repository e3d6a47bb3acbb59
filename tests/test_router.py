"""The router's dispatch order and registry, on handlers written for the test."""

from __future__ import annotations

import pytest

from bot.dialogue.router import GUIDES, Dispatcher, Router, Turn
from bot.dialogue.state import DialogueState
from bot.dialogue.steps import Step, StepGroup
from bot.line.events import InboundEvent
from bot.nlu import Parse
from tests.helpers import event_of, text_event


class FlowSteps(StepGroup):
    ask_goal = Step()


flow = Router("flow", steps=FlowSteps)
basics = Router("basics")


@flow.intent("cancel", global_=True)
async def cancel(turn: Turn) -> None: ...


@flow.step(FlowSteps.ask_goal, accepts=["location"])
async def ask_goal(turn: Turn) -> None: ...


@flow.postback("pick")
async def pick(turn: Turn) -> None: ...


@basics.intent("greet")
async def greet(turn: Turn) -> None: ...


@basics.event("follow", "message:sticker")
async def follow(turn: Turn) -> None: ...


@basics.fallback()
async def fallback(turn: Turn) -> None: ...


DISPATCH = Dispatcher([flow, basics])


def _turn(raw: dict, intent: str | None = None, step: str | None = None) -> Turn:
    parse = (
        Parse("x", "x", intent, 0.9 if intent else 0.1) if raw.get("type") == "message" else None
    )
    return Turn(InboundEvent.from_dict(raw), services=None, state=DialogueState(step), nlu=parse)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("raw", "intent", "step", "expected"),
    [
        (text_event("ยกเลิก"), "cancel", "ask_goal", cancel),  # global intent beats the step
        (text_event("สวัสดี"), "greet", "ask_goal", ask_goal),  # inside a step, the step answers
        (text_event("สวัสดี"), "greet", None, greet),
        (text_event("???"), None, None, fallback),
        (text_event("ดูดวง"), "out_of_scope", None, fallback),
        (event_of("postback", postback={"data": "action=pick&id=3"}), None, None, pick),
        (event_of("postback", postback={"data": "action=gone"}), None, None, fallback),
        (event_of("follow"), None, None, follow),
        (
            event_of(
                "message",
                message={"id": "1", "type": "location", "latitude": 13.7, "longitude": 100.5},
            ),
            None,
            "ask_goal",
            ask_goal,
        ),
        (
            event_of(
                "message",
                message={"id": "1", "type": "sticker", "packageId": "1", "stickerId": "1"},
            ),
            None,
            "ask_goal",
            follow,
        ),
        (event_of("message", message={"id": "1", "type": "video"}), None, None, fallback),
    ],
)
def test_dispatch_order(raw: dict, intent: str | None, step: str | None, expected: object) -> None:
    _route, handler = DISPATCH.choose(_turn(raw, intent, step))
    assert handler is expected


def test_unknown_event_type_has_no_handler() -> None:
    route, handler = DISPATCH.choose(_turn(event_of("somethingNew")))
    assert handler is None and route == "somethingNew"


def test_registering_an_intent_twice_is_an_error() -> None:
    other = Router("other")
    other.intent("greet")(greet)
    with pytest.raises(ValueError, match="greet"):
        Dispatcher([basics, other])


def test_shipped_handlers_use_only_existing_reply_keys_and_intents() -> None:
    """Every reply key the handler modules name exists in knowledge/replies.yaml."""
    from bot.kb.loader import load_replies
    from bot.kb.reply_usage import reply_uses
    from bot.nlu import build_engine
    from bot.services import load_routers
    from tests.helpers import ROOT

    replies = load_replies(ROOT / "knowledge")
    engine = build_engine(ROOT / "intents")
    keys = {use.key for use in reply_uses(ROOT) if use.where.startswith("handlers/")}
    assert keys and keys <= set(replies.texts), keys - set(replies.texts)
    dispatcher = Dispatcher(load_routers())
    # guides are answered by one handler for every ``guide:<id>`` label
    assert set(dispatcher.intents) - {GUIDES} <= engine.intents | {"out_of_scope"}
    assert dispatcher.handler_for("guide:any_guide") is dispatcher.intents[GUIDES]


def test_declared_steps_are_named_by_their_conversation() -> None:
    class Orders(StepGroup, prefix="orders"):
        ask_size = Step()
        confirm = Step()

    assert Orders.ask_size == "orders.ask_size"
    assert Orders.steps() == ("orders.ask_size", "orders.confirm")
    assert Orders.get("confirm") == "orders.confirm"
    with pytest.raises(KeyError):
        Orders.get("nowhere")


def test_a_declared_step_without_a_handler_stops_the_bot_at_start_up() -> None:
    class Orders(StepGroup, prefix="orders"):
        ask_size = Step()
        confirm = Step()

    orders = Router("orders", steps=Orders)

    @orders.step(Orders.ask_size)
    async def ask_size(turn: Turn) -> None:
        turn.goto(Orders.confirm)  # would strand the user: nothing answers "orders.confirm"

    with pytest.raises(ValueError, match=r"orders\.confirm of Orders has no handler"):
        Dispatcher([orders])


def test_a_handled_step_that_no_router_declares_stops_the_bot_at_start_up() -> None:
    class Stray(StepGroup, prefix="stray"):
        somewhere = Step()

    loose = Router("loose")  # declares no conversation

    @loose.step(Stray.somewhere)
    async def somewhere(turn: Turn) -> None: ...

    with pytest.raises(ValueError, match=r"stray\.somewhere"):
        Dispatcher([loose])


def test_every_shipped_conversation_step_has_a_handler() -> None:
    from bot.services import load_routers

    dispatcher = Dispatcher(load_routers())
    assert "assessment.business_stage" in dispatcher.steps
    assert "courses.topic" in dispatcher.steps
