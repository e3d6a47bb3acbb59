"""One router for every LINE event.

Handler modules create a ``Router`` and decorate plain async functions that
take one ``Turn``. Decorators only record metadata and return the function
unchanged (as in aiogram, opsdroid and Bolt), so tests can call handlers
directly and inspect the registry.

Dispatch order, first match wins:

1. ``postback`` events: the handler registered for the ``action`` in the
   postback data (``action=name&...``), or the stale handler for a flow's button
   made in an earlier state (``bot.dialogue.stamps``); ``action=go&i=<intent>`` (menu and
   "did you mean" buttons) runs that intent's handler; an unknown action
   goes to the fallback.
2. ``message`` events with text: a *global* intent (such as ``cancel``)
   recognised with confidence, then the handler of the user's current
   dialogue step, then the best intent above the engine's threshold, then
   the fallback (low confidence or ``out_of_scope``).
3. Other ``message`` events (location, sticker, image, audio, video, file):
   the current step's handler if it declared it accepts that kind, else the
   handler for ``message:<kind>``, else ``message:*``.
4. Any other event type (follow, unfollow, join, leave, ...): the handler
   for that type; an unknown type is logged and left unanswered.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from bot.dialogue.stamps import STALE, is_stale
from bot.dialogue.state import DialogueState
from bot.dialogue.steps import Step, StepGroup
from bot.kb.guides import GUIDE_PREFIX
from bot.line.calls import LineError, Messenger
from bot.line.events import InboundEvent
from bot.line.messages import Action, Message, Text, parse_postback
from bot.storage.db import Assessment
from bot.storage.queries import latest_assessment

if TYPE_CHECKING:
    from bot.nlu import Parse
    from bot.services import Services

log = logging.getLogger(__name__)

Handler = Callable[["Turn"], Awaitable[None]]
#: A database change a handler decided on; the pipeline runs it with the turn's answer.
Write = Callable[[AsyncSession], Awaitable[object]]
T = TypeVar("T")

#: Postback action of menu and "did you mean" buttons: ``action=go&i=<intent>``.
GO = "go"
#: Guides are answered by one handler registered for this name (``guide:<id>`` intents).
GUIDES = "guide:*"


@dataclass
class Turn:
    """Everything a handler needs for one event, and what it decides to answer."""

    event: InboundEvent
    services: Services
    state: DialogueState
    nlu: Parse | None = None
    messages: list[Message] = field(default_factory=list)
    #: The dialogue state to store after the turn (None: leave it as it was).
    next_state: DialogueState | None = None
    messenger: Messenger | None = None
    #: Database changes to commit in the same transaction as the answer (``write``).
    writes: list[Write] = field(default_factory=list)
    #: Delete the user's keys in Redis when the answer is sent (``forget_user``).
    forget: bool = False
    #: The intent (or ``guide:<id>``) this turn is answering, set when it is routed to one.
    answering: str | None = None
    #: The flow this turn's answer interrupts (``bot.dialogue.detours``): step and answers.
    paused: dict[str, Any] | None = None
    #: This turn offered a detour (its message is not the flow's question to ask again).
    detour_offered: bool = False
    #: How the dashboard counts this turn when the route alone cannot tell (``bot.storage.daily``).
    outcome: str | None = None
    #: The user's own rich menu to set with the answer: an alias from ``richmenus.yaml``, or
    #: "" for the default again (``bot.richmenu.users``); None leaves it as it is.
    menu: str | None = None
    #: The answer was late: the user was offered ``help.button_result`` and it waits for that tap.
    held: bool = False
    #: Users' latest finished assessments known already (the pipeline's record of the event
    #: brings the chat's): ``latest_assessment`` reads the others.
    assessments: dict[str, Assessment | None] = field(default_factory=dict)

    @property
    def user_id(self) -> str:
        """The chat being answered (a user id in one-to-one chats)."""
        return self.event.chat_id

    @property
    def text(self) -> str:
        """The user's text ('' for non-text events)."""
        return self.event.text or ""

    @property
    def postback(self) -> dict[str, str]:
        """Decoded postback data (empty for other events)."""
        return parse_postback(self.event.postback_data)

    async def display_name(self) -> str | None:
        """The user's LINE display name, asked of LINE now (never stored); None if unknown."""
        if self.messenger is None or self.event.user_id is None or not self.event.one_to_one:
            return None
        try:
            profile = await self.messenger.profile(self.event.user_id)
        except LineError:
            return None
        name = profile.get("displayName") or profile.get("display_name")
        return str(name).strip() or None if name else None

    def reply_text(self, key: str, **params: Any) -> str:
        """The wording of reply ``key`` from knowledge/replies.yaml."""
        return self.services.replies.text(key, **params)

    def say(self, key: str, *quick: Action, **params: Any) -> None:
        """Answer with reply ``key``, optionally with quick-reply buttons."""
        self.messages.append(Text(self.reply_text(key, **params), tuple(quick)))

    def send(self, message: Message) -> None:
        """Answer with a prepared message (Flex, sticker, location, ...)."""
        self.messages.append(message)

    def goto(self, step: Step, **answers: Any) -> None:
        """Move the user's dialogue to a declared ``step``, merging ``answers``."""
        merged = dict((self.next_state or self.state).answers)
        merged.update(answers)
        self.next_state = DialogueState(step=step, answers=merged)

    def end(self) -> None:
        """Close the user's open dialogue."""
        self.next_state = DialogueState()

    async def read(self, query: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """Run a read-only ``query`` (``bot.storage.queries``) in a short session of its own
        (``Database.reading``: no transaction around it; a write there would commit at once,
        so changes go through ``write``)."""
        async with self.services.db.reading() as session:
            return await query(session)

    async def latest_assessment(self, user: str) -> Assessment | None:
        """``user``'s most recent finished assessment: the one the event's record brought
        when it is this chat's (no read of its own), else read now. Like every read in a
        turn, it does not see this turn's writes."""
        if user not in self.assessments:
            self.assessments[user] = await self.read(lambda s: latest_assessment(s, user))
        return self.assessments[user]

    def write(self, change: Write) -> None:
        """Change the database with this turn's answer, not now.

        The pipeline runs every ``change`` (in order) in the one transaction that stores the
        answer before it is sent, or that closes an event with nothing to say. A worker that
        dies before that commit leaves neither, so the retry runs the handler again and the
        change happens exactly once; nothing a handler reads in this turn sees it yet.
        """
        self.writes.append(change)

    def forget_user(self) -> None:
        """Delete every Redis key naming the user once this turn's answer is stored (PDPA
        erasure): it cannot share the database transaction, so it runs on every try of
        sending the answer and must be harmless twice (``bot.storage.privacy.erase_keys``)."""
        self.forget = True

    async def hand_over(self, intent: str) -> bool:
        """Let the handler of ``intent`` answer this turn instead (the user changed subject
        mid-conversation); False when no handler is registered for it."""
        handler = self.services.dispatcher.handler_for(intent)
        if handler is None:
            return False
        self.answering = intent
        await handler(self)
        return True

    def can_hand_over(self, intent: str | None) -> bool:
        """Is there a handler that ``hand_over(intent)`` would run?"""
        return self.services.dispatcher.handler_for(intent) is not None


@dataclass(frozen=True)
class StepHandler:
    """A dialogue step's handler and the message kinds it accepts besides text."""

    func: Handler
    accepts: frozenset[str]
    #: Reads a text as this step's answer even when it is also a global intent's phrase
    #: ("ไม่ต้องครับ" answers "want notices?" rather than cancelling).
    claims: Callable[[Turn], bool] | None = None


class Router:
    """A named group of handlers, one per capability module."""

    def __init__(self, name: str, steps: Iterable[type[StepGroup]] | type[StepGroup] = ()) -> None:
        self.name = name
        #: The conversations this router answers: each of their steps must have a handler.
        self.step_groups: tuple[type[StepGroup], ...] = (
            (steps,) if isinstance(steps, type) else tuple(steps)
        )
        self.intents: dict[str, Handler] = {}
        self.global_intents: set[str] = set()
        self.postbacks: dict[str, Handler] = {}
        #: Postback actions whose buttons carry the state's token (``bot.dialogue.stamps``),
        #: and the intent that starts each one's flow again.
        self.stamped: set[str] = set()
        self.restarts: dict[str, str] = {}
        self.steps: dict[str, StepHandler] = {}
        self.events: dict[str, Handler] = {}
        self.fallback_handler: Handler | None = None
        self.timeouts: dict[str, Handler] = {}

    def on_timeout(self, *step_prefixes: str) -> Callable[[Handler], Handler]:
        """Run before the turn's own handler when the user's open step (with one of
        these prefixes) expired since their last message: tell them it timed out."""

        def register(func: Handler) -> Handler:
            for prefix in step_prefixes:
                self.timeouts[prefix] = func
            return func

        return register

    def intent(self, *names: str, global_: bool = False) -> Callable[[Handler], Handler]:
        """Handle these intents; ``global_`` ones win even inside a dialogue step."""

        def register(func: Handler) -> Handler:
            for name in names:
                self.intents[name] = func
                if global_:
                    self.global_intents.add(name)
            return func

        return register

    def postback(
        self, action: str, stamped: bool = False, restart: str | None = None
    ) -> Callable[[Handler], Handler]:
        """Handle postbacks whose data has ``action=<action>``; ``stamped`` buttons belong
        to a flow's state, and a tap from an earlier state goes to the stale handler, which
        offers ``restart`` (the intent that starts the flow) when no flow is open."""

        def register(func: Handler) -> Handler:
            self.postbacks[action] = func
            if stamped:
                self.stamped.add(action)
                if restart:
                    self.restarts[action] = restart
            return func

        return register

    def step(
        self,
        name: Step,
        accepts: Iterable[str] = (),
        claims: Callable[[Turn], bool] | None = None,
    ) -> Callable[[Handler], Handler]:
        """Handle the user's messages while their dialogue is at step ``name``.

        ``claims(turn)`` True takes a text before global intents (a clear answer wins).
        """

        def register(func: Handler) -> Handler:
            self.steps[name] = StepHandler(func, frozenset(accepts), claims)
            return func

        return register

    def event(self, *types: str) -> Callable[[Handler], Handler]:
        """Handle event types (``follow``, ``join``, ``message:sticker``, ``message:*``...)."""

        def register(func: Handler) -> Handler:
            for t in types:
                self.events[t] = func
            return func

        return register

    def fallback(self) -> Callable[[Handler], Handler]:
        """Handle what nothing else did."""

        def register(func: Handler) -> Handler:
            self.fallback_handler = func
            return func

        return register


class Dispatcher:
    """All routers merged; a duplicate registration is an error at start-up."""

    def __init__(self, routers: Iterable[Router]) -> None:
        routers = list(routers)
        self.intents: dict[str, Handler] = {}
        self.global_intents: set[str] = set()
        self.postbacks: dict[str, Handler] = {}
        self.stamped: frozenset[str] = frozenset()
        self.restarts: dict[str, str] = {}
        self.steps: dict[str, StepHandler] = {}
        self.events: dict[str, Handler] = {}
        self.fallback: Handler | None = None
        self.timeouts: dict[str, Handler] = {}
        for router in routers:
            tables: list[tuple[dict[str, Any], dict[str, Any]]] = [
                (self.intents, router.intents),
                (self.postbacks, router.postbacks),
                (self.steps, router.steps),
                (self.events, router.events),
                (self.timeouts, router.timeouts),
            ]
            for table, mine in tables:
                clash = set(table) & set(mine)
                if clash:
                    raise ValueError(f"router {router.name} registers {sorted(clash)} again")
                table.update(mine)
            self.global_intents |= router.global_intents
            self.stamped |= router.stamped
            self.restarts.update(router.restarts)
            if router.fallback_handler is not None:
                if self.fallback is not None:
                    raise ValueError(f"router {router.name} declares a second fallback")
                self.fallback = router.fallback_handler
        self._check_steps(routers)

    def _check_steps(self, routers: Iterable[Router]) -> None:
        """Every declared step has a handler and every handled step is declared, so a
        ``goto`` can never strand a user in a step nothing answers (checked at start-up)."""
        declared: set[str] = set()
        for router in routers:
            for group in router.step_groups:
                for step in group.steps():
                    declared.add(step)
                    if step not in self.steps:
                        raise ValueError(
                            f"router {router.name}: step {step} of {group.__name__} has no handler"
                        )
        undeclared = sorted(set(self.steps) - declared)
        if undeclared:
            raise ValueError(f"steps {undeclared} are handled but no router declares them")

    def handler_for(self, intent: str | None) -> Handler | None:
        """The handler of an intent, or of guides for ``guide:<id>`` (None: nothing answers)."""
        if not intent or intent == "out_of_scope":
            return None
        if intent.startswith(GUIDE_PREFIX):
            return self.intents.get(GUIDES)
        return self.intents.get(intent)

    def timeout_handler(self, turn: Turn) -> Handler | None:
        """The handler that explains an expired step, if the user's step just expired."""
        expired = turn.state.expired_step
        if not expired or turn.event.type not in ("message", "postback"):
            return None
        for prefix, func in self.timeouts.items():
            if expired.startswith(prefix):
                return func
        return None

    def choose(self, turn: Turn) -> tuple[str, Handler | None]:
        """Pick the handler for a turn (see the module docstring for the order)."""
        event = turn.event
        step = self.steps.get(turn.state.step or "")
        if event.type == "postback":
            action = turn.postback.get("action", "")
            if action == GO:
                wanted = turn.postback.get("i", "")
                handler = self.handler_for(wanted)
                if handler is not None and wanted != GUIDES:
                    turn.answering = wanted
                    return f"intent:{wanted}", handler
            if action in self.postbacks:
                if is_stale(turn, self.stamped):
                    return STALE, self.events.get(STALE, self.fallback)
                return f"postback:{action}", self.postbacks[action]
            return "fallback", self.fallback
        if event.type == "message" and event.message_type == "text":
            parse = turn.nlu
            intent = parse.intent if parse else None
            if intent in self.global_intents:
                if step is not None and step.claims is not None and step.claims(turn):
                    return f"step:{turn.state.step}", step.func
                turn.answering = intent
                return f"intent:{intent}", self.intents[intent]
            if step is not None:
                return f"step:{turn.state.step}", step.func
            handler = self.handler_for(intent)
            if handler is not None and intent != GUIDES:
                turn.answering = intent
                return f"intent:{intent}", handler
            return "fallback", self.fallback
        if event.type == "message":
            kind = event.message_type or "unknown"
            if step is not None and kind in step.accepts:
                return f"step:{turn.state.step}", step.func
            for key in (f"message:{kind}", "message:*"):
                if key in self.events:
                    return key, self.events[key]
            return "fallback", self.fallback
        return event.type, self.events.get(event.type)
